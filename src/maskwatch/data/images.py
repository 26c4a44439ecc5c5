"""Reading photos with errors that say which file and what is wrong with it."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from maskwatch import MAX_PIXELS

# MAX_PIXELS: decompression bombs, refused by their header before decoding (OpenCV's
# OPENCV_IO_MAX_IMAGE_PIXELS, set to it in maskwatch/__init__.py, before cv2 loads).

UNREAD_PHOTOS = ("HEIC/HEIF photos (an iPhone's default) are not read here: convert them to JPEG "
                 "(heif-convert, or the phone's camera format 'Most Compatible')")
AUDIO = "an audio file (M4A), not a photo or a video"  # an ISO media file of sound alone
# The brands an ISO media file (ftyp) of HEIC or HEIF declares; AVIF's are photos OpenCV reads,
# and a Canon CR3 raw photo is one too (no video): every other brand is a video's (MP4, QuickTime).
HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1"}
PHOTO_BRANDS = HEIF_BRANDS | {b"avif", b"avis", b"crx "}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class ImageError(ValueError):
    """An image that cannot be used, with its source and the reason."""


def read_image(path: Path | str) -> np.ndarray:
    """Read a photo as HxWx3 BGR uint8; raise ImageError naming the file if it cannot."""
    path = Path(path)
    if path.is_dir():
        raise ImageError(f"{path}: a folder, not an image file")
    if not path.is_file():
        raise ImageError(f"{path}: image file not found{_renamed_hint(path)}")
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ImageError(f"{path}: cannot read file: {err.strerror or err}") from err
    return decode_image(data, source=str(path))


def _renamed_hint(path: Path) -> str:
    """The files beside a missing photo with its name in another suffix or case: a photo converted
    or renamed after its annotation named it (`a.png` now `a.jpg`) was said as two unrelated problems."""
    try:
        near = sorted(p.name for p in path.parent.iterdir() if p.stem.lower() == path.stem.lower())
    except OSError:  # no such folder, or not readable: nothing to suggest
        return ""
    return f" ({path.parent.name}/ holds {', '.join(near[:3])}: renamed? name it in its annotation)" if near else ""


def decode_image(data: bytes, source: str = "image", max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode encoded image bytes (PNG, JPEG, ...) to HxWx3 BGR uint8."""
    if not data:
        raise ImageError(f"{source}: empty file")
    if data.startswith(PNG_SIGNATURE) and b"IEND" not in data:
        # OpenCV decodes none, and libpng says "libpng error: PNG input buffer is incomplete" on
        # stderr itself, beside our line (OPENCV_LOG_LEVEL does not reach it): not decoded.
        raise ImageError(f"{source}: not a readable image (a PNG cut short: it has no end chunk)")
    buffer = np.frombuffer(data, dtype=np.uint8)
    try:
        image = cv2.imdecode(buffer, cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH)
    except cv2.error as err:  # the header's size over OPENCV_IO_MAX_IMAGE_PIXELS, nothing decoded
        if "CV_IO_MAX_IMAGE_PIXELS" not in str(err):
            raise ImageError(f"{source}: not a readable image ({str(err).strip().splitlines()[-1][:120]})") from None
        raise ImageError(f"{source}: its header claims more than "
                         f"{os.environ.get('OPENCV_IO_MAX_IMAGE_PIXELS', MAX_PIXELS)} pixels; not decoded") from None
    if image is None:
        raise ImageError(f"{source}: {not_a_photo(data) or 'not a readable image (corrupt, truncated or unsupported format)'}")
    if image.shape[0] * image.shape[1] > max_pixels:
        raise ImageError(f"{source}: {image.shape[1]}x{image.shape[0]} exceeds {max_pixels} pixels")
    return to_8_bits(turned_avif(data, image))


def turned_avif(data: bytes, image: np.ndarray) -> np.ndarray:
    """An AVIF photo turned and mirrored as its `irot` and `imir` boxes say, in that order (the
    HEIF rule). OpenCV turns a JPEG by its EXIF orientation but leaves an AVIF as stored: a
    phone's portrait AVIF was read on its side, its faces missed, where the API (Pillow) read it upright."""
    if data[4:8] != b"ftyp" or data[8:12] not in (b"avif", b"avis"):
        return image
    start = data.find(b"ipco", 0, 1 << 16) - 4  # the item properties, in the meta box before the pixels
    if start < 0:
        return image
    end, pos, found = min(start + int.from_bytes(data[start:start + 4], "big"), len(data)), start + 8, {}
    while pos + 9 <= end:
        size = int.from_bytes(data[pos:pos + 4], "big")
        found.setdefault(data[pos + 4:pos + 8], data[pos + 8])
        pos += max(size, 9)
    angle = found.get(b"irot", 0) & 3  # anti-clockwise, in quarter turns
    if angle:
        image = cv2.rotate(image, (cv2.ROTATE_90_COUNTERCLOCKWISE, cv2.ROTATE_180, cv2.ROTATE_90_CLOCKWISE)[angle - 1])
    if b"imir" in found:  # 0: top to bottom, 1: left to right (libavif's reading of the axis)
        image = cv2.flip(image, found[b"imir"] & 1)
    return image


def not_a_photo(data: bytes) -> str | None:
    """What undecodable bytes hold where that is a known mistake, else None: an iPhone's HEIC
    (also saved as .jpg by some transfer apps) or a video, each of which was called "corrupt"."""
    box = data[4:12]
    if box[:4] == b"ftyp" and box[4:] in HEIF_BRANDS:
        return UNREAD_PHOTOS
    if box[:4] == b"ftyp" and box[4:] in (b"M4A ", b"M4B ", b"M4P ", b"F4A ", b"F4B "):
        return AUDIO
    if box[:4] == b"ftyp" and box[4:] not in PHOTO_BRANDS or data[:4] == b"\x1aE\xdf\xa3" or (
            data[:4] == b"RIFF" and data[8:12] == b"AVI "):
        return "a video (MP4, QuickTime, Matroska or AVI), not a photo (named as a video, `maskwatch detect` reads it)"
    return None


def to_8_bits(image: np.ndarray) -> np.ndarray:
    """8-bit pixels from deeper ones. OpenCV scales 16 bits by 1/256, so a 12-bit sensor's frame
    (0-4095 in a 16-bit PNG) came out nearly black (0-15): the sensor's depth is taken as the
    smallest of 8, 10, 12, 14 and 16 bits that holds the brightest pixel. Floats (TIFF, EXR) are
    taken as 0-1."""
    if image.dtype == np.uint8:
        return image
    if image.dtype.kind in "iu" and image.dtype != np.uint16:
        # A signed 16-bit TIFF: its negatives are below black. Wider ints (np.asarray(pil).astype(int)
        # in a notebook, 0-255) were taken as 0-1 floats and came out white: read as 16-bit ones.
        image = np.clip(image, 0, 65535).astype(np.uint16)
    if image.dtype == np.uint16:
        bits = next(b for b in (8, 10, 12, 14, 16) if int(image.max()) < 2 ** b)
        return cv2.convertScaleAbs(image, alpha=255.0 / (2 ** bits - 1))
    return (np.clip(np.nan_to_num(image.astype(np.float32)), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def check_bgr(image, what: str = "image") -> np.ndarray:
    """`image` if it is what the networks read (HxWx3 BGR uint8, at least 1 px each way), else a
    ValueError naming what it is and the fix. A uint16 frame gave hundreds of false faces, a 0-1
    float one none, and None, a PIL image or an empty array a traceback from deep in OpenCV."""
    if image is None:
        raise ValueError(f"{what} is None (cv2.imread returns None for a file it cannot read; "
                         "maskwatch.data.images.read_image(path) says why)")
    if not isinstance(image, np.ndarray):
        # Upright first: PIL leaves a phone photo as its sensor stored it (EXIF orientation), where
        # cv2.imread and maskwatch detect turn it; on its side it lost its faces.
        hint = ('; np.asarray(ImageOps.exif_transpose(pil_image).convert("RGB"))[:, :, ::-1] makes a PIL '
                'image upright and BGR (from PIL import ImageOps)'
                if hasattr(image, "getbands") else  # cv2.imread made a 12-bit photo's 16-bit PNG nearly black
                "; for a file: maskwatch.data.images.read_image(path), which reads it as maskwatch detect does"
                if isinstance(image, (str, os.PathLike)) else "")
        raise ValueError(f"{what} must be a NumPy array (HxWx3 BGR uint8), got {type(image).__name__}{hint}")
    if image.ndim >= 2 and (image.shape[0] < 1 or image.shape[1] < 1):
        raise ValueError(f"{what} is empty: shape {image.shape}")
    if image.ndim != 3 or image.shape[2] != 3:
        channels = image.shape[2] if image.ndim == 3 else 1 if image.ndim == 2 else 0
        fix = {1: "; grey: cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)",
               # PIL's and imageio's 4 channels are RGBA: BGRA2BGR alone gave them RGB, wrong labels.
               4: "; with alpha: cv2.cvtColor(image, cv2.COLOR_BGRA2BGR) from OpenCV, "
                  "cv2.COLOR_RGBA2BGR from PIL or imageio"}.get(channels, "")
        raise ValueError(f"{what} must be HxWx3 BGR, got shape {image.shape}{fix}")
    if image.dtype != np.uint8:
        raise ValueError(f"{what} must be 8-bit (uint8, 0-255), got {image.dtype}; {eight_bits_fix(image)}")
    return image


def eight_bits_fix(image: np.ndarray) -> str:
    """How to make `image` 8-bit. to_8_bits takes floats as 0-1: a 0-255 float image
    (image.astype(np.float32) in a notebook) given to it, as the error said, came out white."""
    if image.dtype.kind == "f":
        finite = image[np.isfinite(image)]
        if finite.size and finite.max() > 1:
            return (f"its values reach {float(finite.max()):g}, so not 0-1: for 0-255, "
                    "np.clip(image, 0, 255).astype(np.uint8)")
    return "maskwatch.data.images.to_8_bits converts 16-bit, wider whole-number and 0-1 float images"

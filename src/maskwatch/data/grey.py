"""Whether a picture is grey (R = G = B give or take a codec's chroma): an infrared camera's frame at night.

The classifier sends the faces of a grey frame to its night model (see maskwatch.classifier), and a
camera says when its frames turn grey (maskwatch.video.night); both read a frame by this one rule.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

# A pixel's channel spread (its largest |B-G|, |G-R|, the frame's own cast taken off) that the 99th
# percentile of a grey frame stays within: a codec's chroma leaves a few levels; the least colourful
# colour photo of the dataset's 853 reached 14.
GREY_SPREAD = 8

# What a face of a grey frame is worth, said in the same words by every log line, warning, report,
# alert and help text (figures: benchmarks/night_frames.py, docs/site.md#night-and-infrared-cameras).
NIGHT_WORDS = ("judged by the night model, less sure than in colour (on grey copies of held-out photos 15 of 143 bare "
               "faces passed as masked, 1 in colour, 67 with glare; on dark, noisy copies many masked faces read "
               "bare): read a marked share with care")


def is_grey(image: np.ndarray, faces: Iterable[Sequence[float]] = ()) -> bool:
    """Whether a BGR frame is a grey picture: grey_reading's answer, a frame that cannot tell counted colour."""
    return bool(grey_reading(image, faces))


def grey_reading(image: np.ndarray, faces: Iterable[Sequence[float]] = ()) -> bool | None:
    """Whether a BGR frame is a grey picture (R = G = B give or take a codec's chroma): an infrared
    camera's at night, or a grey stream or file read as BGR. Every 8th pixel each way is enough.
    Only pixels neither near black nor near white tell (those are grey in any camera), and a frame
    without a picture in it (one flat level: black, a test card's grey) is not called grey; where
    too little of it is lit to tell (an illuminator's night, the faces alone lit), its faces tell.
    The frame's median B-G and G-R are taken off first: many infrared cameras' black-and-white
    frames carry a slight purple or green cast, the same over the whole frame (3 chroma levels off
    neutral put R, G and B 9 apart), where a colour picture's differences vary from pixel to pixel.
    `faces` (xyxy boxes found in it): a face in colour makes it colour, whatever the rest is (a
    colour camera's grey corridor, its faces under 1 % of the frame, was called grey).
    None: the frame cannot tell (too dark or flat, and no face found in it that holds a picture):
    an infrared camera's empty platform at night, lit only near the camera, read as colour, and the
    site said its frames had turned colour again while they were still infrared."""
    faces = list(faces)
    sample = image[::8, ::8].reshape(-1, 3).astype(np.int16)
    level, told = _told(sample)
    if told.sum() < 0.05 * told.size or level.std() < 8:
        # Too little of the frame lit to tell: black, one flat level, or an infrared illuminator's night
        # lighting only the faces near it (the rest under 24 of 255: such a frame's faces went to the
        # colour models). The faces found in it tell, where they hold a picture.
        return _lit_faces_grey(image, faces)
    cast, grey = _neutral(sample[told])
    return grey and not any(_in_colour(image, box, cast) for box in faces)


def is_grey_crop(crop: np.ndarray) -> bool:
    """Whether a face's crop alone (BGR, no frame around it) is grey: as is_grey, every pixel read, and
    a crop of one flat level is grey too (its picture is the face; no test card to tell apart)."""
    return _neutral(crop.reshape(-1, 3).astype(np.int16))[1]


def _told(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each of N x 3 pixels' level (its largest channel) and whether it tells grey from colour:
    neither near black nor near white (those are grey in any camera)."""
    level = pixels.max(axis=1)
    return level, (level > 24) & (level < 232)


def _neutral(pixels: np.ndarray) -> tuple[tuple[float, float], bool]:
    """N x 3 int16 pixels' cast (median B-G and G-R) and whether, that cast taken off, the 99th
    percentile of their channel spread stays within GREY_SPREAD: the one rule of a grey picture."""
    blue_green, green_red = pixels[:, 0] - pixels[:, 1], pixels[:, 1] - pixels[:, 2]
    cast = np.median(blue_green), np.median(green_red)
    return cast, bool(np.percentile(_spread(blue_green, green_red, cast), 99) <= GREY_SPREAD)


def _spread(blue_green: np.ndarray, green_red: np.ndarray, cast) -> np.ndarray:
    return np.maximum(np.abs(blue_green - cast[0]), np.abs(green_red - cast[1]))


def _in_colour(image: np.ndarray, box: Sequence[float], cast) -> bool:
    """Whether most of a face's pixels (about 16 x 16 of them) are off the frame's grey."""
    face = _face_pixels(image, box)
    if not len(face):
        return False
    spread = _spread(face[:, 0] - face[:, 1], face[:, 1] - face[:, 2], cast)
    return bool(np.median(spread) > GREY_SPREAD)


def _lit_faces_grey(image: np.ndarray, faces: Iterable[Sequence[float]]) -> bool | None:
    """Whether the faces of a frame too dark to tell by are grey, read as is_grey reads a frame:
    their pixels neither near black nor near white, their own cast taken off; faces of one flat
    level (no picture), too few such pixels (16) or none cannot tell (None)."""
    pixels = np.concatenate([_face_pixels(image, box) for box in faces] or [np.zeros((0, 3), np.int16)])
    level, told = _told(pixels)
    if told.sum() < 16 or level[told].std() < 8:
        return None
    return _neutral(pixels[told])[1]


def _face_pixels(image: np.ndarray, box: Sequence[float]) -> np.ndarray:
    """About 16 x 16 of a face's pixels (N x 3 int16), none where the box is outside the frame."""
    height, width = image.shape[:2]
    x0, y0 = max(0, int(box[0])), max(0, int(box[1]))
    x1, y1 = min(width, int(box[2])), min(height, int(box[3]))
    if x1 <= x0 or y1 <= y0:
        return np.zeros((0, 3), np.int16)
    step = max(1, min(x1 - x0, y1 - y0) // 16)
    return image[y0:y1:step, x0:x1:step].reshape(-1, 3).astype(np.int16)

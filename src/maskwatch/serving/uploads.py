"""Turning request bodies into images, refusing what should not be decoded: the body read under
its size limit (read_image_bytes), then its bytes decoded (image_from_upload)."""

from __future__ import annotations

import asyncio
import base64
import io
import re

import numpy as np
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import ClientDisconnect, Request


# The formats an upload may be: Pillow opens every format it knows by default, and an EPS is
# handed to Ghostscript (a PostScript loop held a thread and a core until the server stopped).
UPLOAD_FORMATS = ("PNG", "JPEG", "BMP", "WEBP", "TIFF", "GIF", "AVIF")  # the photos `detect` reads


EMPTY_BODY = "empty body: send an image (multipart field 'image' or the raw bytes)"
NOT_AN_IMAGE = "not an image: expected PNG, JPEG, BMP, WebP, TIFF, GIF or AVIF bytes (HEIC: convert it to JPEG)"
# How the formats above begin: the test of whether base64 text is an image encoded.
SIGNATURES = (b"\x89PNG", b"\xff\xd8\xff", b"BM", b"RIFF", b"II*\x00", b"MM\x00*", b"GIF8")
# A progressive JPEG is decoded one scan at a time, each a pass over every pixel, and a scan can be a
# dozen bytes: 900 KB of 50,000 scans held the server's CPU for 9 s where its photo takes 0.1 s (and
# 10 MB of 7000x7000 pixels, minutes). A camera's or phone's progressive JPEG has about 10;
# libjpeg-turbo's djpeg has -maxscans for this.
MAX_JPEG_SCANS = 100
# A JPEG marker, as libjpeg finds one: 0xFF but for a stuffed 0x00 and the restart markers (in a scan).
_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7]")
_FILL = re.compile(rb"\xff+")  # fill bytes before a marker, any number


class UploadError(ValueError):
    """A request that carries no usable image; status is the HTTP code to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def image_from_upload(data: bytes, max_pixels: int) -> np.ndarray:
    """Decode an uploaded image to HxWx3 BGR uint8.

    The pixel count is read from the header and checked before anything is decoded
    (decompression bombs); Pillow refuses truncated files instead of half-decoding them.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    if not data:
        raise UploadError(400, EMPTY_BODY)
    try:
        image = Image.open(io.BytesIO(data), formats=UPLOAD_FORMATS)
    except Image.DecompressionBombError:
        raise UploadError(413, f"image dimensions exceed the limit of {max_pixels} pixels") from None
    except UnidentifiedImageError:
        raise UploadError(415, not_an_image(data)) from None
    except (OSError, ValueError, SyntaxError) as err:  # known by its header, cut short before its pixels
        raise UploadError(400, f"truncated or corrupt image: {err}") from None
    with image:
        width, height = image.size
        if width * height > max_pixels:
            raise UploadError(413, f"image is {width}x{height} = {width * height} pixels; "
                                   f"the limit is {max_pixels}")
        # MPO: Pillow's name for a JPEG with a multi-picture (MPF) segment, as phones write them
        if image.format in ("JPEG", "MPO") and (scans := jpeg_scans(data)) > MAX_JPEG_SCANS:
            raise UploadError(413, f"JPEG of {scans} scans; the limit is {MAX_JPEG_SCANS} (a progressive photo "
                                   "has about 10)")
        bits = image.tag_v2.get(258, 8) if image.format == "TIFF" else 16 if data[24:25] == b"\x10" else 8
        deep = image.mode.startswith(("I", "F")) or (image.format in ("PNG", "TIFF") and
                                                      max(bits if isinstance(bits, tuple) else (bits,)) > 8)
        if deep:  # 16-bit or float: Pillow clips or drops the low byte; read as `detect` reads it
            from maskwatch.data.images import ImageError, decode_image

            try:
                return decode_image(data, source="upload", max_pixels=max_pixels)
            except ImageError as err:
                raise UploadError(400, str(err)) from None
        try:
            # Turned as its EXIF says (a phone's portrait photo), as `detect` and `batch` read it.
            rgb = np.asarray(ImageOps.exif_transpose(image).convert("RGB"))
        except (OSError, ValueError, SyntaxError) as err:
            raise UploadError(400, f"truncated or corrupt image: {err}") from None
    return np.ascontiguousarray(rgb[:, :, ::-1])


def jpeg_scans(data: bytes) -> int:
    """How many scans (SOS segments) a JPEG's own markers hold, up to MAX_JPEG_SCANS + 1: a
    thumbnail inside its EXIF segment is not counted, and its entropy-coded data is skipped.

    Markers are found as libjpeg finds them, past any stray bytes between segments (it warns and
    reads on): a walk that stopped at the first such byte counted 10 scans of a file Pillow
    decoded all 2,000 of."""
    scans, at = 0, 2  # past SOI
    while scans <= MAX_JPEG_SCANS and (found := _MARKER.search(data, at)) and found.start() + 4 <= len(data):
        at, marker = found.start(), data[found.start() + 1]
        if marker == 0xFF:  # fill bytes: the marker is their last 0xFF's
            at = _FILL.match(data, at).end() - 1
        elif marker == 0xD9:  # EOI
            break
        elif marker in (0x01, 0xD8):  # TEM, SOI: no length of their own
            at += 2
        else:  # the segment, its length field included; SOS's entropy-coded data is the next search's
            scans += marker == 0xDA
            at += 2 + int.from_bytes(data[at + 2:at + 4], "big")
    return scans


def not_an_image(data: bytes) -> str:
    """Why bytes that are no image are refused, naming the usual mistake of a client written in
    another language: the image sent as base64 text, alone, in a data: URL or inside JSON."""
    from maskwatch.data.images import not_a_photo

    if kind := not_a_photo(data):  # a clip or a HEIC photo: said, not "expected PNG, JPEG ..."
        return f"not an image: {kind}"
    head = data[:256].lstrip()
    if head.startswith((b"{", b"[")):
        what = "JSON"
    elif head.startswith(b"data:"):
        what = "a data: URL"
    else:
        try:
            decoded = base64.b64decode(head[:64], validate=True)
        except ValueError:
            return NOT_AN_IMAGE
        if not (decoded.startswith(SIGNATURES) or decoded[4:8] == b"ftyp"):  # ftyp: AVIF, HEIC
            return NOT_AN_IMAGE
        what = "base64 text"
    return f"not an image: the body is {what}; send the image's own bytes (the raw body, or the file of the " \
           f"multipart field 'image'), not base64"


def megabytes(size: int) -> str:
    """A size as a user reads it: 10 MiB, 18.6 MiB (a limit given as 10485760 bytes; --max-upload-mb
    counts 2**20 bytes a unit, and says so)."""
    return f"{size / 2**20:.1f}".removesuffix(".0") + " MiB"


async def read_image_bytes(request: Request, limit: int) -> bytes:
    """The uploaded bytes, multipart or raw, refusing more than `limit` bytes without reading them all."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + 64 * 1024:
        raise UploadError(413, f"upload of {megabytes(int(declared))} exceeds the limit of {megabytes(limit)}")
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        # Read under the limit first: a chunked upload declares no length to refuse it by.
        body = await _read_at_most(request, limit, allowance=64 * 1024)  # the form's own bytes
        try:
            form = await _form_in_memory(request, body, limit)
        except MultiPartException as err:  # a malformed or oversized form
            # `Content-Type: multipart/form-data` set by hand (fetch, axios) lacks the boundary
            # that the HTTP library writes when it builds the form itself.
            hint = (" (the Content-Type of a form needs its boundary: let the HTTP library set the header)"
                    if "boundary" in err.message.lower() else "")
            raise UploadError(400, f"bad multipart upload: {err.message.rstrip('.')}{hint}") from None
        upload = form.get("image")
        others = sorted(set(form.keys()) - {"image"})
        if upload is None:
            got = f"; got {', '.join(repr(name) for name in others[:3])}" if others else ", and it has no field"
            raise UploadError(400, f"multipart upload needs a file field named 'image'{got}")
        if isinstance(upload, str):  # `-F image=...` without the @ that makes it a file
            raise UploadError(400, "multipart field 'image' is text, not a file: send the image as a file "
                                   "(curl -F image=@photo.jpg)")
        if others:
            raise UploadError(400, f"multipart upload takes one field, 'image'; got also {others[:3]}")
        data = await upload.read(limit + 1)
        if not data:
            raise UploadError(400, "multipart field 'image' is an empty file")
    else:
        data = await _read_at_most(request, limit)
    if len(data) > limit:
        raise UploadError(413, f"upload exceeds the limit of {megabytes(limit)}")
    return data


async def _form_in_memory(request: Request, body: bytes, limit: int):
    """The form of `body`, its file kept in memory: the body is there already, under the limit.
    Starlette spools a file over 1 MB to the temp folder, and on a full disk every such upload
    was a 500 with a traceback in the log."""
    async def replay():
        yield body

    parser = MultiPartParser(request.headers, replay(), max_files=1, max_fields=5, max_part_size=limit)
    parser.spool_max_size = len(body) + 1  # never rolled over to a file
    return await parser.parse()


# A body that sends nothing for this long is given up (408), as nginx's client_body_timeout does:
# a phone that lost its network mid-upload leaves a connection that never ends, and each held one
# of its user's UPLOADS_SENT_AT_ONCE for good (four, and none of the user's uploads was read again).
# A slow but live link sends something every second.
UPLOAD_IDLE_SECONDS = 60.0


async def _read_at_most(request: Request, limit: int, allowance: int = 0) -> bytes:
    """The request's body, refused (413) as soon as it passes `limit` + `allowance` bytes, and
    given up (408) once nothing of it came for UPLOAD_IDLE_SECONDS."""
    chunks, size, stream = [], 0, request.stream()
    while True:
        try:
            async with asyncio.timeout(UPLOAD_IDLE_SECONDS):
                chunk = await anext(stream, None)
        except TimeoutError:
            raise UploadError(408, f"upload stalled: nothing of its body came for {UPLOAD_IDLE_SECONDS:g} s, "
                                   f"after {size} bytes") from None
        except ClientDisconnect:  # a phone gone mid-upload: an answer to no one, not an ERROR and its traceback
            raise UploadError(400, f"the client went away after {size} bytes of its upload") from None
        if chunk is None:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit + allowance:
            raise UploadError(413, f"upload exceeds the limit of {megabytes(limit)}")
        chunks.append(chunk)

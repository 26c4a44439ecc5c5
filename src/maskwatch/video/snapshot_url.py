"""A snapshot URL's pictures, one per GET, fetched here rather than by OpenCV.

FFmpeg reads a URL ending in .jpg as an image file, whose length it must be told: a picture
without a Content-Length (its end told by closing the connection, as CGI scripts do) opened and
gave no frame (`opened but sent no frame`, for ever). And each picture FFmpeg did read cost an open
(a format probe) under the one lock OpenCV holds for every camera's open.
"""

from __future__ import annotations

import http.client
import os
import socket
import ssl
import time
import urllib.error

import cv2
import numpy as np

from maskwatch import MAX_PIXELS
from maskwatch.data.images import to_8_bits
from maskwatch.video.rtsp_probe import not_a_picture, refusal_words, untrusted, web_request
from maskwatch.video.sources import host_port, stream_address

LARGEST_PICTURE = 32 * 1024 * 1024  # a 4K JPEG is a few MB
# A JPEG's and a PNG's first bytes: a picture said as application/octet-stream (or with no type), as
# cheap cameras' scripts say it, was taken for a stream, FFmpeg's open and this fetch taking turns.
PICTURE_STARTS = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n")


class NoPicture(Exception):
    """The URL gave no picture this time, said in words that repeat no part of the URL."""

    def __init__(self, why: str, stream: bool = False) -> None:
        super().__init__(why)
        self.stream = stream  # it answered with something else than a picture: a stream, maybe


def fetch_picture(source: str, timeout: float) -> np.ndarray:
    """One picture of the http(s):// snapshot URL `source`, as a BGR image, its body within `timeout`
    seconds (plus at most one read's); NoPicture with the reason otherwise."""
    deadline = time.monotonic() + timeout
    opener, request, user = web_request(source)
    where = host_port(stream_address(source) or ("?", 0))
    try:
        with opener.open(request, timeout=timeout) as answer:
            kind = answer.headers.get_content_type() if answer.headers.get("Content-Type") else ""
            start = b"" if kind.startswith("image/") else answer.read(64)  # (64 bytes of a stream too)
            if not kind.startswith("image/") and not start.startswith(PICTURE_STARTS):
                # its body (a stream that never ends, maybe) is not read whole
                said = not_a_picture(kind, start)
                raise NoPicture(said or f"the camera answers with {kind or 'no Content-Type'}, not a picture",
                                stream=said is None)
            body = start + _body(answer, deadline)
    except urllib.error.HTTPError as err:
        err.close()
        raise NoPicture(refusal_words(err.code, str(err.reason or ""), bool(user), request.type)
                        or f"the camera answered {err.code}") from None
    except urllib.error.URLError as err:
        if isinstance(err.reason, ssl.SSLCertVerificationError):
            raise NoPicture(untrusted(err.reason)) from None
        raise NoPicture(_unreached(where, err.reason)) from None
    except (TimeoutError, socket.timeout):
        raise NoPicture(f"{where} sent no picture within {timeout:g} s") from None
    except (OSError, http.client.HTTPException) as err:
        raise NoPicture(_unreached(where, err)) from None
    except ValueError:  # a Location urllib cannot follow (`http://a..b/`: UnicodeError): it ended the reader's thread
        raise NoPicture("the camera redirected the request to an address that is no valid URL") from None
    if len(body) > LARGEST_PICTURE:
        raise NoPicture(f"the camera's answer is larger than {LARGEST_PICTURE // 2 ** 20} MB: no picture")
    try:
        # ANYDEPTH and to_8_bits, as photos are read: an infrared camera's 16-bit grey PNG of a
        # 12-bit sensor came out 0-15 of 255 (OpenCV's 1/256), its faces lost in black.
        image = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH)
    except cv2.error as err:  # a header over OpenCV's pixel limit (a decompression bomb): it ended the reader's thread
        if "CV_IO_MAX_IMAGE_PIXELS" not in str(err):
            raise NoPicture(f"the camera's answer ({len(body)} bytes) is no picture OpenCV can read") from None
        raise NoPicture(f"the camera's picture claims more than {os.environ.get('OPENCV_IO_MAX_IMAGE_PIXELS', MAX_PIXELS)} "
                        "pixels in its header: not decoded") from None
    if image is None:
        raise NoPicture(f"the camera's answer ({len(body)} bytes) is no picture OpenCV can read")
    return to_8_bits(image)


def _body(answer, deadline: float) -> bytes:
    """The answer's body, read as it comes: `timeout` was each read's, and a picture whose bytes came
    each within it (a slow link, a hung camera) held the reader for as long as they dripped. Up to
    one byte past LARGEST_PICTURE (read(LARGEST_PICTURE + 1) set 32 MB aside for every picture)."""
    parts, size = [], 0
    while size <= LARGEST_PICTURE:
        if time.monotonic() > deadline:
            raise TimeoutError
        part = answer.read1(min(64 * 1024, LARGEST_PICTURE + 1 - size))
        if not part:
            break
        parts.append(part)
        size += len(part)
    return b"".join(parts)


def _unreached(where: str, reason) -> str:
    if isinstance(reason, (TimeoutError, socket.timeout)):
        return f"{where} does not answer"
    return f"cannot reach {where} ({getattr(reason, 'strerror', None) or reason})"

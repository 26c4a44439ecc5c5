"""The tracks an MP4, QuickTime or M4A file holds, read from its boxes: why OpenCV could not open
one (sound alone, no video track; or no movie box, the index a recording cut short never wrote),
and a video track's mirroring, which OpenCV does not apply."""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import BinaryIO

# The most of a movie box (moov) read: an hour's phone clip indexes its samples in a few MB.
MOOV_LIMIT = 64 * 1024 * 1024
# An MP4 or QuickTime file that holds no video track: it was "cut short or corrupt".
SOUND_ONLY = "an audio file: it holds sound and no video track"


def no_video(path: str | Path) -> str | None:
    """Why an ISO media file (MP4, MOV, M4A, 3GP) whose index is whole holds no video, or None
    (it has a video track, is cut short, or is no ISO media): a phone's recording of sound
    alone, or one stopped before its first frame. None too where it cannot be read (said by
    whatever reads it next)."""
    try:
        tracks = track_kinds(path) if _is_iso(path) else None
    except OSError:
        return None
    if tracks is None or "vide" in tracks:
        return None
    if "soun" in tracks:
        return SOUND_ONLY
    return "a video file that holds no video track: " + (
        f"its tracks are {', '.join(tracks)}" if tracks else "no track at all (nothing was recorded?)")


def track_kinds(path: str | Path) -> list[str] | None:
    """The handler type of each track of an ISO media file, in order ("vide", "soun", "meta", ...),
    or None where it has no whole movie box (cut short, or not ISO media)."""
    tracks = _tracks(path)
    return None if tracks is None else [kind for kind, _ in tracks]


# The display matrices that mirror (a, b, c, d of tkhd, by sign) and what they show the stored
# picture as: OpenCV's FFmpeg turns a picture by the matrix's angle alone, and showed a mirrored
# one turned 180 degrees (upside down, its faces missed) or on its side.
MIRRORS = {(-1, 0, 0, 1): "hflip", (1, 0, 0, -1): "vflip", (0, 1, 1, 0): "transpose", (0, -1, -1, 0): "transverse"}


def mirror(path: str | Path) -> str | None:
    """How the first video track of an ISO media file is mirrored for display ("hflip", "vflip",
    "transpose" or "transverse", as MIRRORS names them), or None: not mirrored (turned at most,
    which OpenCV does itself), or no ISO media."""
    for kind, trak in (_tracks(path) if _is_iso(path) else None) or ():
        if kind == "vide":
            for tkhd in _boxes(trak, b"tkhd")[:1]:
                at = 4 + (32 if tkhd[:1] == b"\x01" else 20) + 16  # its times and ids, then layer to volume
                if len(tkhd) >= at + 20:
                    a, b, _, c, d = struct.unpack_from(">5i", tkhd, at)
                    return MIRRORS.get(tuple((v > 0) - (v < 0) for v in (a, b, c, d)))
            return None
    return None


def _is_iso(path: str | Path) -> bool:
    """Whether the file begins as ISO media does (a file-type box): the only files read as boxes."""
    with open(path, "rb") as file:
        return file.read(8)[4:] == b"ftyp"


def _tracks(path: str | Path) -> list[tuple[str, bytes]] | None:
    """Each track's handler type and its box, or None where the file has no whole movie box."""
    with open(path, "rb") as file:
        moov = _find_box(file, b"moov")
    if moov is None:
        return None
    tracks = []
    for trak in _boxes(moov, b"trak"):
        kinds = [hdlr[8:12].decode("latin-1") for mdia in _boxes(trak, b"mdia") for hdlr in _boxes(mdia, b"hdlr")
                 if len(hdlr) >= 12]
        tracks += [(kind, trak) for kind in kinds[:1]]
    return tracks


def _find_box(file: BinaryIO, kind: bytes) -> bytes | None:
    """The payload of the first top-level box of type `kind`, or None where the file ends before it
    (or inside it)."""
    while header := file.read(8):
        if len(header) < 8:
            return None
        size, box = struct.unpack(">I4s", header)
        start = 8
        if size == 1:  # a 64-bit size follows
            large = file.read(8)
            if len(large) < 8:
                return None
            size, start = struct.unpack(">Q", large)[0], 16
        if box == kind:
            if size == 0:  # to the end of the file
                payload = file.read(MOOV_LIMIT)
            elif size - start > MOOV_LIMIT:
                return None
            else:
                payload = file.read(size - start)
                if len(payload) < size - start:
                    return None
            return payload
        # A box past the file's end (a copy cut short, or a size gone bad: 2**64 - 1 raised
        # ValueError from seek) holds no movie box after it.
        if size == 0 or size < start or file.tell() + size - start > os.fstat(file.fileno()).st_size:
            return None
        file.seek(size - start, 1)
    return None


def _boxes(data: bytes, kind: bytes) -> list[bytes]:
    """The payloads of the boxes of type `kind` directly within `data`."""
    found, at = [], 0
    while at + 8 <= len(data):
        size, box = struct.unpack_from(">I4s", data, at)
        start = 8
        if size == 1 and at + 16 <= len(data):
            size, start = struct.unpack_from(">Q", data, at + 8)[0], 16
        elif size == 0:
            size = len(data) - at
        if size < start:
            break
        if box == kind:
            found.append(data[at + start:at + size])
        at += size
    return found

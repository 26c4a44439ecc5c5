"""Where frames come from: an image, a folder of images, a video file, a stream URL, a webcam."""

from __future__ import annotations

import functools
import json
import math
import os
import re
import socket
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import AbstractSet as Set, Callable, Iterable, Iterator

import cv2
import numpy as np

from maskwatch.data.images import AUDIO, UNREAD_PHOTOS, ImageError, not_a_photo, read_image
from maskwatch.video.iso_media import mirror, no_video

# The photos OpenCV reads (an animated GIF or WebP: its first frame), the same the API takes.
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".avif"}
# Containers OpenCV's FFmpeg reads; a file named directly is tried as video whatever its suffix.
# .mjpeg: an IP camera's saved stream, JPEGs one after another (read as one photo before).
# .3gp, .3g2: an older Android phone's or a messaging app's clips (batch and a folder passed them over unsaid).
VIDEO_SUFFIXES = {".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".ts", ".wmv", ".flv",
                  ".mjpeg", ".mjpg", ".3gp", ".3g2"}
# Photos no reader here takes: said so, not read as a one-frame video or passed over in silence.
UNREAD_PHOTO_SUFFIXES = {".heic", ".heif"}  # said in UNREAD_PHOTOS
STREAM_PREFIXES = ("rtsp://", "rtsps://", "http://", "https://", "rtmp://")


class SourceError(ValueError):
    """A source that cannot be opened or read, named with the reason."""


@dataclass(frozen=True)
class Frame:
    """One frame: its position, its time in seconds from the start, the BGR pixels, its name.

    hidden: boxes (N x 4 xyxy) of faces in the frame that may not be shown (a face before its
    track's second detection, an unsure one that continues no track, a person missed twice):
    never drawn or counted, but blurred wherever faces are blurred (video.loop.analyse sets them).
    grey: the processor's last detection found the frame grey (infrared; video/night.py), set by
    video.loop.analyse: a site counts the people seen on such frames apart.
    """

    index: int
    timestamp: float
    image: np.ndarray
    name: str
    hidden: np.ndarray | tuple = ()
    grey: bool = False


@dataclass(frozen=True)
class SourceInfo:
    kind: str  # "image", "folder", "video", "stream", "webcam"
    name: str
    fps: float | None
    frames: int | None  # known length, for progress bars


def describe_source(source: str | os.PathLike) -> SourceInfo:
    """What kind of source `source` is, without reading it (SourceError if it cannot be one)."""
    source = os.fspath(source)  # a Path: a library user's natural call failed in str.startswith
    if source.startswith("webcam:"):
        if not source[7:].isdigit():
            raise SourceError(f"{source}: webcam sources are written webcam:N, N a device number")
        return SourceInfo("webcam", source.replace(":", ""), None, None)
    if source.startswith(STREAM_PREFIXES):
        return SourceInfo("stream", stream_name(source), None, None)
    path = Path(source)
    if path.is_dir():
        images = folder_files(path, IMAGE_SUFFIXES)
        if not images:
            raise SourceError(f"{path}: folder holds no images ({', '.join(sorted(IMAGE_SUFFIXES))}){no_images_hint(path)}")
        return SourceInfo("folder", path.name, None, len(images))
    if not path.exists():
        # OpenCV's habit of a bare device number, or the word alone: "webcam: no such file or folder"
        hint = f" (a webcam is webcam:{source})" if source.isdigit() else \
            " (a webcam is webcam:N, N its device number: webcam:0)" if source.lower() == "webcam" else ""
        raise SourceError(f"{path}: no such file or folder{hint}")
    suffix = path.suffix.lower()
    if suffix in UNREAD_PHOTO_SUFFIXES:
        raise SourceError(f"{path}: {UNREAD_PHOTOS}")
    # A photo by its name, or by its bytes (a JPEG saved as .mp4); a file named as a video whose
    # bytes are a photo is a video still if it holds more than one frame (.mjpeg, JPEGs in a row).
    photo = suffix in IMAGE_SUFFIXES or cv2.haveImageReader(str(path))
    if photo and suffix not in VIDEO_SUFFIXES:
        return SourceInfo("image", path.stem, None, 1)
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            if photo:
                return SourceInfo("image", path.stem, None, 1)
            raise SourceError(f"{path}: {unopened(path)}")
        fps = plausible_fps(capture.get(cv2.CAP_PROP_FPS)) or UNKNOWN_FPS
        count = header_frame_count(capture)
        if photo and (count or 0) <= 1 and not (capture.grab() and capture.grab()):
            return SourceInfo("image", path.stem, None, 1)
    finally:
        capture.release()
    return SourceInfo("video", path.stem, fps, count)


def unopened(path: Path) -> str:
    """Why a file is neither photo nor video, where its bytes tell: an empty file, or a video
    cut short (an MP4 recorded or copied part-way has no index yet), each "not ... OpenCV can open"."""
    with open(path, "rb") as file:
        head = file.read(16)
    if not head:
        return "empty file"
    kind = not_a_photo(head)
    if kind in (UNREAD_PHOTOS, AUDIO):  # a HEIC or a song named as a video
        return kind
    if kind and (why := no_video(path)):  # sound alone (brand isom or mp42, not M4A), or no track
        return why
    if kind:
        return ("a video that cannot be opened: cut short (an MP4 recorded or copied part-way has no index) "
                "or corrupt")
    return "not an image or a video that OpenCV can open"


# Timing for a video whose frame rate OpenCV does not know or reports absurdly.
UNKNOWN_FPS = 25.0
# The longest stretch of unreadable frames a video is read past, in seconds of it; a longer one
# is taken for the file's end (a copy cut short, its frames promised by its header).
BAD_STRETCH_S = 30.0
# The stretches of unreadable frames a video's warnings name one by one; the rest are counted.
MOST_SAID = 20


def most_bad_frames(fps: float) -> float:
    """The unreadable frames in a row a video file at `fps` is read past (BAD_STRETCH_S of it, at
    least 25) before they are taken for its end: detect's reader and a site's file camera alike."""
    return max(25, BAD_STRETCH_S * fps)


def plausible_fps(fps: float) -> float | None:
    """A frame rate as a container reports it (a time-lapse's 0.5 included), or None where it
    cannot be one: under 0.1 (0 or NaN: not known; slower would outlast a camera's stall
    timeout), or over 240 (some WebM files report 1000, a
    time base read as a rate 90000). Frame times are index / fps, and the tracker counts in
    seconds, so a wrong rate would keep tracks alive 40 times too long."""
    return float(fps) if math.isfinite(fps) and 0.1 <= fps <= 240.0 else None


def header_frame_count(capture: cv2.VideoCapture) -> int | None:
    """The frame count an open video's header gives, or None. Some containers say -9.2e18: no
    count. Nor is one made with a rate that is none: a browser's WebM at "1000 fps" counts its
    duration x 1000 (a minute's 1800 frames ended "1800/60000 (3%)", the time left said as 45 min
    all along). detect and a site's file camera both read a file to this count."""
    count = capture.get(cv2.CAP_PROP_FRAME_COUNT)
    return int(count) if 0 < count < 1e9 and plausible_fps(capture.get(cv2.CAP_PROP_FPS)) else None


def photo_files(source: str, info: SourceInfo) -> dict[Path, str]:
    """The photos an image or a folder source is read as, each with its frame's name: its file's
    stem, or its whole name where stems clash (a.jpg and a.png were both "a", and the annotated
    a.png overwrote a.jpg's as OUT/a.jpg)."""
    paths = [Path(source)] if info.kind == "image" else folder_files(Path(source), IMAGE_SUFFIXES)
    stems = Counter(p.stem for p in paths)
    names = {p: p.stem if stems[p.stem] == 1 else p.name for p in paths}
    taken = Counter(names.values())  # a.jpg, a.png and a.jpg.png: two would still be "a.jpg"
    return {p: name if taken[name] == 1 else f"{name}~{i}" for i, (p, name) in enumerate(names.items())}


def read_frames(source: str | os.PathLike, errors: list[str] | None = None, skip: Set[str] = frozenset()) -> Iterator[Frame]:
    """Yield the frames of an image, a folder of images or a video file. Unreadable images and
    corrupt frames are appended to `errors` and skipped. Streams and webcams are read by
    video.cameras.live_frames, which reconnects. skip: names of photos not to read (done by a
    run that `detect --resume` goes on from); each keeps its place (Frame.index) all the same."""
    errors = errors if errors is not None else []
    source = os.fspath(source)
    info = describe_source(source)
    if info.kind in ("image", "folder"):
        for i, (path, name) in enumerate(photo_files(source, info).items()):
            if name in skip:
                continue
            try:
                yield Frame(i, float(i), read_image(path), name)
            except ImageError as err:
                errors.append(str(err))
        return
    if info.kind != "video":
        raise ValueError(f"{info.name}: a {info.kind} is read by video.cameras.live_frames")
    yield from _video_frames(source, info, errors)


# How a mirrored video's stored picture is shown (iso_media.mirror names it), as players show it.
MIRRORED = {"hflip": lambda image: cv2.flip(image, 1), "vflip": lambda image: cv2.flip(image, 0),
            "transpose": cv2.transpose, "transverse": lambda image: cv2.flip(cv2.transpose(image), -1)}


def shown_as(path: str, capture: cv2.VideoCapture) -> Callable[[np.ndarray], np.ndarray] | None:
    """What shows the frames of the video file `path` as players do where OpenCV would not (a
    mirrored one, a front camera's or an app's: OpenCV turned it 180 degrees or on its side by
    its matrix's angle), its own turning then off; None for every other file (OpenCV turns them)."""
    try:
        stat = os.stat(path)
        how = _mirror_of(path, stat.st_size, stat.st_mtime_ns)
    except OSError:
        return None
    if how is None:
        return None
    capture.set(cv2.CAP_PROP_ORIENTATION_AUTO, 0)
    return MIRRORED[how]


@functools.lru_cache(maxsize=64)
def _mirror_of(path: str, size: int, mtime_ns: int) -> str | None:
    """mirror(path), read once for a file as it is (its size and time): a site's file camera
    loops it, and each loop read its index again (up to 64 MB)."""
    return mirror(path)


# FFmpeg's codec tags of 16-bit grey pixels (gray16le, gray16be), as OpenCV reports a file's.
GREY_16_BITS = {b"Y1\x00\x10", b"\x10\x001Y"}


def deep_grey(capture: cv2.VideoCapture) -> Callable[[np.ndarray], np.ndarray] | None:
    """For a video of 16-bit grey pixels (an infrared or thermal camera's export, FFV1 or raw),
    what makes its frames BGR at their full range, OpenCV's own conversion then off; None for
    every other video. OpenCV scaled them by 1/256, so a 12-bit sensor's came out 0-15 of 255, its
    faces not found, unsaid. The depth is taken as to_8_bits takes a photo's, but never lowered
    within the file: a dark frame after a bright one is not brightened."""
    tag = int(capture.get(cv2.CAP_PROP_CODEC_PIXEL_FORMAT)).to_bytes(4, "little")
    if tag not in GREY_16_BITS or not capture.set(cv2.CAP_PROP_CONVERT_RGB, 0):
        return None
    depth = [8]

    def to_bgr(image: np.ndarray) -> np.ndarray:
        if image.dtype != np.uint16 or image.ndim != 2:  # converted after all
            return image
        depth[0] = max(depth[0], next(b for b in (8, 10, 12, 14, 16) if int(image.max()) < 2 ** b))
        return cv2.cvtColor(cv2.convertScaleAbs(image, alpha=255.0 / (2 ** depth[0] - 1)), cv2.COLOR_GRAY2BGR)

    return to_bgr


def _video_frames(path: str, info: SourceInfo, errors: list[str]) -> Iterator[Frame]:
    capture = cv2.VideoCapture(path)
    shown = shown_as(path, capture)
    deep = deep_grey(capture)
    if not capture.isOpened():
        errors.append(f"{info.name}: cannot open")
        return
    fps = info.fps or UNKNOWN_FPS
    reported = capture.get(cv2.CAP_PROP_FPS)
    if plausible_fps(reported) is None:
        # Said as it is done: each frame's own time is kept where the file gives one (a browser's
        # WebM at "1000 fps" gives them all), where "frame times assume 25 fps" was said of it.
        errors.append(f"{info.name}: frame rate {reported:g} is not one; frames are timed by their own times "
                      f"({UNKNOWN_FPS:g} fps where they give none), the annotated video at {UNKNOWN_FPS:g} fps")
    index, failures, said = 0, 0, len(errors)
    stretches, unsaid = 0, 0  # stretches of bad frames; bad frames past the MOST_SAID stretches named
    first, last = None, -math.inf  # the first frame's time in the file, the last time given
    try:
        while True:
            ok, image = capture.read()
            if ok and deep is not None and image is not None:
                image = deep(image)
            if not ok or image is None or image.ndim != 3:
                # A file's frame count is only a hint: a failed read past the known end is the end;
                # so is one at the end of its time (a variable-rate WebM's count is its duration x
                # its nominal rate: 111 promised, 12 held, and "a truncated file?" said of a whole one).
                end = info.frames is None or index >= info.frames - 1 or (
                    failures == 0 and last >= (info.frames - 1) / fps - 0.5)
                if not end:
                    if failures == 0:
                        said, stretches = len(errors), stretches + 1
                    index += 1
                    failures += 1
                    del errors[said:]  # a stretch of bad frames is one line
                    if stretches <= MOST_SAID:
                        errors.append(f"{info.name}: {_frames(index - failures, index - 1)} unreadable, skipped")
                    else:  # a clip from a failing card: a line for each of thousands
                        unsaid += 1
                # Bad frames in a row, past BAD_STRETCH_S of the video or up to the end: the file
                # ends early, said once (a file cut at 21 of 40 frames gave 18 lines, and no word of
                # a truncated file). Not 25 frames: a phone clip's broken first second (its frames
                # before a key frame) ended the read of the whole clip. A failed read past a
                # file's end takes about 25 us: the limit costs a truncated file 45 ms at 60 fps.
                too_many = failures > most_bad_frames(fps)
                if too_many or end and failures > 1:
                    del errors[said:]
                    if stretches > MOST_SAID:
                        unsaid, stretches = unsaid - failures, stretches - 1
                    errors.append(f"{info.name}: no frame could be read from frame {index - failures} on, of the "
                                  f"{info.frames} its header promises (a truncated file?)")
                if end or too_many:
                    if unsaid:
                        more = stretches - MOST_SAID
                        errors.append(f"{info.name}: {unsaid} more frame{'s' * (unsaid > 1)} unreadable, in {more} "
                                      f"stretch{'es' * (more > 1)}, skipped")
                    break
                continue
            failures = 0
            # The frame's own time in the file (a variable frame rate's too; index / fps put a
            # clip's face at 17 s where it was at 60 s), from its first frame; index / fps where
            # the container gives none or goes back.
            stamp = capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
            if first is None and math.isfinite(stamp) and stamp >= 0:
                first = stamp - index / fps
            at = stamp - first if first is not None and math.isfinite(stamp) else index / fps
            at = at if at > last else last + 1.0 / fps
            last = at
            yield Frame(index, at, shown(image) if shown else image, f"{info.name}-{index:06d}")
            index += 1
    finally:
        capture.release()


def _frames(first: int, last: int) -> str:
    """"frame 7", or "frames 1-39" for a stretch."""
    return f"frame {first}" if first == last else f"frames {first}-{last}"


def stream_name(source: str) -> str:
    """A name for a stream's outputs and frames: its host and path, no scheme, user or password."""
    # Split as stream_address splits it, not by urlsplit: a password holding a [ or ] (FFmpeg takes
    # it as written) was urlsplit's ValueError, a traceback quoting part of the password.
    rest = source.partition("://")[2]
    host, port = _host_and_port(rest)
    if port and not (port.isdigit() and int(port) <= 65535):
        raise SourceError(f"{redact_source(source)}: not a valid port")
    path = re.split(r"[?#]", split_authority(rest)[1], maxsplit=1)[0]
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{host.lower()}_{int(port) if port else ''}{path}").strip("_.")
    return name or "stream"


# Query parameters that carry a camera's credentials (`?user=admin&pwd=...`, `?token=...`).
SECRET_PARAMETER = re.compile(r"([?&;/_](?:[^=&;#/]*(?:pas|pw|psw|token|key|secret|auth|sig|cred|sess)[^=&;#/]*"
                              r"|p|pin|sid)=)[^&;#]*", re.I)
# (a name holding any of these: password, passwd, pwd, psw, accessToken, clientSecret, api_key,
# Hikvision's auth, Foscam's loginpas, Reolink's token, credentials, sessionid; or one that is just
# p, pin or sid. Harmless names such as `design=` are hidden too, which costs a display, where a
# leak would cost a camera).
# In a path too, after a / or _: XMEye DVRs' `/user=admin_password=..._channel=1_stream=0.sdp`
# was shown whole (all after the password goes, up to a & ; or #).


# A user-info part with no colon shown as written: a plain name (admin@, viewer@). One holding a
# digit, a symbol, an escape or over 32 letters may be a password or token written alone (FFmpeg
# sends it as the user name): shown as ***@.
PLAIN_USER = re.compile(r"[A-Za-z][A-Za-z._-]{0,31}")


DEFAULT_PORTS = {"rtsp": 554, "rtsps": 322, "http": 80, "https": 443, "rtmp": 1935}


def stream_address(source: str) -> tuple[str, int] | None:
    """(host, port) of a stream URL as FFmpeg reads it (av_url_split: the host follows the last @
    before the first / ? or #); None for a file, a webcam or a URL this cannot read (left to FFmpeg)."""
    scheme, sep, rest = source.partition("://")
    if not sep or scheme.lower() not in DEFAULT_PORTS:
        return None
    host, port = _host_and_port(rest)
    if not host or (port and not port.isdigit()):
        return None
    return host, int(port) if port else DEFAULT_PORTS[scheme.lower()]


def missing_video_file(source: str) -> str | None:
    """`no such video file: PATH` for a file source that is not there (one removed while a site
    ran said `cannot open`), else None."""
    if source.startswith(STREAM_PREFIXES) or source.startswith("webcam:") or Path(source).is_file():
        return None
    return f"no such video file: {source}"


def unopened_file(source: str) -> str | None:
    """Why a video file that is there would not open, as `detect` says it (unopened: sound alone,
    cut short, empty), else None: a site's file camera of a phone's sound recording said `cannot open`."""
    if source.startswith(STREAM_PREFIXES) or source.startswith("webcam:") or not Path(source).is_file():
        return None
    try:
        return unopened(Path(source))
    except OSError as err:  # one the camera's user may not read: its reader thread ended on it
        return f"cannot read the file ({err.strerror})"


def unresolved_host(source: str) -> str | None:
    """Why a stream URL's host cannot be dialled where its name does not resolve (a typo, a
    camera not in DNS), or None. Asked once OpenCV's open failed: FFmpeg, silenced, said only
    `cannot open`, and a URL it reads otherwise than stream_address still gets its try."""
    address = stream_address(source)
    if address is None:
        return None
    try:
        socket.getaddrinfo(address[0], address[1], type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return f"no such host ({address[0]} does not resolve)"
    return None


def split_authority(rest: str) -> tuple[str, str]:
    """A URL after its scheme's :// as FFmpeg splits it: its authority (user:password@host:port,
    up to the first / ? or #) and what follows. Not urlsplit: a password holding a [ or ], which
    FFmpeg takes as written, was its ValueError."""
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    return authority, rest[len(authority):]


def _host_and_port(rest: str) -> tuple[str, str]:
    """The host and the port's text of a URL after its scheme's ://, as stream_address reads them."""
    authority = split_authority(rest)[0].rpartition("@")[2]
    host, colon, port = authority.rpartition(":") if not authority.endswith("]") else (authority, "", "")
    if not colon:
        host, port = authority, ""
    return host.strip("[]"), port


def stream_url_problem(source: str) -> str | None:
    """Why a stream URL could never open (no host; a port that is no number of 1-65535; a host no
    name lookup takes), or None. Said without a part of the URL: what FFmpeg reads as the port or
    host may be a password's."""
    rest = source.partition("://")[2]
    host, port = _host_and_port(rest)
    head = split_authority(rest)[0]
    hint = " (a / ? or # in a password is written %2F, %3F or %23)" if "@" in rest and "@" not in head else ""
    if not host:
        return f"the URL names no host{hint}"
    if port and not (port.isdigit() and 1 <= int(port) <= 65535):
        return f"the URL's port must be a number of 1-65535{hint}"
    try:
        host.encode("idna")  # as the connection's name lookup does
    except UnicodeError:
        return f"the URL's host is not a valid name (an empty part, as in cam..local, or one over 63 characters){hint}"
    return None


def host_port(address: tuple[str, int]) -> str:
    """host:port as a URL writes it, an IPv6 address in brackets ([::1]:8554, not ::1:8554)."""
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def redact_source(source: str) -> str:
    """The source as it may be printed or served: a password in a URL and secret-looking query
    parameters become ***. The user-info part ends at the last @ of the authority (RFC 3986: up to
    the first / ? or #), so an @ in the query (?to=ops@example.org) keeps the host, port and path
    shown. Where the authority cannot be all of it (a port that is no number, as in admin:Pa#ss@cam,
    or an @ in the path or in a query parameter's name), the password holds a / ? or # (cameras'
    passwords often do, unescaped) and ends at the URL's last @: hiding more costs a display, where
    a leak would cost a camera. A user-info part alone (no colon) that is no plain name is hidden
    too (PLAIN_USER); the path is kept."""
    scheme, sep, rest = source.partition("://")
    if not sep:
        return source
    authority, tail = split_authority(rest)
    port = _host_and_port(rest)[1]
    if (not port or port.isdigit()) and not re.search(r"^[^?]*@|[?&;][^=&;]*@", tail):
        userinfo, at, after = authority.rpartition("@")
        after += tail
    else:
        userinfo, at, after = rest.rpartition("@")
    if at and ":" in userinfo:
        # The user, up to the first colon: where the last @ is not the user-info's, it is a
        # user-info part alone and the host (tok3n@cam of rtsp://tok3n@cam:554/li@ve): that part is
        # hidden as a lone one is below (PLAIN_USER), or the token was shown
        alone, sign, host = userinfo.split(":", 1)[0].rpartition("@")
        user = f"***@{host}" if sign and alone and not PLAIN_USER.fullmatch(alone) else f"{alone}{sign}{host}"
        rest = f"{user}:***@{after}"
    elif (alone := authority.rpartition("@")[0]) and not PLAIN_USER.fullmatch(alone):
        rest = "***@" + rest[len(alone) + 1:]
    return f"{scheme}://" + SECRET_PARAMETER.sub(r"\1***", rest)


# Every file detect has written into a folder, over all its runs (video/pipeline.py keeps it): which
# files there are its own to replace, and which are not photos to read (its annotated copies).
WRITTEN = ".maskwatch-detect.json"


def written_before(folder: Path) -> set[str]:
    """The names of the files earlier detect runs wrote into `folder` (WRITTEN), less each whose
    size is no longer the one recorded once it was written: the user's own photo put in its place,
    which a photo run passed over and then wrote over (the copy of a.png is a.jpg). Empty where the
    list cannot be read (a folder copied from elsewhere may hold any file of that name: one nested
    too deep for json raised RecursionError, a traceback for every reading of the folder)."""
    try:
        entries = json.loads((Path(folder) / WRITTEN).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return set()
    if not isinstance(entries, list):
        return set()
    sizes = next((entry["sizes"] for entry in entries if isinstance(entry, dict)
                  and isinstance(entry.get("sizes"), dict)), {})
    return {str(name) for name in entries if not isinstance(name, dict)
            and (not isinstance(sizes.get(name), int) or _size(Path(folder) / str(name)) in (None, sizes[name]))}


def written_text(folder: Path, names: Set[str], writing: Set[str] = frozenset()) -> str:
    """WRITTEN's text: `names`, then the sizes their files have now (an older maskwatch reads the
    sizes' entry as a name no file has), but for those of `writing`, not written yet (a run killed
    before writing them leaves them trusted by name, as a list without sizes is)."""
    sizes = {name: size for name in sorted(set(names) - set(writing)) if (size := _size(Path(folder) / name)) is not None}
    return json.dumps([*sorted(names), {"sizes": sizes}])


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None


def folder_files(folder: Path, suffixes: set[str]) -> list[Path]:
    """The files directly in `folder` whose suffix is one of `suffixes`, sorted: its images are
    what it is read as, its videos what that reading passes over. What a detect run wrote there
    (`detect photos --out photos`) is left out: its annotated copies were read back as photos."""
    return split_written(p for p in folder.iterdir() if p.suffix.lower() in suffixes and p.is_file())[0]


def no_images_hint(folder: Path) -> str:
    """What a folder with no photos of its own holds instead, said after "no images": an iPhone's
    HEIC photos, videos, or photos in its subfolders (a dataset's root, its photos in images/),
    each of which was a bare "folder holds no images"."""
    if heic := folder_files(folder, UNREAD_PHOTO_SUFFIXES):
        return f"; it holds {len(heic)} HEIC photo{'s' * (len(heic) > 1)} ({heic[0].name}): {UNREAD_PHOTOS}"
    if folder_files(folder, VIDEO_SUFFIXES):
        return "; `maskwatch batch` reads the videos it holds"
    if within := photo_subfolders(folder):
        return f"; its subfolders are not read: name one, such as {within[0]} (`maskwatch batch` reads them all)"
    return ""


def photo_subfolders(folder: Path) -> list[Path]:
    """The folders directly in `folder` that hold photos of their own: not read by `detect FOLDER`.
    One this user cannot list (a disk's lost+found, another user's) is left out: its error ended
    `detect FOLDER`, which reads none of them."""
    return [d for d in sorted(folder.iterdir()) if d.is_dir() and _listed(d)]


def _listed(folder: Path) -> bool:
    """Whether `folder` holds photos of its own; False where it cannot be listed."""
    try:
        return bool(folder_files(folder, IMAGE_SUFFIXES))
    except OSError:
        return False


def written_files(folder: Path, suffixes: set[str]) -> list[Path]:
    """The files of `folder` with those suffixes that folder_files leaves out, a detect run's."""
    return split_written(p for p in folder.iterdir() if p.suffix.lower() in suffixes and p.is_file())[1]


def split_written(files: Iterable[Path]) -> tuple[list[Path], list[Path]]:
    """`files` sorted into (the user's, a detect run's): a file is a detect run's where the WRITTEN
    list of its own folder names it. The one rule of `detect` and `batch` (which searches folders
    within folders) for which files of a folder are inputs."""
    lists: dict[Path, set[str]] = {}
    theirs, ours = [], []
    for path in sorted(files):
        written = lists.setdefault(path.parent, written_before(path.parent))
        (ours if path.name in written else theirs).append(path)
    return theirs, ours


def written_warning(folder: str | Path, ours: list[Path]) -> str:
    """The warning naming the files split_written left out of `folder` (a detect run's)."""
    first = ours[0].relative_to(folder).as_posix() if ours[0].is_relative_to(folder) else ours[0].name
    return (f"{folder}: {len(ours)} file{'s' * (len(ours) > 1)} an earlier detect wrote here passed over "
            f"({first}{', ...' * (len(ours) > 1)}): its annotated copies are not photos")

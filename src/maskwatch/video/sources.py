"""Where frames come from: an image, a folder of images, a video file, a stream URL, a webcam."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from maskwatch.data.images import ImageError, read_image

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}
STREAM_PREFIXES = ("rtsp://", "rtsps://", "http://", "https://", "rtmp://")


class SourceError(ValueError):
    """A source that cannot be opened or read, named with the reason."""


@dataclass(frozen=True)
class Frame:
    """One frame: its position, its time in seconds from the start, the BGR pixels, its name."""

    index: int
    timestamp: float
    image: np.ndarray
    name: str


@dataclass(frozen=True)
class SourceInfo:
    kind: str  # "image", "folder", "video", "stream", "webcam"
    name: str
    fps: float | None
    frames: int | None  # known length, for progress bars


def describe_source(source: str) -> SourceInfo:
    """What kind of source `source` is, without reading it (SourceError if it cannot be one)."""
    if source.startswith("webcam:"):
        if not source[7:].isdigit():
            raise SourceError(f"{source}: webcam sources are written webcam:N, N a device number")
        return SourceInfo("webcam", source, None, None)
    if source.startswith(STREAM_PREFIXES):
        return SourceInfo("stream", source, None, None)
    path = Path(source)
    if path.is_dir():
        images = _folder_images(path)
        if not images:
            raise SourceError(f"{path}: folder holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        return SourceInfo("folder", path.name, None, len(images))
    if not path.exists():
        raise SourceError(f"{path}: no such file or folder")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return SourceInfo("image", path.stem, None, 1)
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise SourceError(f"{path}: not an image or a video that OpenCV can open")
        fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    finally:
        capture.release()
    return SourceInfo("video", path.stem, fps, count)


def read_frames(source: str, errors: list[str] | None = None, reconnects: int = 3) -> Iterator[Frame]:
    """Yield the source's frames. Unreadable images and corrupt frames are appended to
    `errors` and skipped; a stream that stays dead after `reconnects` tries ends the iteration
    with an error recorded, not an exception."""
    errors = errors if errors is not None else []
    info = describe_source(source)
    if info.kind in ("image", "folder"):
        paths = [Path(source)] if info.kind == "image" else _folder_images(Path(source))
        for i, path in enumerate(paths):
            try:
                yield Frame(i, float(i), read_image(path), path.stem)
            except ImageError as err:
                errors.append(str(err))
        return
    target = int(source[7:]) if info.kind == "webcam" else source
    yield from _capture_frames(target, info, errors, reconnects)


def _capture_frames(target, info: SourceInfo, errors: list[str], reconnects: int) -> Iterator[Frame]:
    live = info.kind in ("stream", "webcam")
    capture = cv2.VideoCapture(target)
    if not capture.isOpened():
        errors.append(f"{info.name}: cannot open")
        return
    fps = info.fps or capture.get(cv2.CAP_PROP_FPS) or 25.0
    index, failures, started = 0, 0, time.monotonic()
    try:
        while True:
            ok, image = capture.read()
            if not ok or image is None or image.ndim != 3:
                if not live:
                    # A file's frame count is only a hint: a failed read past the known end is the end.
                    if info.frames is None or index >= info.frames - 1:
                        break
                    errors.append(f"{info.name}: frame {index} unreadable, skipped")
                    index += 1
                    failures += 1
                    if failures > 25:
                        errors.append(f"{info.name}: too many unreadable frames, stopped at {index}")
                        break
                    continue
                failures += 1
                if failures > reconnects:
                    errors.append(f"{info.name}: stream dead after {reconnects} reconnects")
                    break
                errors.append(f"{info.name}: read failed, reconnecting ({failures}/{reconnects})")
                capture.release()
                time.sleep(min(2.0, 0.5 * failures))
                capture = cv2.VideoCapture(target)
                continue
            failures = 0
            timestamp = time.monotonic() - started if live else index / fps
            yield Frame(index, timestamp, image, f"{info.name}-{index:06d}")
            index += 1
    finally:
        capture.release()


def _folder_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())

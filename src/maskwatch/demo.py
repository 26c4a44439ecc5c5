"""Clips for the demo site, made from the bundled sample photos: no camera, no download.

    python -m maskwatch.demo sample/face-mask-detection demo-output/clips

Each clip pans slowly across a few sample photos (enlarged, as a camera in a doorway would see
people walk by), so the demo site (`examples/demo-site.yaml`) has moving faces to detect, track
and count.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

from maskwatch.atomic import atomic_path
from maskwatch.data.images import read_image
from maskwatch.video.sinks import playable

# Which sample photos each demo camera shows (stems of sample/face-mask-detection/images/*.png).
CLIPS = {"entrance": ("maksssksksss753", "maksssksksss201", "maksssksksss411"),
         "counter": ("maksssksksss657", "maksssksksss151", "maksssksksss672")}


def clips_made(folder: Path) -> bool:
    """Whether `folder` holds every clip make_demo_clips writes (a site's missing file there is
    then a mistyped name, not the demo not made yet)."""
    return all((folder / f"{name}.mp4").is_file() for name in CLIPS)


def pan_frames(photo: np.ndarray, size: tuple[int, int], seconds: float, fps: int, zoom: float = 1.6):
    """Frames of a `size` (w, h) window sliding across `photo` enlarged `zoom` times, left to
    right and back, with a gentle vertical sway."""
    w, h = size
    scale = max(zoom, w / photo.shape[1] * 1.2, h / photo.shape[0] * 1.05)
    big = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    span_x, span_y = big.shape[1] - w, big.shape[0] - h
    n = int(seconds * fps)
    for i in range(n):
        t = i / max(n - 1, 1)
        x = int(span_x * (1 - abs(1 - 2 * t)))
        y = int(span_y * (0.5 + 0.4 * np.sin(2 * np.pi * t)))
        yield big[y:y + h, x:x + w]


def make_clip(photos: list[Path], out: Path, size: tuple[int, int] = (640, 480), fps: int = 25,
              seconds_per_photo: float = 8.0) -> Path:
    """One MP4 clip panning across `photos` in turn, written atomically."""
    out = Path(out)
    with atomic_path(out, suffix=".mp4") as tmp:
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
        if not writer.isOpened():
            raise RuntimeError(f"{out}: OpenCV cannot write MP4 here")
        try:
            for path in photos:
                for frame in pan_frames(read_image(path), size, seconds_per_photo, fps):
                    writer.write(frame)
        finally:
            writer.release()
        if not playable(tmp):  # an unplayable clip in place: a demo camera that never played
            raise RuntimeError(f"{out}: the clip could not be finished (a full disk?); nothing was written")
    return out


def make_demo_clips(sample: Path, out: Path) -> list[Path]:
    """The demo site's clips from the sample dataset folder (images/*.png)."""
    images = Path(sample) / "images"
    missing = [s for stems in CLIPS.values() for s in stems if not (images / f"{s}.png").is_file()]
    if missing:
        raise FileNotFoundError(f"{images}: sample photos missing ({', '.join(missing)})")
    Path(out).mkdir(parents=True, exist_ok=True)
    return [make_clip([images / f"{s}.png" for s in stems], Path(out) / f"{name}.mp4")
            for name, stems in CLIPS.items()]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m maskwatch.demo SAMPLE_DIR OUT_DIR", file=sys.stderr)
        return 2
    try:
        for clip in make_demo_clips(Path(args[0]), Path(args[1])):
            print(f"demo clip: {clip}")
    except (OSError, RuntimeError, ValueError) as err:  # OSError: a file where the clips' folder goes, too
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

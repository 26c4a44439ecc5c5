"""Motion gating frame by frame: the people recorded and the detector calls, gated against ungated,
on exactly the same analysed frames (no stream, no timing: what the gate itself changes).

    python benchmarks/motion_gate.py [--loops 2] [--full-check 5 10 3600]

The quiet store of benchmarks/site_capacity.py as a camera analysed at 2 FPS sees it: for each
of 4 sample photos, 8 s of the photo with its faces inpainted away, then 2 s of the photo (16 + 4
frames, 0.5 s apart), looped. Each frame goes through FrameProcessor as in `maskwatch run`
(detect_every 2, FaceTracker's defaults), once without motion gating and once per full-check
interval with it. Reported: detector calls, people decided (tracks of 3 frames or more) and
their voted labels.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.scenes: the scenes the tests use

from maskwatch.detection.detector import Detector
from maskwatch.video.motion import MotionDetector, MotionSettings
from maskwatch.video.process import FrameProcessor
from maskwatch.video.sources import Frame
from maskwatch.video.tracker import FaceTracker
from tests.scenes import empty_view, sample_photos

QUIET_PHOTOS = (0, 2, 3, 4)
STEP = 0.5  # seconds between analysed frames: 2 FPS


def quiet_frames(loops: int) -> list:
    photos = sample_photos()
    one = []
    for i in QUIET_PHOTOS:
        one += [empty_view(i)] * 16 + [photos[i][0]] * 4
    images = one * loops
    return [Frame(k, k * STEP, image, f"q{k:04d}") for k, image in enumerate(images)]


def run(detector, frames, full_check: float | None) -> dict:
    motion = MotionDetector(MotionSettings(full_check=full_check)) if full_check else None
    processor = FrameProcessor(detector, FaceTracker(), detect_every=2, motion=motion)
    started = time.perf_counter()
    for frame in frames:
        processor(frame)
    people = processor.take_finished_people() + processor.tracker.flush()
    return {"calls": processor.detections, "people": len(people),
            "labels": Counter(t.label for t in people), "seconds": time.perf_counter() - started}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loops", type=int, default=2)
    parser.add_argument("--full-check", type=float, nargs="+", default=[5.0, 10.0, 3600.0])
    args = parser.parse_args()
    detector = Detector.load()
    frames = quiet_frames(args.loops)
    print(f"quiet store, {len(frames)} analysed frames ({len(frames) * STEP:.0f} s at 2 FPS), "
          f"{sum(n for i, (_, n) in enumerate(sample_photos()) if i in QUIET_PHOTOS) * args.loops} annotated faces shown")
    for full_check in [None, *args.full_check]:
        row = run(detector, frames, full_check)
        name = "ungated" if full_check is None else f"gated, full check {full_check:g} s"
        print(f"{name:28s} detector calls {row['calls']:4d} ({row['calls'] / len(frames):.0%} of analysed frames), "
              f"people {row['people']}, labels {dict(sorted(row['labels'].items()))}, {row['seconds']:.1f} s",
              flush=True)


if __name__ == "__main__":
    main()

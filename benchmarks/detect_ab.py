"""`maskwatch detect`'s loop end to end at one commit: run it from two checkouts in turn to
compare them side by side (the same clip, models loaded before the clock starts).

    PYTHONPATH=<checkout>/src python benchmarks/detect_ab.py CLIP OUT

Prints the frames, seconds, frames per second and faces. docs/bench-capacity.md has a run.
"""

import argparse
import shutil
import time
from pathlib import Path

from maskwatch import Detector
from maskwatch.video.pipeline import run_detect


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("clip", help="a video file (fps.py's make_clip makes the crowded one)")
    parser.add_argument("out", type=Path, help="detect's output folder (emptied first)")
    args = parser.parse_args()
    detector = Detector.load()
    shutil.rmtree(args.out, ignore_errors=True)
    started = time.perf_counter()
    result = run_detect(args.clip, args.out, detector, progress=False)
    seconds = time.perf_counter() - started
    print(f"{result.frames} frames {seconds:.2f} s {result.frames / seconds:.2f} fps faces {result.faces}")


if __name__ == "__main__":
    main()

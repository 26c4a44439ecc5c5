"""`maskwatch detect`'s loop end to end at one commit: run it from two checkouts in turn to
compare them side by side (the same clip, models loaded before the clock starts).

    PYTHONPATH=<checkout>/src python benchmarks/detect_ab.py CLIP OUT

Prints the frames, seconds, frames per second and faces. docs/bench-capacity.md has a run.
"""

import shutil
import sys
import time
from pathlib import Path

from maskwatch import Detector
from maskwatch.video.pipeline import run_detect

clip, out = sys.argv[1], Path(sys.argv[2])
detector = Detector.load()
shutil.rmtree(out, ignore_errors=True)
started = time.perf_counter()
result = run_detect(clip, out, detector, progress=False)
seconds = time.perf_counter() - started
print(f"{result.frames} frames {seconds:.2f} s {result.frames / seconds:.2f} fps faces {result.faces}")

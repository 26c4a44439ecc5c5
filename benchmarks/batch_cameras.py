"""Does one network call for several cameras' frames pay on this machine? (issue 26, item 3)

    python benchmarks/batch_cameras.py [--cameras 1 2 4 8] [--repeats 15]

For N cameras with a frame each (640x480 sample photos), times N detector calls of one frame
against one call with a batch of N frames (the shipped detector's two passes: the main one at
640x480 and the coarse one at 256x192), and the same for the classifier with 3 faces per camera
(N calls of 3 crops against one call of 3N). Medians of `repeats` rounds, run alternately so
that a change of the machine's load hits both alike. ONNX Runtime on the providers chosen as
in `maskwatch run` (runtime.chosen_providers), threads as the site uses them (its default).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.scenes: the scenes the tests use


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cameras", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()

    from maskwatch.detection.centerface import network_input
    from maskwatch.detection.detector import Detector
    from maskwatch.runtime import chosen_providers
    from tests.scenes import sample_photos

    detector = Detector.load()
    finder, classifier = detector.finder, detector.classifier
    photos = [photo for photo, _ in sample_photos(8)]
    scales = [finder.scale.main_scale(640, 480), finder.scale.coarse_scale(640, 480)]
    blobs = [[network_input(photo, s) for photo in photos] for s in scales if s is not None]
    crops = [photo[100:196, 100:196] for photo in photos]  # 96 px crops: the classifier's input side
    print(f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}, providers {chosen_providers()}; "
          f"detector passes {[b[0].shape[2:] for b in blobs]}", flush=True)

    def detect_single(n: int) -> None:
        for passes in blobs:
            for blob in passes[:n]:
                finder.session.run(finder.outputs, {finder.input_name: blob})

    def detect_batched(n: int) -> None:
        for passes in blobs:
            finder.session.run(finder.outputs, {finder.input_name: np.concatenate(passes[:n])})

    def classify_single(n: int) -> None:
        for i in range(n):
            classifier.predict([crops[i]] * 3)

    def classify_batched(n: int) -> None:
        classifier.predict([crops[i] for i in range(n) for _ in range(3)])

    for name, single, batched in (("detector", detect_single, detect_batched),
                                  ("classifier", classify_single, classify_batched)):
        for n in args.cameras:
            single(n), batched(n)  # warm
            times = {"single": [], "batched": []}
            for _ in range(args.repeats):
                for kind, run in (("single", single), ("batched", batched)):
                    started = time.perf_counter()
                    run(n)
                    times[kind].append(time.perf_counter() - started)
            one, many = statistics.median(times["single"]), statistics.median(times["batched"])
            print(f"{name:10s} {n} cameras: {n} calls {1000 * one:7.1f} ms, one batch {1000 * many:7.1f} ms, "
                  f"batch/single {many / one:.2f}", flush=True)


if __name__ == "__main__":
    main()

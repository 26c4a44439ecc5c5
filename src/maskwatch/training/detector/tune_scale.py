"""Pick the detector's scale settings on TRAINING photos (the held-out ones stay unseen).

    python -m maskwatch.training.detector.tune_scale ../shared/datasets/face-mask-detection --detector RUN/export/detector.json

Scores mAP@0.5 and face recall on a slice of the training photos, and close-up recall on
close-ups made from the training photos' largest faces, for each target side and coarse pass,
with the seconds per photo. What it prints is the evidence for the values in detector.json.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from maskwatch.classifier import Classifier
from maskwatch.data.photos import photo_split
from maskwatch.detection.closeups import closeup_set, closeups_found
from maskwatch.detection.detector import Detector, DetectorConfig, build_face_finder
from maskwatch.detection.evaluate import evaluate_detection
from maskwatch.detection.fit import fit_coarse_score_power


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("--detector", type=Path, required=True)
    parser.add_argument("--photos", type=int, default=150)
    parser.add_argument("--closeups", type=int, default=40)
    parser.add_argument("--sides", type=int, nargs="+", default=[640, 800])
    parser.add_argument("--coarse", type=int, nargs="+", default=[0, 256, 320])
    args = parser.parse_args()
    split = photo_split(args.data, seed=0)
    # A spread of training photos, and close-ups from other training photos' largest faces.
    photos = split.train[::max(1, len(split.train) // args.photos)][:args.photos]
    # Close-ups scored from one half of the training photos, the coarse score power fitted on the other.
    closeups = closeup_set(args.data, split.train[::2], count=args.closeups, seed=1)
    fit_on = closeup_set(args.data, split.train[1::2], count=60, seed=2)
    base = DetectorConfig.from_json(args.detector)
    classifier = Classifier.load()
    print(f"{len(photos)} training photos, {len(closeups)} close-ups from training photos")
    print("| target side | coarse side (score power) | mAP@0.5 | face recall | s per photo | close-ups recall |")
    print("|---:|---:|---:|---:|---:|---:|")
    for side in args.sides:
        for coarse in args.coarse:
            config = replace(base, target_side=side, coarse_side=coarse)
            if coarse:
                config = replace(config, coarse_score_power=round(fit_coarse_score_power(fit_on, config)[0], 4))
            detector = Detector(build_face_finder(config), classifier, config)
            start = time.perf_counter()
            m = evaluate_detection(args.data, detector, photos, progress=False, resamples=0)
            seconds = (time.perf_counter() - start) / len(photos)
            hits = closeups_found(detector, closeups)
            print(f"| {side} | {coarse} ({config.coarse_score_power:.2f}) | {m['map50']:.3f} | {m['face_recall_iou50']:.3f} | {seconds:.3f} | "
                  f"{np.mean(hits):.3f} |", flush=True)


if __name__ == "__main__":
    main()

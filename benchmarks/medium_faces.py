"""Faces between the detector's two passes: 100-600 px faces in large photos (issue 23).

    python benchmarks/medium_faces.py ../shared/datasets/face-mask-detection

The main pass shrinks a large photo to an 800-px long side, where a face of a few hundred pixels
is larger than any the detector learned; the coarse pass (256-px long side) used to keep only
faces of at least 64 network pixels, so a face of 8-25 % of the photo fell between the two.
Dev set: the largest face (>= 40 px) of each of the 174 held-out photos of the seed-0 per-photo
split, placed in a 1400-px square filling a uniform 7-45 % of it (seed 3). Each variant of the
coarse pass is also scored on those 174 photos as they are (recall and precision at the shipped
cut-off, IoU 0.5) and on the 1024-px close-ups (50-90 %) of benchmarks/detection.py.

The rule, written before any variant was scored (kept in BENCHMARKS.md, section 9): the variant
with the most medium faces found ships if on the held-out photos recall drops by at most 0.005
and precision by at most 0.01 against the previous setting, and no close-up is lost.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

from maskwatch.classifier import Classifier
from maskwatch.data.photos import photo_split
from maskwatch.detection.closeups import closeup_set, closeups_found
from maskwatch.detection.detector import SHIPPED_CONFIG, Detector, DetectorConfig, build_face_finder
from maskwatch.detection.evaluate import evaluate_detection

VARIANTS = {"coarse faces >= 64 px (before)": {"coarse_min_face": 64.0},
            ">= 32 px (shipped)": {"coarse_min_face": 32.0},
            ">= 24 px": {"coarse_min_face": 24.0},
            "coarse side 384, >= 64 px": {"coarse_side": 384, "coarse_min_face": 64.0},
            "coarse side 384, >= 32 px": {"coarse_side": 384, "coarse_min_face": 32.0}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path)
    args = parser.parse_args()
    split = photo_split(args.data, seed=0)
    medium = closeup_set(args.data, split.val, count=200, size=1400, fill=(0.07, 0.45), seed=3)
    large = closeup_set(args.data, split.val, count=60)
    classifier = Classifier.load()
    base = DetectorConfig.from_json(SHIPPED_CONFIG)
    print(f"{len(medium)} medium faces, {len(large)} close-ups, {len(split.val)} held-out photos\n")
    print("| coarse pass | medium faces found | close-ups found | held-out recall / precision | seconds |")
    print("|---|---:|---:|---:|---:|")
    for name, change in VARIANTS.items():
        config = dataclasses.replace(base, **change)
        detector = Detector(build_face_finder(config), classifier, config)
        start = time.perf_counter()
        found_medium = closeups_found(detector, medium).mean()
        found_large = closeups_found(detector, large).mean()
        cut = evaluate_detection(args.data, detector, split.val, progress=False, resamples=0)["default_cutoff"]
        print(f"| {name} | {found_medium:.3f} | {found_large:.3f} | {cut['recall_iou50']:.4f} / "
              f"{cut['precision_iou50']:.4f} | {time.perf_counter() - start:.0f} |", flush=True)


if __name__ == "__main__":
    main()

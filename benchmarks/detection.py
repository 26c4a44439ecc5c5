"""Detection side by side on the held-out photos and on close-ups: today's default against CenterFace.

    python benchmarks/detection.py ../shared/datasets/face-mask-detection [--bootstrap 200] [--closeups 60] [--without-gate]

Every detector runs with the same shipped classifier, on the 174 held-out photos of the
per-photo split (seed 0) that neither the classifier nor the detector was trained on (the
classifier's temperature was fitted on them), and on close-ups made from the largest faces of those same held-out photos (each face
filling 50-90 % of a 1024-px square). Extra rows: `--config NAME=settings.json`, and with
`--without-gate` each row again with the full classifier answering every face.
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np

from maskwatch.classifier import Classifier
from maskwatch.data.photos import photo_split
from maskwatch.detection.bootstrap import percentile_interval
from maskwatch.detection.closeups import closeup_set, closeups_found
from maskwatch.detection.detector import SHIPPED_CONFIG, WEIGHTS, Detector, DetectorConfig, build_face_finder
from maskwatch.detection.evaluate import evaluate_detection
from maskwatch.faces import SIZE_BIN_NAMES

CONFIGS = {"CenterFace x2 + box mapping (before)": WEIGHTS / "centerface.json",
           "maskwatch detector (shipped default)": SHIPPED_CONFIG}


def closeup_recall(detector, closeups) -> tuple[float, tuple[float, float]]:
    """Share of close-up faces found at IoU 0.5 at the default cut-off, with a bootstrap interval."""
    hits = closeups_found(detector, closeups).astype(float)
    draws = np.random.default_rng(0).integers(0, len(hits), (1000, len(hits)))
    return float(hits.mean()), percentile_interval(hits[draws].mean(axis=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("--bootstrap", type=int, default=200)
    parser.add_argument("--closeups", type=int, default=60)
    parser.add_argument("--config", action="append", default=[], help="NAME=settings.json: another row")
    parser.add_argument("--out", type=Path, help="write every metric as JSON here")
    parser.add_argument("--only-extra", action="store_true", help="score only the --config rows")
    parser.add_argument("--without-gate", action="store_true",
                        help="also score every row with the full classifier alone (no gate)")
    args = parser.parse_args()
    configs = ({} if args.only_extra else dict(CONFIGS)) | dict(item.split("=", 1) for item in args.config)
    split = photo_split(args.data, seed=0)
    closeups = closeup_set(args.data, split.val, count=args.closeups)
    classifiers = {"": Classifier.load()} | ({", no gate": Classifier.load(gate=False)} if args.without_gate else {})
    results = {}
    for (name, path), (suffix, classifier) in itertools.product(configs.items(), classifiers.items()):
        name += suffix
        config = DetectorConfig.from_json(Path(path))
        detector = Detector(build_face_finder(config), classifier, config)
        metrics = evaluate_detection(args.data, detector, split.val, progress=False, resamples=args.bootstrap)
        metrics["closeups"] = dict(zip(("recall_iou50", "interval"), closeup_recall(detector, closeups)))
        results[name] = metrics
        print(f"done: {name}", flush=True)

    def cell(m, key):
        lo, hi = m["intervals"][key]
        return f"{m[key]:.3f} [{lo:.3f}, {hi:.3f}]"

    print(f"\n{len(split.val)} held-out photos, {results[next(iter(results))]['faces']} faces; "
          f"{len(closeups)} close-ups (1024 px) from the same photos; 95 % intervals: "
          f"{args.bootstrap} bootstrap resamples of the photos\n")
    print("| detector | mAP@0.5 | mAP@0.5:0.95 | face recall @0.5 | recall / precision at the cut-off | close-ups recall @0.5 |")
    print("|---|---|---|---|---|---|")
    for name, m in results.items():
        cut, cl = m["default_cutoff"], m["closeups"]
        print(f"| {name} | {cell(m, 'map50')} | {cell(m, 'map50_95')} | {cell(m, 'face_recall_iou50')} | "
              f"{cut['recall_iou50']:.3f} / {cut['precision_iou50']:.3f} (>= {cut['min_score']}) | "
              f"{cl['recall_iou50']:.3f} [{cl['interval'][0]:.3f}, {cl['interval'][1]:.3f}] |")
    print("\nFound at the default cut-off (IoU 0.5), by true class and face size (short side, px):\n")
    print("| detector | class | " + " | ".join(SIZE_BIN_NAMES) + " |")
    print("|---|---|" + "---:|" * len(SIZE_BIN_NAMES))
    for name, m in results.items():
        for c, row in m["found_rate"].items():
            cells = " | ".join("-" if v["rate"] is None else f"{v['rate']:.3f} ({v['found']}/{v['faces']})"
                               for v in row.values())
            print(f"| {name} | {c} | {cells} |")
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

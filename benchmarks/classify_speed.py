"""Batched crop classification through ONNX Runtime: crops per second on this machine.

    python benchmarks/classify_speed.py [--model path.onnx] [--batch 256] [--repeats 7]

Crops are real face crops of the bundled sample (resized by the Classifier as in production);
prints the median of several timed passes over the same batch.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import cv2
import numpy as np

from maskwatch import Classifier
from maskwatch.data.voc import load_voc_annotation

SAMPLE = Path(__file__).resolve().parents[1] / "sample" / "face-mask-detection"


def sample_crops(n: int) -> list[np.ndarray]:
    crops = []
    for xml in sorted(SAMPLE.glob("annotations/*.xml")):
        ann = load_voc_annotation(xml)
        image = cv2.imread(str(SAMPLE / "images" / ann.filename))
        for obj in ann.objects:
            x0, y0, x1, y1 = (int(v) for v in obj.box)
            crop = image[max(y0, 0):y1, max(x0, 0):x1]
            if crop.size:
                crops.append(crop)
    return (crops * (n // len(crops) + 1))[:n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    classifier = Classifier.load(args.model)
    crops = sample_crops(args.batch)
    prepared = np.stack([cv2.resize(c, (classifier.spec.size, classifier.spec.size)) for c in crops])
    classifier.predict(crops[:8])  # warm-up
    end_to_end, model_only = [], []
    for _ in range(args.repeats):
        start = time.perf_counter()
        classifier.predict(crops, batch_size=args.batch)
        end_to_end.append(len(crops) / (time.perf_counter() - start))
        start = time.perf_counter()
        classifier.probabilities(prepared)
        model_only.append(len(crops) / (time.perf_counter() - start))
    print(f"model {classifier.info['model']} ({classifier.spec.size} px), batch {args.batch}, "
          f"{args.repeats} passes, median:")
    print(f"  crops/s including crop resizing: {statistics.median(end_to_end):8.0f}")
    print(f"  crops/s model only:              {statistics.median(model_only):8.0f}")


if __name__ == "__main__":
    main()

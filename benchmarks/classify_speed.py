"""Batched crop classification through ONNX Runtime: crops per second on this machine.

    python benchmarks/classify_speed.py [--model a.onnx --model b.onnx] [--gate g.onnx --gate h.onnx] [--closeup c.onnx] [--grey] [--data DIR] [--crops 256] [--batch 32] [--repeats 7]

Crops are real face crops, exactly their boxes (default: the bundled sample; --data takes a
dataset folder such as ../shared/datasets/face-mask-detection for its real mix of face sizes).
Several models are timed pass by pass in turn on the same crops, so their ratio is measured
side by side; prints medians, and the per-pass ratio to the first model. Every model runs
without a gate; each --gate adds a row for the first model behind that gate (default, with no
--model: the shipped model alone, then behind the shipped gate, then the shipped default: behind
its gate and beside its close-up model for faces over 64 px), end to end only. --closeup adds
the shipped default with a candidate close-up model, its ratio to the shipped default beside it.
--grey adds the shipped default on the same crops made grey (luminance in all three channels): an
infrared camera's faces, every one answered by the night model; its ratio to colour beside it.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from maskwatch import Classifier
from maskwatch.classifier import BATCH, SHIPPED_CLOSEUP, SHIPPED_GATE, SHIPPED_NIGHT
from maskwatch.data.crops import crop_face
from maskwatch.data.voc import load_voc_annotation

SAMPLE = Path(__file__).resolve().parents[1] / "sample" / "face-mask-detection"


def face_crops(data: Path, n: int) -> list[np.ndarray]:
    """Up to n face crops, photo by photo in name order (repeated if the folder has fewer)."""
    crops = []
    for xml in sorted(data.glob("annotations/*.xml")):
        ann = load_voc_annotation(xml)
        image = cv2.imread(str(data / "images" / ann.filename))
        for obj in ann.objects:
            x0, y0, x1, y1 = (int(v) for v in obj.box)
            crop = image[max(y0, 0):y1, max(x0, 0):x1]
            if crop.size:
                crops.append(crop)
        if len(crops) >= n:
            break
    return (crops * (n // len(crops) + 1))[:n]


def model_inputs(classifier: Classifier, crops: list[np.ndarray]) -> list[np.ndarray]:
    """Each crop as the classifier feeds it (resized to its crop size)."""
    return [crop_face(c, (0, 0, c.shape[1], c.shape[0]), classifier.spec) for c in crops]


def time_model_only(classifier: Classifier, groups: list[np.ndarray], batch_size: int) -> float:
    """Seconds for the network alone on prepared crops (one group per crop size), `batch_size` a
    call as predict() feeds it: a whole group a call made --batch change only the other figure."""
    start = time.perf_counter()
    for group in groups:
        for i in range(0, len(group), batch_size):
            classifier.probabilities(group[i:i + batch_size])
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, action="append", default=None,
                        help="An exported classifier (repeatable; default: the shipped one).")
    parser.add_argument("--gate", type=Path, action="append", default=None,
                        help="Also time the first model behind this gate (repeatable; default: the shipped "
                             "gate, when no --model is given).")
    parser.add_argument("--closeup", type=Path, help="also time the shipped default with this close-up model")
    parser.add_argument("--grey", action="store_true",
                        help="also time the shipped default on the crops made grey (the night model answers them)")
    parser.add_argument("--data", type=Path, default=SAMPLE)
    parser.add_argument("--crops", type=int, default=256, help="face crops classified in each pass")
    parser.add_argument("--batch", type=int, default=BATCH, help=f"crops per network call (default: the shipped {BATCH})")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    if args.closeup is not None and (args.model is not None or not args.closeup.is_file()):
        parser.error("--closeup takes an existing .onnx file and goes without --model")
    if args.grey and (args.model is not None or not SHIPPED_NIGHT.is_file()):
        parser.error(f"--grey times the shipped night model ({SHIPPED_NIGHT}): it goes without --model")
    models = args.model or [None]
    classifiers = [Classifier.load(m, gate=False, closeup=False) for m in models]
    gates = args.gate or ([SHIPPED_GATE] if args.model is None and SHIPPED_GATE.is_file() else [])
    classifiers += [Classifier.load(models[0], gate=gate, closeup=False) for gate in gates]
    default_row = None
    if args.model is None and SHIPPED_CLOSEUP.is_file():
        classifiers.append(Classifier.load())  # the shipped default: gate and close-up model
        default_row = len(classifiers) - 1
    if args.closeup is not None:
        classifiers.append(Classifier.load(closeup=args.closeup))
    crops = face_crops(args.data, args.crops)
    given = [crops] * len(classifiers)  # the crops each row classifies
    grey_row = None
    if args.grey:
        classifiers.append(Classifier.load())
        given.append([cv2.cvtColor(cv2.cvtColor(c, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR) for c in crops])
        grey_row = len(classifiers) - 1
    groups = []
    for clf, ours in zip(classifiers, given):
        inputs = model_inputs(clf, ours)
        sides = np.array([x.shape[0] for x in inputs])
        groups.append([np.stack([inputs[i] for i in np.flatnonzero(sides == s)]) for s in np.unique(sides)])
        clf.predict(ours[:8])  # warm-up
    end_to_end = [[] for _ in classifiers]
    model_only = [[] for _ in classifiers]
    for _ in range(args.repeats):
        for k, (clf, ours) in enumerate(zip(classifiers, given)):
            start = time.perf_counter()
            clf.predict(ours, batch_size=args.batch)
            end_to_end[k].append(len(ours) / (time.perf_counter() - start))
            if clf.gate is None:
                model_only[k].append(len(crops) / time_model_only(clf, groups[k], args.batch))
    print(f"{len(crops)} face crops from {args.data}, batch {args.batch}, {args.repeats} passes, medians:")
    first_gated = len(models)  # rows from here on are the first model behind each gate
    for k, clf in enumerate(classifiers):
        if k == grey_row:
            print(f"  the shipped default on the same crops made grey (every one to {clf.night.model_path.name}):")
            print(f"    crops/s including crop resizing: {statistics.median(end_to_end[k]):8.0f}")
        elif clf.gate is not None:
            answered = _gate_share(clf, crops)
            beside = "" if clf.closeup is None else (
                f", beside {clf.closeup.model_path.name} for "
                f"{np.mean([max(c.shape[:2]) > clf.closeup_rule.above for c in crops]):.2f} of the crops")
            print(f"  {clf.model_path.name} behind the gate {clf.gate.model_path.name} "
                  f"(threshold {clf.gate_rule.threshold}; the gate answered {answered:.2f} of the crops{beside}):")
            print(f"    crops/s including crop resizing: {statistics.median(end_to_end[k]):8.0f}")
        else:
            shares = ", ".join(f"{len(g)} at {g.shape[1]} px" for g in groups[k])
            print(f"  {clf.model_path.name} ({clf.info['model']}; {shares}):")
            print(f"    crops/s including crop resizing: {statistics.median(end_to_end[k]):8.0f}")
            print(f"    crops/s model only:              {statistics.median(model_only[k]):8.0f}")
        for j, name in ((0, "the first"), (first_gated, "the first gate's row"), (default_row, "the shipped default")):
            if j is not None and j < k:
                ratios = [b / a for a, b in zip(end_to_end[j], end_to_end[k])]
                print(f"    end to end, relative to {name}, per pass: median {statistics.median(ratios):.2f} "
                      f"(range {min(ratios):.2f}-{max(ratios):.2f})")


def _gate_share(clf: Classifier, crops: list[np.ndarray]) -> float:
    """The share of `crops` whose answer the gate gives."""
    spec = replace(clf.gate.spec, margin=0.0)  # exact crops, as Classifier.predict feeds them
    probs = clf.gate.probabilities_of([crop_face(c, (0, 0, c.shape[1], c.shape[0]), spec) for c in crops])
    return float(clf.gate_rule.accepts(probs, np.array([max(c.shape[:2]) for c in crops])).mean())


if __name__ == "__main__":
    main()

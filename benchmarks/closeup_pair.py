"""A candidate close-up model beside the shipped one, on the held-out photos of a per-photo split.

    python benchmarks/closeup_pair.py ../shared/datasets/face-mask-detection --closeup CANDIDATE.onnx [--closeup SEED2.onnx ...]

Every annotated face of the held-out photos (seed 0: fold 1 of `maskwatch cv --seed 0`, the split
the shipped models were trained on) is classified from its photo as `detect` would classify it:
the shipped classifier and gate, faces over the close-up rule's size by the close-up model. Once
with the shipped close-up model, once with the candidate; argmax labels, the doubt threshold
left aside. It prints the counts the close-up rules of issue 23 are decided by: accuracy, wrongly
worn masks caught, and mistakes among faces over 64 px (docs/bench-real-check.md). Only a
candidate trained on the same split's training faces is measured on held-out faces here.

One training run of the shipped recipe to the next moves these counts by one or two faces (seeds
0-2: 0-2 mistakes over 64 px, 19-20 caught; docs/bench-real-check.md), so a candidate is best given
as several seeds (--closeup repeated): each is scored and the mean of their counts printed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from maskwatch.classifier import Classifier
from maskwatch.data.images import read_image
from maskwatch.data.photos import annotated_faces, photo_split
from maskwatch.faces import CLASSES

LARGE = 64  # px, the long side over which the shipped close-up model answers


def pair_counts(data: Path, classifier: Classifier, seed: int = 0) -> dict:
    """The rule's counts for one pair over the held-out photos of `seed`'s split."""
    truth, called, sides = [], [], []
    for ann in photo_split(data, seed=seed).val:
        faces = annotated_faces(ann)
        for face, answer in zip(faces, classifier.predict_boxes(read_image(data / "images" / ann.filename), faces)):
            truth.append(face.label)
            called.append(CLASSES[int(np.argmax(answer.probabilities))])
            sides.append(max(face.width, face.height))
    truth, called, large = np.array(truth), np.array(called), np.array(sides) > LARGE
    wrong = "mask_weared_incorrect"
    return {"faces": len(truth), "accuracy": round(float(np.mean(truth == called)), 4),
            "wrongly_worn_caught": int(np.sum((truth == wrong) & (called == wrong))),
            "wrongly_worn": int(np.sum(truth == wrong)), "over_64": int(large.sum()),
            "mistakes_over_64": int(np.sum(large & (truth != called)))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="the Kaggle face-mask-detection folder (VOC)")
    parser.add_argument("--closeup", type=Path, required=True, action="append",
                        help="a candidate close-up model (.onnx); repeat for the same recipe's other seeds")
    parser.add_argument("--seed", type=int, default=0, help="the per-photo split's seed")
    args = parser.parse_args(argv)
    for path in args.closeup:
        if not path.is_file():
            parser.error(f"{path}: no such file")
    if len({p.resolve() for p in args.closeup}) < len(args.closeup):
        parser.error("the same --closeup file given twice would count one seed twice in the mean")
    report = {"shipped": pair_counts(args.data, Classifier.load(), args.seed)}
    if len(args.closeup) == 1:
        report["candidate"] = pair_counts(args.data, Classifier.load(closeup=args.closeup[0]), args.seed)
    else:
        runs = {str(path): pair_counts(args.data, Classifier.load(closeup=path), args.seed) for path in args.closeup}
        report["candidates"] = runs
        report["candidate_mean"] = {key: round(float(np.mean([r[key] for r in runs.values()])), 4)
                                    for key in ("accuracy", "wrongly_worn_caught", "mistakes_over_64")}
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

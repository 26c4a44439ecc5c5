"""What an ensemble of models trained on one split gets on its held-out faces: the ceiling of
distilling them into one model.

    python benchmarks/ensemble_ceiling.py WORK MODEL... [--split WORK/split.csv]

WORK: a prepared folder (`maskwatch prepare`); MODEL: run folders (`maskwatch train`) or exported
.onnx files, all trained on the split's training side (run folders are checked). Averages the
models' probabilities over every subset of 2 or more and prints, per subset size, the rare
class caught and the accuracy (min / median / max over the subsets).
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np

from maskwatch.data.split import read_split_csv
from maskwatch.faces import CLASSES
from maskwatch.training.calibration import softmax
from maskwatch.training.dataset import load_crop_dataset

RARE = CLASSES.index("mask_weared_incorrect")


def held_out_probabilities(model: Path, data, rows: np.ndarray, split: dict) -> np.ndarray:
    if model.suffix == ".onnx":
        from maskwatch import Classifier
        from maskwatch.data.crops import fit_input

        clf = Classifier.load(model)
        return clf.probabilities_of([fit_input(data.images[i], clf.spec.input_size(s, s))
                                     for i, s in zip(rows, data.long_sides[rows])])
    from maskwatch.data.crops import CropSpec
    from maskwatch.training.train import load_model, predict_crops

    if read_split_csv(model / "split.csv")[0] != split:
        raise SystemExit(f"{model}: trained on another split")
    net, config = load_model(model)
    return softmax(predict_crops(net, data.images[rows], data.long_sides[rows], CropSpec(**config["crop"])))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work", type=Path)
    parser.add_argument("models", type=Path, nargs="+")
    parser.add_argument("--split", type=Path, default=None)
    args = parser.parse_args()
    data = load_crop_dataset(args.work)
    split, *_ = read_split_csv(args.split or args.work / "split.csv")
    rows = np.flatnonzero([split.get(f) == "val" for f in data.face_ids])
    y = data.labels[rows]
    probs = {str(m): held_out_probabilities(m, data, rows, split) for m in args.models}
    print(f"{len(rows)} held-out faces, {int((y == RARE).sum())} wrongly worn")
    for name, p in probs.items():
        pred = p.argmax(1)
        print(f"  {name}: caught {int(((pred == RARE) & (y == RARE)).sum())}, accuracy {np.mean(pred == y):.4f}")
    print("models averaged | subsets | caught min / median / max | accuracy min / median / max")
    for n in range(1, len(probs) + 1):
        caught, acc = [], []
        for subset in itertools.combinations(probs.values(), n):
            pred = np.mean(subset, axis=0).argmax(1)
            caught.append(int(((pred == RARE) & (y == RARE)).sum()))
            acc.append(float(np.mean(pred == y)))
        print(f"{n:>15} | {len(caught):>7} | {min(caught)} / {np.median(caught):g} / {max(caught)} "
              f"| {min(acc):.4f} / {np.median(acc):.4f} / {max(acc):.4f}")
    either = np.zeros(len(y), dtype=bool)
    for p in probs.values():
        either |= p.argmax(1) == RARE
    print(f"wrongly worn caught by at least one model: {int((either & (y == RARE)).sum())}")


if __name__ == "__main__":
    main()

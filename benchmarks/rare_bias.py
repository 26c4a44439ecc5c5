"""A decision bias for the wrongly worn mask, chosen cross-fitted, from a CV's held-out logits.

    python benchmarks/rare_bias.py CV_FOLDER...

CV_FOLDER: what `maskwatch cv` (or benchmarks/cv_sweep.py) wrote: cv.json and oof-logits.npz.
Adding b to the rare class's logit trades accuracy for its recall. Each fold's b is chosen on the
OTHER folds' held-out logits, as a temperature is: the b in 0, 0.25, ..., 3 with the highest mean
recall of the rare class there, among those keeping their mean accuracy within 0.003 of b = 0.
That b is then scored on the fold itself, which took no part in choosing it. Prints, per folder,
the plain CV (mean ± std over folds), the rare class's pooled average precision, and the
cross-fitted result.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from sklearn.metrics import average_precision_score

from maskwatch.faces import CLASSES
from maskwatch.training.calibration import softmax
from maskwatch.training.crossval import fold_metrics

RARE = CLASSES.index("mask_weared_incorrect")
BIASES = np.arange(0, 3.01, 0.25)
ACCURACY_SLACK = 0.003


def scores(logits: np.ndarray, labels: np.ndarray, bias: float) -> tuple[float, float, float]:
    """Accuracy, macro-F1 and rare-class recall with `bias` added to the rare class's logit,
    as `maskwatch cv` scores a fold."""
    shifted = logits.copy()
    shifted[:, RARE] += bias
    m = fold_metrics(labels, shifted)
    return m["accuracy"], m["macro_f1"], m["recall"][CLASSES[RARE]]


def cross_fitted(logits: np.ndarray, labels: np.ndarray, fold: np.ndarray) -> tuple[list[float], np.ndarray]:
    """Each fold's bias (chosen on the other folds) and its (accuracy, macro-F1, recall) there."""
    chosen, results = [], []
    folds = np.unique(fold)
    for k in folds:
        others = [j for j in folds if j != k]
        table = np.array([np.mean([scores(logits[fold == j], labels[fold == j], b) for j in others], axis=0)
                          for b in BIASES])
        keeps = table[:, 0] >= table[0, 0] - ACCURACY_SLACK
        b = float(BIASES[keeps][np.argmax(table[keeps, 2])])
        chosen.append(b)
        results.append(scores(logits[fold == k], labels[fold == k], b))
    return chosen, np.array(results)


def report(folder: Path) -> dict:
    cv = json.loads((folder / "cv.json").read_text())
    oof = np.load(folder / "oof-logits.npz")
    logits, labels, fold = oof["logits"], oof["labels"], oof["fold"]
    chosen, results = cross_fitted(logits, labels, fold)
    s = cv["summary"]
    return {
        "plain": {"accuracy": s["accuracy"], "macro_f1": s["macro_f1"], "recall": s["recall"]["mask_weared_incorrect"]},
        "ece_after": cv["calibration"]["ece_after"],
        "average_precision": float(average_precision_score(labels == RARE, softmax(logits)[:, RARE])),
        "cross_fitted": {"biases": chosen,
                         **{name: {"mean": float(results[:, i].mean()), "std": float(results[:, i].std(ddof=1))}
                            for i, name in enumerate(("accuracy", "macro_f1", "recall"))}},
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", type=Path, nargs="+")
    args = parser.parse_args(argv)

    def ms(d: dict) -> str:
        return f"{d['mean']:.3f} ± {d['std']:.3f}"

    for folder in args.folders:
        r = report(folder)
        p, x = r["plain"], r["cross_fitted"]
        print(f"{folder}: plain {ms(p['accuracy'])} / {ms(p['macro_f1'])} / {ms(p['recall'])}, "
              f"ECE after T {r['ece_after']:.3f}, AP {r['average_precision']:.3f} | cross-fitted bias "
              f"{min(x['biases']):.2f}-{max(x['biases']):.2f}: {ms(x['accuracy'])} / {ms(x['macro_f1'])} / {ms(x['recall'])}")


if __name__ == "__main__":
    main()

"""A gate in front of the full classifier, scored cross-fitted from two CVs' held-out logits.

    python -m maskwatch.training.classifier.gate_cv FULL_CV GATE_CV WORK [--max-side 64] [--grid 0.8,0.85,...]
                                                    [--threshold T] [--pool FULL_CV2 GATE_CV2 ...]

FULL_CV, GATE_CV: what `maskwatch cv` wrote for the full model and for the gate, on the same
folds (same work faces, same --seed): cv.json and oof-logits.npz. WORK: the prepared work
folder either CV read, for the boxes' long sides. Each fold's threshold and temperatures are
chosen on the other folds (gate.py), so the cascade's figures are held-out ones.
Prints the full model alone and the cascade side by side (mean ± std over folds, FULL_CV and
GATE_CV only), the share of faces the gate answered, and the threshold to ship: the same rule on all folds together, and
on the held-out logits of further CV pairs (--pool, on other fold seeds of the same work faces).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from maskwatch.data.prepare import read_faces_csv
from maskwatch.faces import CLASSES
from maskwatch.training.classifier.calibration import expected_calibration_error, fit_temperature, softmax
from maskwatch.training.classifier.crossval import fold_metrics
from maskwatch.training.classifier.gate import RARE, THRESHOLDS, choose_threshold, cross_fitted_cascade


def long_sides(work: Path) -> np.ndarray:
    """Each face's long box side in photo pixels, in the work folder's face order."""
    return np.array([max(r["xmax"] - r["xmin"], r["ymax"] - r["ymin"]) for r in read_faces_csv(work / "faces.csv", columns=())])


def summary(name: str, probs: np.ndarray, labels: np.ndarray, fold_of: np.ndarray) -> None:
    folds = [fold_metrics(labels[fold_of == k], np.log(np.clip(probs[fold_of == k], 1e-12, None)))
             for k in range(int(fold_of.max()) + 1)]

    def stat(values):
        values = [v for v in values if v is not None]  # a fold without the class has no recall for it
        return f"{np.mean(values):.4f} ± {np.std(values, ddof=1) if len(values) > 1 else 0.0:.4f}" if values else "-"

    caught = int(((probs.argmax(1) == RARE) & (labels == RARE)).sum())
    print(f"  {name:<14} accuracy {stat([f['accuracy'] for f in folds])}  macro-F1 {stat([f['macro_f1'] for f in folds])}"
          f"  recall incorrect {stat([f['recall'][CLASSES[RARE]] for f in folds])} ({caught}/{int((labels == RARE).sum())})"
          f"  errors {int((probs.argmax(1) != labels).sum())}  ECE {expected_calibration_error(probs, labels):.4f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("full_cv", type=Path)
    parser.add_argument("gate_cv", type=Path)
    parser.add_argument("work", type=Path)
    parser.add_argument("--max-side", type=int, default=64)
    parser.add_argument("--grid", type=lambda text: tuple(float(v) for v in text.split(",")), default=THRESHOLDS,
                        help="thresholds to choose from, comma-separated (default: gate.THRESHOLDS)")
    parser.add_argument("--threshold", type=float, default=None,
                        help="score every fold at this threshold instead of choosing one (a shipped rule on fresh folds)")
    parser.add_argument("--pool", nargs=2, type=Path, action="append", default=[], metavar=("FULL_CV", "GATE_CV"),
                        help="Another pair of CVs (same work faces, another --seed) whose held-out logits join "
                             "the choice of the threshold to ship (repeatable).")
    args = parser.parse_args(argv)
    full, gate = _pair(args.full_cv, args.gate_cv)
    labels, fold_of = full["labels"], full["fold"]
    sides = long_sides(args.work)
    if len(sides) != len(labels):
        raise SystemExit(f"{args.work}/faces.csv has {len(sides)} faces, the CVs {len(labels)}")
    result = cross_fitted_cascade(full["logits"], gate["logits"], labels, fold_of, sides, args.max_side, args.grid,
                                  args.threshold)
    accepted = result["accepted"]
    print(f"{len(labels)} faces, {int((sides <= args.max_side).sum())} of them <= {args.max_side} px on the long side; "
          + ("cross-fitted (each fold's threshold and temperatures from the other folds):" if args.threshold is None
             else f"threshold {args.threshold} on every fold, temperatures from the other folds:"))
    summary("full model", result["full"], labels, fold_of)
    summary("gate + full", result["probabilities"], labels, fold_of)
    print(f"  thresholds per fold: {result['thresholds']}")
    print(f"  the gate answered {accepted.mean():.3f} of all faces (per fold "
          + " / ".join(f"{accepted[fold_of == k].mean():.3f}" for k in range(int(fold_of.max()) + 1))
          + f"); errors among them: gate {int((result['probabilities'][accepted].argmax(1) != labels[accepted]).sum())},"
          f" full model {int((result['full'][accepted].argmax(1) != labels[accepted]).sum())}")
    # The gate never answers the rare class, so each wrongly worn face it answers is taken from the
    # full model. At a fixed --threshold that bounds the rare-class recall the gate can cost behind
    # any classifier; those of them the full model alone catches are the ones lost here.
    taken = accepted & (labels == RARE)
    print(f"  wrongly worn faces the gate answered: {int(taken.sum())} of {int((labels == RARE).sum())}"
          f" (the full model alone catches {int((result['full'][taken].argmax(1) == RARE).sum())} of them:"
          " these are lost)")
    pairs = [(full, gate)] + [_pair(*pair) for pair in args.pool]
    for k, (other, _) in enumerate(pairs[1:]):
        if not (np.array_equal(other["labels"], labels) and np.array_equal(other["sides"], full["sides"])):
            raise SystemExit("--pool takes CVs of the same work faces as FULL_CV and GATE_CV (another --seed only)")
        if any(np.array_equal(other["fold"], pair[0]["fold"]) for pair in pairs[:k + 1]):
            raise SystemExit("--pool: two CV pairs share their folds; pool each fold seed once")
    full_logits, gate_logits = (np.concatenate([pair[i]["logits"] for pair in pairs]) for i in (0, 1))
    all_labels = np.concatenate([pair[0]["labels"] for pair in pairs])
    t_full, t_gate = (fit_temperature(x, all_labels) for x in (full_logits, gate_logits))
    shipped = choose_threshold(softmax(full_logits, t_full), softmax(gate_logits, t_gate), all_labels,
                               np.tile(sides, len(pairs)), args.max_side, args.grid)
    print(f"threshold to ship (the same rule on all folds{f' of {len(pairs)} CV pairs' if args.pool else ''}): {shipped}")


def _pair(full_cv: Path, gate_cv: Path):
    """Both CVs' held-out logits, refused unless they share faces and folds."""
    full, gate = (np.load(d / "oof-logits.npz") for d in (full_cv, gate_cv))
    if not (np.array_equal(gate["labels"], full["labels"]) and np.array_equal(gate["fold"], full["fold"])):
        raise SystemExit(f"{full_cv} and {gate_cv} do not share faces and folds; run both CVs "
                         "on the same work faces with the same --seed")
    return full, gate


if __name__ == "__main__":
    main()

"""The gate's threshold, chosen on held-out faces only.

A gate (see maskwatch.classifier.GateRule) should cost nothing where it answers: its
threshold is the lowest from which on, on faces neither network trained on, the cascade makes
no more mistakes than the full model alone and catches every wrongly worn mask the full model
catches, at that threshold and every higher one. That holds on the faces it is chosen on;
cross-fitted over CV folds (each fold scored with a threshold and temperatures chosen on the
other folds), the figures show what it costs on faces it was not chosen on.
"""

from __future__ import annotations

import numpy as np

from maskwatch.classifier import GateRule
from maskwatch.faces import CLASSES
from maskwatch.training.classifier.calibration import fit_temperature, softmax

THRESHOLDS = (0.9, 0.95, 0.97, 0.98, 0.985, 0.99, 0.993, 0.995, 0.997, 0.998, 0.999)
RARE = CLASSES.index("mask_weared_incorrect")


def cascade(full_probs: np.ndarray, gate_probs: np.ndarray, long_sides: np.ndarray,
            rule: GateRule) -> tuple[np.ndarray, np.ndarray]:
    """The cascade's probabilities (the gate's where the rule accepts it, else the full
    model's) and where the gate answered."""
    accepted = rule.accepts(gate_probs, long_sides)
    return np.where(accepted[:, None], gate_probs, full_probs), accepted


def choose_threshold(full_probs: np.ndarray, gate_probs: np.ndarray, labels: np.ndarray,
                     long_sides: np.ndarray, max_side: int, grid=THRESHOLDS) -> float | None:
    """The lowest threshold of `grid` from which on every grid value costs nothing on these
    faces (no more errors, no wrongly worn mask lost); None if the highest does not.

    Mistakes do not fall steadily as the threshold rises, so the lowest value that passes can
    be a lucky dip with failing values above it; requiring every higher value to pass as well
    keeps the choice off such dips (BENCHMARKS.md, section 2, rounds seven and eight).
    """
    def cost(probs):
        predicted = probs.argmax(axis=1)
        return int((predicted != labels).sum()), int(((predicted == RARE) & (labels == RARE)).sum())

    full_errors, full_caught = cost(full_probs)
    chosen = None
    for threshold in sorted(grid, reverse=True):
        probs, _ = cascade(full_probs, gate_probs, long_sides, GateRule(threshold, max_side))
        errors, caught = cost(probs)
        if errors > full_errors or caught < full_caught:
            break
        chosen = float(threshold)
    return chosen


def cross_fitted_cascade(full_logits: np.ndarray, gate_logits: np.ndarray, labels: np.ndarray,
                         fold_of: np.ndarray, long_sides: np.ndarray, max_side: int, grid=THRESHOLDS,
                         fixed: float | None = None) -> dict:
    """Out-of-fold logits of both networks (same folds) -> each fold's cascade, scored with
    temperatures and a threshold fitted on the other folds only (`fixed`: this threshold for
    every fold instead, as a shipped rule is checked on a fresh fold split).

    Returns probabilities (cascade and full model alone, calibrated), where the gate answered,
    and each fold's threshold (None where no threshold on the grid was free: the gate is off).
    """
    probs = np.zeros(full_logits.shape, dtype=np.float64)
    full = np.zeros_like(probs)
    accepted = np.zeros(len(labels), dtype=bool)
    thresholds = []
    for k in range(int(fold_of.max()) + 1):
        held, others = fold_of == k, fold_of != k
        t_full = fit_temperature(full_logits[others], labels[others])
        t_gate = fit_temperature(gate_logits[others], labels[others])
        threshold = fixed if fixed is not None else choose_threshold(
            softmax(full_logits[others], t_full), softmax(gate_logits[others], t_gate), labels[others],
            long_sides[others], max_side, grid)
        thresholds.append(threshold)
        full[held] = softmax(full_logits[held], t_full)
        if threshold is None:
            probs[held] = full[held]
            continue
        probs[held], accepted[held] = cascade(full[held], softmax(gate_logits[held], t_gate), long_sides[held],
                                              GateRule(threshold, max_side))
    return {"probabilities": probs, "full": full, "accepted": accepted, "thresholds": thresholds}

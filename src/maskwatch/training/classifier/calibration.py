"""Temperature scaling and expected calibration error: probabilities that mean what they say."""

from __future__ import annotations

import numpy as np



def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of logits / temperature, computed stably."""
    z = logits / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """ECE: the gap between confidence and accuracy, averaged over equal-width confidence bins."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        in_bin = (confidence > lo) & (confidence <= hi)
        if in_bin.any():
            ece += in_bin.mean() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return float(ece)


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature T minimising the negative log-likelihood of softmax(logits / T).

    One parameter, so a bounded scalar search is exact enough and needs no torch. Where every
    face is answered right there is no such T (the likelihood rises without end as T falls), and
    the search ended near its lower bound: a run of a few dozen faces from a trained start
    (`train --init`) was exported at T 0.07, every answer 1.0 sure and its doubt threshold 1.0.
    Those faces cannot say how sure to be: 1.0 (the logits as they are), as without evaluate.
    """
    from scipy.optimize import minimize_scalar

    if len(labels) == 0 or not temperature_fits(logits, labels):
        return 1.0

    def nll(log_t: float) -> float:
        p = softmax(logits, np.exp(log_t))
        return float(-np.log(np.clip(p[np.arange(len(labels)), labels], 1e-12, None)).mean())

    result = minimize_scalar(nll, bounds=(np.log(0.05), np.log(20.0)), method="bounded")
    return float(np.exp(result.x))


def temperature_fits(logits: np.ndarray, labels: np.ndarray) -> bool:
    """Whether these faces can fit a temperature: at least one answered wrong (fit_temperature)."""
    return bool(len(labels)) and bool((np.asarray(logits).argmax(axis=1) != np.asarray(labels)).any())


def calibrate_on_validation(logits: np.ndarray, labels: np.ndarray, photos: list[str]) -> dict:
    """Fit the temperature on validation logits and report ECE before and after.

    The temperature to ship is fitted on all validation faces. The "after" ECE is
    cross-fitted so that it is not measured on the faces it was fitted on: validation photos
    are split in two halves, each half scored with the temperature fitted on the other.
    """
    unique = sorted(set(photos))
    half_a = {p for i, p in enumerate(unique) if i % 2 == 0}
    in_a = np.array([p in half_a for p in photos])
    calibrated = np.zeros_like(logits, dtype=np.float64)
    for held in (in_a, ~in_a):
        if held.any():
            calibrated[held] = softmax(logits[held], fit_temperature(logits[~held], labels[~held]))
    return {
        "temperature": fit_temperature(logits, labels),
        "fitted": temperature_fits(logits, labels),
        "ece_before": expected_calibration_error(softmax(logits), labels),
        "ece_after": expected_calibration_error(calibrated, labels),
        "method": "temperature scaling fitted on validation; ECE after is 2-fold cross-fitted by photo",
        "doubt": doubt_threshold(softmax(logits, fit_temperature(logits, labels)), labels),
    }


# The share of held-out faces a model may decline to answer: the least sure DOUBT_SHARE of them.
DOUBT_SHARE = 0.03


def doubt_threshold(probabilities: np.ndarray, labels: np.ndarray, share: float = DOUBT_SHARE) -> dict:
    """The calibrated top probability under which a face is `unassessable`: the `share`
    quantile of the validation faces' top probabilities, with what declining them costs.

    Fixed as a share of held-out faces (written before any model was scored with it), so that an
    unsure answer on faces unlike the training set is declined rather than given as a label.
    """
    top = probabilities.max(1)
    threshold = float(np.quantile(top, share))
    declined = top < threshold
    wrong = probabilities.argmax(1) != labels
    return {"threshold": threshold, "share": share, "declined": int(declined.sum()),
            "wrong_among_declined": int((wrong & declined).sum()),
            "wrong_among_answered": int((wrong & ~declined).sum()), "faces": int(len(top))}

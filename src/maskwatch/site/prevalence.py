"""The compliant share corrected for the classifier's known confusions, with a 95 % interval.

A person's label is the classifier's, and it errs in known ways: some wrongly worn masks are
called `with_mask` and some masks a bare face, so the plain ratio
with_mask / people leans up where many are unmasked and down where nearly all are masked. The
rates are CONFUSION_COUNTS below: the shipped classifier's counts on its held-out faces (the
comment above them says which figures). If p are the
true shares of the three classes and M[i, j] the chance a person of true class i is labelled j,
the observed shares are q = p M. The correction (Rogan-Gladen, generalised to three classes)
inverts that, p = q M^-1, and projects the result onto the simplex (shares >= 0 summing to 1).

The interval accounts for both sources of doubt. It draws, DRAWS times, the observed shares
from their Dirichlet posterior given the counts (Jeffreys prior, counts + 1/2: unlike resampling
people with replacement it does not collapse to a point when all 20 people got one label) and
the confusion matrix's rows from theirs given CONFUSION_COUNTS, corrects each draw, and takes
the 2.5th and 97.5th percentiles of the compliant share. The confusion draws are made once, from
a fixed seed, and shared by every figure: the same counts always give the same interval, and
the figures of one site err together, as they do in fact (one classifier). People counted as
`unassessable` are never passed in: callers give only decided people.

    estimate = compliance_estimate({"with_mask": 70, "without_mask": 25, "mask_weared_incorrect": 5})
    estimate.share, estimate.low, estimate.high   # corrected share and its 95 % interval, 0-1
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Mapping

import numpy as np

from maskwatch.faces import CLASSES, COMPLIANT

# Rows: the true class; columns: the label given; both in CLASSES order (with_mask, without_mask,
# mask_weared_incorrect). The shipped classifier's (issue 23: trained with rendered masks) counts
# on the 814 held-out faces of its own per-photo split (fold 1, seed 0; `maskwatch evaluate`,
# metrics.json): 647 / 143 / 24 faces, recall 0.980 / 0.930 / 0.792. Only one fold: a 5-fold CV
# of this recipe did not finish on 2 cores, so the interval carries the doubt of 814 faces (the
# Dirichlet draws below), wider than the 4072 faces of the previous classifier's CV gave.
# A new classifier needs its own counts here.
CONFUSION_COUNTS = np.array([
    [634, 7, 6],  # true with_mask (647)
    [2, 133, 8],  # true without_mask (143)
    [3, 2, 19],  # true mask_weared_incorrect (24)
])
# Draws for the interval: its ends move between seeds by a standard deviation of 0.008 for 10
# people, 0.003 for 100 and 0.001 for 500 (measured over 30 seeds), at about 1.5 ms a figure.
DRAWS = 2000
LEVEL = 0.95
SEED = 24


@dataclass(frozen=True)
class ComplianceEstimate:
    """The compliant share of `people` decided people: corrected, its interval, and the plain ratio."""

    people: int
    share: float  # the corrected estimate of the compliant share, 0-1
    low: float  # the 95 % interval's ends, 0-1; low <= share <= high
    high: float
    observed: float  # with_mask / people, uncorrected

    def below(self, threshold: float) -> bool:
        """True only when the whole interval lies under `threshold` (0-1): evidence, not a hunch."""
        return self.high < threshold

    def as_dict(self, digits: int = 4) -> dict:
        """compliance (corrected), compliance_low, compliance_high and observed_share, rounded."""
        return {"compliance": round(self.share, digits), "compliance_low": round(self.low, digits),
                "compliance_high": round(self.high, digits), "observed_share": round(self.observed, digits)}


FIELDS = ("compliance", "compliance_low", "compliance_high", "observed_share")


def compliance_fields(counts: Mapping[str, int], digits: int = 4) -> dict:
    """The FIELDS of a figure from its people per label (extra keys ignored), None when no one was decided."""
    estimate = compliance_estimate({label: counts[label] for label in CLASSES})
    return estimate.as_dict(digits) if estimate else dict.fromkeys(FIELDS)


def confusion_rates(counts: np.ndarray) -> np.ndarray:
    """Row-normalised confusion counts: M[i, j] = P(labelled j | truly i)."""
    counts = np.asarray(counts, dtype=float)
    if counts.shape != (len(CLASSES), len(CLASSES)) or (counts < 0).any() or (counts.sum(axis=1) == 0).any():
        raise ValueError(f"confusion counts must be a {len(CLASSES)}x{len(CLASSES)} array of counts >= 0 "
                         f"with no empty row; got {counts.tolist()}")
    return counts / counts.sum(axis=1, keepdims=True)


def project_to_simplex(shares: np.ndarray) -> np.ndarray:
    """The nearest point (Euclidean) on the simplex to each row of `shares` (n, k): shares >= 0, sum 1."""
    v = np.atleast_2d(np.asarray(shares, dtype=float))
    u = -np.sort(-v, axis=1)
    cumulative = np.cumsum(u, axis=1) - 1.0
    k = np.arange(1, v.shape[1] + 1)
    rho = (u - cumulative / k > 0).sum(axis=1)  # how many coordinates stay positive
    theta = cumulative[np.arange(len(v)), rho - 1] / rho
    return np.maximum(v - theta[:, None], 0.0)


def corrected_shares(observed: np.ndarray, confusion: np.ndarray) -> np.ndarray:
    """True-class shares p from observed label shares q (rows of (n, 3)) under q = p M: q M^-1,
    projected onto the simplex. `confusion` is one M (3, 3) or one per row (n, 3, 3)."""
    return _corrected(observed, np.linalg.inv(confusion))


def _corrected(observed: np.ndarray, inverse: np.ndarray) -> np.ndarray:
    q = np.atleast_2d(np.asarray(observed, dtype=float))
    shares = np.einsum("nj,nji->ni", q, np.broadcast_to(inverse, (len(q), *inverse.shape[-2:])))
    # Rows of M sum to 1, so these shares do too; only those with one below 0 leave the simplex.
    outside = (shares < 0).any(axis=1)
    if outside.any():
        shares[outside] = project_to_simplex(shares[outside])
    return shares


@lru_cache(maxsize=4)
def _inverse_confusion_draws(counts: tuple[tuple[int, ...], ...], draws: int, seed: int) -> np.ndarray:
    """The inverses of `draws` confusion matrices, each row drawn from Dirichlet(counts + 1/2)."""
    rng = np.random.default_rng(seed)
    rows = [rng.dirichlet(np.asarray(row, dtype=float) + 0.5, size=draws) for row in counts]
    return np.linalg.inv(np.stack(rows, axis=1))  # (draws, 3, 3)


def compliance_estimate(counts: Mapping[str, int], confusion_counts: np.ndarray = CONFUSION_COUNTS,
                        draws: int = DRAWS, seed: int = SEED, people: str = "jeffreys") -> ComplianceEstimate | None:
    """The corrected compliant share of decided people counted per label, with its 95 % interval.

    counts: people per voted label, keys CLASSES (unassessable people are not among them).
    people: how the people's side of the interval is drawn: "jeffreys" (the default, see the
    module docstring) or "resample" (a plain bootstrap of the people, kept for the coverage study).
    None when no one was decided.
    """
    try:
        n = np.array([counts[label] for label in CLASSES], dtype=float)
    except KeyError as missing:
        raise ValueError(f"counts need every label of {', '.join(CLASSES)}; {missing} is missing") from None
    if (n < 0).any() or not np.isfinite(n).all() or (n != np.round(n)).any():
        raise ValueError(f"counts must be whole numbers >= 0; got {dict(zip(CLASSES, n.tolist()))}")
    if n.sum() == 0:
        return None
    key = tuple(tuple(int(c) for c in row) for row in np.asarray(confusion_counts))
    return _estimate(tuple(int(c) for c in n), key, draws, seed, people)


@lru_cache(maxsize=4096)  # hours and days with the same few people recur; their figures need not
def _estimate(n: tuple[int, ...], confusion_counts: tuple[tuple[int, ...], ...], draws: int, seed: int,
              people: str) -> ComplianceEstimate:
    n = np.array(n, dtype=float)
    total = int(n.sum())
    observed = n / total
    compliant = CLASSES.index(COMPLIANT)
    share = float(corrected_shares(observed, confusion_rates(confusion_counts))[0, compliant])
    inverses = _inverse_confusion_draws(confusion_counts, draws, seed)
    rng = np.random.default_rng(seed + 1)
    if people == "jeffreys":
        drawn = rng.dirichlet(n + 0.5, size=draws)
    elif people == "resample":
        drawn = rng.multinomial(total, observed, size=draws) / total
    else:
        raise ValueError(f"people must be 'jeffreys' or 'resample'; got {people!r}")
    shares = _corrected(drawn, inverses)[:, compliant]
    tail = (1 - LEVEL) / 2
    low, high = np.quantile(shares, [tail, 1 - tail])
    # The percentiles are of the drawn shares, the estimate is the plug-in one; where the counts
    # sit at an edge they can disagree a little, and the interval is widened to hold the estimate.
    return ComplianceEstimate(people=total, share=share, low=float(min(low, share)), high=float(max(high, share)),
                              observed=float(observed[compliant]))

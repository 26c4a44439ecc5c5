"""The compliant share corrected for the classifier's known confusions, with a 95 % interval.

A person's label is the classifier's, and it errs in known ways: about a fifth of wrongly worn
masks are called `with_mask` and one mask in a hundred a bare face, so the plain ratio
with_mask / people leans up where many are unmasked and down where nearly all are masked. The
rates are CONFUSION_COUNTS below: the model card's cross-validated figures for the classifier
shipped at commit c2fa597 (the comment above them says which figures). If p are the
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

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Mapping

import numpy as np

from maskwatch.faces import CLASSES, COMPLIANT

# Rows: the true class; columns: the label given; both in CLASSES order (with_mask, without_mask,
# mask_weared_incorrect). Derived from the shipped classifier's figures at commit c2fa597:
# - the diagonal and the row totals from the 5-fold per-photo cross-validation of the shipped
#   recipe (MODEL_CARD.md "With their spread"; docs/history/benchmarks-to-2026-12-02.md,
#   section 2): 3232 / 717 / 123 faces,
#   recall 0.984 / 0.965 / 0.740, so 3180 / 692 / 91 labelled right and 52 / 25 / 32 not;
# - how many were labelled wrongly worn: that CV's precision for the class at the shipped
#   decision, 0.77 (the same history, section 2, the bias table, b = 0): 91 / 0.77 = 118, so 27 of the
#   other two classes;
# - how the remaining misses split, which neither document gives: in the proportions of the
#   shipped classifier and gate on their own held-out faces (fold 1, 814 faces), measured at
#   c2fa597 with benchmarks/compliance_coverage.py (held-out counts [[636, 10, 1], [1, 142, 0],
#   [5, 1, 18]]), each count plus 1/2. So 27 wrongly-worn labels split 1.5 : 0.5 between true
#   with_mask and without_mask faces (20 : 7), and 32 missed wrongly worn masks 5.5 : 1.5 between
#   with_mask and without_mask labels (25 : 7). The rest of each row follows: 52 - 20 = 32 masks
#   labelled bare faces, 25 - 7 = 18 bare faces labelled masks.
# A new classifier needs its own counts here. The close-up model that joined it later for faces over
# 64 px (issue 23) was held to the same accuracy on folds 1-2 (0.9730 both) and catches 38 of 48
# wrongly worn masks there against 36: these counts stand for the pair, a little pessimistic on the
# rare class. A classifier of one's own (`--classifier`) is corrected with them too, which its
# users are told (docs/compliance.md).
CONFUSION_COUNTS = np.array([
    [3180, 32, 20],  # true with_mask (3232)
    [18, 692, 7],  # true without_mask (717)
    [25, 7, 91],  # true mask_weared_incorrect (123)
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
        """True only when the whole interval lies under `threshold` (0-1): evidence, not a hunch.
        Judged on the interval as shown (as_dict): an alert showed a top end of 80.0 under 80. The
        threshold is rounded off its division's float noise (99.9 / 100 is above 0.999, so a top
        end shown as 0.999 counted as under a rule's `below: 99.9`)."""
        return self.as_dict()["compliance_high"] < round(threshold, 10)

    def as_dict(self, digits: int = 4) -> dict:
        """compliance (corrected), compliance_low, compliance_high and observed_share, rounded; the
        interval outwards, so that what is shown never claims more than was measured."""
        scale = 10 ** digits
        return {"compliance": round(self.share, digits), "compliance_low": math.floor(self.low * scale + 1e-9) / scale,
                "compliance_high": math.ceil(self.high * scale - 1e-9) / scale,
                "observed_share": round(self.observed, digits)}


FIELDS = ("compliance", "compliance_low", "compliance_high", "observed_share")


def in_percent(share: float) -> float:
    """A share as shown (as_dict's 4 decimals) in percent, as the alerts and messages give it: 0.7157
    is 71.57 (round() takes off the product's float noise: 0.0007 * 100 is 0.06999999999999999)."""
    return round(100 * share, 2)


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

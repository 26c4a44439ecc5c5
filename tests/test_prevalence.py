"""The compliant share corrected for the classifier's confusions, and its 95 % interval: the
correction on known inputs, and the interval's coverage on a small seeded simulation."""

import numpy as np
import pytest

from maskwatch.faces import CLASSES
from maskwatch.site.prevalence import (CONFUSION_COUNTS, ComplianceEstimate, compliance_estimate, compliance_fields,
                                       confusion_rates, corrected_shares, project_to_simplex)

# The method is tested on a fixed classifier's confusion (the 5-fold CV figures of the classifier
# shipped until issue 23), so that the tests do not move when the shipped counts change.
CV_COUNTS = np.array([[3180, 32, 20], [18, 692, 7], [25, 7, 91]])
RATES = confusion_rates(CV_COUNTS)


def counts(with_mask, without_mask, incorrect=0):
    return dict(zip(CLASSES, (with_mask, without_mask, incorrect)))


@pytest.mark.parametrize("truth", [(0.8, 0.17, 0.03), (0.5, 0.4, 0.1), (0.95, 0.05, 0.0), (0.2, 0.5, 0.3)])
def test_the_correction_recovers_the_true_shares_from_their_expected_labels(truth):
    observed = np.array(truth) @ RATES
    np.testing.assert_allclose(corrected_shares(observed, RATES)[0], truth, atol=1e-12)


def test_wrongly_worn_masks_taken_for_masks_are_taken_back():
    """80 % masked, 20 % wrongly worn: about a fifth of the latter are labelled with_mask, so the
    plain ratio says 0.83; the correction says 0.80 again."""
    observed = np.array([0.8, 0.0, 0.2]) @ RATES
    assert observed[0] == pytest.approx(0.8 * RATES[0, 0] + 0.2 * RATES[2, 0])
    assert observed[0] > 0.82
    assert corrected_shares(observed, RATES)[0, 0] == pytest.approx(0.8)


def test_with_a_perfect_classifier_the_correction_is_the_plain_ratio():
    exact = np.diag([100, 100, 100])
    estimate = compliance_estimate(counts(30, 10, 10), confusion_counts=exact)
    assert estimate.share == pytest.approx(0.6) and estimate.observed == pytest.approx(0.6)


def test_shares_outside_the_simplex_are_projected_onto_it():
    np.testing.assert_allclose(project_to_simplex([[1.02, -0.01, -0.01]]), [[1.0, 0.0, 0.0]])
    np.testing.assert_allclose(project_to_simplex([[0.7, 0.5, -0.2]]), [[0.6, 0.4, 0.0]])
    np.testing.assert_allclose(project_to_simplex([[0.2, 0.3, 0.5]]), [[0.2, 0.3, 0.5]])  # already on it
    # Every person labelled with_mask: the inverse asks for more than 100 %; the estimate is 100 %.
    assert compliance_estimate(counts(50, 0)).share == 1.0


def test_the_interval_holds_the_estimate_and_narrows_with_more_people():
    few, many = compliance_estimate(counts(7, 3)), compliance_estimate(counts(700, 300))
    for estimate in (few, many):
        assert 0 <= estimate.low <= estimate.share <= estimate.high <= 1
    assert many.high - many.low < (few.high - few.low) / 4
    assert compliance_estimate(counts(7, 3)) == few  # the same counts, the same interval
    assert (few.people, few.observed) == (10, 0.7)


def test_the_confusion_s_own_uncertainty_widens_the_interval():
    """Many people and a confusion measured on few faces: the interval is wider than with the same
    rates measured on a hundred times as many."""
    people = counts(7000, 2500, 500)
    measured_on_few = compliance_estimate(people, confusion_counts=np.round(RATES * 100))
    measured_on_many = compliance_estimate(people, confusion_counts=np.round(RATES * 10000))
    assert measured_on_few.high - measured_on_few.low > 2 * (measured_on_many.high - measured_on_many.low)


def test_only_a_whole_interval_under_the_threshold_counts_as_below():
    seventy_of_ten, seventy_of_hundred = compliance_estimate(counts(7, 3)), compliance_estimate(counts(70, 30))
    assert seventy_of_ten.high > 0.8 and not seventy_of_ten.below(0.8)
    assert seventy_of_hundred.high < 0.8 and seventy_of_hundred.below(0.8)
    edge = ComplianceEstimate(people=10, share=0.7, low=0.6, high=0.8, observed=0.7)
    assert not edge.below(0.8)  # touching the threshold is not under it


def test_no_decided_people_give_no_figure():
    assert compliance_estimate(counts(0, 0)) is None
    assert compliance_fields({**counts(0, 0), "people": 3}) == dict.fromkeys(
        ("compliance", "compliance_low", "compliance_high", "observed_share"))


@pytest.mark.parametrize("given, message", [
    ({"with_mask": 1, "without_mask": 2}, "counts need every label of with_mask, without_mask, "
                                          "mask_weared_incorrect; 'mask_weared_incorrect' is missing"),
    (counts(-1, 2), "counts must be whole numbers >= 0"),
    (counts(1.5, 2), "counts must be whole numbers >= 0"),
])
def test_bad_counts_are_named(given, message):
    with pytest.raises(ValueError, match=message):
        compliance_estimate(given)


def test_bad_confusion_counts_are_named():
    with pytest.raises(ValueError, match=r"confusion counts must be a 3x3 array .* no empty row; got \[\[1.0, 0.0\]"):
        confusion_rates([[1, 0], [0, 1]])
    with pytest.raises(ValueError, match="no empty row"):
        confusion_rates([[1, 0, 0], [0, 0, 0], [0, 0, 1]])
    with pytest.raises(ValueError, match="people must be 'jeffreys' or 'resample'; got 'bayes'"):
        compliance_estimate(counts(1, 1), people="bayes")


def simulate(compliance, people, runs, seed):
    """Sites whose true share is `compliance`; each person's label drawn from the confusion rates."""
    rng = np.random.default_rng(seed)
    truth_shares = [compliance, (1 - compliance) * 0.85, (1 - compliance) * 0.15]
    estimates = []
    for _ in range(runs):
        truth = rng.choice(3, size=people, p=truth_shares)
        labels = [rng.choice(3, p=RATES[t]) for t in truth]
        estimates.append(compliance_estimate(dict(zip(CLASSES, np.bincount(labels, minlength=3).tolist())),
                                             confusion_counts=CV_COUNTS, draws=500))
    return estimates


@pytest.mark.parametrize("compliance, people", [(0.8, 100), (0.95, 20)])
def test_the_interval_covers_the_true_share_on_a_simulated_site(compliance, people):
    """100 seeded runs: a 95 % interval should miss about 5; 15 or more would say it is too narrow
    (at 0.95 coverage that happens with chance under 0.001). 20 people at 95 % is where a plain
    bootstrap of the people fails (about 0.7: benchmarks/compliance_coverage.py)."""
    estimates = simulate(compliance, people, runs=100, seed=24)
    covered = sum(e.low <= compliance <= e.high for e in estimates)
    assert covered >= 86, covered


def test_the_corrected_estimate_is_less_biased_than_the_plain_ratio():
    """At 50 % compliance with 500 people the plain ratio leans up by 1.5 to 2 points (wrongly worn
    masks and bare faces taken for masks); the corrected mean is within half a point."""
    estimates = simulate(0.5, 500, runs=100, seed=7)
    corrected = np.mean([e.share for e in estimates]) - 0.5
    plain = np.mean([e.observed for e in estimates]) - 0.5
    assert plain > 0.01 and abs(corrected) < 0.005 and abs(corrected) < abs(plain) / 2, (corrected, plain)


def test_the_shipped_counts_are_a_confusion_matrix_with_a_working_correction():
    rates = confusion_rates(CONFUSION_COUNTS)
    np.testing.assert_allclose(rates.sum(axis=1), 1.0)
    truth = np.array([0.7, 0.2, 0.1])
    np.testing.assert_allclose(corrected_shares(truth @ rates, rates)[0], truth, atol=1e-9)

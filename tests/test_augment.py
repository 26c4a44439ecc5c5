"""Training settings: class weights and the shares TrainConfig refuses."""

import numpy as np
import pytest

from maskwatch.training.classifier.train import TrainConfig, class_weights


def test_class_weights():
    counts = np.array([400.0, 100.0, 4.0])
    assert class_weights(counts, "none") is None
    inverse, sqrt = class_weights(counts, "inverse"), class_weights(counts, "sqrt")
    assert float(inverse.mean()) == pytest.approx(1.0) and float(sqrt.mean()) == pytest.approx(1.0)
    assert float(inverse[2] / inverse[0]) == pytest.approx(100.0) and float(sqrt[2] / sqrt[0]) == pytest.approx(10.0)


def test_shares_outside_zero_to_one_are_refused():
    with pytest.raises(ValueError, match="rendered"):
        TrainConfig(rendered=1.5)
    with pytest.raises(ValueError, match="balance"):
        TrainConfig(balance="drw")

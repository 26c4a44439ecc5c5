"""Training-time augmentation aimed at the rare class and at far cameras."""

import numpy as np
import pytest
import torch

from maskwatch.training.augment import degrade_resolution, mask_below_nose
from maskwatch.training.train import TrainConfig, class_weights


def test_mask_below_nose_keeps_the_bare_face_above_the_seam_and_the_mask_below():
    g = torch.Generator().manual_seed(0)
    bare = torch.full((4, 3, 96, 96), 200.0)
    masked = torch.zeros(4, 3, 96, 96)
    masked[:, :, 40:] = 50.0  # the "mask": the lower part of the masked face
    out = mask_below_nose(masked, bare, g)
    assert out.shape == bare.shape
    assert torch.all(out[:, :, :48] == 200)  # eyes and nose: always the bare face (seam >= 50 %)
    assert torch.all(out[:, :, 66:] == 50)  # mouth and chin: always the moved-down mask (seam < 65 %)
    assert torch.all(bare == 200) and torch.all(masked[:, :, 40:] == 50)  # inputs untouched


def test_degrade_resolution_blurs_only_the_chosen_share():
    g = torch.Generator().manual_seed(0)
    x = torch.zeros(64, 3, 32, 32)
    x[:, :, ::2] = 255.0  # stripes one pixel wide: a shrunken copy cannot keep them
    out = degrade_resolution(x, g, p=0.5)
    changed = (out != x).flatten(1).any(1)
    assert 16 < int(changed.sum()) < 48
    assert torch.equal(degrade_resolution(x, g, p=0.0), x)
    assert out.min() >= 0 and out.max() <= 255


def test_class_weights():
    counts = np.array([400.0, 100.0, 4.0])
    assert class_weights(counts, "none") is None
    inverse, sqrt = class_weights(counts, "inverse"), class_weights(counts, "sqrt")
    assert float(inverse.mean()) == pytest.approx(1.0) and float(sqrt.mean()) == pytest.approx(1.0)
    assert float(inverse[2] / inverse[0]) == pytest.approx(100.0) and float(sqrt[2] / sqrt[0]) == pytest.approx(10.0)


@pytest.mark.parametrize("field", ["degrade", "synthetic_incorrect"])
def test_shares_outside_zero_to_one_are_refused(field):
    with pytest.raises(ValueError, match=field):
        TrainConfig(**{field: 1.5})
    with pytest.raises(ValueError, match="balance"):
        TrainConfig(balance="focal")

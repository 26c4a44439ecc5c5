"""Losses for the rare class: the focal loss, and the auxiliary "nose visible" output that is
trained beside the classes and gone from what is served."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from typer.testing import CliRunner

from maskwatch import Classifier
from maskwatch.cli import app
from maskwatch.faces import CLASSES
from maskwatch.models import build_model
from maskwatch.training.export import export_onnx
from maskwatch.training.train import (ClassLoss, TrainConfig, drop_extra_outputs, load_model, nose_visible_loss,
                                      train_run)
from tests.conftest import prepare_sample


def test_the_nose_shows_on_bare_faces_and_wrongly_worn_masks_only():
    labels = torch.tensor([CLASSES.index(c) for c in ("with_mask", "without_mask", "mask_weared_incorrect")])
    sure = torch.tensor([-20.0, 20.0, 20.0])  # confident and right on all three
    assert nose_visible_loss(sure, labels).item() < 1e-6
    assert nose_visible_loss(-sure, labels).item() > 10  # confident and wrong on all three


@pytest.mark.parametrize("name", ["seed-cnn", "effnet-lite0"])
def test_dropping_the_extra_output_keeps_the_class_logits(name):
    model = build_model(name, channels=3, size=64, classes=len(CLASSES) + 1, pretrained=False).eval()
    x = torch.rand(4, 3, 64, 64) * 255
    with torch.no_grad():
        before = model(x)
        drop_extra_outputs(model, len(CLASSES))
        after = model(x)
    assert after.shape == (4, len(CLASSES))
    assert torch.allclose(after, before[:, :len(CLASSES)], atol=1e-6)  # a 3-row GEMM, not bitwise


def test_a_run_trained_with_the_nose_output_saves_and_serves_three_classes(tmp_path):
    work = prepare_sample(tmp_path / "work", size=64)
    cfg = TrainConfig(model="effnet-lite0", epochs=1, batch_size=16, augment=True, nose_aux=1.0)
    run = train_run(work, tmp_path / "run", cfg, progress=False)
    assert json.loads((run / "config.json").read_text())["train"]["nose_aux"] == 1.0
    model, _ = load_model(run)  # a three-class network: the state dict has no extra row
    assert model.backbone._fc.out_features == len(CLASSES)
    classifier = Classifier.load(export_onnx(run, tmp_path / "model.onnx"))
    crops = np.random.default_rng(0).integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    with torch.no_grad():
        logits = model(torch.from_numpy(crops.transpose(0, 3, 1, 2).copy()).float())
    expected = torch.softmax(logits / classifier.temperature, dim=1).numpy()
    assert np.allclose(classifier.probabilities(crops), expected, atol=1e-4)


def test_a_negative_nose_weight_is_refused_by_name(tmp_path):
    with pytest.raises(ValueError, match="nose_aux"):
        TrainConfig(nose_aux=-1.0)
    result = CliRunner().invoke(app, ["train", str(tmp_path), "--out", str(tmp_path / "run"), "--nose-aux", "-1"])
    assert result.exit_code != 0
    assert "nose_aux" in result.output


def test_the_focal_loss_is_weighted_cross_entropy_at_gamma_zero_and_favours_hard_faces():
    torch.manual_seed(0)
    logits, labels = torch.randn(32, 3) * 3, torch.randint(0, 3, (32,))
    weight = torch.tensor([0.5, 1.0, 1.5])
    assert torch.allclose(ClassLoss(weight)(logits, labels), F.cross_entropy(logits, labels, weight=weight))
    p_true = F.softmax(logits, 1).gather(1, labels[:, None])[:, 0]
    terms = -weight[labels] * (1 - p_true) ** 2 * p_true.log()
    assert torch.allclose(ClassLoss(weight, gamma=2.0)(logits, labels), terms.sum() / weight[labels].sum())
    # An easy face (p_true 0.95) loses far more of its weight than a hard one (p_true 0.3).
    easy, hard = torch.tensor([[3.0, 0.0, 0.0]]), torch.tensor([[0.0, 0.85, 0.0]])
    label = torch.tensor([0])
    ratio = lambda x: (ClassLoss(None, 2.0)(x, label) / ClassLoss(None)(x, label)).item()  # noqa: E731
    assert ratio(easy) < 0.01 < 0.4 < ratio(hard)
    with pytest.raises(ValueError, match="focal"):
        TrainConfig(focal=-1.0)

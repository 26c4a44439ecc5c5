"""The close-up model: large faces go to a network trained with rendered masks (issue 23)."""

import numpy as np
import pytest
from typer.testing import CliRunner

from maskwatch import Classifier, Detector
from maskwatch.classifier import SHIPPED_MODEL, CloseupRule, GateRule
from maskwatch.cli import app
from maskwatch.data.images import read_image
from maskwatch.training.classifier.evaluate import evaluate_run
from maskwatch.training.classifier.export import export_onnx
from maskwatch.training.classifier.train import TrainConfig, train_run

from tests.conftest import copies_of


@pytest.fixture(scope="module")
def models(prepared_sample, one_epoch_runs, tmp_path_factory):
    """A model, a close-up model and a gate, each one epoch on the bundled sample."""
    folder = tmp_path_factory.mktemp("closeup")
    runs = copies_of(one_epoch_runs, folder)  # the model (seed 0) and the gate, as test_gate's
    runs["closeup"] = train_run(prepared_sample, folder / "closeup", TrainConfig(epochs=1, seed=1), progress=False)
    for run in runs.values():
        evaluate_run(run)
    return {"model": export_onnx(runs["model"], folder / "model.onnx"),
            "closeup": export_onnx(runs["closeup"], folder / "closeup.onnx", closeup=CloseupRule(40)),
            "gate": export_onnx(runs["gate"], folder / "gate.onnx", gate=GateRule(0.34, 40)),
            "closeup_run": runs["closeup"]}


def test_large_faces_go_to_the_closeup_model_and_the_rest_as_before(models, sample_dir):
    routed = Classifier(models["model"], gate=models["gate"], closeup=models["closeup"])
    assert routed.closeup_rule == CloseupRule(40)
    before = Classifier(models["model"], gate=models["gate"])
    closeup_alone = Classifier(models["closeup"])
    photo = read_image(next(sample_dir.glob("images/*.png")))
    boxes = [(x, y, x + s, y + s) for s in (12, 30, 40, 41, 90) for x, y in ((0, 0), (50, 40), (100, 80))]
    large = np.array([b[2] - b[0] > 40 for b in boxes])
    got = np.array([f.probabilities for f in routed.predict_boxes(photo, boxes)])
    want = np.where(large[:, None], [f.probabilities for f in closeup_alone.predict_boxes(photo, boxes)],
                    [f.probabilities for f in before.predict_boxes(photo, boxes)])
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert not np.allclose(got[large], np.array([f.probabilities for f in before.predict_boxes(photo, boxes)])[large])
    # Exact crops take the same road as boxes in the photo.
    crops = [photo[y0:y1, x0:x1] for x0, y0, x1, y1 in boxes]
    np.testing.assert_allclose([p.probabilities for p in routed.predict(crops)], got, atol=1e-6)


def test_each_face_is_judged_by_the_doubt_threshold_of_the_model_that_answered(models, sample_dir):
    routed = Classifier(models["model"], closeup=models["closeup"])
    routed.doubt, routed.closeup.doubt = 0.0, 1.0  # the close-up model doubts everything, the other nothing
    photo = read_image(next(sample_dir.glob("images/*.png")))
    faces = routed.predict_boxes(photo, [(0, 0, 30, 30), (0, 0, 90, 90)])
    assert faces[0].label != "unassessable" and faces[1].label == "unassessable"
    assert faces[1].probabilities is not None  # the probabilities stay, for a track's vote


def test_a_model_without_a_rule_is_refused_as_a_closeup_model(models):
    with pytest.raises(ValueError, match="not a close-up model"):
        Classifier(models["model"], closeup=models["model"])
    with pytest.raises(FileNotFoundError, match="close-up model not found"):
        Classifier(models["model"], closeup=models["model"].parent / "missing.onnx")


def test_export_writes_the_rule_and_refuses_a_gate_that_is_also_a_closeup_model(models, tmp_path):
    runner = CliRunner()
    out = tmp_path / "c.onnx"
    done = runner.invoke(app, ["export", str(models["closeup_run"]), "--out", str(out), "--closeup-above", "64"])
    assert done.exit_code == 0, done.output
    assert Classifier(models["model"], closeup=out).closeup_info()["above"] == 64
    done = runner.invoke(app, ["export", str(models["closeup_run"]), "--out", str(tmp_path / "g.onnx"),
                               "--closeup-above", "64", "--gate-threshold", "0.9"])
    assert done.exit_code != 0 and "is one of a gate, a close-up model or a night model" in done.output
    assert not (tmp_path / "g.onnx").exists()


def test_the_shipped_classifier_comes_with_its_closeup_model_and_can_go_without(models):
    shipped = Classifier.load()
    assert shipped.closeup_rule == CloseupRule(64)
    assert shipped.closeup.info["model"] == shipped.info["model"] and shipped.closeup.spec == shipped.spec
    assert 0 < shipped.closeup.doubt < 1
    assert Classifier.load(SHIPPED_MODEL).closeup_rule == shipped.closeup_rule
    assert Classifier.load(closeup=False).closeup is None
    assert Detector.load().classifier.closeup_info()["above"] == 64
    assert Classifier.load(models["model"]).closeup is None
    with pytest.raises(ValueError, match="shipped model only"):
        Classifier.load(models["model"], closeup=True)

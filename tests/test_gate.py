"""The gate: a small network that answers easy small faces before the full classifier."""

import json
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from maskwatch import Classifier, Detector
from maskwatch.classifier import SHIPPED_MODEL, GateRule
from maskwatch.cli import app
from maskwatch.data.images import read_image
from maskwatch.faces import CLASSES
from maskwatch.training.classifier.evaluate import evaluate_run
from maskwatch.training.classifier.export import export_onnx
from maskwatch.training.classifier.gate import choose_threshold, cross_fitted_cascade

from tests.conftest import copies_of

WITH, WITHOUT, RARE = (CLASSES.index(c) for c in ("with_mask", "without_mask", "mask_weared_incorrect"))
# The shipped gate's rule, as the model card and BENCHMARKS.md (section 2, round eight) give it.
SHIPPED_RULE = GateRule(0.9, 64, ("with_mask", "without_mask"))


def one_hot_probs(labels, confidence):
    """Probabilities whose top class is `labels` at `confidence`, the rest shared."""
    p = np.full((len(labels), 3), 0.0)
    p[:] = ((1 - np.asarray(confidence)) / 2)[:, None]
    p[np.arange(len(labels)), labels] = confidence
    return p


def test_the_rule_accepts_only_small_faces_with_a_confident_common_answer():
    rule = GateRule(threshold=0.9, max_side=64)
    probs = one_hot_probs([WITH, WITHOUT, RARE, WITH, WITH], [0.95, 0.9, 0.99, 0.89, 0.99])
    sides = np.array([20, 64, 20, 20, 65])
    assert rule.accepts(probs, sides).tolist() == [True, True, False, False, False]


@pytest.mark.parametrize("kwargs, message", [
    ({"threshold": 0.0, "max_side": 64}, "threshold"),
    ({"threshold": 1.5, "max_side": 64}, "threshold"),
    ({"threshold": 0.9, "max_side": 0}, "max_side"),
    ({"threshold": 0.9, "max_side": 64, "answers": ("masked",)}, "answers"),
])
def test_bad_rules_are_refused_by_name(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GateRule(**kwargs)


def test_the_threshold_costs_no_error_and_no_wrongly_worn_mask():
    labels = np.array([WITH, WITH, WITHOUT, RARE, WITH])
    full = one_hot_probs(labels, [0.9] * 5)              # the full model is right everywhere
    # The gate is right, except: face 1 at 0.96 (a mistake) and the rare face 3 at 0.985.
    gate = one_hot_probs([WITH, WITHOUT, WITHOUT, WITH, WITH], [0.99, 0.96, 0.999, 0.985, 0.99])
    sides = np.array([10, 10, 10, 10, 100])
    assert choose_threshold(full, gate, labels, sides, max_side=64) == 0.99
    # A gate whose mistake is surer than the grid reaches is never let answer.
    gate[1] = one_hot_probs([WITHOUT], [0.9999])[0]
    assert choose_threshold(full, gate, labels, sides, max_side=64) is None


def test_the_threshold_stays_off_a_lucky_dip():
    labels = np.array([WITH, WITH, WITH])
    full = one_hot_probs([WITHOUT, WITH, WITH], [0.9] * 3)   # the full model is wrong on face 0
    # The gate fixes face 0 at 0.92 and breaks face 1 at 0.95: at 0.90 the two cancel out, at
    # 0.95 only the break is left, from 0.97 up the gate answers neither.
    gate = one_hot_probs([WITH, WITHOUT, WITH], [0.92, 0.95, 0.5])
    sides = np.array([10, 10, 10])
    assert choose_threshold(full, gate, labels, sides, max_side=64, grid=(0.9,)) == 0.9
    assert choose_threshold(full, gate, labels, sides, max_side=64, grid=(0.9, 0.95, 0.97, 0.99)) == 0.97


def test_cross_fitting_scores_each_fold_with_a_threshold_from_the_others():
    rng = np.random.default_rng(0)
    labels = rng.choice([WITH, WITHOUT, RARE], size=300, p=[0.7, 0.25, 0.05])
    fold_of = np.arange(300) % 3
    full_logits = np.eye(3)[labels] * 4 + rng.normal(0, 1, (300, 3))
    gate_logits = np.eye(3)[labels] * 6 + rng.normal(0, 1, (300, 3))
    gate_logits[fold_of == 0] = np.eye(3)[WITHOUT] * 20     # fold 0's gate is surely wrong...
    sides = np.full(300, 20)
    result = cross_fitted_cascade(full_logits, gate_logits, labels, fold_of, sides, max_side=64)
    # ...which only the other folds' thresholds see: fold 0 is scored with a threshold chosen
    # on folds 1 and 2, where the gate is good, so its mistakes show in the held-out figures.
    assert result["thresholds"][0] is not None
    assert result["accepted"][fold_of == 0].any()
    wrong = result["probabilities"][fold_of == 0].argmax(1) != labels[fold_of == 0]
    assert wrong.sum() > (result["full"][fold_of == 0].argmax(1) != labels[fold_of == 0]).sum()


def test_a_fixed_threshold_scores_every_fold_at_that_threshold():
    rng = np.random.default_rng(1)
    labels = rng.choice([WITH, WITHOUT, RARE], size=120, p=[0.7, 0.25, 0.05])
    fold_of = np.arange(120) % 3
    logits = np.eye(3)[labels] * 3 + rng.normal(0, 1, (120, 3))
    sides = np.where(np.arange(120) % 2, 20, 80)
    result = cross_fitted_cascade(logits, logits, labels, fold_of, sides, max_side=64, fixed=0.6)
    assert result["thresholds"] == [0.6, 0.6, 0.6]
    # Only small faces whose common-class probability reaches 0.6 (after each fold's temperature).
    assert result["accepted"].any() and not result["accepted"][sides > 64].any()
    assert (result["probabilities"][result["accepted"]].max(axis=1) >= 0.6).all()


def test_gate_cv_runs_as_a_module_of_the_package(tmp_path):
    """The shipped gate's threshold comes from `python -m maskwatch.training.classifier.gate_cv`."""
    rng = np.random.default_rng(2)
    labels = rng.choice([WITH, WITHOUT, RARE], size=120, p=[0.7, 0.25, 0.05])
    sides = np.where(np.arange(120) % 2, 20, 80)
    for name, scale in (("full", 3), ("gate", 5)):
        (tmp_path / name).mkdir()
        np.savez(tmp_path / name / "oof-logits.npz", logits=np.eye(3)[labels] * scale + rng.normal(0, 1, (120, 3)),
                 labels=labels, fold=np.arange(120) % 3, sides=sides)
    rows = ["image,width,height,clipped,xmin,ymin,xmax,ymax"] + [f"p.png,200,200,0,0,0,{s},{s}" for s in sides]
    (tmp_path / "faces.csv").write_text("\n".join(rows) + "\n")
    done = subprocess.run([sys.executable, "-m", "maskwatch.training.classifier.gate_cv", str(tmp_path / "full"),
                           str(tmp_path / "gate"), str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "60 of them <= 64 px" in done.stdout and "threshold to ship" in done.stdout


@pytest.fixture(scope="module")
def gate_and_model(one_epoch_runs, tmp_path_factory):
    folder = tmp_path_factory.mktemp("gate")
    runs = copies_of(one_epoch_runs, folder)  # seed-cnn and gate-cnn, one epoch, seed 0
    model_run, gate_run = runs["model"], runs["gate"]
    evaluate_run(model_run)
    with pytest.raises(FileNotFoundError, match="evaluate"):
        export_onnx(gate_run, folder / "gate.onnx", gate=GateRule(0.5, 40))
    assert not (folder / "gate.onnx").exists()
    evaluate_run(gate_run)
    return (export_onnx(gate_run, folder / "gate.onnx", gate=GateRule(0.34, 40)),
            export_onnx(model_run, folder / "model.onnx"))


def test_the_gate_answers_where_its_rule_accepts_and_the_full_model_elsewhere(gate_and_model, sample_dir):
    gate_path, model_path = gate_and_model
    cascade = Classifier(model_path, gate=gate_path)
    gate_alone, full_alone = Classifier(gate_path), Classifier(model_path)
    photo = read_image(next(sample_dir.glob("images/*.png")))
    boxes = [(x, y, x + s, y + s) for s in (12, 30, 40, 41, 90) for x, y in ((0, 0), (50, 40), (100, 80))]
    sides = np.array([b[2] - b[0] for b in boxes])
    gate_probs = np.array([f.probabilities for f in gate_alone.predict_boxes(photo, boxes)])
    full_probs = np.array([f.probabilities for f in full_alone.predict_boxes(photo, boxes)])
    # A threshold inside the small faces' range of gate confidence: some accepted, some not.
    confidence = gate_probs[sides <= 40].max(axis=1)
    assert confidence.min() < confidence.max()
    cascade.gate_rule = GateRule(float(np.median(confidence)), 40)
    accepted = cascade.gate_rule.accepts(gate_probs, sides)
    assert accepted.any() and not accepted[sides <= 40].all() and not accepted[sides > 40].any()
    got = np.array([f.probabilities for f in cascade.predict_boxes(photo, boxes)])
    np.testing.assert_allclose(got, np.where(accepted[:, None], gate_probs, full_probs), atol=1e-6)
    # Exact crops take the same road as boxes in the photo.
    crops = [photo[y0:y1, x0:x1] for x0, y0, x1, y1 in boxes]
    np.testing.assert_allclose([p.probabilities for p in cascade.predict(crops)], got, atol=1e-6)


def test_the_gate_network_exports_with_its_batch_norm_as_trained(gate_and_model, prepared_sample):
    import cv2
    import torch

    from maskwatch.data.prepare import read_faces_csv
    from maskwatch.training.classifier.train import load_model

    gate_path, _ = gate_and_model
    model, _ = load_model(gate_path.parent / "gate")
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(norms) == 3 and all(float(n.running_var.mean()) != 1.0 for n in norms)  # trained statistics
    gate = Classifier(gate_path)
    crops = np.stack([cv2.imread(str(prepared_sample / r["crop"])) for r in read_faces_csv(prepared_sample / "faces.csv")[:40]])
    with torch.no_grad():
        logits = model(torch.from_numpy(crops.transpose(0, 3, 1, 2)).float()) / gate.temperature
    np.testing.assert_allclose(gate.probabilities(crops), torch.softmax(logits, dim=1).numpy(), atol=1e-5)


def test_a_model_without_a_rule_is_refused_as_a_gate(gate_and_model):
    _, model_path = gate_and_model
    with pytest.raises(ValueError, match="not a gate"):
        Classifier(model_path, gate=model_path)


def test_the_shipped_classifier_comes_with_its_gate_and_can_go_without():
    shipped = Classifier.load()
    assert shipped.gate_rule == SHIPPED_RULE
    assert shipped.gate.info["model"] == "gate-cnn"
    assert shipped.gate.spec.size == 32 and shipped.spec.size == 96
    assert Classifier.load(SHIPPED_MODEL).gate_rule == shipped.gate_rule
    assert Classifier.load(gate=False).gate is None
    assert Detector.load().classifier.gate_info()["threshold"] == SHIPPED_RULE.threshold
    assert Detector.load(gate=False).classifier.gate_info() is None


def test_a_model_of_your_own_gets_no_gate_unless_given_one(gate_and_model):
    gate_path, model_path = gate_and_model
    assert Classifier.load(model_path).gate is None
    assert Classifier.load(model_path, gate=gate_path).gate_rule == GateRule(0.34, 40)
    assert Detector.load(gate=gate_path).classifier.gate_rule == GateRule(0.34, 40)
    with pytest.raises(ValueError, match="shipped model only"):
        Classifier.load(model_path, gate=True)
    with pytest.raises(FileNotFoundError, match="gate model not found"):
        Classifier.load(model_path, gate=gate_path.parent / "none.onnx")


def test_a_gate_with_a_broken_rule_is_refused_by_name(gate_and_model, tmp_path):
    import json

    import onnx

    gate_path, model_path = gate_and_model
    proto = onnx.load(str(gate_path))
    entry = next(e for e in proto.metadata_props if e.key == "maskwatch")
    info = json.loads(entry.value)
    info["gate"] = {"threshold": 0.9}                      # max_side missing
    entry.value = json.dumps(info)
    onnx.save(proto, str(tmp_path / "broken.onnx"))
    with pytest.raises(ValueError, match="bad gate rule"):
        Classifier(model_path, gate=tmp_path / "broken.onnx")


def test_the_command_line_and_the_service_can_turn_the_gate_off(sample_dir, tmp_path, monkeypatch):
    from fastapi.testclient import TestClient

    from maskwatch.serving.app import SETTINGS_ENV, app_from_env

    crop = tmp_path / "face.png"
    photo = read_image(next(sample_dir.glob("images/*.png")))
    import cv2
    cv2.imwrite(str(crop), photo[20:40, 30:50])
    runner = CliRunner()
    for flag, expected in (("--gate", Classifier.load()), ("--no-gate", Classifier.load(gate=False))):
        result = runner.invoke(app, ["classify", str(crop), "--json", flag])
        assert result.exit_code == 0, result.output
        got = json.loads(result.output)["probabilities"]
        want = expected.predict([read_image(crop)])[0].as_dict()["probabilities"]
        assert got == pytest.approx(want, abs=1e-6)
    for settings, gate in (("{}", SHIPPED_RULE.threshold), ('{"models": {"gate": false}}', None)):
        monkeypatch.setenv(SETTINGS_ENV, settings)
        health = TestClient(app_from_env()).get("/healthz").json()
        assert (health["gate"] or {}).get("threshold") == gate


@pytest.mark.parametrize("options, message", [(["--gate-threshold", "1.5"], "threshold"),
                                              (["--gate-max-side", "40"], "--gate-threshold too")])
def test_export_refuses_bad_gate_options_by_name(tmp_path, options, message):
    result = CliRunner().invoke(app, ["export", str(tmp_path / "no-run"), "--out", str(tmp_path / "g.onnx"),
                                      *options])
    assert result.exit_code != 0 and message in result.output
    assert not (tmp_path / "g.onnx").exists()

"""Distillation: a student learns the teachers' probabilities, fold K from fold K's teacher only."""

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from maskwatch.cli import app
from maskwatch.data.split import read_split_csv
from maskwatch.faces import CLASSES
from maskwatch.training.dataset import load_crop_dataset
from maskwatch.training.distill import distill_loss, resolve_teachers, teacher_probabilities
from maskwatch.training.train import TrainConfig, fit, load_model, predict_crops
from tests.conftest import prepare_sample


@pytest.fixture(scope="module")
def teacher_cv(tmp_path_factory):
    """A 3-fold CV of 48 px seed CNNs with its fold models kept: the teachers of 32 px students."""
    root = tmp_path_factory.mktemp("distill")
    work48 = prepare_sample(root / "work48", size=48)
    out = root / "teachers"
    result = CliRunner().invoke(app, ["cv", str(work48), "--out", str(out), "--folds", "3", "--model", "seed-cnn",
                                      "--epochs", "2", "--save-models", "--quiet"])
    assert result.exit_code == 0, result.output
    return out


def test_the_distillation_term_is_the_tempered_kl_and_vanishes_when_student_matches_teacher():
    torch.manual_seed(0)
    student, teacher_logits = torch.randn(8, 3), torch.randn(8, 3)
    t = 2.0
    teacher = torch.softmax(teacher_logits / t, dim=1)
    log_q = torch.log_softmax(student / t, dim=1)
    by_hand = (teacher * (teacher.log() - log_q)).sum(1).mean() * t * t
    assert torch.allclose(distill_loss(student, teacher, t), by_hand)
    assert distill_loss(teacher_logits, teacher, t).abs().item() < 1e-6


def test_fold_k_students_learn_from_fold_k_teachers_on_the_teachers_own_crops(teacher_cv, prepared_sample, tmp_path):
    out = tmp_path / "student"
    result = CliRunner().invoke(app, ["cv", str(prepared_sample), "--out", str(out), "--folds", "3",
                                      "--model", "seed-cnn", "--epochs", "1", "--teacher", str(teacher_cv),
                                      "--quiet"])
    assert result.exit_code == 0, result.output
    train = json.loads((out / "cv.json").read_text())["train"]
    assert train["teachers"] == [str(teacher_cv)] and train["distill"] == 0.5  # the default weight
    # The teacher's probabilities for fold 1 come from its fold-1 model at 48 px, not from the
    # student's 32 px crops.
    data = load_crop_dataset(prepared_sample)
    assignment, _, _ = read_split_csv(teacher_cv / "fold-1" / "split.csv")
    held_out = [f for f, side in assignment.items() if side == "val"]
    train_ids = [f for f in data.face_ids if f not in set(held_out)]
    probs = teacher_probabilities(resolve_teachers([teacher_cv], fold=1), train_ids, held_out, temperature=2.0)
    model, config = load_model(teacher_cv / "fold-1")
    work48 = load_crop_dataset(config["work"])
    rows = [work48.face_ids.index(f) for f in train_ids]
    from maskwatch.data.crops import CropSpec

    logits = predict_crops(model, work48.images[rows], work48.long_sides[rows], CropSpec(**config["crop"]), flip=True)
    assert np.allclose(probs, torch.softmax(torch.from_numpy(logits) / 2.0, dim=1).numpy(), atol=1e-6)


def test_a_teacher_that_trained_on_held_out_faces_is_refused_by_name_before_training(teacher_cv, prepared_sample,
                                                                                     tmp_path):
    # fold-2's model trained on fold 1's held-out faces: it cannot teach fold 1.
    data = load_crop_dataset(prepared_sample)
    from maskwatch.training.crossval import cv_folds

    train_idx, val_idx = cv_folds(data, 3, 0)[0]
    cfg = TrainConfig(model="seed-cnn", epochs=1, distill=0.5, teachers=(str(teacher_cv),))
    with pytest.raises(ValueError, match=r"fold-2 trained on \d+ of the \d+ held-out faces"):
        fit(data, train_idx, val_idx, cfg, progress=False, teachers=resolve_teachers(cfg.teachers, fold=2))
    # `train` on the sample's own split with a CV folder's fold model as teacher: refused, nothing written.
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["train", str(prepared_sample), "--out", str(out), "--model", "seed-cnn",
                                      "--epochs", "1", "--teacher", str(teacher_cv / "fold-1"), "--quiet"])
    assert result.exit_code != 0 and "held-out faces" in result.output
    assert not out.exists()


def test_distillation_settings_are_checked_by_name(tmp_path, teacher_cv, prepared_sample):
    with pytest.raises(ValueError, match="teachers"):
        TrainConfig(distill=0.5)
    with pytest.raises(ValueError, match="distill must be a share"):
        TrainConfig(distill=1.5, teachers=("t",))
    with pytest.raises(ValueError, match="distill_temperature"):
        TrainConfig(distill=0.5, teachers=("t",), distill_temperature=0.0)
    result = CliRunner().invoke(app, ["cv", str(prepared_sample), "--out", str(tmp_path / "cv"), "--folds", "3",
                                      "--model", "seed-cnn", "--teacher", str(tmp_path / "nowhere"), "--quiet"])
    assert result.exit_code != 0 and "nowhere has no fold-1 run" in result.output
    assert not (tmp_path / "cv" / "cv.json").exists()


def test_with_full_weight_on_the_teacher_the_labels_no_longer_matter(teacher_cv, prepared_sample):
    data = load_crop_dataset(prepared_sample)
    from maskwatch.training.crossval import cv_folds

    train_idx, val_idx = cv_folds(data, 3, 0)[0]
    cfg = TrainConfig(model="seed-cnn", epochs=1, seed=3, distill=1.0, teachers=(str(teacher_cv),))
    teachers = resolve_teachers(cfg.teachers, fold=1)
    taught = fit(data, train_idx, val_idx, cfg, progress=False, teachers=teachers).model
    # Same faces, labels shuffled among the training faces (same class counts, so same weights).
    labels = data.labels.copy()
    labels[train_idx] = np.random.default_rng(0).permutation(labels[train_idx])
    shuffled = type(data)(**{**data.__dict__, "labels": labels})
    again = fit(shuffled, train_idx, val_idx, cfg, progress=False, teachers=teachers).model
    plain = fit(data, train_idx, val_idx, TrainConfig(model="seed-cnn", epochs=1, seed=3), progress=False).model
    x = torch.from_numpy(data.images[val_idx].transpose(0, 3, 1, 2).copy()).float()
    with torch.no_grad():
        a, b, c = taught.eval()(x), again.eval()(x), plain.eval()(x)
    assert torch.equal(a, b)  # only the teacher's probabilities were learned
    assert not torch.allclose(a, c)  # and they were learned: unlike training on the labels
    assert a.shape[1] == len(CLASSES)

import csv
import json

import numpy as np
import pytest

from maskwatch.training.classifier.evaluate import evaluate_run
from maskwatch.training.classifier.train import TrainConfig, load_model, train_run


# Epochs of the shared run (8 before): with seed 1 the training loss is below epoch 1's from epoch
# 4 on, 7% below at 5; the same-seed check needs epochs whose draws follow the first's.
EPOCHS = 5


@pytest.fixture(scope="module")
def run(prepared_sample, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "seed"
    return train_run(prepared_sample, out, TrainConfig(epochs=EPOCHS, seed=1), progress=False)


def test_run_folder_holds_weights_config_history_and_curves(run):
    for name in ("model.safetensors", "config.json", "history.csv", "curves.png", "split.csv"):
        assert (run / name).is_file(), name
    config = json.loads((run / "config.json").read_text())
    assert config["model"] == "seed-cnn"
    assert config["crop"] == {"size": 32, "margin": 0.0, "grey": False}
    assert config["split"]["by"] == "photo"
    with open(run / "history.csv") as fh:
        history = list(csv.DictReader(fh))
    assert [int(h["epoch"]) for h in history] == list(range(1, EPOCHS + 1))
    assert all(0 <= float(h["val_accuracy"]) <= 1 for h in history)
    assert float(history[-1]["train_loss"]) < float(history[0]["train_loss"])
    assert (run / "curves.png").read_bytes()[:4] == b"\x89PNG"


def test_same_seed_same_weights(prepared_sample, run, tmp_path):
    again = train_run(prepared_sample, tmp_path / "again", TrainConfig(epochs=EPOCHS, seed=1), progress=False)
    a, _ = load_model(run)
    b, _ = load_model(again)
    for (name, ta), tb in zip(a.state_dict().items(), b.state_dict().values()):
        assert np.array_equal(ta.numpy(), tb.numpy()), name


def test_a_stopped_run_resumes_from_its_last_epoch_to_the_same_weights(prepared_sample, tmp_path, monkeypatch):
    """Ctrl-C during `train` kept nothing: a 27-minute run began again. Each epoch is kept beside the
    run folder, and the same call goes on from it to the weights an unbroken run gives."""
    from maskwatch.training.classifier import train as train_module

    cfg = TrainConfig(epochs=2, seed=3, augment=True, schedule="onecycle")  # stopped in its last epoch
    whole = train_run(prepared_sample, tmp_path / "whole", cfg, progress=False)
    scored = train_module.predict_logits
    calls = []

    def stop_in_epoch_two(*args, **kwargs):  # the validation after epoch 2: epoch 1's checkpoint stays
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return scored(*args, **kwargs)

    monkeypatch.setattr(train_module, "predict_logits", stop_in_epoch_two)
    out = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        train_run(prepared_sample, out, cfg, progress=False)
    assert not out.exists() and train_module.checkpoint_path(out).is_file()
    monkeypatch.setattr(train_module, "predict_logits", scored)
    train_run(prepared_sample, out, cfg, progress=False)
    assert not train_module.checkpoint_path(out).exists()
    a, _ = load_model(whole)
    b, _ = load_model(out)
    for (name, ta), tb in zip(a.state_dict().items(), b.state_dict().values()):
        assert np.array_equal(ta.numpy(), tb.numpy()), name
    with open(out / "history.csv") as fh:
        assert [int(row["epoch"]) for row in csv.DictReader(fh)] == [1, 2]
    # A checkpoint of these faces and settings whose weights are not this network's (a crash
    # mid-write of another version) is set aside: the run starts afresh, to the same weights.
    import torch

    monkeypatch.setattr(train_module, "predict_logits", stop_in_epoch_two)
    calls.clear()
    again = tmp_path / "again"
    with pytest.raises(KeyboardInterrupt):
        train_run(prepared_sample, again, cfg, progress=False)
    monkeypatch.setattr(train_module, "predict_logits", scored)
    state = torch.load(train_module.checkpoint_path(again), weights_only=True)
    torch.save(state | {"model": {"nothing": torch.zeros(1)}}, train_module.checkpoint_path(again))
    c, _ = load_model(train_run(prepared_sample, again, cfg, progress=False))
    for (name, ta), tc in zip(a.state_dict().items(), c.state_dict().values()):
        assert np.array_equal(ta.numpy(), tc.numpy()), name
    # A run folder that cannot be written at the end (a full disk) kept only the epoch before the
    # last, to be trained again: the last is kept too, and the same call writes the run from it.
    full = tmp_path / "full"
    written = train_module.write_run

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(train_module, "write_run", disk_full)
    with pytest.raises(OSError):
        train_run(prepared_sample, full, cfg, progress=False)
    monkeypatch.setattr(train_module, "write_run", written)
    monkeypatch.setattr(train_module, "predict_logits", stop_in_epoch_two)  # no epoch may run again
    calls.clear()
    calls.extend([1, 1])  # past the second call: any validation now would count as a third
    d, _ = load_model(train_run(prepared_sample, full, cfg, progress=False))
    assert len(calls) == 2
    for (name, ta), td in zip(a.state_dict().items(), d.state_dict().values()):
        assert np.array_equal(ta.numpy(), td.numpy()), name


def test_evaluate_scores_validation_faces_only(run):
    metrics = evaluate_run(run)
    saved = json.loads((run / "metrics.json").read_text())
    assert saved["accuracy"] == pytest.approx(metrics["accuracy"])
    assert saved["evaluated_on"] == "validation"
    matrix = np.array(saved["confusion_matrix"]["rows_true_cols_predicted"])
    assert matrix.sum() == saved["split"]["val"]
    assert np.trace(matrix) / matrix.sum() == pytest.approx(saved["accuracy"])
    supports = [saved["per_class"][c]["support"] for c in saved["confusion_matrix"]["labels"]]
    assert supports == matrix.sum(axis=1).tolist()
    assert 0 <= saved["macro_f1"] <= 1
    assert (run / "confusion.png").is_file()
    # Recall per class and size bin adds up to the per-class recall.
    for c in saved["confusion_matrix"]["labels"]:
        cells = [v for v in saved["recall_by_size"][c].values() if v["faces"]]
        assert sum(v["faces"] for v in cells) == saved["per_class"][c]["support"]
        if cells:
            hits = sum(v["recall"] * v["faces"] for v in cells)
            assert hits / saved["per_class"][c]["support"] == pytest.approx(saved["per_class"][c]["recall"])


def test_train_refuses_a_split_of_other_faces(prepared_sample, tmp_path):
    (tmp_path / "split.csv").write_text("face_id,split,by,seed\nnobody-000,val,photo,0\n")
    with pytest.raises(ValueError, match="not in the split"):
        train_run(prepared_sample, tmp_path / "r", TrainConfig(epochs=1), split_csv=tmp_path / "split.csv",
                  progress=False)
    assert not (tmp_path / "r").exists()


def test_a_split_file_that_does_not_say_how_it_was_made_stores_no_seed(prepared_sample, tmp_path):
    """Its seed of None was stored and read back as the seed: evaluate-detection then split at random."""
    with open(prepared_sample / "split.csv") as fh:
        rows = list(csv.DictReader(fh))
    (tmp_path / "split.csv").write_text("face_id,split\n" + "".join(f"{r['face_id']},{r['split']}\n" for r in rows))
    run = train_run(prepared_sample, tmp_path / "r", TrainConfig(epochs=1), split_csv=tmp_path / "split.csv",
                    progress=False)
    split = json.loads((run / "config.json").read_text())["split"]
    assert "seed" not in split and "by" not in split and split["train"] + split["val"] == len(rows)


@pytest.mark.parametrize("option, value, message", [
    ("--batch-size", "0", "must be at least 1, got 0"),  # was a ZeroDivisionError traceback
    ("--lr", "-1", "must be more than 0 and weight_decay 0 or more, got -1.0 and 0.0001"),
    ("--epochs", "0", "must be at least 1, got 0"),
    ("--rendered", "2", "must be a share between 0 and 1, got 2.0"),
    ("--model", "resnet", "unknown model 'resnet'; choose one of seed-cnn, effnet-lite0, gate-cnn, effnet-lite1"),
])
def test_train_refuses_a_setting_out_of_range_by_name(prepared_sample, tmp_path, option, value, message):
    """A usage error, as click's own: exit 2 and the option as typed (was exit 1, 'batch_size')."""
    from typer.testing import CliRunner

    from maskwatch.cli import app
    from tests.conftest import usage_error

    result = CliRunner().invoke(app, ["train", str(prepared_sample), "--out", str(tmp_path / "r"), option, value])
    assert result.exit_code == 2, result.output
    assert usage_error(result.output) == f"Invalid value for '{option}': {message}"
    assert not (tmp_path / "r").exists()


def test_cv_needs_two_folds(prepared_sample, tmp_path):
    from typer.testing import CliRunner

    from maskwatch.cli import app

    result = CliRunner().invoke(app, ["cv", str(prepared_sample), "--out", str(tmp_path / "cv"), "--folds", "1"])
    assert result.exit_code == 2 and "Invalid value for '--folds': must be at least 2" in result.output, result.output
    assert not (tmp_path / "cv").exists()


def test_the_larger_backbone_trains_and_reloads_as_trained(prepared_sample, tmp_path):
    import torch

    from maskwatch.models.registry import build_model

    # Batches of 32 (the default), not 16: on the CPU its time goes per step, not per face.
    run = train_run(prepared_sample, tmp_path / "lite1", TrainConfig(model="effnet-lite1", epochs=1), progress=False)
    model, config = load_model(run)
    assert config["model"] == "effnet-lite1"
    pixels = torch.rand(2, 3, 32, 32) * 255
    fresh = build_model("effnet-lite1", channels=3, size=32, pretrained=False).eval()
    with torch.no_grad():
        assert model(pixels).shape == (2, 3)
        assert not torch.allclose(model(pixels), fresh(pixels))  # the trained weights, not a fresh net


def test_a_class_with_no_faces_has_no_recall_and_leaves_macro_f1():
    """A two-class dataset showed the third at recall 0.0, macro-F1 capped at 2/3."""
    from maskwatch.training.classifier.crossval import summarise
    from maskwatch.training.classifier.evaluate import classification_metrics

    metrics = classification_metrics(np.array([0, 0, 1, 1]), np.array([0, 0, 1, 1]))
    assert metrics["macro_f1"] == 1.0 and metrics["per_class"]["mask_weared_incorrect"]["recall"] is None
    assert metrics["per_class"]["without_mask"]["recall"] == 1.0
    folds = [{"accuracy": 1.0, "macro_f1": 1.0, "train_seconds": 1.0,
              "recall": {"with_mask": 1.0, "without_mask": 0.5, "mask_weared_incorrect": rare}} for rare in (None, 0.5)]
    recall = summarise(folds)["recall"]
    assert recall["mask_weared_incorrect"] == {"mean": 0.5, "std": 0.0}  # over the fold that has it

"""`train --init`: a site's own photos trained on from the shipped classifier (or a run), not ImageNet."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from maskwatch.cli import app
from maskwatch.classifier import SHIPPED_GATE, SHIPPED_MODEL
from maskwatch.data.crops import CropSpec
from maskwatch.models import build_model
from maskwatch.training.classifier.initial import load_initial_weights
from maskwatch.training.classifier.train import load_model

from .conftest import prepare_sample


@pytest.fixture(scope="module")
def work96(tmp_path_factory):
    """The sample as the shipped classifier's crops: 96 px colour, exactly the box."""
    return prepare_sample(tmp_path_factory.mktemp("work96") / "sample", size=96)


def _onnx_logits(path, pixels: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: pixels})[0]


def test_train_init_shipped_starts_from_the_shipped_classifier_and_keeps_its_statistics(work96, tmp_path):
    run = tmp_path / "run"
    # A learning rate too small to move the weights: what comes out is what training started from.
    result = CliRunner().invoke(app, ["train", str(work96), "--out", str(run), "--init", "shipped", "--epochs", "1",
                                      "--lr", "1e-12", "--quiet"])
    assert result.exit_code == 0, result.output
    assert json.loads((run / "config.json").read_text())["train"]["init"] == str(SHIPPED_MODEL)
    model, _ = load_model(run)
    pixels = np.random.default_rng(1).uniform(0, 255, (3, 3, 96, 96)).astype(np.float32)
    with torch.no_grad():
        got = model(torch.from_numpy(pixels)).numpy()
    np.testing.assert_allclose(got, _onnx_logits(SHIPPED_MODEL, pixels), rtol=1e-3, atol=1e-3)
    # The normalisations kept the statistics they started with (batches of a few faces would rewrite them).
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and all(float(m.running_mean.abs().max()) == 0.0 for m in norms)


def test_a_gate_unfolds_into_its_normalised_network():
    model = build_model("gate-cnn", channels=3, size=32, pretrained=False)
    load_initial_weights(model, SHIPPED_GATE, "gate-cnn", CropSpec(size=32))
    pixels = np.random.default_rng(2).uniform(0, 255, (4, 3, 32, 32)).astype(np.float32)
    with torch.no_grad():
        got = model.eval()(torch.from_numpy(pixels)).numpy()
    np.testing.assert_allclose(got, _onnx_logits(SHIPPED_GATE, pixels), rtol=1e-3, atol=1e-3)


def test_init_from_a_run_folder_takes_its_weights(one_epoch_runs):
    model = build_model("seed-cnn", channels=3, size=32)
    load_initial_weights(model, one_epoch_runs["model"], "seed-cnn", CropSpec(size=32))
    trained, _ = load_model(one_epoch_runs["model"])
    for (name, got), want in zip(model.state_dict().items(), trained.state_dict().values()):
        assert torch.equal(got, want), name


@pytest.mark.parametrize("args, code, message", [
    (["--model", "seed-cnn", "--init", "shipped"], 1, "its network is effnet-lite0, and this training's is seed-cnn; "
                                                      "train with --model effnet-lite0"),
    (["--init", "shipped"], 1, "trained on 96 px colour crops with margin 0, and the work folder holds 32 px colour "
                               "crops with margin 0; prepare with --size 96 --margin 0 --colour"),
    (["--init", "no-such-run"], 2, "no such file or folder"),
])
def test_init_of_another_network_or_other_crops_is_refused_saying_what_to_change(prepared_sample, tmp_path, args,
                                                                                  code, message):
    result = CliRunner().invoke(app, ["train", str(prepared_sample), "--out", str(tmp_path / "run"), "--epochs", "1",
                                      "--quiet", *args])
    assert result.exit_code == code, result.output
    assert message in " ".join(result.output.split()), result.output
    assert not (tmp_path / "run").exists()


def test_cv_init_trains_every_fold_from_it(work96, prepared_sample, tmp_path):
    result = CliRunner().invoke(app, ["cv", str(work96), "--out", str(tmp_path / "cv"), "--folds", "2", "--epochs", "1",
                                      "--init", "shipped", "--quiet"])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "cv" / "cv.json").read_text())["train"]["init"] == str(SHIPPED_MODEL)
    other = CliRunner().invoke(app, ["cv", str(prepared_sample), "--out", str(tmp_path / "cv32"), "--folds", "2",
                                     "--epochs", "1", "--init", "shipped", "--quiet"])
    assert other.exit_code == 1 and "prepare with --size 96 --margin 0 --colour" in other.output, other.output


def test_a_checkpoint_started_from_other_weights_under_the_same_name_is_not_resumed(prepared_sample, one_epoch_runs,
                                                                                     tmp_path):
    """`train --init store.onnx` stopped, store.onnx exported again, the same command run: it went
    on from the checkpoint of the old file's start (the key held the path alone)."""
    import shutil

    from maskwatch.training.classifier.dataset import load_crop_dataset
    from maskwatch.training.classifier.train import TrainConfig, _checkpoint_key

    run = Path(shutil.copytree(one_epoch_runs["model"], tmp_path / "run"))
    data = load_crop_dataset(prepared_sample)
    idx = np.arange(len(data.face_ids))
    cfg = TrainConfig(epochs=1, init=str(run))
    before = _checkpoint_key(data, idx[:10], idx[10:], cfg)
    assert _checkpoint_key(data, idx[:10], idx[10:], cfg) == before
    (run / "model.safetensors").write_bytes((run / "model.safetensors").read_bytes() + b" ")
    assert _checkpoint_key(data, idx[:10], idx[10:], cfg) != before


def test_an_init_whose_classes_differ_in_order_or_name_is_refused(one_epoch_runs, tmp_path):
    """A model of one's own with its classes in another order started each class from another
    class's weights in silence (the logits check compares the file with itself)."""
    import shutil

    import onnx

    from maskwatch.classifier import META_KEY

    proto = onnx.load(str(SHIPPED_MODEL))
    for prop in proto.metadata_props:
        if prop.key == META_KEY:
            info = json.loads(prop.value)
            prop.value = json.dumps(info | {"classes": ["without_mask", "with_mask", "mask_weared_incorrect"]})
    onnx.save(proto, str(tmp_path / "swapped.onnx"))
    model = build_model("effnet-lite0", channels=3, size=96, pretrained=False)
    with pytest.raises(ValueError, match=r"swapped.onnx: its classes are \['without_mask', 'with_mask', "):
        load_initial_weights(model, tmp_path / "swapped.onnx", "effnet-lite0", CropSpec(size=96))
    run = Path(shutil.copytree(one_epoch_runs["model"], tmp_path / "run"))
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps(config | {"classes": ["mask", "no_mask", "incorrect"]}))
    with pytest.raises(ValueError, match=r"its classes are \['mask', 'no_mask', 'incorrect'\], and this training's"):
        load_initial_weights(build_model("seed-cnn", channels=3, size=32), run, "seed-cnn", CropSpec(size=32))


def test_init_without_lr_trains_at_a_tenth_of_the_recipes_rate(work96, tmp_path):
    """The recipe's 2e-3 is for a start from ImageNet's weights: from the shipped classifier, 12
    epochs on 24 photos ended calling every face with_mask (two seeds); --lr given stays as given."""
    from maskwatch.training.classifier.recipes import recipe

    run = tmp_path / "run"
    result = CliRunner().invoke(app, ["train", str(work96), "--out", str(run), "--init", "shipped", "--epochs", "1",
                                      "--quiet"])
    assert result.exit_code == 0, result.output
    assert json.loads((run / "config.json").read_text())["train"]["lr"] == pytest.approx(recipe("effnet-lite0")[0].lr / 10)

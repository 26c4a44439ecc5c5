"""Small faces at a smaller input: the same routing in training, evaluation and serving."""

import json

import cv2
import numpy as np
import pytest
import torch

from maskwatch import Classifier
from maskwatch.data.crops import CropSpec, crop_face, fit_input
from maskwatch.training.evaluate import evaluate_run
from maskwatch.training.export import export_onnx
from maskwatch.training.train import TrainConfig, load_model, train_run
from tests.conftest import prepare_sample


def test_a_face_that_fits_the_small_side_goes_small_and_others_stay_full():
    spec = CropSpec(size=96, small_size=64)
    assert spec.input_size(64, 40) == 64
    assert spec.input_size(65, 20) == 96  # the long side decides: a tall box keeps its detail
    assert CropSpec(size=96, margin=0.25, small_size=64).input_size(50, 50) == 96  # 75 px with context
    assert CropSpec(size=96).input_size(10, 10) == 96  # off by default
    crop = np.zeros((96, 96, 3), np.uint8)
    assert fit_input(crop, 64).shape == (64, 64, 3)
    assert fit_input(crop[..., :1], 64).shape == (64, 64, 1)
    with pytest.raises(ValueError, match="small_size"):
        CropSpec(size=64, small_size=64)


@pytest.fixture(scope="module")
def sample_64(tmp_path_factory):
    return prepare_sample(tmp_path_factory.mktemp("work64") / "sample", size=64)


@pytest.fixture(scope="module")
def small_run(sample_64, tmp_path_factory):
    folder = tmp_path_factory.mktemp("small")
    cfg = TrainConfig(model="effnet-lite0", epochs=1, batch_size=16, augment=True, small_input=32)
    run = train_run(sample_64, folder / "run", cfg, progress=False)
    evaluate_run(run)
    return run, export_onnx(run, folder / "model.onnx")


def test_the_served_model_routes_small_faces_as_training_and_evaluation_did(small_run, sample_dir):
    run, onnx_path = small_run
    config = json.loads((run / "config.json").read_text())
    assert config["crop"] == {"size": 64, "margin": 0.0, "grey": False, "small_size": 32}
    assert json.loads((run / "metrics.json").read_text())["crop"]["small_size"] == 32
    classifier = Classifier.load(onnx_path)
    assert classifier.spec.small_size == 32
    model, _ = load_model(run)
    photo = cv2.imread(str(next(sample_dir.glob("images/*.png"))))
    small_box, large_box = (10, 20, 30, 44), (40, 10, 100, 80)  # 24 px and 70 px long sides
    faces = classifier.predict_boxes(photo, [small_box, large_box])

    def torch_probabilities(box, side):
        crop = fit_input(crop_face(photo, box, classifier.spec), side)
        with torch.no_grad():
            logits = model(torch.from_numpy(crop.transpose(2, 0, 1)[None].copy()).float())
        return torch.softmax(logits / classifier.temperature, dim=1)[0].numpy()

    np.testing.assert_allclose(faces[0].probabilities, torch_probabilities(small_box, 32), atol=1e-5)
    np.testing.assert_allclose(faces[1].probabilities, torch_probabilities(large_box, 64), atol=1e-5)
    # The small face really went through at 32 px: at 64 px the same net answers otherwise.
    assert not np.allclose(faces[0].probabilities, torch_probabilities(small_box, 64), atol=1e-4)
    direct = classifier.predict([photo[20:44, 10:30]])[0]
    np.testing.assert_allclose(direct.probabilities, faces[0].probabilities, atol=1e-6)


def test_a_network_with_a_fixed_size_head_is_refused_before_training(sample_64, tmp_path):
    with pytest.raises(ValueError, match="cannot take 32 px inputs"):
        train_run(sample_64, tmp_path / "r", TrainConfig(model="seed-cnn", epochs=1, small_input=32),
                  progress=False)
    assert not (tmp_path / "r").exists()


def test_each_batch_holds_one_input_side_and_every_face_once():
    from maskwatch.training.train import epoch_batches

    small = np.arange(130) % 3 != 0  # 86 small faces, 44 large
    small[:2] = True  # 88 small (88 % 29 == 1: a trailing batch of one is merged), 42 large
    batches = epoch_batches(np.random.default_rng(0), len(small), 29, small)
    assert sorted(np.concatenate(batches).tolist()) == list(range(130))
    assert all(small[b].all() or not small[b].any() for b in batches)
    assert min(len(b) for b in batches) > 1
    assert len(batches) == 3 + 2  # 88 small in 3 (the lone 88th joins the last), 42 large in 2

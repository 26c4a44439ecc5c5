"""The night model: every face of a grey (infrared) frame goes to a network trained on grey crops."""

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from maskwatch import Classifier, Detector
from maskwatch.classifier import SHIPPED_MODEL, CloseupRule, GateRule, NightRule
from maskwatch.cli import app
from maskwatch.data.images import read_image
from maskwatch.data.photos import annotated_faces, annotated_photos
from maskwatch.training.classifier.evaluate import evaluate_run
from maskwatch.training.classifier.export import export_onnx
from maskwatch.training.classifier.train import TrainConfig, train_run

from tests.conftest import copies_of


def grey(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)


@pytest.fixture(scope="module")
def models(prepared_sample, one_epoch_runs, tmp_path_factory):
    """A model, a gate, a close-up model and a night model, each one epoch on the bundled sample."""
    folder = tmp_path_factory.mktemp("night")
    runs = copies_of(one_epoch_runs, folder)  # the model (seed 0) and the gate, as test_gate's
    runs["night"] = train_run(prepared_sample, folder / "night", TrainConfig(epochs=1, seed=2, augment=True, night=True),
                             progress=False)
    for run in runs.values():
        evaluate_run(run)
    return {"model": export_onnx(runs["model"], folder / "model.onnx"),
            "gate": export_onnx(runs["gate"], folder / "gate.onnx", gate=GateRule(0.34, 40)),
            "closeup": export_onnx(runs["model"], folder / "closeup.onnx", closeup=CloseupRule(40)),
            "night": export_onnx(runs["night"], folder / "night.onnx", night=NightRule()),
            "night_run": runs["night"], "model_run": runs["model"]}


@pytest.fixture(scope="module")
def photo(sample_dir):
    return read_image(sorted(sample_dir.glob("images/*.png"))[0])


BOXES = [(x, y, x + s, y + s) for s in (12, 30, 41, 90) for x, y in ((0, 0), (50, 40), (100, 80))]


def test_every_face_of_a_grey_frame_goes_to_the_night_model_and_a_colour_frame_never(models, photo):
    routed = Classifier(models["model"], gate=models["gate"], closeup=models["closeup"], night=models["night"])
    assert routed.night_rule == NightRule()
    day = Classifier(models["model"], gate=models["gate"], closeup=models["closeup"])
    night_alone = Classifier(models["night"])
    probabilities = lambda model, image: np.array([f.probabilities for f in model.predict_boxes(image, BOXES)])
    # Colour: the same answers as without a night model, to the digit.
    np.testing.assert_array_equal(probabilities(routed, photo), probabilities(day, photo))
    # Grey: every face, small and large, answered by the night model alone, not the gate or the close-up model.
    at_night = probabilities(routed, grey(photo))
    np.testing.assert_allclose(at_night, probabilities(night_alone, grey(photo)), atol=1e-6)
    assert not np.allclose(at_night, probabilities(day, grey(photo)))


def test_each_exact_crop_is_told_by_its_own_colour(models, sample_dir):
    routed = Classifier(models["model"], gate=models["gate"], closeup=models["closeup"], night=models["night"])
    day, night_alone = Classifier(models["model"], gate=models["gate"], closeup=models["closeup"]), Classifier(models["night"])
    crops = []
    for ann in annotated_photos(sample_dir)[:4]:
        photo = read_image(sample_dir / "images" / ann.filename)
        crops += [photo[int(f.box[1]):int(f.box[3]), int(f.box[0]):int(f.box[2])] for f in annotated_faces(ann)]
    grey_crops = [grey(c) for c in crops]
    got = np.array([p.probabilities for p in routed.predict(grey_crops + crops)])
    np.testing.assert_allclose(got[:len(crops)], [p.probabilities for p in night_alone.predict(grey_crops)], atol=1e-6)
    np.testing.assert_array_equal(got[len(crops):], [p.probabilities for p in day.predict(crops)])


def test_a_colour_face_in_a_grey_view_is_answered_as_colour(models, photo):
    """A colour camera's grey corridor: the frame reads grey but its faces are in colour."""
    routed = Classifier(models["model"], night=models["night"])
    day = Classifier(models["model"])
    corridor = grey(photo)
    box = BOXES[-1]
    x0, y0, x1, y1 = box
    corridor[y0:y1, x0:x1] = photo[y0:y1, x0:x1]
    np.testing.assert_array_equal(routed.predict_boxes(corridor, [box])[0].probabilities,
                                  day.predict_boxes(corridor, [box])[0].probabilities)


def test_each_grey_face_is_judged_by_the_night_model_s_doubt(models, photo):
    routed = Classifier(models["model"], night=models["night"])
    routed.doubt, routed.night.doubt = 0.0, 1.0
    assert all(f.label == "unassessable" and f.probabilities is not None
               for f in routed.predict_boxes(grey(photo), BOXES[:3]))
    assert not any(f.label == "unassessable" for f in routed.predict_boxes(photo, BOXES[:3]))


def test_a_model_without_a_rule_is_refused_as_a_night_model(models):
    with pytest.raises(ValueError, match="not a night model"):
        Classifier(models["model"], night=models["model"])
    with pytest.raises(FileNotFoundError, match="night model not found"):
        Classifier(models["model"], night=models["model"].parent / "missing.onnx")


def test_export_writes_the_rule_and_refuses_a_night_model_that_is_also_a_closeup_model(models, tmp_path):
    runner = CliRunner()
    out = tmp_path / "n.onnx"
    done = runner.invoke(app, ["export", str(models["night_run"]), "--out", str(out), "--night"])
    assert done.exit_code == 0, done.output
    assert Classifier(models["model"], night=out).night_info() == {"model": Classifier(out).info["model"],
                                                                   "file": "n.onnx", "frames": "grey"}
    done = runner.invoke(app, ["export", str(models["night_run"]), "--out", str(tmp_path / "x.onnx"),
                               "--night", "--closeup-above", "64"])
    assert done.exit_code != 0 and "one of a gate, a close-up model or a night model" in done.output
    assert not (tmp_path / "x.onnx").exists()
    # A colour run exported as a night model answered every grey face with a model that never saw one.
    done = runner.invoke(app, ["export", str(models["model_run"]), "--out", str(tmp_path / "y.onnx"), "--night"])
    assert done.exit_code != 0 and "not trained as a night model" in done.output and "--night" in done.output
    assert not (tmp_path / "y.onnx").exists()


def test_the_shipped_classifier_comes_with_its_night_model_and_can_go_without(models):
    shipped = Classifier.load()
    assert shipped.night_rule == NightRule()
    assert shipped.night.spec == shipped.spec and 0 < shipped.night.doubt < 1
    assert Classifier.load(SHIPPED_MODEL).night_rule == shipped.night_rule
    assert Classifier.load(night=False).night is None
    assert Detector.load().classifier.night_info()["file"] == "night.onnx"
    assert Classifier.load(models["model"]).night is None
    with pytest.raises(ValueError, match="shipped model only"):
        Classifier.load(models["model"], night=True)


def test_the_night_recipe_trains_and_scores_on_grey_crops(models):
    """`train --night`: the run says so, and `evaluate` chose its doubt on grey copies of the held-out faces."""
    import json
    config = json.loads((models["night_run"] / "config.json").read_text())
    assert config["train"]["night"] is True
    metrics = json.loads((models["night_run"] / "metrics.json").read_text())
    assert metrics["crop"] == config["crop"] and "doubt" in metrics["calibration"]


def test_night_batch_makes_every_crop_grey_and_some_dark_and_some_glared():
    import torch
    from maskwatch.training.classifier.augment import night_batch
    x = torch.rand(64, 3, 32, 32) * 255
    x[:, 0] *= 0.2  # colour: little blue
    out = night_batch(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 255
    assert torch.equal(out[:, 0], out[:, 1]) and torch.equal(out[:, 1], out[:, 2])
    means = out.mean(dim=(1, 2, 3))
    assert (means < 0.8 * x.mean()).any()  # low-light copies
    lower, upper = out[:, :, 16:].mean(dim=(1, 2, 3)), out[:, :, :16].mean(dim=(1, 2, 3))
    assert (lower > upper + 20).any()  # glare on the lower half


def test_a_run_s_settings_name_its_night_model(models):
    """detect-run.json and `detect --resume`: lines of grey frames answered by another night model
    (or none) are other settings, as a changed gate or close-up model is."""
    shipped = Detector.load()
    with_night = Detector(shipped.finder, Classifier(models["model"], night=models["night"]), shipped.config)
    without = Detector(shipped.finder, Classifier(models["model"]), shipped.config)
    assert without.settings()["night"] is None
    assert with_night.settings()["night"] is not None
    assert with_night.settings() != without.settings()


def test_the_night_model_loads_on_the_first_grey_face_and_travels_unloaded(models, photo, sample_dir):
    """Most sites never see a grey frame: the night model cost every process and Ray actor ~17 MB
    and 0.1 s at start. It loads when a grey face first needs it; a pickled Classifier (a Ray actor's,
    a serve worker's) carries its path and loads it there the same way."""
    import pickle
    routed = Classifier(models["model"], night=models["night"])
    assert not routed._night.loaded
    assert routed.night_info()["file"] == "night.onnx" and "night.onnx" in repr(routed)
    routed.predict_boxes(photo, BOXES)
    ann = annotated_photos(sample_dir)[0]
    x0, y0, x1, y1 = map(int, annotated_faces(ann)[0].box)
    routed.predict([read_image(sample_dir / "images" / ann.filename)[y0:y1, x0:x1]])
    assert not routed._night.loaded  # colour faces only
    at_night = [f.probabilities for f in routed.predict_boxes(grey(photo), BOXES)]
    assert routed._night.loaded
    twin = pickle.loads(pickle.dumps(routed))
    assert not twin._night.loaded
    assert [f.probabilities for f in twin.predict_boxes(grey(photo), BOXES)] == at_night
    assert twin._night.loaded


def test_threads_asking_for_the_night_model_at_once_load_one(models):
    """A site classifies from several threads: the first grey frames of its cameras may come together."""
    import threading
    routed = Classifier(models["model"], night=models["night"])
    start, got = threading.Barrier(6), []

    def ask() -> None:
        start.wait()
        got.append(routed.night)

    threads = [threading.Thread(target=ask) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(got) == 6 and all(model is got[0] for model in got)


def test_a_missing_or_replaced_night_model_is_said_at_load_and_unpickling_not_at_dusk(models, tmp_path):
    import pickle
    import shutil
    night = tmp_path / "night.onnx"
    shutil.copy(models["night"], night)
    routed = Classifier(models["model"], night=night)
    pickled = pickle.dumps(routed)
    shutil.copy(models["model"], night)  # exported again to the same path: another model
    with pytest.raises(ValueError, match="not the model this Classifier was pickled with"):
        pickle.loads(pickled)
    with pytest.raises(ValueError, match="not the model this Classifier was made with"):  # at its first grey face
        routed.predict([np.full((20, 20, 3), 90, np.uint8)])
    with pytest.raises(ValueError, match="not a night model"):
        Classifier(models["model"], night=night)
    night.unlink()
    with pytest.raises(FileNotFoundError, match="must lie at the same paths"):
        pickle.loads(pickled)
    night.write_text("not a model")
    with pytest.raises(ValueError, match="not a model ONNX Runtime can load"):
        Classifier(models["model"], night=night)


def test_a_dark_infrared_frame_lit_only_at_its_faces_goes_to_the_night_model(models, photo):
    """An infrared illuminator lights the faces near it and leaves the rest near black: under 5 % of
    such a frame told grey from colour, and its faces went to the colour models (on 300 dataset
    photos so made, 43 % of frames). The faces tell where the frame cannot; a colour one stays colour."""
    routed = Classifier(models["model"], night=models["night"])
    night_alone, day = Classifier(models["night"]), Classifier(models["model"])
    x0, y0, x1, y1 = box = BOXES[8]

    def lit_at_the_face(image: np.ndarray) -> np.ndarray:
        frame = (image * 0.08).astype(np.uint8)
        frame[y0:y1, x0:x1] = image[y0:y1, x0:x1]
        return frame

    answer = lambda model, image: model.predict_boxes(image, [box])[0].probabilities
    at_night = lit_at_the_face(grey(photo))
    np.testing.assert_allclose(answer(routed, at_night), answer(night_alone, at_night), atol=1e-6)
    colour = lit_at_the_face(photo)
    np.testing.assert_array_equal(answer(routed, colour), answer(day, colour))
    black = np.zeros_like(photo)  # no picture at all, face or frame: not grey
    np.testing.assert_array_equal(answer(routed, black), answer(day, black))

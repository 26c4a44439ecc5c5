"""`maskwatch evaluate-photos` (photos sorted by a person into class folders, each photo's main face
scored) and `evaluate-detection --all-photos` (a user's own annotated photos, every one scored):
a site's check of the models on its own scenes."""

from __future__ import annotations

import json
import os
import re
import signal
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from maskwatch.cli import app
from maskwatch.data.voc import load_voc_annotation
from maskwatch.evaluation.sorted_photos import OUTCOMES, wilson
from maskwatch.faces import CLASSES

ROOT = Path(__file__).resolve().parents[1]
RUNNER = CliRunner()


def single_face_photos(sample_dir: Path, per_class: int) -> dict[str, list[Path]]:
    """The first sample photos of one face each, by its VOC label: a person's sorting, known."""
    found: dict[str, list[Path]] = {c: [] for c in CLASSES}
    for xml in sorted((sample_dir / "annotations").glob("*.xml")):
        ann = load_voc_annotation(xml)
        if len(ann.objects) == 1 and len(found[ann.objects[0].label]) < per_class:
            found[ann.objects[0].label].append(sample_dir / "images" / ann.filename)
    return found


@pytest.fixture(scope="module")
def sorted_photos(tmp_path_factory, sample_dir) -> Path:
    """Two photos of each class in its folder, and: a with_mask photo sorted as without_mask
    (a miss), a grey picture with no face, a corrupt file."""
    root = tmp_path_factory.mktemp("sorted")
    photos = single_face_photos(sample_dir, 2)
    for label, paths in photos.items():
        (root / label).mkdir()
        for path in paths:
            shutil.copy(path, root / label / path.name)
    shutil.copy(photos["with_mask"][0], root / "without_mask" / "sorted-wrongly.png")
    cv2.imwrite(str(root / "with_mask" / "grey.png"), np.full((240, 320, 3), 128, np.uint8))
    (root / "with_mask" / "corrupt.jpg").write_bytes(b"\xff\xd8 not a whole JPEG")
    return root


@pytest.fixture(scope="module")
def checked(sorted_photos, tmp_path_factory):
    out = tmp_path_factory.mktemp("out") / "check.json"
    result = RUNNER.invoke(app, ["evaluate-photos", str(sorted_photos), "--out", str(out), "--quiet"])
    return result, json.loads(out.read_text())


def test_counts_add_up_and_each_photo_has_its_row(checked, sorted_photos):
    result, report = checked
    classes = report["classes"]
    assert list(classes) == list(CLASSES)
    for label, r in classes.items():
        files = sorted(p.name for p in (sorted_photos / label).iterdir())
        assert sorted(Path(row["photo"]).name for row in r["rows"]) == files  # every file, once
        assert sum(r["counts"].values()) == r["photos"] == len(files) - r["unreadable"]
        assert set(r["counts"]) == set(OUTCOMES)
        assert r["right"] == r["counts"][label] and r["found"] == r["photos"] - r["counts"]["no face"]
        lo, hi = r["right_interval"]
        assert lo <= r["right_share"] <= hi and r["right_interval"] == pytest.approx(wilson(r["right"], r["photos"]))
        for row in r["rows"]:
            if row["outcome"] in CLASSES or row["outcome"] == "unassessable":
                assert len(row["box"]) == 4 and 0 < row["score"] <= 1
                assert list(row["probabilities"]) == list(CLASSES)
                assert sum(row["probabilities"].values()) == pytest.approx(1, abs=0.01)
    rows = {row["photo"]: row for r in classes.values() for row in r["rows"]}
    assert rows["with_mask/grey.png"] == {"photo": "with_mask/grey.png", "outcome": "no face"}
    assert rows["without_mask/sorted-wrongly.png"]["outcome"] == "with_mask"  # a miss, to look at
    assert classes["without_mask"]["right"] == classes["without_mask"]["photos"] - 1
    assert report["gate"] is not None and report["detector"]["backend"]
    # The table: the confusion (true class by outcome with shares), then right and found.
    assert "true class" in result.stdout and "no face" in result.stdout and "[95 % interval]" in result.stdout
    assert f"with_mask{' ' * 14}{classes['with_mask']['photos']:>7}" in result.stdout


def test_the_report_names_the_classifier_file_so_yours_and_the_shipped_one_differ(checked, sorted_photos, tmp_path):
    """A site comparing its retrained classifier with the shipped one got `"classifier": "effnet-lite0"`
    in both reports: the architecture, which theirs shares."""
    import shutil

    from maskwatch.classifier import SHIPPED_CLOSEUP, SHIPPED_MODEL

    assert checked[1]["classifier"] == {"model": "effnet-lite0", "file": SHIPPED_MODEL.name}
    store = Path(shutil.copy(SHIPPED_CLOSEUP, tmp_path / "store.onnx"))  # an effnet-lite0 other than the shipped one
    result = RUNNER.invoke(app, ["evaluate-photos", str(sorted_photos), "--classifier", str(store), "--out",
                                 str(tmp_path / "store.json"), "--quiet"])
    report = json.loads((tmp_path / "store.json").read_text())
    assert report["classifier"] == {"model": "effnet-lite0", "file": "store.onnx"}, result.output
    assert report["gate"] is None and report["closeup"] is None


def test_a_corrupt_photo_is_listed_not_counted_as_no_face(checked):
    result, report = checked
    row = next(r for r in report["classes"]["with_mask"]["rows"] if r["photo"] == "with_mask/corrupt.jpg")
    assert row["outcome"] == "unreadable" and "corrupt.jpg: not a readable image" in row["error"]
    assert report["classes"]["with_mask"]["unreadable"] == 1
    assert report["classes"]["with_mask"]["counts"]["no face"] == 1  # the grey picture only
    assert result.exit_code == 1  # some inputs failed, named, the rest scored
    assert "warning: unreadable, not counted:" in result.stderr and "corrupt.jpg" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: 1 of ")


def test_a_badly_sorted_folder_is_refused_in_one_line(tmp_path, sample_dir):
    photo = next((sample_dir / "images").glob("*.png"))
    (tmp_path / "masked").mkdir()
    result = RUNNER.invoke(app, ["evaluate-photos", str(tmp_path)])
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1
    assert "folder masked not named by a class" in result.output
    assert "with_mask, without_mask, mask_weared_incorrect" in result.output
    (tmp_path / "masked").rmdir()
    shutil.copy(photo, tmp_path / photo.name)
    (tmp_path / "with_mask").mkdir()
    result = RUNNER.invoke(app, ["evaluate-photos", str(tmp_path)])
    assert result.exit_code == 1 and f"1 photo directly in it (first: {photo.name}); sort the photos into " \
                                      "folders named by their true class" in result.output
    result = RUNNER.invoke(app, ["evaluate-photos", str(tmp_path / "gone")])
    assert result.exit_code == 1 and "gone: no such folder" in result.output
    result = RUNNER.invoke(app, ["evaluate-photos", str(tmp_path / photo.name)])
    assert result.exit_code == 1 and f"{photo.name}: a file, not a folder of class folders" in result.output
    # A class's name on a file, or on a link to a folder no longer there (a disk not mounted): that
    # class was left out of the figures without a word, exit code 0.
    (tmp_path / photo.name).unlink()
    shutil.copy(photo, tmp_path / "with_mask")
    (tmp_path / "without_mask").write_text("")
    result = RUNNER.invoke(app, ["evaluate-photos", str(tmp_path)])
    assert result.exit_code == 1 and result.output.splitlines() == [
        f"error: {tmp_path / 'without_mask'}: a file, not a folder; put the photos of that class in a folder of its name"]
    (tmp_path / "without_mask").unlink()
    (tmp_path / "without_mask").symlink_to(tmp_path / "unmounted")
    result = RUNNER.invoke(app, ["evaluate-photos", str(tmp_path)])
    assert result.exit_code == 1 and "without_mask: a link to nothing, not a folder" in result.output


def test_an_empty_class_folder_is_said(tmp_path, sample_dir):
    photo = single_face_photos(sample_dir, 1)["without_mask"][0]
    for label in ("without_mask", "mask_weared_incorrect"):
        (tmp_path / label).mkdir()
    shutil.copy(photo, tmp_path / "without_mask")
    result = RUNNER.invoke(app, ["evaluate-photos", str(tmp_path), "--quiet"])
    assert result.exit_code == 0, result.output
    assert f"warning: {tmp_path / 'mask_weared_incorrect'}: no photos in it" in result.stderr
    lines = result.stdout.splitlines()
    assert next(x for x in lines if x.startswith("mask_weared_incorrect")).split()[1:] == ["0"] + ["-"] * len(OUTCOMES)
    assert not any(x.startswith("with_mask") for x in lines)  # a class not sorted is not made up
    result = RUNNER.invoke(app, ["evaluate-photos", str(tmp_path), "--classifier", str(tmp_path / "gone.onnx")])
    assert result.exit_code == 1 and "gone.onnx: no such classifier file" in result.output


def test_wilson_interval():
    assert wilson(0, 0) is None
    lo, hi = wilson(24, 30)
    assert (round(lo, 3), round(hi, 3)) == (0.627, 0.905)  # docs: 30 photos a class, about +-0.15
    assert wilson(30, 30)[1] == pytest.approx(1) and wilson(30, 30)[0] < 0.9


@pytest.mark.system  # starts the benchmark script as its own process
def test_the_benchmark_reports_what_the_command_does(checked, sorted_photos, tmp_path):
    out = tmp_path / "bench.json"
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "real_check.py"), "photos", str(sorted_photos),
                          "--json", str(out)], capture_output=True, text=True, cwd=ROOT,
                         env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"})
    assert run.returncode == 0, run.stderr
    bench, (_, report) = json.loads(out.read_text()), checked
    assert list(bench) == sorted(report["classes"])  # its order: by folder name
    for label, r in report["classes"].items():
        assert {k: bench[label][k] for k in ("photos", "counts", "right", "found")} == \
               {k: r[k] for k in ("photos", "counts", "right", "found")}
        assert bench[label]["right_ci"] == pytest.approx(r["right_interval"])
        assert [(row["photo"], row["outcome"], row.get("box")) for row in bench[label]["rows"]] == \
               [(Path(row["photo"]).name, row["outcome"], row.get("box")) for row in r["rows"]
                if row["outcome"] != "unreadable"]
    assert "corrupt.jpg" in run.stderr
    assert run.stdout.splitlines()[0].startswith("true class               photos    with_mask without_mask")


def test_evaluate_detection_scores_every_photo_of_your_own_folder(tmp_path, sample_dir):
    pytest.importorskip("pycocotools")
    pytest.importorskip("sklearn")
    data = tmp_path / "own"
    (data / "annotations").mkdir(parents=True)
    (data / "images").mkdir()
    for xml in sorted((sample_dir / "annotations").glob("*.xml"))[:3]:
        shutil.copy(xml, data / "annotations")
        shutil.copy(sample_dir / "images" / load_voc_annotation(xml).filename, data / "images")
    out = tmp_path / "m.json"
    result = RUNNER.invoke(app, ["evaluate-detection", str(data), "--all-photos", "--bootstrap", "0",
                                 "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(out.read_text())
    faces = sum(len(load_voc_annotation(x).objects) for x in (data / "annotations").glob("*.xml"))
    assert metrics["photos"] == 3 and metrics["faces"] == faces and metrics["scored"] == "all"
    assert "split" not in metrics
    assert result.output.startswith(f"all photos (--all-photos, no split): 3, faces: {faces}")
    result = RUNNER.invoke(app, ["evaluate-detection", str(data), "--all-photos", "--seed", "1"])
    assert result.exit_code == 1 and "give one of them" in result.output
    # A class with no face in the photos scored has no AP: said so, where it read AP50 0.000 beside a
    # mAP that leaves it out.
    result = RUNNER.invoke(app, ["evaluate-detection", str(data), "--all-photos", "--limit", "1", "--bootstrap", "0",
                                 "--quiet"])
    assert result.exit_code == 0, result.output
    assert "  mask_weared_incorrect  no annotated face: no AP (left out of the mAP)" in result.output.splitlines()
    # Photos whose XML names no face: one line, where every figure was 0.000 [nan, nan] with exit code 0.
    for xml in (data / "annotations").glob("*.xml"):
        xml.write_text(re.sub(r"<object>.*?</object>", "", xml.read_text(), flags=re.S))
    result = RUNNER.invoke(app, ["evaluate-detection", str(data), "--all-photos", "--quiet"])
    assert result.exit_code == 1 and result.output.splitlines() == [
        f"error: {data}: no annotated face in the 3 photos scored: nothing to score (each face is an <object> with "
        "a class name and a box in a photo's XML)"]


def test_evaluate_detection_lists_what_it_cannot_score_and_scores_the_rest(tmp_path, sample_dir):
    """`--all-photos` stopped at the first photo that did not read (and refused the whole folder for
    one XML that did not, or one face it could not use): it now names each such file with why,
    scores the rest, says how many it skipped (exit 1, as `evaluate-photos`), and refuses only
    where none can be scored."""
    pytest.importorskip("pycocotools")
    pytest.importorskip("sklearn")
    data = tmp_path / "own"
    (data / "annotations").mkdir(parents=True)
    (data / "images").mkdir()
    xmls = sorted((sample_dir / "annotations").glob("*.xml"))[:6]
    for xml in xmls:
        shutil.copy(xml, data / "annotations")
        shutil.copy(sample_dir / "images" / load_voc_annotation(xml).filename, data / "images")
    names = [load_voc_annotation(x).filename for x in xmls]
    broken_xml, mislabelled = data / "annotations" / xmls[0].name, data / "annotations" / xmls[3].name
    broken_xml.write_text(broken_xml.read_text()[:-40])  # does not parse
    mislabelled.write_text(re.sub(r"<name>\w+</name>", "<name>mask_on</name>", mislabelled.read_text(), count=1))
    (data / "images" / names[1]).unlink()  # named in its XML, not there
    (data / "images" / names[2]).write_bytes(b"\xff\xd8 not a whole JPEG")
    out = tmp_path / "m.json"
    result = RUNNER.invoke(app, ["evaluate-detection", str(data), "--all-photos", "--bootstrap", "0",
                                 "--out", str(out), "--quiet"])
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    warnings = [line.removeprefix("warning: skipped, not counted: ") for line in lines if line.startswith("warning:")]
    assert len(warnings) == 4
    assert warnings[0].startswith(f"{broken_xml}: malformed XML")
    assert warnings[1] == f"{mislabelled}: object 0: unknown label 'mask_on', expected one of {', '.join(CLASSES)}"
    assert warnings[2] == f"{data / 'images' / names[1]}: image file not found"
    assert warnings[3].startswith(f"{data / 'images' / names[2]}: not a readable image")
    assert any(line.startswith("all photos (--all-photos, no split): 2, faces: ") for line in lines)
    assert lines[-1] == "error: 4 photos skipped, not counted (named above); the other 2 are scored above"
    metrics = json.loads(out.read_text())
    faces = sum(len(load_voc_annotation(x).objects) for x in xmls[4:])
    assert metrics["photos"] == 2 and metrics["faces"] == faces and metrics["skipped"] == warnings
    # None that reads: each named, then one refusal.
    for name in names[4:]:
        (data / "images" / name).unlink()
    result = RUNNER.invoke(app, ["evaluate-detection", str(data), "--all-photos", "--bootstrap", "0", "--quiet"])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert sum(line.startswith("warning: skipped, not counted: ") for line in lines) == 6
    assert lines[-1] == f"error: {data}: none of the 4 photos scored reads (named above): nothing to score"
    # None whose XML can be used.
    for xml in (data / "annotations").glob("*.xml"):
        xml.write_text("<annotation>")
    result = RUNNER.invoke(app, ["evaluate-detection", str(data), "--all-photos", "--quiet"])
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == (f"error: {data}: none of its 6 annotated photos can be used "
                                              "(named above): nothing to score")


def test_ctrl_c_in_evaluate_detection_is_one_line(sample_dir, tmp_path):
    """It ended with exit code 130 and no word, where evaluate-photos and detect say they stopped."""
    pytest.importorskip("pycocotools")
    pytest.importorskip("sklearn")
    out = tmp_path / "m.json"
    ctrl_c = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))  # the 40 photos take 5 s or more
    ctrl_c.start()
    try:
        result = RUNNER.invoke(app, ["evaluate-detection", str(sample_dir), "--all-photos", "--bootstrap", "0",
                                     "--out", str(out), "--quiet"])
    finally:
        ctrl_c.cancel()
    assert result.exit_code == 130 and result.output.splitlines() == [
        "error: stopped by Ctrl-C or SIGTERM; nothing was written"] and not out.exists()

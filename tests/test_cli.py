"""The command line end to end, on the bundled sample."""

import json

import pytest

from typer.testing import CliRunner

from maskwatch.cli import app

runner = CliRunner()


def test_help_lists_the_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("prepare", "split", "train", "evaluate", "study"):
        assert command in result.output


def test_prepare_reports_a_wrong_path_clearly(tmp_path):
    result = runner.invoke(app, ["prepare", str(tmp_path / "nowhere"), "--out", str(tmp_path / "w")])
    assert result.exit_code == 1
    assert "dataset folder not found" in result.output


def test_study_on_the_sample_writes_the_four_way_report(sample_dir, tmp_path):
    out = tmp_path / "study"
    # One epoch of each run: what is checked is the four runs and their report, not how far they learn.
    result = runner.invoke(app, ["study", str(sample_dir), "--out", str(out), "--epochs", "1",
                                 "--size", "32", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "report.html" in result.output
    summary = json.loads((out / "study.json").read_text())
    assert summary["faces"] == 218
    assert set(summary["runs"]) == {"colour-photo", "colour-face", "grey-photo", "grey-face"}
    for name in summary["runs"]:
        metrics = json.loads((out / "runs" / name / "metrics.json").read_text())
        assert metrics["accuracy"] == summary["runs"][name]["accuracy"]
    report = (out / "report.html").read_text()
    assert "What the numbers say" in report
    assert f"{summary['runs']['grey-face']['accuracy']:.3f}" in report
    assert "runs/colour-photo/confusion.png" in report


def test_prepare_train_evaluate_export_classify(sample_dir, tmp_path):
    work, run, onnx = tmp_path / "work", tmp_path / "run", tmp_path / "m.onnx"
    steps = [
        ["prepare", str(sample_dir), "--out", str(work), "--size", "32", "--quiet"],
        ["train", str(work), "--out", str(run), "--model", "seed-cnn", "--epochs", "1", "--quiet"],
        ["evaluate", str(run)],
        ["export", str(run), "--out", str(onnx)],
    ]
    for args in steps:
        result = runner.invoke(app, args)
        assert result.exit_code == 0, (args, result.output)
    assert "218 faces from 40 photos" in runner.invoke(app, ["prepare", str(sample_dir), "--out", str(work),
                                                              "--size", "32", "--quiet"]).output
    assert (work / "split.csv").is_file() and (run / "metrics.json").is_file()
    crop = next((work / "crops" / "without_mask").glob("*.png"))
    result = runner.invoke(app, ["classify", str(crop), "--model", str(onnx)])
    assert result.exit_code == 0 and str(crop) in result.output
    # The work folder prepared again at another size: the run is not scored on crops it never saw.
    runner.invoke(app, ["prepare", str(sample_dir), "--out", str(work), "--size", "24", "--quiet"])
    result = runner.invoke(app, ["evaluate", str(run)])
    assert result.exit_code == 1 and "the run trained on" in result.output, result.output


def test_train_rejects_grey_crops_for_effnet(sample_dir, tmp_path):
    work = tmp_path / "grey"
    assert runner.invoke(app, ["prepare", str(sample_dir), "--out", str(work), "--size", "32", "--grey",
                               "--quiet"]).exit_code == 0
    result = runner.invoke(app, ["train", str(work), "--out", str(tmp_path / "r"), "--model", "effnet-lite0"])
    assert result.exit_code == 1
    assert "colour crops" in result.output


@pytest.mark.parametrize("command", ["prepare", "study"])
def test_a_crop_size_past_what_memory_holds_is_refused_by_name(command, sample_dir, tmp_path):
    result = runner.invoke(app, [command, str(sample_dir), "--out", str(tmp_path / "w"), "--size", "100000"])
    assert result.exit_code == 2 and "Invalid value for '--size'" in result.output and "8-512" in result.output, \
        result.output
    assert not (tmp_path / "w").exists()


def test_an_output_folder_of_other_files_or_a_file_is_never_replaced(sample_dir, tmp_path):
    precious = tmp_path / "documents"
    precious.mkdir()
    (precious / "thesis.txt").write_text("years of work")
    a_file = tmp_path / "notes.txt"
    a_file.write_text("keep me")
    photo = next(sample_dir.glob("images/*.png"))
    for args in (["prepare", str(sample_dir), "--out", str(precious), "--quiet"],
                 ["prepare", str(sample_dir), "--out", str(a_file), "--quiet"],
                 ["detect", str(photo), "--out", str(a_file), "--quiet"],
                 *([command, str(sample_dir), "--out", str(a_file)] for command in ("cv", "study", "train-detector"))):
        result = runner.invoke(app, args)
        assert result.exit_code == 1 and "nothing was written" in result.output, result.output
    assert sorted(p.name for p in precious.iterdir()) == ["thesis.txt"]
    assert (precious / "thesis.txt").read_text() == "years of work" and a_file.read_text() == "keep me"
    # Its own earlier output is replaced, as a re-run should.
    work = tmp_path / "work"
    for _ in range(2):
        result = runner.invoke(app, ["prepare", str(sample_dir), "--out", str(work), "--size", "16", "--quiet"])
        assert result.exit_code == 0, result.output


def test_a_rewritten_output_keeps_its_files_permissions(tmp_path):
    import os
    import stat

    from maskwatch.atomic import write_text

    private, read_only = tmp_path / "private.json", tmp_path / "read-only.json"
    for path, mode in ((private, 0o600), (read_only, 0o444)):
        path.write_text("old")
        os.chmod(path, mode)
        write_text(path, "new")  # the mode is set after the writing: a read-only file can be rewritten
        assert path.read_text() == "new" and stat.S_IMODE(path.stat().st_mode) == mode


def test_an_output_file_is_never_written_over_a_folder(tmp_path):
    from maskwatch.atomic import OutputError, atomic_path

    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "kept.onnx").write_text("a model")
    with pytest.raises(OutputError, match="a folder is there, not a file"):
        with atomic_path(folder):
            pass
    assert [p.name for p in tmp_path.iterdir()] == ["models"] and (folder / "kept.onnx").read_text() == "a model"


def test_bad_work_files_and_output_folders_are_named_without_a_traceback(prepared_sample, sample_dir, tmp_path):
    import shutil

    folder = tmp_path / "a-folder"
    folder.mkdir()
    for args in (["split", str(prepared_sample), "--out", str(folder)],
                 ["evaluate-detection", str(sample_dir), "--out", str(folder)],  # said before the evaluation
                 ["fit-detector", str(sample_dir), "--out", str(folder)]):  # said before the fit
        result = runner.invoke(app, args)
        assert result.exit_code == 1 and "a folder is there, not a file" in result.output, (args, result.output)
    # A file of another kind where the output would go: export wrote ONNX bytes over a run's config.
    config, notes = tmp_path / "config.json", tmp_path / "notes.xml"
    config.write_text("{}")
    notes.write_text("<notes/>")
    for args, kind in ((["export", str(tmp_path), "-o", str(config)], ".onnx"),
                       (["evaluate-detection", str(sample_dir), "--out", str(notes)], ".json")):
        result = runner.invoke(app, args)
        assert result.exit_code == 1 and f"a file that is not a {kind} output" in result.output, result.output
    assert config.read_text() == "{}" and notes.read_text() == "<notes/>"
    work = tmp_path / "work"
    shutil.copytree(prepared_sample, work)
    (work / "faces.csv").write_text("face_id,image,label\nx-000,x.png,with_mask\n")
    result = runner.invoke(app, ["split", str(work)])
    assert result.exit_code == 1 and "not a faces.csv of `maskwatch prepare` (no column clipped, height" in result.output
    (work / "faces.csv").write_text((prepared_sample / "faces.csv").read_text().replace(",0,crops", ",x,crops", 1))
    result = runner.invoke(app, ["split", str(work)])
    assert result.exit_code == 1 and "faces.csv, line 2: clipped is not a number ('x')" in result.output


def test_a_run_whose_config_is_not_a_runs_is_named(tmp_path):
    pytest.importorskip("torch")
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text('{"model": "effnet-lite0"}')
    for command in (["evaluate", str(run)], ["export", str(run), "--out", str(tmp_path / "m.onnx")]):
        result = runner.invoke(app, command)
        assert result.exit_code == 1 and "config.json: not a run's config (no 'crop')" in result.output, result.output


def test_a_detector_run_is_never_replaced_by_a_classifier_run_nor_taken_for_one(prepared_sample, tmp_path):
    pytest.importorskip("torch")
    detector_run = tmp_path / "detector-run"
    detector_run.mkdir()
    (detector_run / "config.json").write_text('{"recipe": {}}')
    (detector_run / "checkpoint.pt").write_bytes(b"weeks of training")
    result = runner.invoke(app, ["train", str(prepared_sample), "--out", str(detector_run), "--epochs", "1", "--quiet"])
    assert result.exit_code == 1 and "nothing was written" in result.output, result.output
    assert (detector_run / "checkpoint.pt").read_bytes() == b"weeks of training"


def test_detection_is_scored_on_the_split_its_models_were_trained_on():
    from types import SimpleNamespace

    from maskwatch.cli import held_out_seed

    class Session:
        def __init__(self, seed):
            self.meta = {"maskwatch.detector": json.dumps({"split": {"by": "photo", "seed": seed}})}

        def get_modelmeta(self):
            return SimpleNamespace(custom_metadata_map=self.meta)

    def model(detector_seed, classifier_seed):
        return SimpleNamespace(finder=SimpleNamespace(session=Session(detector_seed)),
                               classifier=SimpleNamespace(info={"split": {"seed": classifier_seed}}))

    assert held_out_seed(model(3, 3), None) == 3 and held_out_seed(model(0, 0), 0) == 0
    with pytest.raises(ValueError, match="the detector on seed 3, the classifier on seed 0"):
        held_out_seed(model(3, 0), None)
    with pytest.raises(ValueError, match="--seed 0"):
        held_out_seed(model(3, 3), 0)
    assert held_out_seed(SimpleNamespace(finder=SimpleNamespace(), classifier=SimpleNamespace()), None) == 0
    no_split = SimpleNamespace(finder=SimpleNamespace(), classifier=SimpleNamespace(info={"split": None}))
    assert held_out_seed(no_split, None) == 0  # a model exported from a run without a split


def test_detection_is_scored_only_where_the_classifiers_held_out_faces_are_this_splits(sample_dir):
    from types import SimpleNamespace

    from maskwatch.cli import check_classifier_split
    from maskwatch.data.photos import annotated_faces, photo_split

    split = photo_split(sample_dir, seed=0)
    faces = sum(len(annotated_faces(ann)) for ann in split.val)
    total = faces + sum(len(annotated_faces(ann)) for ann in split.train)

    def classifier(**trained):  # trained on this dataset (as many faces), unless told otherwise
        trained = {"by": "photo", "seed": 0, "train": total - trained.get("val", faces), "val": faces, **trained}
        return SimpleNamespace(classifier=SimpleNamespace(info={"split": trained}))

    check_classifier_split(classifier(), split)  # trained with `train`, or as fold 1 (the shipped one)
    check_classifier_split(classifier(fold=1, folds=5), split)
    check_classifier_split(SimpleNamespace(classifier=SimpleNamespace()), split)  # no split said: nothing to check
    check_classifier_split(classifier(fold=2, train=3258, val=814), split)  # another dataset: the user's to score
    for trained, said in (({"by": "face"}, "split by face"), ({"fold": 2, "folds": 5}, "fold 2"),
                          ({"val": faces + 3}, f"held out {faces + 3} faces where this split holds out {faces}")):
        with pytest.raises(ValueError, match=said):
            check_classifier_split(classifier(**trained), split)


def test_a_run_whose_files_went_bad_is_named_not_a_traceback(tmp_path):
    from maskwatch.training.classifier.train import load_model

    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_bytes(b"\x08\xb6\x01onnx bytes")  # what `export -o run/config.json` left
    with pytest.raises(ValueError, match="config.json: not a run's config"):
        load_model(run)
    (run / "config.json").write_text(json.dumps({"model": "seed-cnn", "classes": ["a", "b", "c"],
                                                 "crop": {"size": 32, "grey": False, "margin": 0.0}}))
    (run / "model.safetensors").write_bytes(b"truncated")
    with pytest.raises(ValueError, match="model.safetensors: not this run's weights"):
        load_model(run)


def test_ctrl_c_during_training_says_what_was_kept(tmp_path, monkeypatch):
    """Ctrl-C printed a traceback and nothing of what stayed: both runs keep their last checkpoint
    and resume."""
    from maskwatch.training.classifier import train as classifier_train
    from maskwatch.training.detector import train as detector_train

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(classifier_train, "train_run", interrupted)
    monkeypatch.setattr(detector_train, "train_detector", interrupted)
    result = runner.invoke(app, ["train", str(tmp_path), "--out", str(tmp_path / "run")])
    assert result.exit_code == 130 and "the same command resumes from it" in result.output
    result = runner.invoke(app, ["train-detector", str(tmp_path), "--out", str(tmp_path / "det")])
    assert result.exit_code == 130 and "keeps its last checkpoint; the same command resumes it" in result.output


def test_serve_and_run_on_a_port_in_use_say_so_before_starting_anything(tmp_path):
    """uvicorn said "serving on" first, then an ERROR line, and exited 3 (run had started its cameras)."""
    import socket

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = runner.invoke(app, ["serve", "--port", str(port)])
        assert result.exit_code == 1 and f"cannot listen on 127.0.0.1:{port}" in result.output, result.output
        (tmp_path / "site.yaml").write_text(f"cameras: {{door: {{source: 'rtsp://127.0.0.1:1/x'}}}}\n"
                                            f"server: {{port: {port}}}\nstorage: {{database: {tmp_path / 'site.db'}}}\n")
        result = runner.invoke(app, ["run", "--config", str(tmp_path / "site.yaml")])
        assert result.exit_code == 1 and "choose another server.port" in result.output, result.output
        assert not (tmp_path / "site.db").exists()

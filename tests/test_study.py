"""The study's report says what its four numbers show, and no more than one split can show."""

from typer.testing import CliRunner

from maskwatch.cli import app
from maskwatch.training.classifier.study import findings, render_report


def run(accuracy: float, faces: int = 45, incorrect: float | None = 2 / 3, incorrect_faces: int = 3) -> dict:
    return {"accuracy": accuracy, "macro_f1": 0.8, "val_faces": faces, "val_photos": 5,
            "recall": {"with_mask": 1.0, "without_mask": 0.8, "mask_weared_incorrect": incorrect},
            "incorrect_faces": incorrect_faces}


def test_a_gap_of_one_face_is_not_called_a_win_or_the_leak():
    # colour-face and colour-photo one face of 45 apart, grey one face behind colour: noise.
    text = findings({"colour-photo": run(40 / 45), "colour-face": run(41 / 45),
                     "grey-photo": run(39 / 45), "grey-face": run(39 / 45)})
    assert "neither is shown better" in text and "beat" not in text
    assert "too few validation faces to show the leak" in text and "because" not in text
    assert "0.67, 2 of 3 faces" in text


def test_a_gap_beyond_the_noise_is_called_what_it_is():
    text = findings({"colour-photo": run(0.70), "colour-face": run(0.95),
                     "grey-photo": run(0.40), "grey-face": run(0.5, incorrect=None)})
    assert "colour crops beat grey ones by 30.0 points" in text
    assert "reads 25.0 points higher than the per-photo split" in text
    text = findings({"colour-photo": run(0.95), "colour-face": run(0.60),
                     "grey-photo": run(0.95), "grey-face": run(0.5)})
    assert "35.0 points lower" in text and "cannot show the leak" in text


def test_the_report_shows_a_command_as_code_not_between_backticks():
    """`make demo`'s report.html read "(`maskwatch cv` measures the spread)", backticks and all."""
    runs = {"colour-photo": run(40 / 45), "colour-face": run(41 / 45), "grey-photo": run(39 / 45),
            "grey-face": run(39 / 45)}
    page = render_report({"data": "sample", "faces": 218, "per_class": {"with_mask": 124}, "photos": 40,
                          "skipped": 0, "seconds": 59.0, "runs": runs,
                          "config": {"size": 64, "margin": 0.0, "epochs": 10, "seed": 0}})
    assert "(<code>maskwatch cv</code> measures the spread)" in page and "`" not in page


def test_study_refuses_bad_epochs_before_making_crops(tmp_path, sample_dir):
    result = CliRunner().invoke(app, ["study", str(sample_dir), "--out", str(tmp_path / "s"), "--epochs", "0"])
    assert result.exit_code == 2 and "Invalid value for '--epochs': must be at least 1, got 0" in result.output
    assert not (tmp_path / "s").exists()  # the crops of both colours were made first, 13 s, then refused


def test_ctrl_c_during_the_study_says_what_was_kept(tmp_path, sample_dir, monkeypatch):
    """Ctrl-C in `make demo`'s study ended it with exit code 130 and nothing said (train says what it kept)."""
    from maskwatch.training.classifier import study

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(study, "train_run", interrupted)
    result = CliRunner().invoke(app, ["study", str(sample_dir), "--out", str(tmp_path / "s")])
    assert result.exit_code == 130, result.output
    assert "== run 1 of 4: training seed-cnn on colour crops, split by photo" in result.output  # which of four
    assert "interrupted (Ctrl-C or SIGTERM)" in result.output and "the same command goes on from it" in result.output


def test_the_study_says_which_crops_it_makes_before_it_makes_them(tmp_path, sample_dir, monkeypatch):
    """The two crop steps printed the same "prepare: 40/40 photo ... done" line, unnamed."""
    from maskwatch.training.classifier import study

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(study, "train_run", interrupted)
    output = CliRunner().invoke(app, ["study", str(sample_dir), "--out", str(tmp_path / "s")]).output
    assert output.index("== crops 1 of 2: every annotated face, in colour") < output.index(
        "== crops 2 of 2: every annotated face, in grey") < output.index("== run 1 of 4")

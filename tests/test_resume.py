"""`maskwatch detect --resume`: a folder of photos stopped part-way goes on where it stopped."""

import hashlib
import json
import os
import signal
from pathlib import Path

import cv2
import pytest
from typer.testing import CliRunner

from maskwatch import Classifier, Detector
from maskwatch.atomic import OutputError
from maskwatch.cli import app
from maskwatch.video.pipeline import run_detect
from tests.test_detection import detect_in_background, make_video


@pytest.fixture(scope="module")
def detector():
    return Detector.load()


def photo_folder(folder: Path, sample_dir: Path, names: list[str], size=(200, 150)) -> Path:
    """Small copies of the sample photos, one per name (a.jpg and a.png: one stem, two photos)."""
    folder.mkdir()
    photos = sorted(sample_dir.glob("images/*.png"))
    for i, name in enumerate(names):
        cv2.imwrite(str(folder / name), cv2.resize(cv2.imread(str(photos[i % len(photos)])), size))
    return folder


NAMES = ["a.jpg", "a.png", "b.jpg", "c.jpg", "d.jpg", "e.jpg"]


def detect(*args: str):
    return CliRunner().invoke(app, ["detect", *map(str, args), "--quiet"])


def test_a_stopped_folder_run_goes_on_with_the_photos_not_done(tmp_path, sample_dir, detector):
    """A folder of tens of thousands of photos stopped part-way could only be run again from the
    start. --resume reads the photos with no line only, and the lines are those of a whole run."""
    folder = photo_folder(tmp_path / "photos", sample_dir, NAMES)
    whole = run_detect(str(folder), tmp_path / "whole", detector, progress=False)
    out = tmp_path / "out"
    run_detect(str(folder), out, detector, progress=False, max_frames=2)  # stopped after two
    read = []
    result = run_detect(str(folder), out, detector, progress=False, resume=True,
                        on_frame=lambda frame, faces: read.append(frame.name))
    # The last photo done is done again (its copy may not have been written before the stop).
    assert read == ["a.png", "b", "c", "d", "e"] and (result.skipped, result.frames, result.unread) == (1, 5, 0)
    # Photos of one stem have a name each: both were done once, neither taken for the other.
    assert (out / "detections.jsonl").read_text() == (tmp_path / "whole" / "detections.jsonl").read_text()
    assert sorted(p.name for p in out.glob("*.jpg")) == sorted(p.name for p in (tmp_path / "whole").glob("*.jpg"))
    record = json.loads((out / "detect-run.json").read_text())
    assert (record["photos"], record["skipped"], record["frames"], record["complete"]) == (6, 1, 5, True)
    assert whole.frames == 6
    said = detect(folder, "--out", out, "--resume")  # all done: nothing read, said so
    assert said.exit_code == 0 and "0 photos, 0 faces" in said.output and "(6 photos done before" in said.output
    assert (out / "detections.jsonl").read_text() == (tmp_path / "whole" / "detections.jsonl").read_text()


def test_a_run_killed_outright_mid_line_is_resumed_with_every_photo_once(tmp_path, sample_dir):
    """kill -9 keeps the whole lines written; a line cut short in its write is written again,
    not left half in the middle of the file."""
    folder = photo_folder(tmp_path / "photos", sample_dir, [f"p{i:02d}.jpg" for i in range(40)], (160, 120))
    out = tmp_path / "out"
    process = detect_in_background(folder, out)
    lines = out / "detections.jsonl"
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    done = lines.read_text().count("\n")
    assert 3 <= done < 40
    result = detect(folder, "--out", out, "--resume")  # the last photo done again: its copy may not be
    assert result.exit_code == 0, result.output
    assert f"{41 - done} photos" in result.output and f"({done - 1} photos done before" in result.output
    names = [json.loads(line)["name"] for line in lines.read_text().splitlines()]
    assert names == [f"p{i:02d}" for i in range(40)]
    assert len(list(out.glob("*.jpg"))) == 40


def test_a_line_a_kill_cut_short_is_written_again(tmp_path, sample_dir, detector):
    """An unbuffered write may be short: a kill inside a line's write leaves part of it, after the
    copy of the photo before (written before that line began)."""
    folder = photo_folder(tmp_path / "photos", sample_dir, NAMES[2:])
    whole = run_detect(str(folder), tmp_path / "whole", detector, progress=False)
    out = tmp_path / "out"
    run_detect(str(folder), out, detector, progress=False, max_frames=2)
    with open(out / "detections.jsonl", "a") as file:
        file.write('{"frame": 2, "name": "d", "ti')
    read = []
    result = run_detect(str(folder), out, detector, progress=False, resume=True,
                        on_frame=lambda frame, faces: read.append(frame.name))
    assert read == ["d", "e"] and (result.skipped, result.frames) == (2, 2) and whole.frames == 4
    assert (out / "detections.jsonl").read_text() == (tmp_path / "whole" / "detections.jsonl").read_text()


def test_a_run_stopped_by_sigterm_names_resume_and_records_how_far_it_got(tmp_path, sample_dir):
    folder = photo_folder(tmp_path / "photos", sample_dir, [f"p{i:02d}.jpg" for i in range(40)], (160, 120))
    out = tmp_path / "out"
    process = detect_in_background(folder, out, output=True)
    lines = out / "detections.jsonl"
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 130 and "the same command with --resume reads only the photos not done" in output
    record = json.loads((out / "detect-run.json").read_text())
    done = len(lines.read_text().splitlines())
    assert (record["frames"], record["complete"], record["interrupted"], record["photos"]) == (done, False, True, 40)
    result = detect(folder, "--out", out, "--resume")  # the last photo done again: its copy may not be
    assert result.exit_code == 0 and f"{41 - done} photos" in result.output, result.output
    assert [json.loads(line)["name"] for line in lines.read_text().splitlines()] == [f"p{i:02d}" for i in range(40)]
    assert json.loads((out / "detect-run.json").read_text())["complete"] is True


def test_a_line_whose_copy_a_stop_left_unwritten_is_done_again(tmp_path, sample_dir, detector):
    """A photo's line is written before its annotated copy: a stop between (a kill, Ctrl-C) left
    the photo counted done and its copy missing for good, or an earlier run's (blurred) in its place."""
    folder = photo_folder(tmp_path / "photos", sample_dir, NAMES[2:])
    run_detect(str(folder), tmp_path / "whole", detector, progress=False)
    out = tmp_path / "out"
    run_detect(str(folder), out, detector, progress=False, blur=True)  # an earlier run's copies
    blurred = (out / "c.jpg").read_bytes()
    run_detect(str(folder), out, detector, progress=False, max_frames=2)
    (out / "c.jpg").write_bytes(blurred)  # stopped after c's line, before its copy
    read = []
    run_detect(str(folder), out, detector, progress=False, resume=True,
               on_frame=lambda frame, faces: read.append(frame.name))
    assert read == ["c", "d", "e"]
    assert (out / "detections.jsonl").read_text() == (tmp_path / "whole" / "detections.jsonl").read_text()
    assert all((out / f"{n}.jpg").read_bytes() == (tmp_path / "whole" / f"{n}.jpg").read_bytes() for n in "bcde")
    read.clear()  # a run that got through: its last photo is not done again
    run_detect(str(folder), out, detector, progress=False, resume=True,
               on_frame=lambda frame, faces: read.append(frame.name))
    assert read == []


def test_resume_refuses_lines_it_would_mix_with_and_keeps_them(tmp_path, sample_dir, detector):
    folder = photo_folder(tmp_path / "photos", sample_dir, NAMES[2:5])
    out = tmp_path / "out"
    assert detect(folder, "--out", out, "--max-frames", "2").exit_code == 0
    lines = (out / "detections.jsonl").read_bytes()

    def refused(*args, source=folder) -> str:
        result = detect(source, "--out", out, "--resume", *args)
        assert result.exit_code == 1 and (out / "detections.jsonl").read_bytes() == lines, result.output
        return result.output

    assert "other settings (detector.min_score 0.3 then, 0.5 now)" in refused("--min-score", "0.5")
    assert "(media true then, false now)" in refused("--no-media")
    other = photo_folder(tmp_path / "other", sample_dir, NAMES[:3])
    assert f"its lines are of {folder}, not {other}" in refused(source=other)
    video = make_video(tmp_path / "clip.mp4", sample_dir, frames=3)
    assert "a video's tracks cannot resume" in refused(source=video)
    # A photo of the same stem added since renames both: which is done cannot be told.
    cv2.imwrite(str(folder / "c.png"), cv2.imread(str(folder / "c.jpg")))
    assert "line 2: photo 'c' is not in" in refused()
    (folder / "c.png").unlink()
    record = (out / "detect-run.json").read_bytes()
    (out / "detect-run.json").unlink()  # lines no record vouches for (an older maskwatch's)
    assert "no detect-run.json beside it" in refused()
    (out / "detect-run.json").write_bytes(record)
    (out / "detections.jsonl").write_bytes(lines + b"hello\n")
    lines = (out / "detections.jsonl").read_bytes()
    assert "detections.jsonl, line 3: not a line of detect's" in refused()
    # A line pasted twice: the resumed run went on, and detections.jsonl held two lines of one photo.
    (out / "detections.jsonl").write_bytes(lines.replace(b"hello\n", lines.splitlines(keepends=True)[0]))
    lines = (out / "detections.jsonl").read_bytes()
    assert "detections.jsonl, line 3: a second line of photo 'b' (a run writes one" in refused()
    # The lines of a video run in OUT: its tracks cannot be gone on with.
    with pytest.raises(OutputError, match="its lines are of a video"):
        run_detect(str(video), out, detector, progress=False)
        run_detect(str(folder), out, detector, progress=False, resume=True)


def test_a_rerun_without_resume_says_it_replaces_a_stopped_run(tmp_path, sample_dir):
    """A photo that could not be read, or a stop part-way: the way on is named, and a rerun that
    replaces a run stopped part-way says --resume would have gone on from it."""
    folder = photo_folder(tmp_path / "photos", sample_dir, NAMES[2:])
    good = (folder / "c.jpg").read_bytes()
    (folder / "c.jpg").write_bytes(b"not a photo")
    out = tmp_path / "out"
    result = detect(folder, "--out", out)
    assert result.exit_code == 1 and "the same command with --resume reads only the photos not done" in result.output
    assert "mend or remove them, and the same command" in result.output  # --resume alone reads it again
    (folder / "c.jpg").write_bytes(good)  # mended: only it is read
    result = detect(folder, "--out", out, "--resume")
    assert result.exit_code == 0 and "1 photo, " in result.output and "(3 photos done before" in result.output  # "1 frames" until 2026-12-05
    assert detect(folder, "--out", out, "--max-frames", "1").exit_code == 0
    result = detect(folder, "--out", out)
    assert result.exit_code == 0 and "stopped after 1 of 4 photos, replaced now: `--resume` goes on" in result.output
    assert len((out / "detections.jsonl").read_text().splitlines()) == 4


def test_a_record_of_another_shape_is_refused_in_a_line_and_replaced_without_resume(tmp_path, sample_dir):
    """A detect-run.json cut short, edited or of a later maskwatch (settings not an object, photos
    not a number) ended --resume and even a plain rerun into OUT in a traceback."""
    folder = photo_folder(tmp_path / "photos", sample_dir, NAMES[2:5])
    out = tmp_path / "out"
    assert detect(folder, "--out", out, "--max-frames", "2").exit_code == 0
    lines = (out / "detections.jsonl").read_bytes()
    record = json.loads((out / "detect-run.json").read_text())
    for shape in ({**record, "settings": ["detector", "blur"]}, {**record, "settings": None}, [record], "x"):
        (out / "detect-run.json").write_text(json.dumps(shape))
        result = detect(folder, "--out", out, "--resume")
        assert result.exit_code == 1 and not isinstance(result.exception, Exception), result.exception  # no traceback
        assert "detect-run.json: not a record of a detect run this maskwatch can read" in result.output, result.output
        assert (out / "detections.jsonl").read_bytes() == lines
    (out / "detect-run.json").write_text(json.dumps({**record, "photos": "3"}))
    result = detect(folder, "--out", out)
    assert result.exit_code == 0, result.output
    assert len((out / "detections.jsonl").read_text().splitlines()) == 3


def test_a_batch_files_options_resume_as_the_same_flags_given_by_name(tmp_path, sample_dir, detector):
    """batch's ScoreOptions is detect's DetectOptions: handed over whole, it is the run the same
    flags by name make, so --resume takes the one run for the other (detect-run.json alike)."""
    from maskwatch.scale.files import ScoreOptions
    from maskwatch.video.pipeline import DetectOptions

    folder = photo_folder(tmp_path / "photos", sample_dir, NAMES[:3])
    out = tmp_path / "out"
    run_detect(str(folder), out, detector, ScoreOptions(blur=True, save_media=False), progress=False, max_frames=2)
    assert not list(out.glob("*.jpg"))  # save_media=False reached the run
    result = run_detect(str(folder), out, detector, progress=False, resume=True, blur=True, save_media=False)
    assert (result.skipped, result.frames) == (2, 1)  # without media, no copy of the last to write again
    with pytest.raises(OutputError):  # blur is one of the settings a resumed run must share
        run_detect(str(folder), out, detector, DetectOptions(save_media=False), progress=False, resume=True)


def bytes_read() -> int:
    """What this process has read from files so far (Linux's /proc/self/io rchar): a count, not a time."""
    return int(next(line for line in Path("/proc/self/io").read_text().splitlines() if line.startswith("rchar:")).split()[1])


@pytest.mark.skipif(not Path("/proc/self/io").is_file(), reason="reads Linux's /proc/self/io")
def test_a_run_s_settings_read_the_model_files_once_and_again_once_one_changed(tmp_path, detector, monkeypatch):
    """`batch` takes a run's settings (detect-run.json) for every file it scores: hashing the model
    files read about 30 MB each time, 29 ms of a photo's 84 (docs/bench-capacity.md). A file is
    read again once it changed, also to the same size and modification time."""
    from maskwatch.detection import detector as detector_module

    settings = detector.settings()
    before = bytes_read()
    assert all(detector.settings() == settings for _ in range(5))
    assert bytes_read() - before < 1_000_000  # 5 x 30 MB before
    model = tmp_path / "classifier.onnx"
    model.write_bytes(Path(detector.classifier.model_path).read_bytes())
    copy = Detector(detector.finder, Classifier(model), detector.config)
    assert copy.settings()["classifier"] == settings["classifier"]
    # Remembered at once here, not after 2 s: the change below then shows only in the change time
    # (utime sets the modification time back). Unremembered, the copy passed with no cache at all.
    monkeypatch.setattr(detector_module, "_SETTLED_S", -1e9)
    assert copy.settings()["classifier"] == settings["classifier"] and str(model) in detector_module._DIGESTS
    changed = bytearray(model.read_bytes())
    changed[-1] ^= 1
    stat = model.stat()
    model.write_bytes(bytes(changed))
    os.utime(model, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert copy.settings()["classifier"] == hashlib.sha256(changed).hexdigest() != settings["classifier"]

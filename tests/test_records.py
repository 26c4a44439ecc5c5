"""Reading back detections.jsonl and /v1/detect's answers as Faces (maskwatch.read_detections)."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

import maskwatch
from maskwatch import Face, FrameRecord, read_detections
from maskwatch.cli import app
from maskwatch.faces import frame_record
from tests.test_detection import make_video

FACES = [
    Face(box=(1.25, 2.5, 30.75, 40.0), label="with_mask", probabilities=(0.9, 0.0625, 0.0375), score=0.8125),
    Face(box=(100, 20, 140, 70), label="unassessable", probabilities=(0.4, 0.35, 0.25), score=0.5, track_id=7),
    Face(box=(5, 5, 25, 30), label="without_mask", probabilities=(0.01, 0.98, 0.01), track_id=2, missed=True),
    Face(box=(0, 0, 10, 10)),  # not classified yet, no score (annotations, a track before its vote)
]


def test_faces_written_as_json_read_back_are_the_same_faces():
    for placed in ({}, {"frame": 12, "name": "door-000012", "time": 0.48, "detected": False}):
        record = json.loads(json.dumps(frame_record(FACES, 640, 480, **placed)))
        frame = FrameRecord.from_dict(record)
        assert list(frame.faces) == FACES and (frame.width, frame.height) == (640, 480)
        assert frame.to_dict() == record and frame.counts == record["counts"]
    assert (frame.frame, frame.name, frame.time, frame.detected) == (12, "door-000012", 0.48, False)
    # Written to its rounding: read back as the face it was written as.
    face = Face(box=(1.23456, 2, 3, 4), label="with_mask", probabilities=(0.123456, 0.5, 0.376544), score=0.99999)
    assert Face.from_dict(face.to_dict()) == Face(box=(1.23, 2, 3, 4), label="with_mask",
                                                  probabilities=(0.1235, 0.5, 0.3765), score=1.0)


def test_a_box_that_is_no_box_is_refused_naming_it(tmp_path):
    """Face("1234") was the box (1, 2, 3, 4); NaN and xmax < xmin were kept, from a user's own
    Face, from_detections or a hand-edited detections.jsonl."""
    for box in ("1234", b"1234", ("1", "2", "3", "4"), (1, 2, 3), None, 5, (None, 1, 2, 3),
                (0, 0, float("nan"), 4), (0, 0, float("inf"), 4), (5, 0, 4, 4), (0, 5, 4, 4)):
        with pytest.raises(ValueError) as raised:
            Face(box=box)
        assert str(raised.value) == ("box must be 4 finite numbers (xmin, ymin, xmax, ymax) with xmin <= xmax "
                                     f"and ymin <= ymax, got {box!r}")
    # A box of no width is one clipped() makes of a box outside the frame (the detectors drop it after).
    assert Face(box=(700, 10, 720, 30)).clipped(640, 480).box == (640.0, 10.0, 640.0, 30.0)
    assert Face(box=np.array([1, 2, 3, 4], np.float32)).box == (1.0, 2.0, 3.0, 4.0)
    path = tmp_path / "detections.jsonl"
    path.write_text(json.dumps(frame_record(FACES[:1], 64, 48)).replace("[1.25, 2.5, 30.75", "[31, 2.5, 30.75") + "\n")
    with pytest.raises(ValueError, match=r"line 1: face 1: box must be .* got \(31, 2.5, 30.75, 40.0\)$"):
        list(read_detections(path))


def test_a_real_detect_runs_lines_are_read_back_whole(tmp_path, sample_dir):
    video = make_video(tmp_path / "clip.mp4", sample_dir, frames=4)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["detect", str(video), "--out", str(out), "--no-media", "--upscale", "1", "--quiet"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in (out / "detections.jsonl").read_text().splitlines()]
    frames = list(maskwatch.read_detections(out / "detections.jsonl"))
    assert [f.to_dict() for f in frames] == lines and len(frames) == 4
    assert [f.name for f in frames] == [f"clip-{i:06d}" for i in range(4)]
    faces = [face for f in frames for face in f.faces]
    assert faces and all(face.label in maskwatch.faces.PERSON_LABELS for face in faces)
    assert any(face.track_id is not None for face in faces)


def test_a_line_that_is_not_maskwatchs_is_named_by_file_and_line(tmp_path):
    good = json.dumps(frame_record(FACES[:1], 64, 48, frame=0, name="a", time=0.0))
    path = tmp_path / "detections.jsonl"

    def error(*lines: str) -> str:
        path.write_text("".join(lines))
        with pytest.raises(ValueError) as raised:
            list(read_detections(path))
        return str(raised.value)

    assert error(good + "\n", "{oops\n") == f"{path}, line 2: not JSON (Expecting property name enclosed in double " \
                                             "quotes); not a maskwatch detections.jsonl"
    assert error('{"label": "cat"}\n') == f"{path}, line 1: not a maskwatch frame: no 'counts', 'detected', " \
                                          "'faces', 'height', 'width'"
    assert error(good.replace('"with_mask", "probabilities"', '"cat", "probabilities"') + "\n") \
        .startswith(f"{path}, line 1: face 1: label must be one of")
    assert error(good.replace('"box": [', '"box": [9, ') + "\n") == \
        f"{path}, line 1: face 1: a face's box is 4 numbers (xmin, ymin, xmax, ymax), got [9, 1.25, 2.5, 30.75, 40.0]"
    assert "line 1: its counts" in error(good.replace('"with_mask": 1', '"with_mask": 2') + "\n")
    path.write_bytes(b"\x89PNG\r\n\x1a\n")
    with pytest.raises(ValueError, match=r"line 1: not JSON \(not UTF-8 text\)"):
        list(read_detections(path))
    # A last line a killed run cut short is left out; blank lines are passed over.
    path.write_text(good + "\n\n" + good + "\n" + good[:20])
    assert len(list(read_detections(path))) == 2


def test_a_file_from_before_unassessable_is_read():
    """Lines written before the `unassessable` label counted only the three classes: read_detections
    refused every one of them as counts that are not its faces'."""
    old = frame_record(FACES[:1], 64, 48, frame=0, name="a", time=0.0)
    del old["counts"]["unassessable"]
    assert list(FrameRecord.from_dict(old).faces) == FACES[:1]
    wrong = frame_record(FACES[:2], 64, 48)  # an unassessable face its counts leave out: still refused
    del wrong["counts"]["unassessable"]
    with pytest.raises(ValueError, match="are not those of its faces"):
        FrameRecord.from_dict(wrong)


def test_a_detect_runs_folder_given_for_its_lines_is_named(tmp_path):
    """read_detections("detections"), the run's folder: "[Errno 21] Is a directory: 'detections'"."""
    run = tmp_path / "detections"
    run.mkdir()
    with pytest.raises(IsADirectoryError, match=f"^{run}: a folder, not a detections.jsonl$"):
        list(read_detections(run))
    (run / "detections.jsonl").write_text(json.dumps(frame_record(FACES[:1], 64, 48, frame=0, name="a", time=0.0)) + "\n")
    with pytest.raises(IsADirectoryError, match=f"a folder, not a detections.jsonl \\(give {run / 'detections.jsonl'}\\)$"):
        list(read_detections(str(run)))

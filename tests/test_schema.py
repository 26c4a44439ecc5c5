"""One schema for a frame's faces and counts: `detect --json`, detections.jsonl and the HTTP API.

The HTTP side is checked against the same schema in test_serve.py (and by schemathesis).
"""

import json

import jsonschema
import pytest
from typer.testing import CliRunner

from maskwatch.cli import app
from maskwatch.faces import Face, frame_record, frame_schema
from tests.test_detection import make_video


@pytest.fixture(scope="module")
def validator():
    schema = frame_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_frame_record_is_valid_and_the_schema_is_strict(validator):
    face = Face(box=(1, 2, 30, 40), label="with_mask", probabilities=(0.9, 0.05, 0.05), score=0.8, track_id=3)
    validator.validate(frame_record([face], 640, 480))
    validator.validate(frame_record([face], 640, 480, frame=7, name="clip", time=0.28, detected=False))
    broken = frame_record([face], 640, 480)
    del broken["counts"]
    assert not validator.is_valid(broken)
    assert not validator.is_valid(frame_record([face], 640, 480) | {"extra": 1})
    assert not validator.is_valid(frame_record([face], 640, 480) | {"frame": 1})  # frame needs name and time


def test_detect_json_prints_exactly_the_lines_of_detections_jsonl(tmp_path, sample_dir, validator):
    video = make_video(tmp_path / "clip.mp4", sample_dir, frames=4)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["detect", str(video), "--out", str(out), "--json", "--detect-every", "2",
                                      "--upscale", "1", "--no-media"])
    assert result.exit_code == 0, result.output
    printed = [json.loads(line) for line in result.stdout.splitlines()]
    written = [json.loads(line) for line in (out / "detections.jsonl").read_text().splitlines()]
    assert printed == written and len(written) == 4
    assert [line["detected"] for line in printed] == [True, False, True, False]
    for line in printed:
        validator.validate(line)
        assert (line["width"], line["height"]) == (640, 480)


def test_detect_json_on_photos_matches_the_schema(tmp_path, sample_dir, validator):
    photo = min(sample_dir.glob("images/*.png"))
    result = CliRunner().invoke(app, ["detect", str(photo), "--out", str(tmp_path / "o"), "--json", "--quiet"])
    assert result.exit_code == 0, result.output
    (line,) = [json.loads(x) for x in result.stdout.splitlines()]
    validator.validate(line)
    assert line["detected"] is True and line["name"] == photo.stem and line["faces"]

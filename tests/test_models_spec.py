"""`Models`: the detector settings, classifier and gate a command runs, the same for `detect`,
`batch`, `serve`, `run` and the actors, and a missing file refused by name before anything starts."""

import json

import pytest
from typer.testing import CliRunner

from maskwatch.cli import app
from maskwatch.detection.detector import WEIGHTS, Models
from maskwatch.serving.app import ServeSettings

RUNNER = CliRunner()


def test_paths_are_made_absolute_and_survive_json(monkeypatch):
    monkeypatch.chdir(WEIGHTS)
    models = Models(detector="centerface.json", classifier="classifier.onnx", gate=False)
    assert models.detector == str(WEIGHTS / "centerface.json") and models.classifier == str(WEIGHTS / "classifier.onnx")
    settings = ServeSettings(**json.loads(ServeSettings(models=models).to_json()))  # what serve's workers read
    assert settings.models == models


def test_a_missing_file_is_named():
    with pytest.raises(FileNotFoundError, match="gone.onnx: no such classifier file"):
        Models(classifier="gone.onnx")


@pytest.mark.parametrize("command", [
    ["detect", "sample/face-mask-detection/images"],
    ["batch", "sample/face-mask-detection/images", "--out", "unused"],
    ["serve"],
    ["run", "--config", "SITE"],
    ["evaluate-detection", "sample/face-mask-detection"],
])
def test_every_command_takes_the_models_and_refuses_a_missing_one(command, tmp_path):
    if "SITE" in command:  # a valid site of one camera (the file is only checked to exist)
        (tmp_path / "door.mp4").write_bytes(b"")
        (tmp_path / "site.yaml").write_text("cameras:\n  door: {source: door.mp4}\n")
        command = [str(tmp_path / "site.yaml") if part == "SITE" else part for part in command]
    for option, name in (("--classifier", "classifier"), ("--detector", "detector")):
        missing = tmp_path / f"gone-{name}"
        result = RUNNER.invoke(app, [*command, option, str(missing)])
        assert result.exit_code == 1, result.output
        assert f"{missing}: no such {name} file" in result.output


def test_the_models_given_are_the_ones_a_worker_loads(monkeypatch):
    """What `serve`'s workers do: read ServeSettings from the environment and load its models."""
    from fastapi.testclient import TestClient

    from maskwatch.serving.app import SETTINGS_ENV, app_from_env

    models = Models(detector=str(WEIGHTS / "centerface.json"), classifier=str(WEIGHTS / "classifier.onnx"), gate=False)
    detector = models.load()
    assert detector.config.backend == "centerface" and detector.classifier.gate is None
    for given, gate in ((models, None), (Models(), "gate.onnx")):
        monkeypatch.setenv(SETTINGS_ENV, ServeSettings(models=given).to_json())
        health = TestClient(app_from_env()).get("/healthz").json()
        assert (health["gate"] or {}).get("file") == gate
        # the classifier by its file too: one of your own shares the shipped one's architecture (it said that alone)
        assert health["classifier"] == {"model": "effnet-lite0", "file": "classifier.onnx"}

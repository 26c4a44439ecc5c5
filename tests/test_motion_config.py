"""The site YAML's `motion:` and `detect_source:` settings: defaults, overrides, every error named."""

import pytest

from maskwatch.site.config import SiteConfigError, load_site_config
from maskwatch.site.events import EventStore
from maskwatch.site.runner import camera_worker


def write(tmp_path, text):
    (tmp_path / "clip.mp4").write_bytes(b"")
    (tmp_path / "sub.mp4").write_bytes(b"")
    path = tmp_path / "site.yaml"
    path.write_text(text)
    return path


def test_gating_is_on_by_default_and_can_be_turned_off(tmp_path):
    config = load_site_config(write(tmp_path, """
cameras:
  a: {source: clip.mp4}
  b: {source: clip.mp4, motion: {enabled: false}}
  c:
    source: clip.mp4
    detect_source: sub.mp4
    motion: {threshold: 40, contour_area: 25, full_check: 10, masks: [[[0, 0], [0.2, 0], [0.2, 0.1]]]}
"""))
    a, b, c = (config.cameras[k] for k in "abc")
    assert a.motion.enabled and a.motion.settings().full_check == 5.0 and a.detect_source is None
    assert b.motion.settings() is None
    settings = c.motion.settings()
    assert (settings.threshold, settings.contour_area, settings.full_check) == (40, 25, 10)
    assert settings.masks == (((0, 0), (0.2, 0), (0.2, 0.1)),)
    assert c.detect_source == str(tmp_path / "sub.mp4")  # relative to the config, as source is

    store = EventStore(str(tmp_path / "site.db"), tmp_path / "snaps")
    try:
        workers = {k: camera_worker(k, config.cameras[k], detector=None, store=store)[0] for k in "abc"}
        assert workers["a"].processor.motion is not None and workers["b"].processor.motion is None
        assert workers["c"].processor.motion.settings.threshold == 40
        assert workers["c"].reader.source == c.detect_source and workers["a"].reader.source == a.source
        assert all(w.reader.decode_on_request for w in workers.values())
    finally:
        store.close()


def test_defaults_may_set_motion(tmp_path):
    config = load_site_config(write(tmp_path, """
defaults: {motion: {full_check: 30}}
cameras:
  a: {source: clip.mp4}
"""))
    assert config.cameras["a"].motion.full_check == 30 and config.cameras["a"].motion.enabled


@pytest.mark.parametrize("camera, problem", [
    ("motion: {threshold: 0}", "camera 'a', field 'motion.threshold': Input should be greater than or equal to 1"),
    ("motion: {threshold: 300}", "camera 'a', field 'motion.threshold': Input should be less than or equal to 255"),
    ("motion: {contour_area: -1}", "camera 'a', field 'motion.contour_area': Input should be greater than 0"),
    ("motion: {full_check: 0}", "camera 'a', field 'motion.full_check': Input should be greater than 0"),
    ("motion: {masks: [[[0, 0], [1, 1]]]}", "camera 'a', field 'motion.masks': mask 0 needs at least 3 points, got 2"),
    ("motion: {masks: [[[0, 0], [1, 1], [2, 0]]]}", "camera 'a', field 'motion.masks.0.2.0': Input should be less than or equal to 1"),
    # a mask whose corners cross, or make no area, hid less than was meant, or nothing
    ("motion: {masks: [[[0, 0], [1, 1], [1, 0], [0, 1]]]}", "camera 'a', field 'motion.masks': mask 0 crosses itself"),
    ("motion: {masks: [[[0, 0], [0.5, 0.5], [1, 1]]]}", "camera 'a', field 'motion.masks': mask 0 has no area"),
    ("motion: {masks: [[[0, 0], [100, 0], [100, 100]]]}", "camera 'a', field 'motion.masks': mask 0: corners are in "
                                                         "0-1 of the frame's width and height, not pixels (got 100)"),
    ("motion: {treshold: 30}", "camera 'a', field 'motion.treshold': unknown setting (a typo?)"),
    ("motion: {enabled: maybe}", "camera 'a', field 'motion.enabled': Input should be a valid boolean"),
    ("detect_source: ftp://cam/sub", "camera 'a', field 'detect_source': stream URLs start with one of"),
    ("detect_source: missing.mp4", "camera 'a', field 'detect_source': no such video file"),
])
def test_bad_motion_and_detect_source_settings_are_named(tmp_path, camera, problem):
    with pytest.raises(SiteConfigError) as err:
        load_site_config(write(tmp_path, f"cameras:\n  a: {{source: clip.mp4, {camera}}}\n"))
    assert any(problem in line for line in err.value.problems), err.value.problems


def test_event_sink_keeps_only_the_newest_recorded_events(tmp_path):
    import numpy as np

    from maskwatch.site.event_sink import EventSink
    from maskwatch.video.tracker import Track

    store = EventStore(str(tmp_path / "site.db"), tmp_path / "snaps")
    try:
        sink = EventSink(store, "door", keep_recorded=2)
        people = [Track(i, (0, 0, 10, 10), first_seen=i, last_seen=i + 1, hits=3,
                        probability_sum=np.array([1.0, 0.0, 0.0])) for i in range(1, 6)]
        sink.write_people(people)
        assert sink.writer.settle()  # stored by the sink's writer, off this thread
        assert [e["track_id"] for e in sink.recorded] == [4, 5] and sink.recorded_total == 5
        assert len(store.events()) == 5  # the database keeps every one
    finally:
        store.close()
    with pytest.raises(ValueError, match="keep_recorded must be 0 or more, got -1"):
        EventSink(store, "door", keep_recorded=-1)


def test_execution_providers_come_from_the_config_and_fall_back_to_the_cpu(tmp_path, monkeypatch):
    import onnxruntime as ort
    from fastapi.testclient import TestClient

    from maskwatch import Detector
    from maskwatch import runtime
    from maskwatch.serving.app import create_app

    config = load_site_config(write(tmp_path, """
runtime: {providers: [CUDAExecutionProvider, CPUExecutionProvider]}
cameras:
  a: {source: clip.mp4}
"""))
    assert config.runtime.providers == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    monkeypatch.setattr(runtime, "_preferred", None)
    runtime.set_providers(config.runtime.providers)
    expected = [p for p in ("CUDAExecutionProvider",) if p in ort.get_available_providers()] + ["CPUExecutionProvider"]
    assert runtime.chosen_providers() == expected
    detector = Detector.load()
    health = TestClient(create_app(detector)).get("/healthz").json()
    assert health["providers"] == {"detector": expected, "classifier": expected}


def test_unknown_execution_providers_are_named(tmp_path, monkeypatch):
    from maskwatch import runtime

    with pytest.raises(SiteConfigError) as err:
        load_site_config(write(tmp_path, "runtime: {providers: [CudaProvider]}\ncameras:\n  a: {source: clip.mp4}\n"))
    assert any("field 'runtime.providers': unknown ONNX Runtime execution providers ['CudaProvider']" in line
               for line in err.value.problems), err.value.problems
    monkeypatch.setenv(runtime.PROVIDERS_ENV, "CPUExecutionProvider, Bogus")
    monkeypatch.setattr(runtime, "_preferred", None)
    with pytest.raises(ValueError, match=r"unknown ONNX Runtime execution providers \['Bogus'\]"):
        runtime.chosen_providers()


def test_run_check_shows_gating_and_the_substream(tmp_path):
    from typer.testing import CliRunner

    from maskwatch.cli import app

    path = write(tmp_path, """
cameras:
  a: {source: "rtsp://u:secret@cam/main", detect_source: "rtsp://u:secret@cam/sub"}
  b: {source: clip.mp4, motion: {enabled: false}}
""")
    result = CliRunner().invoke(app, ["run", "--config", str(path), "--check"])
    assert result.exit_code == 0, result.output
    assert "rtsp://u:***@cam/main (analysing rtsp://u:***@cam/sub)" in result.output
    assert "motion-gated, full check every 5 s" in result.output and "no gating" in result.output
    assert "secret" not in result.output

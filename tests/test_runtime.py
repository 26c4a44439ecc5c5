"""How a long-running site process runs: the malloc settings it starts with
(maskwatch.runtime.STEADY_MALLOC) and the trim that goes with them, one core per network call,
and no more calls at once than cores."""

import os
import platform
import subprocess
import sys

import pytest

from maskwatch.runtime import STEADY_MALLOC, PeriodicTrim, SharedSession, steady_malloc_env, usable_cores

# Prints the malloc settings the process was started with, once the command has parsed its options.
PROBE = ("import os, sys; from maskwatch import cli; cli.app = lambda: print({k: os.environ.get(k) for k in "
         f"{sorted(STEADY_MALLOC)!r}}}); sys.argv = ['maskwatch'] + sys.argv[1:]; cli.main()")


def without_steady_malloc(env: dict) -> dict:
    return {k: v for k, v in env.items() if k not in STEADY_MALLOC}


def probe(*args, env=None):
    env = without_steady_malloc(env or os.environ) | (env or {})
    done = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    return eval(done.stdout.strip().splitlines()[-1])  # a dict printed by the probe


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's settings")
def test_run_and_serve_restart_with_the_malloc_settings():
    assert probe("run", "--check") == STEADY_MALLOC
    assert probe("serve") == STEADY_MALLOC


def test_other_commands_and_settings_given_are_left_alone():
    assert probe("detect") == {k: None for k in STEADY_MALLOC}
    given = dict(os.environ) | {"MALLOC_ARENA_MAX": "4", "MALLOC_MMAP_THRESHOLD_": "65536"}
    assert probe("run", env=given) == {"MALLOC_ARENA_MAX": "4", "MALLOC_MMAP_THRESHOLD_": "65536"}
    assert steady_malloc_env({"MALLOC_ARENA_MAX": "8"}) == {
        "MALLOC_ARENA_MAX": "8", "MALLOC_MMAP_THRESHOLD_": STEADY_MALLOC["MALLOC_MMAP_THRESHOLD_"]}


# Under STEADY_MALLOC, 1 MB buffers (a frame's size) come from an arena; freed, they stay resident
# (holes between buffers still in use) until trim_free_memory() hands them back.
# Prints resident MB: allocated, freed, trimmed.
TRIM_PROBE = """
import numpy as np
from maskwatch.runtime import trim_free_memory
def rss():
    return int(open('/proc/self/statm').read().split()[1]) * 4096 / 2**20
frames, kept = [], []
for _ in range(300):  # each frame followed by a small buffer that stays: freed frames leave holes
    frames.append(np.ones(1_000_000, np.uint8))
    kept.append(np.ones(20_000, np.uint8))
allocated = rss()
del frames
freed = rss()
trim_free_memory()
print(allocated, freed, rss())
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc_trim")
def test_free_frames_go_back_to_the_system_when_trimmed():
    done = subprocess.run([sys.executable, "-c", TRIM_PROBE], capture_output=True, text=True, timeout=60,
                          env=steady_malloc_env(without_steady_malloc(os.environ)))
    assert done.returncode == 0, done.stderr
    allocated, freed, trimmed = map(float, done.stdout.split())
    assert freed > allocated - 50  # the arena keeps them: what the trim is for
    assert trimmed < freed - 250


def test_periodic_trim_runs_at_most_once_an_interval():
    trim = PeriodicTrim(every=3600)
    assert not trim.maybe()
    trim = PeriodicTrim(every=0)
    assert trim.maybe() and trim.maybe()


def test_a_site_runs_each_network_call_on_one_core(tmp_path, monkeypatch):
    """`run`'s cameras analyse in parallel threads, so a call needs no threads of its own."""
    import cv2
    from typer.testing import CliRunner

    import maskwatch.site.runner as runner
    from maskwatch.cli import app

    loaded = {}

    def stop_here(config, detector):
        loaded["detector"] = detector
        raise RuntimeError("stopped after loading the models")

    monkeypatch.setattr(runner, "Site", stop_here)
    (tmp_path / "door.mp4").write_bytes(b"")
    (tmp_path / "site.yaml").write_text("cameras:\n  door: {source: door.mp4}\n")
    threads = cv2.getNumThreads()
    try:
        result = CliRunner().invoke(app, ["run", "--config", str(tmp_path / "site.yaml")])
        assert "stopped after loading the models" in result.output
        assert cv2.getNumThreads() == 1
    finally:
        cv2.setNumThreads(threads)
    detector = loaded["detector"]
    for session in (detector.finder.session, detector.classifier.session, detector.classifier.gate.session):
        assert session.get_session_options().intra_op_num_threads == 1
        assert session.concurrent == usable_cores()  # one call a core, however many cameras


def test_a_shared_session_runs_no_more_calls_at_once_than_it_has_slots():
    """ONNX Runtime's arena keeps the memory of the most calls ever in flight together."""
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np

    from maskwatch.classifier import SHIPPED_GATE
    from maskwatch.runtime import cpu_session

    gate = cpu_session(SHIPPED_GATE, threads=1).session
    lock, in_flight, most = threading.Lock(), [0], [0]

    class CountedGate:
        """The gate's session, counting the calls inside it at once."""

        def run(self, *args):
            with lock:
                in_flight[0] += 1
                most[0] = max(most[0], in_flight[0])
            time.sleep(0.02)  # long enough for the other threads to pile up at the door
            try:
                return gate.run(*args)
            finally:
                with lock:
                    in_flight[0] -= 1

    shared = SharedSession(CountedGate(), 2)
    crop = {gate.get_inputs()[0].name: np.zeros([1, *gate.get_inputs()[0].shape[1:]], np.float32)}
    with ThreadPoolExecutor(8) as pool:
        outputs = list(pool.map(lambda _: shared.run(None, crop), range(16)))
    assert most[0] == 2
    assert len(outputs) == 16 and all(out[0].shape[0] == 1 for out in outputs)


def test_a_warning_held_back_is_counted_in_the_next_one(caplog):
    import logging

    from maskwatch.runtime import HeldBackLog

    # Held back within a minute however slow the machine (with every=0.2 s, a 0.2 s pause among the
    # four let one of them through), then that time made up, not slept out
    held = HeldBackLog(logging.getLogger("maskwatch.test"), every=60.0)
    for _ in range(4):
        held.warning("GET %s: the database failed", "/v1/events")
    held.every = 0.0
    held.warning("GET %s: the database failed", "/v1/cameras")
    assert [r.getMessage() for r in caplog.records if r.name == "maskwatch.test"] == [
        "GET /v1/events: the database failed",
        "GET /v1/cameras: the database failed (3 more like it since the last such line)"]


@pytest.mark.parametrize("at_start", [True, False])
def test_a_periodic_check_goes_on_after_failures_said_once_and_starts_as_asked(at_start, caplog):
    """The compliance checks and the report schedule share one loop: a failure is logged once and
    tried again, and only the reports check at the start (the one missed while the site was down)."""
    import logging
    import threading

    from maskwatch.runtime import Periodic, ProblemLog

    calls, third = [], threading.Event()

    def away():
        calls.append(1)
        if len(calls) >= 3:
            third.set()
        raise OSError("database away")

    # A check before the first wait, or none: with the stop asked for first, that wait ends at once.
    made = []
    first = Periodic(lambda: made.append(1), 600, "test-periodic-first",
                     ProblemLog(logging.getLogger("test.first"), "check failed"), at_start=at_start)
    first.stop()
    first.start()
    first.stop()  # joins it
    assert len(made) == at_start
    checks = Periodic(away, 0.3, "test-periodic", ProblemLog(logging.getLogger("test.periodic"), "check failed"),
                      at_start=at_start)
    with caplog.at_level(logging.WARNING, logger="test.periodic"):
        checks.start()
        try:
            assert third.wait(10)  # still checking after two failures
        finally:
            checks.stop()
    assert caplog.text.count("check failed: OSError: database away") == 1


def test_a_log_line_that_did_not_format_leaves_no_blank_line_after_it(capsys):
    """A write that failed (a full disk) may cut a line, and the next starts on a line of its own;
    a line that did not format ("%d" given text) wrote nothing, and the next line came after a blank one."""
    import logging

    from maskwatch.runtime import CurrentStderr

    logger = logging.getLogger("maskwatch.test.unformatted")
    handler = CurrentStderr()
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("%d people", "many")  # logging says it in a "--- Logging error ---" traceback
        logger.warning("frames analysed again")
    finally:
        logger.removeHandler(handler)
    said = capsys.readouterr().err
    assert "--- Logging error ---" in said and said.endswith("\nframes analysed again\n")
    assert "\n\nframes analysed again" not in said


@pytest.mark.parametrize("asked, kept", [(None, "1"), ("0", "0"), ("1", "1")])
def test_onnx_runtime_keeps_no_telemetry_unless_the_user_allows_it(tmp_path, asked, kept):
    """ONNX Runtime 1.32 on Linux wrote a device id and queued telemetry events (the process, the
    OS, the paths, each session) under ~/.cache/Microsoft for upload to Microsoft, from every
    maskwatch process: a camera site's machine reporting home without its owner's word. A user's
    own ORT_DISABLE_TELEMETRY is kept. (Whether ONNX Runtime writes anything once allowed depends on
    the machine, so an allowed run is checked by the variable it sees, not by files: CI wrote none.)"""
    env = {key: value for key, value in os.environ.items() if key != "ORT_DISABLE_TELEMETRY"}
    env["HOME"] = str(tmp_path)
    env.pop("XDG_CACHE_HOME", None)
    if asked is not None:
        env["ORT_DISABLE_TELEMETRY"] = asked
    code = ("import os, numpy as np; from maskwatch import Detector; "
            "Detector.load().detect(np.zeros((120, 160, 3), np.uint8)); print(os.environ['ORT_DISABLE_TELEMETRY'])")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == kept
    if kept == "1":
        assert not (tmp_path / ".cache" / "Microsoft").exists(), sorted(p.name for p in tmp_path.rglob("*"))

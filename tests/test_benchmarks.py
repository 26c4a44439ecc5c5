"""The benchmark scripts still run as BENCHMARKS.md and docs/bench-*.md tell a reader to run them,
each in its smallest form: no test ran most of them, and they broke when the code moved under them."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_benchmark(name: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """benchmarks/NAME.py as a reader runs it: its own process, from the repository's top."""
    return subprocess.run([sys.executable, str(ROOT / "benchmarks" / f"{name}.py"), *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=timeout, env={"PYTHONPATH": str(ROOT / "src"),
                                                                     "PATH": "/usr/bin:/bin"})


BENCHMARKS = sorted(p.stem for p in (ROOT / "benchmarks").glob("*.py"))


@pytest.fixture(scope="module")
def help_answers() -> dict:
    """Every script's --help, all in one process started as run_benchmark starts one (benchmarks_help.py
    says how each still runs as its own would): one start of Python and its imports, not one a script."""
    run = subprocess.run([sys.executable, str(ROOT / "tests" / "benchmarks_help.py"), str(ROOT), *BENCHMARKS],
                         capture_output=True, text=True, cwd=ROOT, timeout=600,
                         env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"})
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout.splitlines()[-1])


@pytest.mark.system  # starts a process that runs each script's --help
@pytest.mark.parametrize("name", BENCHMARKS)
def test_every_benchmark_answers_help(name, help_answers):
    """--help imports what the script imports at its top: a function moved out from under it
    fails here, before a reader's long run (test_docs reads the parsers without running them)."""
    run = help_answers[name]
    assert run["returncode"] == 0, run["stderr"]
    assert run["stdout"].startswith(f"usage: {name}.py")


@pytest.mark.system  # starts two `maskwatch serve` processes
def test_auth_speed_measures_a_session_and_a_token():
    """It started its session with AuthStore.start_session's old signature (no password hash)."""
    run = run_benchmark("auth_speed", "--seconds", "0.2", "--rounds", "1", "--threads", "1", "--verifies", "2",
                        "--logins", "2", "--checks", "100")
    assert run.returncode == 0, run.stderr
    rows = [line for line in run.stdout.splitlines() if line.startswith("| auth ")]
    assert [row.split(" | ")[0] for row in rows] == ["| auth off (loopback, no users)", "| auth on, session cookie",
                                                     "| auth on, API token"]


@pytest.mark.system  # starts the benchmark script as its own process
def test_photo_side_says_when_a_folder_is_too_small_for_a_mosaic():
    """The bundled sample holds 5 held-out photos, fewer than a mosaic's 9: min() of nothing crashed."""
    run = run_benchmark("photo_side", "sample/face-mask-detection", "--sides", "800")
    assert run.returncode == 2
    assert run.stderr.splitlines()[-1].endswith("has 5 held-out photos; a mosaic takes 9")


@pytest.mark.system  # serves an RTSP stream and runs a site of one camera on it
def test_site_capacity_reads_a_cameras_last_problem():
    """It read CameraWorker.last_error, which became problems.last (ProblemLog): every run crashed."""
    run = run_benchmark("site_capacity", "quiet", "--cameras", "1", "--variants", "gated", "--warmup", "1",
                        "--seconds", "2")
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[-1].startswith("gated             1 cameras: kept up ")  # 1/1 unless the machine is busy


@pytest.mark.system  # starts the benchmark script as its own process
def test_batch_ab_scores_photos_as_batch_does():
    run = run_benchmark("batch_ab", "--limit", "2")
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("2 photos: ") and " faces; load " in run.stdout and "failed" not in run.stdout


@pytest.mark.system  # starts the benchmark script as its own process
def test_stream_timeouts_asks_for_pyav_before_it_starts():
    """Without PyAV it measured OpenCV for a while, then ended in a ModuleNotFoundError."""
    if importlib.util.find_spec("av") is not None:
        pytest.skip("PyAV is installed here: the benchmark would run")
    run = run_benchmark("stream_timeouts", "--repeats", "1", "--timeout", "1", timeout=60)
    assert run.returncode == 2
    assert run.stderr.splitlines()[-1].endswith("PyAV is not installed: pip install av (it is what this compares "
                                                "OpenCV with, not a dependency)")
    assert run.stdout == ""


@pytest.mark.system  # starts the benchmark script as its own process
def test_shown_labels_says_when_no_face_can_be_swapped_in():
    """The bundled sample's held-out photos have no large bare face to put in for a masked one:
    numpy's 'high <= 0' from deep in the clip maker."""
    run = run_benchmark("shown_labels", "sample/face-mask-detection", "--before", "0eb300d", "--clips", "1")
    assert run.returncode == 2
    assert run.stderr.splitlines()[-1].endswith("have no face of 32 px or more labelled without_mask")


@pytest.mark.system  # starts the benchmark script as its own process
def test_night_frames_measures_every_kind_of_frame_on_held_out_photos():
    run = run_benchmark("night_frames", "sample/face-mask-detection", "--photos", "2")
    assert run.returncode == 0, run.stderr
    rows = [line.split(" | ")[0] for line in run.stdout.splitlines() if line.startswith("| ") and "---" not in line]
    assert rows == ["| frames", "| colour", "| grey", "| night", "| glare"]

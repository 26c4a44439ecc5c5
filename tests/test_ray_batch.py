"""`maskwatch batch` on a real 2-CPU local Ray cluster: every output equals `maskwatch detect` run
file by file, a re-run skips finished files, and a corrupt file is reported while the rest finish."""

import contextlib
import glob
import json
import os
import shutil
import signal
import socket
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from maskwatch.cli import app
import maskwatch
from maskwatch.detection.detector import Models
from maskwatch.scale import batch as batch_module
from maskwatch.scale.batch import ACTOR_CPU_SHARE, ACTOR_RETRIES, run_batch
from maskwatch.scale.cluster import ClusterError, check_reachable, cpus_each, refuses_connections
from maskwatch.scale.files import BatchInputError, ScoreOptions, find_files
from tests.conftest import usage_error
from tests.test_cameras import wait_until
from tests.test_detection import make_video

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, sample_dir) -> Path:
    """Three sample photos, a corrupt one and a 6-frame clip in a nested folder: with two actors,
    a call of two photos each."""
    folder = tmp_path_factory.mktemp("batch") / "in"
    (folder / "clips").mkdir(parents=True)
    for photo in sorted(sample_dir.glob("images/*.png"))[:3]:
        shutil.copy(photo, folder)
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    make_video(folder / "clips" / "till.mp4", sample_dir, frames=6)
    return folder


@pytest.fixture(scope="module")
def sequential(inputs, tmp_path_factory) -> Path:
    """`maskwatch detect FILE --out SEQ/<key>` for each good file, one after the other."""
    seq = tmp_path_factory.mktemp("sequential")
    for file in find_files([inputs]):
        if file.key != "broken.png":
            result = CliRunner().invoke(app, ["detect", file.path, "--out", str(seq / file.key), "--quiet"])
            assert result.exit_code == 0, result.output
    return seq


def tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def batch(*args: str):
    return CliRunner().invoke(app, ["batch", *args, "--quiet"])


@pytest.fixture(scope="module")
def batched(cluster, inputs, tmp_path_factory):
    """One batch of `inputs` with two actors, and its output folder: the tests that re-run a batch
    start from a copy of it (each batch's actors load the models afresh, seconds a batch)."""
    out = tmp_path_factory.mktemp("batched") / "out"
    return batch(str(inputs), "--out", str(out), "--actors", "2"), out


def copy_of(out: Path, tmp_path: Path) -> Path:
    """A copy of a batch's output folder, its files' times kept (copy2)."""
    return Path(shutil.copytree(out, tmp_path / "out"))


def test_batch_equals_detect_file_by_file_and_reports_the_corrupt_file(batched, sequential):
    result, out = batched
    assert result.exit_code == 1, result.output  # one file failed
    assert "broken.png: not a readable image" in result.output
    assert "5 files: 4 done, 0 already done, 1 failed (2 actors" in result.output
    summary = json.loads((out / "batch.json").read_text())
    assert (summary["done"], summary["skipped"], summary["failed"]) == (4, 0, 1)
    failed = [row for row in summary["results"] if row["status"] == "failed"]
    assert [row["output"] for row in failed] == ["broken.png"]
    assert "not a readable image" in failed[0]["error"]
    video = next(row for row in summary["results"] if row["output"] == "clips/till.mp4")
    assert video["frames"] == 6 and video["faces"] > 0

    outputs = tree(out)
    del outputs["batch.json"]
    expected = tree(sequential)
    assert sorted(outputs) == sorted(expected)  # no output at all for the corrupt file, nothing partial
    assert {"clips/till.mp4/detections.jsonl", "clips/till.mp4/summary.json", "clips/till.mp4/till.mp4"} <= set(expected)
    for name, data in expected.items():
        assert outputs[name] == data, name  # byte for byte: JSON lines, summaries, annotated media


def test_a_rerun_skips_finished_files_and_redoes_missing_ones(batched, inputs, sequential, tmp_path):
    assert batched[0].exit_code == 1
    out = copy_of(batched[1], tmp_path)
    first = min((f for f in find_files([inputs]) if f.kind == "photo" and f.key != "broken.png"), key=lambda f: f.key)
    kept = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and first.key not in str(p)}
    shutil.rmtree(out / first.key)

    result = batch(str(inputs), "--out", str(out))
    assert result.exit_code == 1 and "5 files: 1 done, 3 already done, 1 failed" in result.output
    assert {p: p.stat().st_mtime_ns for p in kept if p.name != "batch.json"} == \
        {p: t for p, t in kept.items() if p.name != "batch.json"}  # finished files untouched
    assert tree(out / first.key) == tree(sequential / first.key)
    summary = json.loads((out / "batch.json").read_text())
    assert (summary["done"], summary["skipped"], summary["failed"]) == (1, 3, 1)
    skipped = [row for row in summary["results"] if row["status"] == "skipped"]
    assert all("frames" in row and "faces" in row for row in skipped)  # the earlier run's figures kept
    assert not summary["interrupted"]


def test_a_batch_stopped_part_way_records_what_it_scored(tmp_path, sample_dir, monkeypatch):
    photos = sorted(sample_dir.glob("images/*.png"))[:3]

    def two_then_ctrl_c(files, out, options, actors, size):
        for f in files[:2]:
            yield {"file": f.path, "output": f.key, "status": "done", "frames": 1, "faces": 2, "error": "",
                   "warnings": []}
        # the third finished too, in a call whose rows had not come back (rows come a call at a time)
        (out / files[2].key).mkdir(parents=True)
        (out / files[2].key / "detections.jsonl").write_text(json.dumps({"frame": 0, "faces": [{}, {}, {}]}) + "\n")
        raise KeyboardInterrupt

    monkeypatch.setattr(batch_module, "_scored", two_then_ctrl_c)
    monkeypatch.setattr(batch_module, "ray_cluster", lambda address: contextlib.nullcontext())
    monkeypatch.setattr(batch_module, "cluster_cpus", lambda: 1)
    with pytest.raises(KeyboardInterrupt):
        batch_module.run_batch([str(p) for p in photos], tmp_path / "out", progress=False)
    summary = json.loads((tmp_path / "out" / "batch.json").read_text())
    assert summary["interrupted"] and summary["done"] == 3  # was 2: a re-run skipped a file batch.json lacked
    assert [row["file"] for row in summary["results"]] == [str(p.resolve()) for p in photos]
    assert (summary["results"][2]["frames"], summary["results"][2]["faces"]) == (1, 3)  # read back


def test_sigterm_stops_a_batch_as_ctrl_c_does(tmp_path, sample_dir):
    """ray.init took SIGTERM for Ray's crash handler: `timeout` or `docker stop` aborted the batch
    (exit 134) with no batch.json and its temp folders left, where cli.md promises exit 130.
    The batch's own local cluster (the one test here of a `batch` that starts one) goes with it."""
    import subprocess
    import sys

    out = tmp_path / "out"
    command = [sys.executable, "-c", "from maskwatch.cli import main; main()", "batch",
               str(sample_dir / "images"), "--out", str(out), "--actors", "1", "--quiet"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    while len(glob.glob(str(out / "*.png"))) < 2 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
    cluster = descendants(process.pid)  # its GCS, raylet, workers...
    os.kill(process.pid, signal.SIGTERM)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 130 and "stopped by Ctrl-C or SIGTERM" in output, (process.returncode, output)
    assert len(cluster) > 3 and wait_until(lambda: not alive(cluster), 20), alive(cluster)
    summary = json.loads((out / "batch.json").read_text())
    finished = sorted(p.name for p in out.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert summary["interrupted"] and 2 <= summary["done"] < 40
    assert sorted(row["output"] for row in summary["results"] if row["status"] == "done") == finished


def test_a_rerun_without_batch_json_reads_the_figures_back(batched, inputs, tmp_path):
    """A driver that died (Ray ends it 60 s after its cluster is lost) writes no batch.json: the
    re-run skipped its files with null frames and faces."""
    assert batched[0].exit_code == 1
    out = copy_of(batched[1], tmp_path)
    first = json.loads((out / "batch.json").read_text())["results"]
    (out / "batch.json").unlink()
    assert batch(str(inputs), "--out", str(out)).exit_code == 1  # broken.png fails again, alone
    again = json.loads((out / "batch.json").read_text())["results"]
    assert [(r["file"], r["frames"], r["faces"]) for r in again if r["status"] == "skipped"] == \
        [(r["file"], r["frames"], r["faces"]) for r in first if r["status"] == "done"]


def descendants(pid: int) -> list[int]:
    """The processes below `pid` (Ray's workers of a cluster this process started), from /proc."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
    found, todo = [], [pid]
    while todo:
        above = todo.pop()
        children = [child for child, parent in parents.items() if parent == above]
        found += children
        todo += children
    return found


def alive(pids) -> set[int]:
    """Those of `pids` still running (a zombie, ended but not yet reaped, is not)."""
    running = set()
    for pid in pids:
        with contextlib.suppress(OSError, IndexError):
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                running.add(pid)
    return running


def kill_actor_on(out: Path, name: str, stop: threading.Event, kills: list[int], most: int) -> None:
    """kill -9 the batch's actor (as the kernel's OOM killer would) each time it starts on `name`."""
    seen = set(glob.glob(f"{out}/.{name}.*.partial"))  # an earlier run's leftover: not an attempt
    while not stop.is_set() and len(kills) < most:
        new = set(glob.glob(f"{out}/.{name}.*.partial")) - seen
        if new:
            seen |= new
            for pid in descendants(os.getpid()):
                with contextlib.suppress(OSError):
                    if "FileScorer)).submit" in Path(f"/proc/{pid}/cmdline").read_text():  # the one at work
                        os.kill(pid, signal.SIGKILL)
                        kills.append(pid)
        time.sleep(0.01)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds Ray's workers in /proc")
def test_a_file_that_kills_its_actor_each_time_fails_alone(cluster, inputs, tmp_path, monkeypatch):
    """Ray Data retried a call whose actor died for ever: a photo too big for the worker's memory
    kept the batch going for ever. Now it fails after ACTOR_RETRIES, alone: the photos of its call
    are scored (again, one per call), and its earlier runs' leftovers are removed. With one retry,
    not the shipped ACTOR_RETRIES (2): each retry is an actor restarted, its models loaded, seconds
    on 2 cores; one shows that the count is kept as well as two."""
    retries = 1
    assert ACTOR_RETRIES > retries
    monkeypatch.setattr(batch_module, "ACTOR_RETRIES", retries)
    folder = tmp_path / "in"
    folder.mkdir()
    good = sorted(inputs.glob("maks*.png"))[:2]
    shutil.copy(good[0], folder / "a.png")
    shutil.copy(good[1], folder / "c.png")
    rng = np.random.default_rng(0)
    cv2.imwrite(str(folder / "b.png"), rng.integers(0, 255, (2500, 2500, 3), dtype=np.uint8))  # slow to decode
    out = tmp_path / "out"
    (out / ".b.png.earlier.partial").mkdir(parents=True)  # what an earlier Ctrl-C left
    stop, kills = threading.Event(), []
    killer = threading.Thread(target=kill_actor_on, args=(out, "b.png", stop, kills, 2 * (retries + 1) + 2))
    killer.start()
    try:
        result = batch(str(folder), "--out", str(out), "--actors", "1")
    finally:
        stop.set()
        killer.join()
    assert result.exit_code == 1, result.output
    assert len(kills) == 2 * (retries + 1)  # in its call of three, then alone
    rows = {row["output"]: row for row in json.loads((out / "batch.json").read_text())["results"]}
    assert rows["b.png"]["status"] == "failed" and f"died {retries + 1} times" in rows["b.png"]["error"]
    assert [(rows[k]["status"], rows[k]["frames"]) for k in ("a.png", "c.png")] == [("done", 1), ("done", 1)]
    assert (out / "a.png").is_dir() and (out / "c.png").is_dir() and not (out / "b.png").exists()
    assert not list(out.glob(".*.partial"))  # the earlier run's leftover, and this run's killed attempts'


def test_actors_that_cannot_load_the_models_stop_the_batch_in_one_line(cluster, inputs, tmp_path):
    """A classifier file missing where the actors run (another node of the cluster) ended `batch`
    with pages of Ray's traceback."""
    classifier = tmp_path / "classifier.onnx"
    shutil.copy(Path(maskwatch.__file__).parent / "weights" / "classifier.onnx", classifier)
    options = ScoreOptions(models=Models(classifier=str(classifier)))
    classifier.unlink()  # as on a node that lacks it
    with pytest.raises(ClusterError, match=r"the batch stopped: FileNotFoundError: .*classifier.onnx: classifier "
                                           r"model not found; the files scored so far are in .*batch.json$"):
        run_batch([min(inputs.glob("maks*.png"))], tmp_path / "out", options, progress=False)
    assert json.loads((tmp_path / "out" / "batch.json").read_text())["interrupted"]


def test_an_output_folder_that_cannot_be_made_stops_the_batch_before_scoring(cluster, inputs, tmp_path):
    """Every file failed on its actor (models loaded in each) before the error came out."""
    (tmp_path / "a-file").write_text("")
    result = batch(str(inputs), "--out", str(tmp_path / "a-file" / "out"))
    assert result.exit_code == 1 and "cannot make the output folder" in result.output, result.output


def test_a_second_batch_into_the_same_output_folder_is_refused(cluster, inputs, tmp_path):
    """It removed the first's unfinished folders as leftovers and wrote batch.json over the first's."""
    import fcntl

    out = tmp_path / "out"
    out.mkdir()
    (out / "batch.json").write_text("the first batch's")
    first = os.open(out, os.O_RDONLY)  # a batch under way holds the folder
    try:
        fcntl.flock(first, fcntl.LOCK_EX | fcntl.LOCK_NB)
        result = batch(str(min(inputs.glob("maks*.png"))), "--out", str(out))
    finally:
        os.close(first)
    assert result.exit_code == 1 and "another maskwatch batch is writing here" in result.output, result.output
    assert (out / "batch.json").read_text() == "the first batch's"
    photo = min(inputs.glob("maks*.png"))
    result = batch(str(photo), "--out", str(out))  # once it has ended; only good files: exit code 0
    assert result.exit_code == 0, result.output
    assert (out / photo.name / f"{photo.stem}.jpg").is_file()


def test_a_folder_that_takes_no_lock_is_scored_unlocked(cluster, inputs, tmp_path, monkeypatch):
    """NFS, where a cluster's shared --out lies, emulates flock with a write lock that a folder
    opened read-only cannot hold (EBADF): every batch there was refused as a second batch."""
    import errno
    import fcntl

    def no_lock_here(fd, operation):
        raise OSError(errno.EBADF, os.strerror(errno.EBADF))

    monkeypatch.setattr(fcntl, "flock", no_lock_here)
    result = batch(str(min(inputs.glob("maks*.png"))), "--out", str(tmp_path / "out"))
    assert result.exit_code == 0 and "another maskwatch batch" not in result.output, result.output
    assert json.loads((tmp_path / "out" / "batch.json").read_text())["done"] == 1


@pytest.mark.parametrize("make, message", [
    (lambda d: d / "missing", "no such file or folder"),
    (lambda d: d, "folder holds no photos or videos"),
])
def test_bad_inputs_stop_before_anything_is_written(tmp_path, make, message):
    (tmp_path / "notes.txt").write_text("not a photo")
    result = batch(str(make(tmp_path)), "--out", str(tmp_path / "out"))
    assert result.exit_code == 1 and message in result.output
    # An option out of its range is a usage error (exit 2, named as typed), said before the inputs
    # are read: --actors 0 was exit 1, which docs/cli.md gives to bad input.
    for option in ("--detect-every", "--actors"):
        result = batch(str(make(tmp_path)), "--out", str(tmp_path / "out"), option, "0")
        assert result.exit_code == 2, result.output
        assert usage_error(result.output) == f"Invalid value for '{option}': must be at least 1, got 0"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("source, said", [
    ("rtsp://admin:secret@cam.local/live", "rtsp://admin:***@cam.local/live: a live stream, which never ends"),
    ("webcam:0", "webcam:0: a webcam, which never ends"),
])
def test_a_live_source_is_refused_by_name_with_where_it_is_read(tmp_path, source, said):
    """`batch rtsp://admin:secret@cam/live` said `rtsp:/admin:secret@cam/live: no such file or
    folder`: the URL bent into a path, and the camera's password on the terminal."""
    result = batch(source, "--out", str(tmp_path / "out"))
    assert result.exit_code == 1 and said in result.output and "maskwatch detect URL" in result.output, result.output
    assert "secret" not in result.output and not (tmp_path / "out").exists()


def test_two_files_one_output_folder_is_refused(tmp_path, sample_dir):
    photo = min(sample_dir.glob("images/*.png"))
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        shutil.copy(photo, tmp_path / sub)
    with pytest.raises(BatchInputError, match="would both write"):
        find_files([tmp_path / "a", tmp_path / "b"])


def test_the_output_folder_inside_an_input_folder_is_not_read_as_input(tmp_path, sample_dir):
    photo = min(sample_dir.glob("images/*.png"))
    shutil.copy(photo, tmp_path / "x.png")
    (tmp_path / "out" / "x.png").mkdir(parents=True)  # a first run's annotated copy: OUT/x.png/x.jpg
    shutil.copy(photo, tmp_path / "out" / "x.png" / "x.jpg")
    assert [f.key for f in find_files([tmp_path], tmp_path / "out")] == ["x.png"]
    with pytest.raises(BatchInputError, match="is the output folder .* or inside it"):  # batch photos --out photos
        find_files([tmp_path], tmp_path)


def test_the_copies_a_detect_run_wrote_into_an_input_folder_are_passed_over_as_detect_passes_them(tmp_path, sample_dir):
    """After `detect photos --out photos`, batch read the annotated copies as photos of their own
    (each photo scored twice), where detect itself passes them over: one rule, one warning."""
    photos = tmp_path / "photos"
    (photos / "more").mkdir(parents=True)
    for photo in sorted(sample_dir.glob("images/*.png"))[:2]:
        shutil.copy(photo, photos)
    shutil.copy(min(sample_dir.glob("images/*.png")), photos / "more" / "z.png")
    result = CliRunner().invoke(app, ["detect", str(photos), "--out", str(photos), "--quiet"])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(app, ["detect", str(photos / "more"), "--out", str(photos / "more"), "--quiet"])
    assert result.exit_code == 0, result.output
    copies = sorted(p.name for p in photos.glob("*.jpg"))
    assert len(copies) == 2  # the annotated copies beside the photos
    warnings: list[str] = []
    keys = [f.key for f in find_files([photos], tmp_path / "out", warnings)]
    assert keys == sorted(p.name for p in sample_dir.glob("images/*.png"))[:2] + ["more/z.png"]
    assert warnings == [f"{photos}: 3 files an earlier detect wrote here passed over ({copies[0]}, ...): "
                        "its annotated copies are not photos"]
    only_copies = tmp_path / "copies"
    only_copies.mkdir()
    (only_copies / "a.jpg").write_bytes((photos / copies[0]).read_bytes())
    (only_copies / ".maskwatch-detect.json").write_text('["a.jpg"]')
    with pytest.raises(BatchInputError, match="holds no photos or videos .*1 file an earlier detect wrote here"):
        find_files([only_copies])


def test_a_file_whose_output_folder_holds_another_files_outputs_is_not_skipped_as_done(tmp_path, sample_dir):
    """find_files says to score two files of one name in separate runs: the second run with the same
    --out reported the second as "already done" and never scored it."""
    photo = min(sample_dir.glob("images/*.png"))
    for sub in ("d1", "d2"):
        (tmp_path / sub).mkdir()
        shutil.copy(photo, tmp_path / sub / "x.png")
    out = tmp_path / "out"
    (out / "x.png").mkdir(parents=True)  # what the first run (batch d1/x.png) left
    first = str((tmp_path / "d1" / "x.png").resolve())
    (out / "batch.json").write_text(json.dumps({"results": [{"file": first, "output": "x.png", "status": "done",
                                                             "frames": 1, "faces": 3, "error": "", "warnings": []}]}))
    result = batch(str(tmp_path / "d2" / "x.png"), "--out", str(out))
    assert result.exit_code == 1 and f"OUT/x.png holds the outputs of {first}" in result.output, result.output
    (row,) = json.loads((out / "batch.json").read_text())["results"]
    assert row["status"] == "failed" and row["frames"] is None
    result = batch(str(tmp_path / "d1" / "x.png"), "--out", str(out))  # its own file is still skipped, figures kept
    (row,) = json.loads((out / "batch.json").read_text())["results"]
    assert result.exit_code == 0 and (row["status"], row["faces"]) == ("skipped", 3)


@pytest.mark.parametrize("address, message", [
    ("127.0.0.1:1", "cannot reach a Ray cluster at 127.0.0.1:1"),
    ("nonsense", "expected HOST:PORT"),
])
def test_a_bad_ray_address_is_named_at_once(address, message, tmp_path, sample_dir):
    with pytest.raises(ClusterError, match=message):
        check_reachable(address, timeout=2)
    result = batch(str(min(sample_dir.glob("images/*.png"))), "--out", str(tmp_path / "out"), "--ray", address)
    assert result.exit_code == 1 and message in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("answer", [None, b"HTTP/1.1 400 Bad Request\r\n\r\n"])
def test_an_address_where_something_else_listens_is_named_at_once(answer, tmp_path, sample_dir):
    """Something listening that is not Ray's GCS (the dashboard's 8265 given for the GCS port):
    ray.init retried it for minutes, printing a warning every few seconds."""
    server = socket.create_server(("127.0.0.1", 0))
    address = f"127.0.0.1:{server.getsockname()[1]}"

    def answer_each():
        with contextlib.suppress(OSError):
            while True:
                conn, _ = server.accept()
                conn.recv(100)
                conn.sendall(answer)
                conn.close()

    if answer is not None:  # None: a silent listener (the kernel accepts; nothing answers)
        threading.Thread(target=answer_each, daemon=True).start()
    try:  # the command's own check_reachable (5 s for a silent listener) is the one asked
        result = batch(str(min(sample_dir.glob("images/*.png"))), "--out", str(tmp_path / "out"), "--ray", address)
        # Said by check_reachable alone, which raises before ray.init is called (its minutes of retries)
        assert result.exit_code == 1 and "answers, but not as a Ray cluster" in result.output
        assert not (tmp_path / "out").exists()
    finally:
        server.close()


@pytest.mark.parametrize("env, message", [
    ({}, "the Ray cluster at {} asks for a token: set RAY_AUTH_MODE=token, with"),
    ({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "not-this-clusters-token"},
     "the Ray cluster at {} refused this machine's token: put"),
    ({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": "/nonexistent"}, "cannot join the Ray cluster at {}: "
     "RAY_AUTH_TOKEN_PATH is set but file cannot be opened or is empty: /nonexistent; put"),
])
def test_a_cluster_that_asks_for_a_token_is_named_at_once(cluster, env, message, tmp_path, sample_dir):
    """A cluster Ray 2.60 starts asks for a token (this module's, as `ray start --head` where
    ~/.ray/auth_token exists), and a driver given its address sends one only with
    RAY_AUTH_MODE=token: without it, or with another token, ray.init retried for 20 s, a warning a
    second, and ended in "Failed to connect to Ray cluster"; a RAY_AUTH_TOKEN_PATH naming no file
    ended in Ray's traceback. Its own process: Ray reads the mode and the token once a process."""
    import subprocess
    import sys

    if os.environ.get("RAY_AUTH_MODE") != "token":
        pytest.skip("the module's cluster asks for no token (RAY_AUTH_MODE is set otherwise)")
    address = ray.get_runtime_context().gcs_address
    command = [sys.executable, "-c", "from maskwatch.cli import main; main()", "batch",
               str(min(sample_dir.glob("images/*.png"))), "--out", str(tmp_path / "out"), "--ray", address]
    clean = {name: value for name, value in os.environ.items() if not name.startswith("RAY_AUTH")}
    done = subprocess.run(command, env=clean | env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    assert done.stderr.splitlines() == [f"error: {message.format(address)} the head's token (`ray get-auth-token` "
                                        "there prints it) in RAY_AUTH_TOKEN, in a file named by "
                                        "RAY_AUTH_TOKEN_PATH or in ~/.ray/auth_token"]
    assert not (tmp_path / "out").exists()


def test_a_clusters_own_address_passes_the_check(cluster):
    check_reachable(ray.get_runtime_context().gcs_address, timeout=5)


def test_only_a_gcs_that_is_gone_is_taken_for_gone(cluster):
    """`serve --ray-replicas` stops waiting for serve.shutdown once its cluster's GCS refuses
    connections (a stop signal to the process group ended it): the stop took 16 s, past
    `docker stop`'s 10. A silent listener, or a name, is not taken for gone."""
    assert not refuses_connections(ray.get_runtime_context().gcs_address)
    with socket.create_server(("127.0.0.1", 0)) as server:
        address = f"127.0.0.1:{server.getsockname()[1]}"
        assert not refuses_connections(address)
    assert refuses_connections(address)  # closed now: nothing listens there
    assert not refuses_connections("auto")


def test_actors_leave_a_cpu_share_for_ray_data():
    assert cpus_each(1, ACTOR_CPU_SHARE, cpus=2.0) == 1.0
    assert cpus_each(2, ACTOR_CPU_SHARE, cpus=2.0) == pytest.approx(ACTOR_CPU_SHARE)
    assert 4 * cpus_each(4, ACTOR_CPU_SHARE, cpus=2.0) < 2.0

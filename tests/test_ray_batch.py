"""`maskwatch batch` on a real 2-CPU local Ray cluster: every output equals `maskwatch detect` run
file by file, a re-run skips finished files, and a corrupt file is reported while the rest finish."""

import contextlib
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from maskwatch.cli import app
from maskwatch.scale.batch import ACTOR_CPU_SHARE
from maskwatch.scale.cluster import ClusterError, check_reachable, cpus_each
from maskwatch.scale.files import BatchInputError, find_files
from tests.test_detection import make_video

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def cluster():
    """Two worker CPUs, as the batch's actors would get on a small machine; shut down after."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, sample_dir) -> Path:
    """Five sample photos, a corrupt one and a 6-frame clip in a nested folder."""
    folder = tmp_path_factory.mktemp("batch") / "in"
    (folder / "clips").mkdir(parents=True)
    for photo in sorted(sample_dir.glob("images/*.png"))[:5]:
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


def test_batch_equals_detect_file_by_file_and_reports_the_corrupt_file(cluster, inputs, sequential, tmp_path):
    out = tmp_path / "out"
    result = batch(str(inputs), "--out", str(out), "--actors", "2")
    assert result.exit_code == 1, result.output  # one file failed
    assert "broken.png: not a readable image" in result.output
    assert "7 files: 6 done, 0 already done, 1 failed (2 actors" in result.output
    summary = json.loads((out / "batch.json").read_text())
    assert (summary["done"], summary["skipped"], summary["failed"]) == (6, 0, 1)
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


def test_a_rerun_skips_finished_files_and_redoes_missing_ones(cluster, inputs, sequential, tmp_path):
    out = tmp_path / "out"
    assert batch(str(inputs), "--out", str(out)).exit_code == 1
    first = min((f for f in find_files([inputs]) if f.kind == "photo" and f.key != "broken.png"), key=lambda f: f.key)
    kept = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and first.key not in str(p)}
    shutil.rmtree(out / first.key)

    result = batch(str(inputs), "--out", str(out))
    assert result.exit_code == 1 and "7 files: 1 done, 5 already done, 1 failed" in result.output
    assert {p: p.stat().st_mtime_ns for p in kept if p.name != "batch.json"} == \
        {p: t for p, t in kept.items() if p.name != "batch.json"}  # finished files untouched
    assert tree(out / first.key) == tree(sequential / first.key)
    summary = json.loads((out / "batch.json").read_text())
    assert (summary["done"], summary["skipped"], summary["failed"]) == (1, 5, 1)
    skipped = [row for row in summary["results"] if row["status"] == "skipped"]
    assert all("frames" in row and "faces" in row for row in skipped)  # the earlier run's figures kept
    assert not summary["interrupted"]


def test_a_batch_stopped_part_way_records_what_it_scored(tmp_path, sample_dir, monkeypatch):
    from maskwatch.scale import batch as batch_module

    photos = sorted(sample_dir.glob("images/*.png"))[:3]

    def two_then_ctrl_c(files, out, options, actors, size):
        for f in files[:2]:
            yield {"file": f.path, "output": f.key, "status": "done", "frames": 1, "faces": 2, "error": "",
                   "warnings": []}
        raise KeyboardInterrupt

    monkeypatch.setattr(batch_module, "_scored", two_then_ctrl_c)
    monkeypatch.setattr(batch_module, "ray_cluster", lambda address: contextlib.nullcontext())
    monkeypatch.setattr(batch_module, "cluster_cpus", lambda: 1)
    with pytest.raises(KeyboardInterrupt):
        batch_module.run_batch([str(p) for p in photos], tmp_path / "out", progress=False)
    summary = json.loads((tmp_path / "out" / "batch.json").read_text())
    assert summary["interrupted"] and summary["done"] == 2
    assert [row["file"] for row in summary["results"]] == [str(p.resolve()) for p in photos[:2]]


def test_only_good_files_exit_zero(cluster, inputs, tmp_path):
    photo = min(inputs.glob("maks*.png"))
    result = batch(str(photo), "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / photo.name / f"{photo.stem}.jpg").is_file()


@pytest.mark.parametrize("make, message", [
    (lambda d: d / "missing", "no such file or folder"),
    (lambda d: d, "folder holds no photos or videos"),
])
def test_bad_inputs_stop_before_anything_is_written(tmp_path, make, message):
    (tmp_path / "notes.txt").write_text("not a photo")
    result = batch(str(make(tmp_path)), "--out", str(tmp_path / "out"))
    assert result.exit_code == 1 and message in result.output
    assert not (tmp_path / "out").exists()


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


def test_actors_leave_a_cpu_share_for_ray_data():
    assert cpus_each(1, ACTOR_CPU_SHARE, cpus=2.0) == 1.0
    assert cpus_each(2, ACTOR_CPU_SHARE, cpus=2.0) == pytest.approx(ACTOR_CPU_SHARE)
    assert 4 * cpus_each(4, ACTOR_CPU_SHARE, cpus=2.0) < 2.0

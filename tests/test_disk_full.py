"""A disk that fills (ENOSPC) under each writer: a small tmpfs mounted for the test stands in for
a site's disk after weeks of snapshots, events and outputs, and is made larger again to see that
what was written is whole and that the writer goes on."""

import contextlib
import json
import shutil
import subprocess
import sys

import pytest

from maskwatch.atomic import write_text


@contextlib.contextmanager
def small_disk(where, size: str):
    """A tmpfs of `size` (`64k`, `1m`) mounted at `where`, unmounted at the end; the test is skipped
    where mounting is refused (not root, a container without CAP_SYS_ADMIN)."""
    where.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"a tmpfs cannot be mounted here to fill ({mounted.stderr.strip() or 'mount failed'})")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def grow(where, size: str) -> None:
    """Space freed: the tmpfs at `where` made `size`."""
    subprocess.run(["mount", "-o", f"remount,size={size}", str(where)], check=True)


def fill(where) -> None:
    """Every free byte of the disk at `where` taken by one file, `where/filler`."""
    with contextlib.suppress(OSError), open(where / "filler", "wb") as filler:
        while True:
            filler.write(b"\0" * 65536)
            filler.flush()


def maskwatch(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "maskwatch.cli", *args], capture_output=True, text=True, timeout=120)


def test_a_write_that_fills_the_disk_names_its_file(tmp_path):
    """Python's write() errors name no file: `detect` ended with `error: No space left on device`."""
    with small_disk(tmp_path / "disk", "4k") as disk:
        fill(disk)
        with pytest.raises(OSError) as failed:
            write_text(disk / "detect-run.json", "{}" * 10_000)
        assert failed.value.filename == str(disk / "detect-run.json") and failed.value.errno == 28
        assert [p.name for p in disk.iterdir()] == ["filler"]  # no temp file left


def test_detect_on_a_full_disk_names_the_file_keeps_whole_lines_and_resumes(tmp_path, sample_dir):
    """Photos into a disk that fills part-way: one line naming the file that failed (it said only
    `[Errno 28] No space left on device`), exit 1, every line whole; --resume, once space is freed,
    reads only the photos not done."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for photo in sorted((sample_dir / "images").glob("*.png"))[:8]:
        shutil.copy(photo, photos / photo.name)
    with small_disk(tmp_path / "disk", "160k") as disk:
        out = disk / "out"
        stopped = maskwatch("detect", str(photos), "--out", str(out), "--quiet")
        assert stopped.returncode == 1, stopped.stderr
        said = stopped.stderr.strip().splitlines()[-1]
        assert said.startswith(f"error: {photos}: stopped after ") and f": {out}/" in said, said
        assert said.split(" by an error: ")[1].split(" (those frames")[0].endswith(": No space left on device"), said
        done = [json.loads(line) for line in (out / "detections.jsonl").read_text().splitlines()]
        assert 0 < len(done) < 8
        grow(disk, "4m")
        resumed = maskwatch("detect", str(photos), "--out", str(out), "--quiet", "--resume")
        assert resumed.returncode == 0, resumed.stderr
        lines = [json.loads(line) for line in (out / "detections.jsonl").read_text().splitlines()]
        assert sorted(line["name"] for line in lines) == sorted(p.stem for p in photos.iterdir())
        assert sorted(p.name for p in out.glob("*.jpg")) == sorted(f"{p.stem}.jpg" for p in photos.iterdir())


def test_an_upload_over_a_megabyte_is_answered_while_the_temp_disk_is_full(tmp_path, sample_dir, monkeypatch):
    """Starlette spooled a form's file over 1 MB to the temp folder: on a full disk every such
    upload to `serve` was a 500, its traceback in the log. The body is in memory already."""
    import tempfile

    import cv2
    import numpy as np
    from fastapi.testclient import TestClient

    from maskwatch import Detector
    from maskwatch.serving.app import create_app

    photo = cv2.resize(cv2.imread(str(sorted((sample_dir / "images").glob("*.png"))[0])), (1200, 900))
    noisy = photo + np.random.default_rng(0).integers(0, 8, photo.shape, dtype=np.uint8)  # no longer compressible
    png = cv2.imencode(".png", noisy)[1].tobytes()
    assert len(png) > 1024 * 1024
    with small_disk(tmp_path / "disk", "64k") as disk:
        fill(disk)
        monkeypatch.setattr(tempfile, "tempdir", str(disk))
        with TestClient(create_app(Detector.load())) as client:
            answer = client.post("/v1/detect", files={"image": ("door.png", png, "image/png")})
        assert answer.status_code == 200, answer.text
        assert answer.json()["width"] == 1200 and answer.json()["faces"]

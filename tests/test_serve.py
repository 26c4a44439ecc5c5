"""The HTTP service, started on loopback in a real uvicorn process and called over HTTP."""

import io
import json
import os
import socket
import subprocess
import sys
import time

import httpx
import pytest
from PIL import Image

from maskwatch.faces import CLASSES


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory, sample_dir):
    """`maskwatch serve` with a 1 MB upload limit and a live source (a short clip)."""
    from tests.test_detection import make_video

    clip = make_video(tmp_path_factory.mktemp("live") / "live.mp4", sample_dir, frames=6)
    port = free_port()
    log = open(tmp_path_factory.mktemp("log") / "serve.log", "w+")
    process = subprocess.Popen(
        [sys.executable, "-m", "maskwatch.cli", "serve", "--port", str(port), "--max-upload-mb", "1",
         "--max-pixels", "4000000", "--source", str(clip)],
        stdout=log, stderr=subprocess.STDOUT, env=os.environ | {"PYTHONUNBUFFERED": "1"})
    base = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.25)
    else:
        process.kill()
        log.seek(0)
        pytest.fail(f"server did not start:\n{log.read()}")
    yield base
    process.terminate()
    process.wait(timeout=10)


def png_bytes(sample_dir) -> bytes:
    return next(sample_dir.glob("images/*.png")).read_bytes()


def test_detect_multipart_and_raw_body_agree(server, sample_dir):
    data = png_bytes(sample_dir)
    multipart = httpx.post(f"{server}/v1/detect", files={"image": ("p.png", data, "image/png")}, timeout=30)
    raw = httpx.post(f"{server}/v1/detect", content=data, headers={"content-type": "image/png"}, timeout=30)
    assert multipart.status_code == raw.status_code == 200
    assert multipart.json() == raw.json()
    body = multipart.json()
    assert body["faces"], body
    assert set(body["counts"]) == set(CLASSES)
    assert sum(body["counts"].values()) == len(body["faces"])
    face = body["faces"][0]
    assert face["label"] in CLASSES and len(face["box"]) == 4 and set(face["probabilities"]) == set(CLASSES)


def test_annotate_returns_a_jpeg_with_counts(server, sample_dir):
    response = httpx.post(f"{server}/v1/detect?annotate=1", content=png_bytes(sample_dir), timeout=30)
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/jpeg"
    assert set(json.loads(response.headers["x-maskwatch-counts"])) == set(CLASSES)
    assert Image.open(io.BytesIO(response.content)).format == "JPEG"


def huge_png() -> bytes:
    """A tiny file whose header claims 3000x3000 pixels (over the 4 MP limit set above)."""
    buffer = io.BytesIO()
    Image.new("L", (3000, 3000)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("body, status, message", [
    (b"", 400, "empty body"),
    (b"hello, not an image", 415, "not an image"),
    (None, 400, "truncated"),
    (b"x" * (1024 * 1024 + 10), 413, "exceeds the limit"),
    ("huge", 413, "the limit is 4000000"),
])
def test_bad_uploads_get_a_clear_4xx_and_the_server_keeps_serving(server, sample_dir, body, status, message):
    if body is None:
        body = png_bytes(sample_dir)[:5000]
    elif body == "huge":
        body = huge_png()
    response = httpx.post(f"{server}/v1/detect", content=body, timeout=30)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]
    assert httpx.get(f"{server}/healthz", timeout=5).json()["status"] == "ok"


def test_multipart_without_the_image_field(server):
    response = httpx.post(f"{server}/v1/detect", files={"photo": ("p.png", b"123", "image/png")}, timeout=10)
    assert response.status_code == 400
    assert "'image'" in response.json()["error"]


def test_metrics_count_requests_and_faces(server, sample_dir):
    httpx.post(f"{server}/v1/detect", content=png_bytes(sample_dir), timeout=30)
    text = httpx.get(f"{server}/metrics", timeout=5).text
    assert 'maskwatch_requests_total{path="/v1/detect",status="200"}' in text
    assert "maskwatch_request_seconds_bucket" in text
    assert 'maskwatch_faces_total{label="with_mask"}' in text


def test_openapi_docs(server):
    spec = httpx.get(f"{server}/openapi.json", timeout=5).json()
    assert "/v1/detect" in spec["paths"]
    assert httpx.get(f"{server}/docs", timeout=5).status_code == 200


def test_live_view_serves_frames_and_counts(server):
    for _ in range(60):
        stats = httpx.get(f"{server}/v1/live/stats", timeout=5).json()
        if stats["frames"] > 0:
            break
        time.sleep(0.5)
    assert stats["frames"] > 0
    assert stats["compliant"] + stats["non_compliant"] == stats["people_seen"]
    frame = httpx.get(f"{server}/v1/live/frame.jpg", timeout=5)
    assert frame.status_code == 200 and frame.content[:2] == b"\xff\xd8"


def test_concurrent_requests_all_succeed(server, sample_dir):
    import concurrent.futures

    data = png_bytes(sample_dir)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        codes = list(pool.map(lambda _: httpx.post(f"{server}/v1/detect", content=data, timeout=60).status_code,
                              range(8)))
    assert codes == [200] * 8

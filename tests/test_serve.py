"""The HTTP service, started on loopback in a real uvicorn process and called over HTTP."""

import contextlib
import io
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from maskwatch.faces import CLASSES, PERSON_LABELS
from maskwatch.records import FrameRecord
from tests.conftest import usage_error
from tests.rtsp import free_port, lost_its_port, reserved_port, start_on_free_port


@contextlib.contextmanager
def serving(args: list[str], log_dir, env: dict | None = None, tries: int = 120, stop_timeout: float = 10):
    """`maskwatch serve ARGS` on a free loopback port until the block ends; its base URL.

    Waits for /healthz (tries x 0.25 s at least); fails with the server's log if it never answers.
    """
    process, base = started(args, log_dir / "serve.log", env, tries)
    try:
        yield base
    finally:
        process.terminate()
        process.wait(timeout=stop_timeout)


def started(args: list[str], log_path, env: dict | None = None, tries: int = 120) -> tuple[subprocess.Popen, str]:
    """`maskwatch serve ARGS` answering /healthz on a free loopback port: the process and its base
    URL. Started again on a new port where the other xdist worker took its own (free_port)."""
    return start_on_free_port(lambda port: _serve(args, port, log_path, env, tries), "maskwatch serve", log=log_path)


def _serve(args: list[str], port: int, log_path, env: dict | None, tries: int) -> tuple[subprocess.Popen, str] | None:
    """`maskwatch serve ARGS` answering /healthz on `port`, or None where it lost that port."""
    log = open(log_path, "w+")
    process = subprocess.Popen([sys.executable, "-m", "maskwatch.cli", "serve", "--port", str(port), *args],
                               stdout=log, stderr=subprocess.STDOUT,
                               env=os.environ | {"PYTHONUNBUFFERED": "1"} | (env or {}))
    base = f"http://127.0.0.1:{port}"
    for _ in range(tries):
        if process.poll() is not None:  # ended (an answer now would be another process's on that port)
            break
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200 and process.poll() is None:
                return process, base
        except httpx.HTTPError:
            time.sleep(0.25)
    if process.poll() is None:
        process.kill()
    log.seek(0)
    said = log.read()
    if not lost_its_port(process, said):
        pytest.fail(f"server did not start:\n{said}")
    return None


@pytest.fixture(scope="module")
def server_log(tmp_path_factory):
    """The `server` fixture's log (stdout and stderr), read as it is written."""
    return tmp_path_factory.mktemp("log") / "serve.log"


@pytest.fixture(scope="module")
def server(tmp_path_factory, sample_dir, server_log):
    """`maskwatch serve` with a 1 MB upload limit, watching a short clip as a one-camera site: a
    320x240 one whose people leave every loop, so that the camera has frames and events (API
    fuzzing checks both). A 640x480 clip of a new photo at nearly every one of the 5 frames a second
    analysed took the server 3.9 CPU seconds in 20 s beside the module's tests; this one 1.0."""
    from tests.test_site import leaving_clip  # here: test_site imports test_dashboard, which imports this module

    folder = tmp_path_factory.mktemp("live")
    clip = leaving_clip(folder / "live.mp4", sample_dir)
    with serving_a_camera(clip, folder, server_log.parent) as base:
        yield base


def serving_a_camera(clip: Path, folder: Path, log_folder: Path):
    """serving(...) as `server` starts it (1 MB uploads, `clip` as a one-camera site, its database
    in `folder`), watching a clip of the caller's: test_dashboard's pages need only a still one."""
    return serving(["--max-upload-mb", "1", "--max-pixels", "4000000", "--source", str(clip),
                    "--database", str(folder / "maskwatch.db")], log_folder)


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
    assert set(body["counts"]) == set(PERSON_LABELS)
    assert sum(body["counts"].values()) == len(body["faces"])
    frame = FrameRecord.from_dict(body)  # read back as Faces, as a Python client does
    assert frame.to_dict() == body and frame.name is None and len(frame.faces) == len(body["faces"])
    face = body["faces"][0]
    assert face["label"] in PERSON_LABELS and len(face["box"]) == 4 and set(face["probabilities"]) == set(CLASSES)


def test_an_open_server_refuses_a_post_from_a_page_of_another_site(server, sample_dir):
    """No users (loopback only): curl and scripts post freely, a browser page elsewhere may not."""
    data = png_bytes(sample_dir)
    for header in ({"Origin": "http://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
        refused = httpx.post(f"{server}/v1/detect", content=data, headers=header, timeout=30)
        assert refused.status_code == 403 and "refused" in refused.json()["error"], header
    assert httpx.post(f"{server}/v1/detect", content=data, headers={"Origin": server}, timeout=30).status_code == 200


def test_annotate_returns_a_jpeg_with_counts(server, sample_dir):
    response = httpx.post(f"{server}/v1/detect?annotate=1", content=png_bytes(sample_dir), timeout=30)
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/jpeg"
    assert set(json.loads(response.headers["x-maskwatch-counts"])) == set(PERSON_LABELS)
    assert Image.open(io.BytesIO(response.content)).format == "JPEG"


def huge_png() -> bytes:
    """A tiny file whose header claims 3000x3000 pixels (over the 4 MP limit set above)."""
    buffer = io.BytesIO()
    Image.new("L", (3000, 3000)).save(buffer, format="PNG")
    return buffer.getvalue()


def scan_bomb(scans: int, progressive: bool = True) -> bytes:
    """A 64x64 JPEG with its smallest scan repeated up to `scans` scans in all (a progressive one has
    10): 900 KB of 50,000 held the server's CPU 9 s. Its EXIF thumbnail's scan is not counted."""
    buffer, thumbnail = io.BytesIO(), io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(thumbnail, format="JPEG")
    exif = Image.Exif()
    exif[0x010E] = "a photo"  # ImageDescription, beside the thumbnail below
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    noise.save(buffer, format="JPEG", progressive=progressive, exif=exif.tobytes() + thumbnail.getvalue())
    data = buffer.getvalue()
    starts = [m.start() for m in re.finditer(rb"\xff\xda", data)][-10 if progressive else -1:]
    ends = [*starts[1:], len(data) - 2]  # each scan runs to the next (or to EOI)
    smallest = min((data[a:b] for a, b in zip(starts, ends)), key=len)
    return data[:-2] + smallest * (scans - len(starts)) + b"\xff\xd9"


@pytest.mark.parametrize("body, status, message", [
    (b"", 400, "empty body"),
    (b"hello, not an image", 415, "not an image"),
    # PostScript goes to Ghostscript: one with a loop held a thread and a core for good
    (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n{ } loop\n", 415, "not an image"),
    (None, 400, "truncated"),
    # cut within its header's chunks: a PNG, named truncated, not "not an image: expected PNG ..."
    ("short", 400, "truncated or corrupt image"),
    (b"x" * (1024 * 1024 + 10), 413, "exceeds the limit"),
    ("huge", 413, "the limit is 4000000"),
    ("scans", 413, "JPEG of 101 scans; the limit is 100 (a progressive photo has about 10)"),
])
def test_bad_uploads_get_a_clear_4xx_and_the_server_keeps_serving(server, sample_dir, body, status, message):
    if body is None:
        body = png_bytes(sample_dir)[:5000]
    elif body == "short":
        body = png_bytes(sample_dir)[:500]
    elif body == "huge":
        body = huge_png()
    elif body == "scans":
        body = scan_bomb(400)
    response = httpx.post(f"{server}/v1/detect", content=body, timeout=30)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]
    assert httpx.get(f"{server}/healthz", timeout=5).json()["status"] == "ok"


def test_a_jpeg_of_as_many_scans_as_allowed_is_read():
    from maskwatch.serving.uploads import MAX_JPEG_SCANS, image_from_upload, jpeg_scans

    for progressive, scans in ((True, 10), (True, MAX_JPEG_SCANS), (False, 1)):
        body = scan_bomb(scans, progressive)
        assert jpeg_scans(body) == scans
        assert image_from_upload(body, 4000000).shape == (64, 64, 3)


def test_stray_bytes_between_segments_do_not_hide_a_jpegs_scans():
    """libjpeg reads past a stray byte between segments (a warning): the count stopped there, and a
    file of 400 scans with a comment and one stray byte before its 11th was decoded whole."""
    from maskwatch.serving.uploads import UploadError, image_from_upload, jpeg_scans

    photo, bomb = scan_bomb(10), scan_bomb(400)
    repeats = len(photo) - 2  # where the repeated scans begin
    for stray in (b"\xff\xfe\x00\x03x\x00", b"\xff\xfe\x00\x02\x17\x00\x00", b"\xff\xff\xff"):
        body = bomb[:repeats] + stray + bomb[repeats:]
        assert jpeg_scans(body) == 101
        with pytest.raises(UploadError, match="JPEG of 101 scans"):
            image_from_upload(body, 4000000)


def test_a_jpeg_with_a_phones_multi_picture_segment_has_its_scans_counted():
    """Pillow calls a JPEG with an MPF segment (phones write one, for a depth or gain map) MPO, and
    only format JPEG was counted: the bomb with that segment after its SOI was decoded whole."""
    from maskwatch.serving.uploads import UploadError, image_from_upload

    buffer, photo = io.BytesIO(), Image.fromarray(np.zeros((64, 64, 3), dtype=np.uint8))
    photo.save(buffer, format="MPO", save_all=True, append_images=[photo.copy()], progressive=True)
    phones = buffer.getvalue()
    assert image_from_upload(phones, 4000000).shape == (64, 64, 3)
    at = phones.index(b"\xff\xe2")  # its APP2: the MPF segment
    mpf, bomb = phones[at:at + 2 + int.from_bytes(phones[at + 2:at + 4], "big")], scan_bomb(400)
    with pytest.raises(UploadError, match="JPEG of 101 scans"):
        image_from_upload(bomb[:2] + mpf + bomb[2:], 4000000)


def test_jpegs_of_common_encoders_are_counted_right_and_read():
    """OpenCV's and Pillow's baseline, progressive, optimized, restart-marked and EXIF-thumbnailed
    JPEGs, and one cut short: each counted as its scans, none refused."""
    import cv2

    from maskwatch.serving.uploads import image_from_upload, jpeg_scans

    pixels = np.random.default_rng(1).integers(0, 255, (96, 128, 3), dtype=np.uint8)
    thumbnail = io.BytesIO()
    Image.new("RGB", (16, 12), "blue").save(thumbnail, format="JPEG", progressive=True)
    made = {}
    for name, options in {"baseline": {}, "progressive": {"progressive": True},
                          "optimized": {"optimize": True, "quality": 95},
                          "restarts": {"restart_marker_blocks": 1, "progressive": True},
                          "exif thumbnail": {"exif": Image.Exif().tobytes() + thumbnail.getvalue()}}.items():
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="JPEG", **options)
        made[f"Pillow {name}"] = buffer.getvalue()
    for name, flags in {"baseline": [], "progressive": [cv2.IMWRITE_JPEG_PROGRESSIVE, 1],
                        "restarts": [cv2.IMWRITE_JPEG_RST_INTERVAL, 1, cv2.IMWRITE_JPEG_OPTIMIZE, 1]}.items():
        made[f"OpenCV {name}"] = cv2.imencode(".jpg", pixels, flags)[1].tobytes()
    for name, body in made.items():
        expected = 10 if "progressive" in name or name == "Pillow restarts" else 1
        assert jpeg_scans(body) == expected, name
        assert jpeg_scans(body[:len(body) // 2]) <= expected, name  # cut short: no error
        assert image_from_upload(body, 4000000).shape == (96, 128, 3), name


def test_multipart_without_the_image_field(server):
    response = httpx.post(f"{server}/v1/detect", files={"photo": ("p.png", b"123", "image/png")}, timeout=10)
    assert response.status_code == 400
    assert "'image'" in response.json()["error"]


def base64_png(sample_dir) -> bytes:
    import base64

    return base64.b64encode(png_bytes(sample_dir))


@pytest.mark.parametrize("method, query, send, status, error", [
    # each answered {"detail": ...} alone (FastAPI's), where every other refusal has "error"
    ("POST", "?annotate=maybe", "png", 422,
     "query parameter 'annotate': Input should be a valid boolean, unable to interpret input (got 'maybe')"),
    ("POST", "?anotate=1", "png", 422, "query parameter 'anotate': not a parameter of this endpoint, which takes: annotate"),
    ("GET", "", None, 405, "GET is not allowed on /v1/detect; it takes POST"),
    # a multipart upload's mistakes, named as made: the field sent, text for a file, an empty file
    ("POST", "", {"files": {"file": ("p.png", b"123", "image/png")}}, 400,
     "multipart upload needs a file field named 'image'; got 'file'"),
    ("POST", "", {"files": {"image": (None, b"photo.jpg")}}, 400,  # a part with no file name: `-F image=photo.jpg`
     "multipart field 'image' is text, not a file: send the image as a file (curl -F image=@photo.jpg)"),
    ("POST", "", {"files": {"image": ("p.png", b"", "image/png")}}, 400, "multipart field 'image' is an empty file"),
    ("POST", "", "png-as-form", 400, "bad multipart upload: Missing boundary in multipart (the Content-Type of a "
                                     "form needs its boundary: let the HTTP library set the header)"),
    # an image sent as base64, as a client in another language may: the body is named, not "not an image" alone
    ("POST", "", "base64", 415, "not an image: the body is base64 text; send the image's own bytes (the raw body, "
                                "or the file of the multipart field 'image'), not base64"),
    ("POST", "", "json", 415, "not an image: the body is JSON; send the image's own bytes (the raw body, "
                              "or the file of the multipart field 'image'), not base64"),
    ("POST", "", "data-url", 415, "not an image: the body is a data: URL; send the image's own bytes (the raw body, "
                                  "or the file of the multipart field 'image'), not base64"),
])
def test_every_refusal_of_detect_is_one_line_in_error(server, sample_dir, method, query, send, status, error):
    bodies = {"png": {"content": png_bytes(sample_dir)}, "base64": {"content": base64_png(sample_dir)},
              "png-as-form": {"content": png_bytes(sample_dir), "headers": {"Content-Type": "multipart/form-data"}},
              "json": {"json": {"image": base64_png(sample_dir).decode()}},
              "data-url": {"content": b"data:image/png;base64," + base64_png(sample_dir)}}
    request = bodies[send] if isinstance(send, str) else (send or {})
    response = httpx.request(method, f"{server}/v1/detect{query}", timeout=30, **request)
    assert response.status_code == status, response.text
    assert response.json()["error"] == error


def test_a_405_names_every_method_of_the_path(server):
    """GET /login and POST /login are two routes; Starlette's Allow named the first one's alone."""
    response = httpx.put(f"{server}/login", timeout=10)
    assert response.status_code == 405 and response.headers["allow"] == "GET, POST"
    assert response.json()["error"] == "PUT is not allowed on /login; it takes GET, POST"


@pytest.mark.parametrize("body, content_type, error", [
    # `curl -d 'username=ana&password=...'`: a form, where /login takes JSON
    ("username=ana&password=p", "application/x-www-form-urlencoded",
     "body: expected a JSON object, sent with Content-Type: application/json"),
    # was "body field '18': JSON decode error", 18 the place of a character (from 0), read as a field
    ('{"username": "ana"', "application/json",
     "body: not valid JSON at character 18 (Expecting ',' delimiter); expected a JSON object, sent with "
     "Content-Type: application/json"),
])
def test_a_body_that_is_no_json_object_is_said_as_what_to_send(server, body, content_type, error):
    response = httpx.post(f"{server}/login", content=body, timeout=10,
                          headers={"Content-Type": content_type, "X-Maskwatch-CSRF": "1"})
    assert response.status_code == 422 and response.json()["error"] == error, response.text


@pytest.mark.parametrize("kind, options", [("JPEG", {}), ("WEBP", {}), ("BMP", {}), ("AVIF", {}),
                                           ("GIF", {"save_all": True}), ("TIFF", {"save_all": True})])
def test_every_format_the_document_names_is_read(server, sample_dir, kind, options):
    """The request body's description names these; GIF and TIFF with two frames (the first is read)."""
    photo = Image.open(next(sample_dir.glob("images/*.png"))).convert("RGB")
    buffer = io.BytesIO()
    photo.save(buffer, format=kind, **({"append_images": [photo.rotate(90)]} | options if options else {}))
    response = httpx.post(f"{server}/v1/detect", content=buffer.getvalue(), timeout=60)
    assert response.status_code == 200, response.text
    assert (response.json()["width"], response.json()["height"]) == photo.size and response.json()["faces"]


def test_the_documented_examples_are_what_detect_answers(server, sample_dir):
    """An integrator reads /docs' examples: each is the service's real answer to its case."""
    import jsonschema

    from maskwatch.faces import frame_schema

    spec = httpx.get(f"{server}/openapi.json", timeout=5).json()
    responses = spec["paths"]["/v1/detect"]["post"]["responses"]
    example = {code: answer["content"]["application/json"].get("example") for code, answer in responses.items()}
    jsonschema.validate(example["200"], frame_schema())
    assert example["400"] == httpx.post(f"{server}/v1/detect", content=b"", timeout=30).json()
    assert example["415"] == httpx.post(f"{server}/v1/detect", content=b"hello, not an image", timeout=30).json()
    too_big = httpx.post(f"{server}/v1/detect", content=b"x" * (1024 * 1024 + 10), timeout=30).json()
    assert example["413"]["error"].replace("10 MiB", "1 MiB") == too_big["error"]  # this server's limit is 1 MiB
    invalid = httpx.post(f"{server}/v1/detect?anotate=1", content=png_bytes(sample_dir), timeout=30).json()
    assert example["422"] == invalid
    # and the 422's documented schema holds the answer, `error` and `detail` both
    schemas = spec["components"]["schemas"]
    validation = json.loads(json.dumps(schemas["HTTPValidationError"]).replace(
        '{"$ref": "#/components/schemas/ValidationError"}', json.dumps(schemas["ValidationError"])))
    assert validation["required"] == ["error", "detail"]
    jsonschema.validate(invalid, validation)


def test_the_answer_is_the_clis_line_and_the_python_apis_faces(server, sample_dir, tmp_path):
    """One Face shape: POST /v1/detect, a line of `maskwatch detect`'s detections.jsonl (less its
    place in the source) and the Python API's faces (frame_record) are the same JSON."""
    import cv2

    from maskwatch import Detector
    from maskwatch.faces import frame_record

    photo = next(sample_dir.glob("images/*.png"))
    answer = httpx.post(f"{server}/v1/detect", content=photo.read_bytes(), timeout=30).json()
    subprocess.run([sys.executable, "-m", "maskwatch.cli", "detect", str(photo), "--out", str(tmp_path), "--quiet"],
                   check=True, capture_output=True, timeout=120)
    [line] = (tmp_path / "detections.jsonl").read_text().splitlines()
    line = json.loads(line)
    assert (line.pop("frame"), line.pop("name"), line.pop("time")) == (0, photo.stem, 0.0)
    assert line == answer and answer["faces"]
    image = cv2.imread(str(photo))
    faces = Detector.load().for_photos().detect(image)
    assert frame_record(faces, image.shape[1], image.shape[0]) == answer


def test_a_misspelt_query_parameter_is_refused_by_name(server, sample_dir):
    response = httpx.post(f"{server}/v1/detect?anotate=1", content=png_bytes(sample_dir), timeout=30)
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["loc"] == ["query", "anotate"] and "takes: annotate" in error["msg"]
    # endpoints without parameters still ignore a cache-busting query string
    for _ in range(60):
        frame = httpx.get(f"{server}/v1/cameras/live/frame.jpg?t=1234", timeout=5)
        if frame.status_code == 200:
            break
        time.sleep(0.5)
    assert frame.status_code == 200 and frame.content[:2] == b"\xff\xd8"


def test_metrics_count_requests_and_faces(server, sample_dir):
    httpx.post(f"{server}/v1/detect", content=png_bytes(sample_dir), timeout=30)
    text = httpx.get(f"{server}/metrics", timeout=5).text
    assert 'maskwatch_requests_total{path="/v1/detect",status="200"}' in text
    assert "maskwatch_request_seconds_bucket" in text
    assert 'maskwatch_faces_total{label="with_mask"}' in text


def test_openapi_docs(server):
    spec = httpx.get(f"{server}/openapi.json", timeout=5).json()
    assert "/v1/detect" in spec["paths"]
    # no users yet: the token is documented, and optional ({}), as this open server answers without one
    assert spec["paths"]["/v1/detect"]["post"]["security"] == [{"token": []}, {}]
    assert spec["paths"]["/healthz"]["get"]["security"] == []
    health = httpx.get(f"{server}/healthz", timeout=5)  # open server: whom /metrics answers sees the details
    assert "providers" in health.json() and "server" not in health.headers  # uvicorn named itself
    assert spec["components"]["securitySchemes"]["token"]["scheme"] == "bearer"
    page = httpx.get(f"{server}/docs", timeout=5)
    assert page.status_code == 200
    # Swagger UI comes from the CDN at a pinned version, each file checked by the browser by hash.
    for name in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert re.search(rf'"https://cdn.jsdelivr.net/npm/swagger-ui-dist@5\.35\.0/{re.escape(name)}" '
                         r'integrity="sha384-[A-Za-z0-9+/]{64}" crossorigin="anonymous"', page.text), name
    assert "swagger-ui-dist@5/" not in page.text and "tiangolo" not in page.text
    assert "swagger-ui-dist@5.35.0/" in page.headers["content-security-policy"]


def test_the_api_docs_say_why_they_are_empty_where_the_cdn_is_out_of_reach(server):
    """`run` and `serve` point to /docs at their start; on a machine without the internet its page,
    whose Swagger UI comes from cdn.jsdelivr.net, was blank. Chromium with the CDN refused here."""
    import shutil

    from playwright import sync_api

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium",
                                    args=["--headless", "--no-sandbox", "--disable-gpu"])
        page = browser.new_page()
        page.route("https://cdn.jsdelivr.net/**", lambda route: route.abort("internetdisconnected"))
        page.goto(f"{server}/docs")
        said = page.inner_text("#swagger-ui")
        assert "loading its scripts from cdn.jsdelivr.net. If this stays, this browser cannot reach it" in said
        page.click("#swagger-ui a")
        document = page.evaluate("() => JSON.parse(document.body.innerText)")
        browser.close()
    assert "/v1/detect" in document["paths"]  # the link goes to the OpenAPI document


def test_the_documents_version_is_the_installed_packages(monkeypatch, tmp_path):
    """info.version said 0.1.0, written in app.py, whatever maskwatch was installed: a client that
    checks which server it talks to read a version `maskwatch --version` did not say."""
    from fastapi.testclient import TestClient

    import maskwatch
    from maskwatch.security.auth_settings import AuthSettings
    from maskwatch.serving.app import ServeSettings, create_app
    from tests.test_security_deploy import NoFaces

    monkeypatch.setattr(maskwatch, "__version__", "2.3.4")  # as a newer release's metadata says it
    app = create_app(NoFaces(), ServeSettings(auth=AuthSettings(database=str(tmp_path / "users.db"))))
    with TestClient(app, base_url="http://127.0.0.1") as client:
        assert client.get("/openapi.json").json()["info"]["version"] == "2.3.4"


def test_source_runs_as_a_one_camera_site(server):
    """`--source` is a site of one camera, "live": analysed, served with today's people from the
    site's database (its events: test_site.py), while the upload API keeps working beside it."""
    for _ in range(60):
        [camera] = httpx.get(f"{server}/v1/cameras", timeout=5).json()
        if camera["analysed"] > 0:
            break
        time.sleep(0.5)
    assert camera["id"] == "live" and camera["connected"] and camera["analysed"] > 0, camera
    assert set(camera["today"]) == {"people", *PERSON_LABELS, "infrared"}
    frame = httpx.get(f"{server}/v1/cameras/live/frame.jpg", timeout=5)
    assert frame.status_code == 200 and frame.content[:2] == b"\xff\xd8"
    assert httpx.get(f"{server}/healthz", timeout=5).json()["site"] is True


def test_a_missing_source_file_is_refused_by_name(tmp_path):
    with reserved_port() as port:  # its port is checked before its source: not one the other xdist worker could take
        result = subprocess.run([sys.executable, "-m", "maskwatch.cli", "serve", "--source", str(tmp_path / "gone.mp4"),
                                 "--database", str(tmp_path / "m.db"), "--port", str(port)],
                                capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "no such video file" in result.stderr and "gone.mp4" in result.stderr, result.stderr
    assert not (tmp_path / "m.db").exists()


def test_serve_source_under_a_tz_read_as_utc_says_so_as_run_does(tmp_path):
    """`serve --source` is a one-camera site with no `timezone`: under a TZ with no zone file here
    (TZ=Mars/Olympus), where `run` stops, it served with its chart's days and events' local times on
    UTC and the page on the browser's clock, nothing said. Refused now, before its source is read; a
    TZ set but empty (UTC by POSIX, perhaps meant) is a warning."""
    def serve(tz: str) -> subprocess.CompletedProcess:
        with reserved_port() as port:
            return subprocess.run([sys.executable, "-m", "maskwatch.cli", "serve", "--source", str(tmp_path / "gone.mp4"),
                                   "--database", str(tmp_path / "m.db"), "--port", str(port)],
                                  capture_output=True, text=True, timeout=60, env=os.environ | {"TZ": tz})

    refused = serve("Mars/Olympus")
    assert refused.returncode == 1 and "no such video file" not in refused.stderr, refused.stderr
    assert ("error: --source: TZ='Mars/Olympus' (the environment): no such time zone on this machine (no zone file "
            "/usr/share/zoneinfo/Mars/Olympus), so its local time is UTC, and the camera's days (the chart's, the "
            "events' local times) would be UTC's; set TZ to a zone this machine has, or run the camera as a site "
            "whose file sets `timezone:` (maskwatch run)") in " ".join(refused.stderr.split()), refused.stderr
    warned = serve("")  # then the source's own refusal: the warning goes on to the start
    assert warned.returncode == 1 and "no such video file" in warned.stderr, warned.stderr
    assert ("warning: --source: TZ='' (the environment) is set but empty, which the C library reads as UTC: the "
            "camera's days (the chart's, the events' local times) are UTC's; if that is meant, set TZ=UTC, else TZ "
            "to the zone meant, or unset TZ") in " ".join(warned.stderr.split()), warned.stderr
    assert not (tmp_path / "m.db").exists()


@pytest.mark.parametrize("args, option, message", [
    (["--port", "70000"], "--port", "must be 1-65535, got 70000"),
    (["--workers", "0"], "--workers", "must be at least 1, got 0"),
    (["--max-upload-mb", "-1"], "--max-upload-mb", "must be more than 0 and finite, got -1"),
    (["--max-pixels", "0"], "--max-pixels", "must be at least 1, got 0"),
    (["--max-upload-mb", "nan"], "--max-upload-mb", "must be more than 0 and finite, got nan"),
    (["--max-upload-mb", "inf"], "--max-upload-mb", "must be more than 0 and finite, got inf"),  # was a traceback
])
def test_serve_refuses_a_setting_that_could_never_serve(tmp_path, args, option, message):
    # Accepted before: port 70000 printed "serving on" and died, a bound of 0 refused every upload.
    # Then exit 1, which docs/cli.md gives to bad input: a usage error, as click's own, names the option.
    result = subprocess.run([sys.executable, "-m", "maskwatch.cli", "serve", "--database", str(tmp_path / "m.db"),
                             *args], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert usage_error(result.stderr) == f"Invalid value for '{option}': {message}", result.stderr
    assert "serving on" not in result.stdout and not (tmp_path / "m.db").exists()


TIMED_LINE = r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}[+-]\d\d:\d\d WARNING "  # as every maskwatch warning starts


def send_not_http(base: str) -> None:
    """Bytes that are no HTTP request: uvicorn answers 400 and warns (a port scanner, a TLS client)."""
    with socket.create_connection(("127.0.0.1", int(base.rsplit(":", 1)[1]))) as connection:
        connection.sendall(b"NOT HTTP\x00\r\n\r\n")
        assert connection.recv(100).startswith(b"HTTP/1.1 400")


def test_uvicorns_own_warnings_are_timed_lines_like_ours(server, server_log):
    """uvicorn's lines came in its own format, without the time ("WARNING:  Invalid HTTP request
    received."), among the service's timed lines. The module's server: uvicorn logs the line
    before it answers 400, so it is in the log once the answer is read."""
    from maskwatch import __version__

    send_not_http(server)
    said = server_log.read_text()
    assert re.search(TIMED_LINE + "uvicorn.error: Invalid HTTP request received", said, re.M), said
    assert f"maskwatch {__version__} serving on" in said, said  # which version ran, weeks later


def test_the_log_level_is_set_by_the_environment(tmp_path):
    """WARNING was fixed: an operator had no way to see requests or uvicorn's start and stop."""
    with serving([], tmp_path, env={"MASKWATCH_LOG_LEVEL": "info"}) as base:
        httpx.get(f"{base}/v1/classes?x=1", timeout=10)
    said = (tmp_path / "serve.log").read_text()
    assert re.search(r"^\S+ \S+ INFO uvicorn.access: 127.0.0.1:\d+ - \"GET /v1/classes\?x=1 HTTP/1.1\" 200$", said, re.M), said
    result = subprocess.run([sys.executable, "-m", "maskwatch.cli", "serve", "--port", str(free_port())],
                            capture_output=True, text=True, timeout=60, env=os.environ | {"MASKWATCH_LOG_LEVEL": "loud"})
    assert result.returncode == 1 and "MASKWATCH_LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, got LOUD" \
        in result.stderr, result.stderr


def test_serve_settings_with_a_bound_of_zero_are_refused():
    from maskwatch.serving.app import ServeSettings

    with pytest.raises(ValueError, match="max_upload_bytes and max_pixels must be at least 1, got 0 and 5"):
        ServeSettings(max_upload_bytes=0, max_pixels=5)


def test_concurrent_requests_all_succeed(server, sample_dir):
    import concurrent.futures

    data = png_bytes(sample_dir)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        codes = list(pool.map(lambda _: httpx.post(f"{server}/v1/detect", content=data, timeout=60).status_code,
                              range(8)))
    assert codes == [200] * 8


# --- Oversized bodies: a client that writes its whole body before reading still reads the 413 ---

TWELVE_MB = 12 * 1024 * 1024


def test_urllib_client_sending_the_whole_oversized_body_reads_the_413(server):
    """urllib (like requests) writes the whole body before it reads: it used to get a reset."""
    import urllib.error
    import urllib.request

    for _ in range(3):
        request = urllib.request.Request(f"{server}/v1/detect", data=b"x" * TWELVE_MB, method="POST",
                                         headers={"Content-Type": "image/png"})
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(request, timeout=30)
        assert err.value.code == 413
        assert "exceeds the limit" in json.loads(err.value.read())["error"]


def raw_http(server: str, head: str, body_chunks=(), read_timeout: float = 30) -> socket.socket:
    """Open a socket, write the request head and every body chunk, then return it for reading."""
    host, port = server.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=read_timeout)
    sock.sendall(head.encode())
    for chunk in body_chunks:
        sock.sendall(chunk)
    return sock


def read_response(sock: socket.socket) -> tuple[int, dict, bytes]:
    """One HTTP/1.1 response with a Content-Length body: status, headers, body."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536) or b""
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    while len(rest) < int(headers.get("content-length", 0)):
        rest += sock.recv(65536)
    return int(lines[0].split()[1]), headers, rest


@pytest.mark.parametrize("connection", ["close", "keep-alive"])
def test_raw_client_sending_everything_first_reads_the_413(server, connection):
    """`Connection: close` (urllib's) is the case that was reset: the server closed with unread bytes."""
    sock = raw_http(server, f"POST /v1/detect HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n"
                            f"Connection: {connection}\r\nContent-Length: {TWELVE_MB}\r\n\r\n",
                    [b"y" * TWELVE_MB])
    with sock:
        status, _, body = read_response(sock)
        assert status == 413 and "exceeds the limit" in json.loads(body)["error"]
        if connection == "close":
            assert sock.recv(1) == b""  # a clean close (FIN), not a reset
        else:  # drained: the connection stays usable
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            status, _, body = read_response(sock)
            assert status == 200 and json.loads(body)["status"] == "ok"


def test_chunked_oversized_body_gets_a_readable_413(server):
    """No Content-Length: the app stops at the limit; the rest is drained before the 413 goes out."""
    chunk = b"z" * (1024 * 1024)
    chunks = [b"%x\r\n%s\r\n" % (len(chunk), chunk)] * 12 + [b"0\r\n\r\n"]
    head = "POST /v1/detect HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n"
    with raw_http(server, head, chunks) as sock:
        status, _, body = read_response(sock)
    assert status == 413 and "exceeds the limit" in json.loads(body)["error"]


@pytest.mark.parametrize("chunked", [False, True])
def test_a_huge_body_to_login_is_refused_before_it_is_read_whole(server, chunked):
    """FastAPI reads a JSON body whole before its field limits: a 400 MB password to /login (open to
    anyone) took the server to 1.78 GB. Every route but /v1/detect takes 64 KiB at most."""
    body = json.dumps({"username": "a", "password": "p" * TWELVE_MB}).encode()
    if chunked:
        head = "POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n"
        chunks = [b"%x\r\n%s\r\n" % (len(body[i:i + 65536]), body[i:i + 65536]) for i in range(0, len(body), 65536)]
        chunks.append(b"0\r\n\r\n")
    else:
        head = (f"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json"
                f"\r\nContent-Length: {len(body)}\r\n\r\n")
        chunks = [body]
    with raw_http(server, head, chunks) as sock:
        status, _, answer = read_response(sock)
    assert status == 413 and "over 65536 bytes" in json.loads(answer)["error"]
    small = httpx.post(f"{server}/login", json={"username": "a", "password": "p"}, timeout=10)
    assert small.status_code != 413  # a login's own body goes through as before


def test_a_request_head_without_end_is_refused_before_anyone_logs_in(server):
    """uvicorn's parser kept a head whole however long: one 300 MB header grew a server by 470 MB."""
    from tests.test_http_limits import refuses_a_head_without_end

    refuses_a_head_without_end(server)


def test_chunked_oversized_multipart_upload_is_refused_before_it_is_spooled(server, monkeypatch):
    """A multipart file declares no length when chunked: it is counted as it comes, not written to a
    temporary file first (Starlette spools a form's files whatever their size)."""
    boundary = "b0undary"
    part = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"p.png\"\r\n"
            "Content-Type: image/png\r\n\r\n").encode()
    chunk = b"z" * (1024 * 1024)
    body = [part] + [chunk] * 12 + [f"\r\n--{boundary}--\r\n".encode()]
    chunks = [b"%x\r\n%s\r\n" % (len(c), c) for c in body] + [b"0\r\n\r\n"]
    head = ("POST /v1/detect HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n\r\n")
    with raw_http(server, head, chunks) as sock:
        status, _, answer = read_response(sock)
    assert status == 413 and "exceeds the limit" in json.loads(answer)["error"]
    # The reading stops at the limit (and the multipart allowance), whatever is still coming.
    import asyncio

    from starlette.requests import Request

    from maskwatch.serving.uploads import UploadError, read_image_bytes

    pending, taken = list(body), []

    async def receive():
        piece = pending.pop(0)
        taken.append(len(piece))
        return {"type": "http.request", "body": piece, "more_body": bool(pending)}

    scope = {"type": "http", "method": "POST", "path": "/v1/detect", "headers": [
        (b"content-type", f"multipart/form-data; boundary={boundary}".encode())]}
    with pytest.raises(UploadError, match="exceeds the limit of 1 MiB"):
        asyncio.run(read_image_bytes(Request(scope, receive), 1024 * 1024))
    assert sum(taken) <= 2 * len(chunk) + len(part)


def test_body_beyond_the_drain_bound_is_refused_at_once_with_connection_close(server):
    """A client that waits (curl, or one that declares 1 GB) gets the 413 without sending a byte."""
    head = "POST /v1/detect HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\nContent-Length: 1000000000\r\n\r\n"
    with raw_http(server, head, read_timeout=10) as sock:
        status, headers, body = read_response(sock)
    assert status == 413 and headers["connection"] == "close"
    assert "exceeds the limit" in json.loads(body)["error"]


def test_multipart_with_other_fields_is_refused_clearly(server, sample_dir):
    response = httpx.post(f"{server}/v1/detect", files={"image": ("p.png", png_bytes(sample_dir), "image/png")},
                          data={"camera": "door"}, timeout=30)
    assert response.status_code == 400 and "one field, 'image'" in response.json()["error"]
    many = {f"f{i}": str(i) for i in range(8)}
    response = httpx.post(f"{server}/v1/detect", files={"image": ("p.png", b"123", "image/png")}, data=many,
                          timeout=30)
    assert response.status_code == 400 and "bad multipart upload" in response.json()["error"]


def test_the_json_answer_is_the_frame_schema(server, sample_dir):
    import jsonschema

    from maskwatch.faces import frame_schema

    body = httpx.post(f"{server}/v1/detect", content=png_bytes(sample_dir), timeout=30).json()
    jsonschema.validate(body, frame_schema())
    assert body["detected"] is True and body["faces"]
    spec = httpx.get(f"{server}/openapi.json", timeout=5).json()
    documented = spec["paths"]["/v1/detect"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert documented == {k: v for k, v in frame_schema().items() if k != "$schema"}


def test_a_failed_jpeg_encoding_answers_500_json(monkeypatch, sample_dir):
    """In-process: cv2.imencode reporting failure must not send empty or stale bytes."""
    import asyncio

    import maskwatch.serving.app as service

    class NoFaces:
        classifier = type("C", (), {"info": {}})()

        def detect_and_unsure(self, image):
            return [], np.zeros((0, 4))

    async def post() -> httpx.Response:
        transport = httpx.ASGITransport(app=service.create_app(NoFaces()))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.post("/v1/detect?annotate=1", content=png_bytes(sample_dir))

    from maskwatch.serving import service_api

    monkeypatch.setattr(service_api.cv2, "imencode", lambda *a, **k: (False, None))
    response = asyncio.run(post())
    assert response.status_code == 500
    assert "could not encode" in response.json()["error"]


def test_uploads_are_decoded_and_analysed_a_few_at_a_time(sample_dir):
    """A 143 KB PNG decodes to 0.5 GB: forty posted together would all have been decoded at once."""
    import asyncio
    import threading

    import maskwatch.serving.app as service

    busy, most, lock = [0], [0], threading.Lock()

    class Slow:
        classifier = type("C", (), {"info": {}})()

        def detect_and_unsure(self, image):
            with lock:
                busy[0] += 1
                most[0] = max(most[0], busy[0])
            time.sleep(0.2)
            with lock:
                busy[0] -= 1
            return [], np.zeros((0, 4))

    async def posts() -> list[int]:
        transport = httpx.ASGITransport(app=service.create_app(Slow()))
        async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=60) as client:
            answers = await asyncio.gather(*(client.post("/v1/detect", content=png_bytes(sample_dir)) for _ in range(12)))
        return [a.status_code for a in answers]

    assert asyncio.run(posts()) == [200] * 12
    assert 1 < most[0] <= service.UPLOADS_AT_ONCE


def detect_upload_scope(body: bytes, port: int) -> dict:
    """An ASGI scope of one client's POST /v1/detect of `body`, from 127.0.0.1:`port`."""
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
            "scheme": "http", "path": "/v1/detect", "raw_path": b"/v1/detect", "query_string": b"",
            "root_path": "", "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"image/png"),
                                         (b"content-length", str(len(body)).encode())],
            "client": ("127.0.0.1", port), "server": ("127.0.0.1", 80)}


def statuses_into(answer: list):
    """An ASGI send that keeps the answer's status in `answer`."""
    async def send(message):
        if message["type"] == "http.response.start":
            answer.append(message["status"])
    return send


def test_a_caller_sends_a_few_uploads_at_once_and_the_next_waits_unread(sample_dir):
    """Each upload's body is held as it comes: a viewer's 40 uploads of 10 MB, each left a byte short,
    held 400 MB. Four bodies of one caller are read at once; a fifth waits, unread, for one to end."""
    import asyncio

    import maskwatch.serving.app as service
    from maskwatch.serving.service_api import UPLOADS_SENT_AT_ONCE

    app = service.create_app(type("Never", (), {"classifier": type("C", (), {"info": {}})()})())
    body = png_bytes(sample_dir)[:100]  # refused as truncated: the detector is never asked

    async def uploads() -> list[int]:
        asked, sent = [], [asyncio.Event() for _ in range(UPLOADS_SENT_AT_ONCE + 1)]

        async def upload(i: int) -> int:
            async def receive():  # the client's body, sent once `sent[i]` is set
                asked.append(i)
                await sent[i].wait()
                return {"type": "http.request", "body": body, "more_body": False}

            answer = []
            await app(detect_upload_scope(body, port=50000 + i), receive, statuses_into(answer))
            return answer[0]

        async def until(condition) -> None:
            for _ in range(3000):  # 30 s at most: authorize runs on the threadpool
                if condition():
                    return
                await asyncio.sleep(0.01)
            raise AssertionError(f"asked {asked}, callers {app.state.uploads_sent}")

        tasks = [asyncio.create_task(upload(i)) for i in range(UPLOADS_SENT_AT_ONCE + 1)]
        # every request in, the bodies of four asked for; the fifth waits its turn (its body unasked)
        await until(lambda: len(asked) == UPLOADS_SENT_AT_ONCE
                    and app.state.uploads_sent.get("127.0.0.1", [0, 0])[1] == UPLOADS_SENT_AT_ONCE + 1)
        sent[asked[0]].set()  # one body comes: the fifth is asked for its own
        await until(lambda: len(asked) == UPLOADS_SENT_AT_ONCE + 1)
        for event in sent:
            event.set()
        return await asyncio.gather(*tasks)

    assert asyncio.run(uploads()) == [400] * (UPLOADS_SENT_AT_ONCE + 1)
    assert app.state.uploads_sent == {}  # the caller's entry goes with its last upload


def test_a_callers_stalled_uploads_are_given_up_and_the_next_is_read(sample_dir, monkeypatch):
    """A phone that lost its network mid-upload leaves connections that never end: four of them held
    the user's four places for good, and no upload of theirs was read again. Now a body that sends
    nothing for UPLOAD_IDLE_SECONDS is a 408 and its place goes to the next."""
    import asyncio

    import maskwatch.serving.app as service
    from maskwatch.serving import uploads
    from maskwatch.serving.service_api import UPLOADS_SENT_AT_ONCE

    monkeypatch.setattr(uploads, "UPLOAD_IDLE_SECONDS", 0.2)
    app = service.create_app(type("Never", (), {"classifier": type("C", (), {"info": {}})()})())
    body = png_bytes(sample_dir)[:100]  # refused as truncated: the detector is never asked

    async def uploads_of_one_caller() -> list[int]:
        asked, gone = [], asyncio.Event()  # gone: the stalled clients' connections found dead

        async def upload(i: int) -> int:
            async def receive():
                if i not in asked:
                    asked.append(i)
                if asked.index(i) < UPLOADS_SENT_AT_ONCE:  # the first four stall: nothing comes until found gone
                    await gone.wait()
                    return {"type": "http.disconnect"}
                return {"type": "http.request", "body": body, "more_body": False}

            answer = []
            await app(detect_upload_scope(body, port=50000 + i), receive, statuses_into(answer))
            return answer[0] if answer else None

        tasks = [asyncio.create_task(upload(i)) for i in range(UPLOADS_SENT_AT_ONCE + 1)]
        for _ in range(3000):  # 30 s at most (authorize runs on the threadpool): the fifth's body asked for
            if len(asked) > UPLOADS_SENT_AT_ONCE:
                break
            await asyncio.sleep(0.01)
        gone.set()
        return await asyncio.gather(*tasks)

    assert sorted(asyncio.run(uploads_of_one_caller())) == [400] + [408] * UPLOADS_SENT_AT_ONCE
    assert app.state.uploads_sent == {}


def test_a_client_gone_mid_upload_is_no_error_of_the_server(sample_dir):
    """A phone that went away mid-upload (its connection closed) was an `Exception in ASGI
    application` and its traceback in the log, each time: now a 400 to no one."""
    import asyncio

    import maskwatch.serving.app as service

    app = service.create_app(type("Never", (), {"classifier": type("C", (), {"info": {}})()})())
    parts = [{"type": "http.request", "body": b"\x89PNG", "more_body": True}, {"type": "http.disconnect"}]
    answer = []

    async def receive():
        return parts.pop(0) if parts else {"type": "http.disconnect"}

    async def send(message):
        if message["type"] == "http.response.start":
            answer.append(message["status"])
        elif message.get("body"):
            answer.append(json.loads(message["body"])["error"])

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "scheme": "http", "path": "/v1/detect", "raw_path": b"/v1/detect", "query_string": b"",
             "root_path": "", "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"image/png"),
                                          (b"content-length", b"1000")],
             "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 80)}
    asyncio.run(app(scope, receive, send))
    assert answer == [400, "the client went away after 4 bytes of its upload"]


def test_an_upload_is_turned_as_its_exif_says_as_detect_reads_it():
    """A phone's portrait photo is stored landscape with an Orientation tag: the API reads it
    upright, as `detect` and `batch` (OpenCV) do."""
    import io

    from PIL import Image

    from maskwatch.data.images import decode_image
    from maskwatch.serving.uploads import image_from_upload

    stored = Image.new("RGB", (100, 40), (0, 0, 255))
    stored.paste((255, 0, 0), (0, 0, 10, 40))  # a red band on the stored image's left
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to view
    buffer = io.BytesIO()
    stored.save(buffer, format="JPEG", exif=exif, quality=95)
    api, cli = image_from_upload(buffer.getvalue(), 10_000_000), decode_image(buffer.getvalue())
    assert api.shape == cli.shape == (100, 40, 3)
    assert abs(api.astype(int) - cli.astype(int)).mean() < 3  # the same pixels, up to the JPEG decoders


@pytest.mark.parametrize("channels, kind", [(3, ".png"), (1, ".png"), (3, ".tiff"), (1, ".tiff")])
def test_a_12_bit_photo_in_a_16_bit_file_is_read_at_its_own_depth_by_detect_and_the_api(channels, kind):
    """A 12-bit sensor's frame saved as 16-bit PNG holds 0-4095: scaled by 1/256 it came out
    black (0-15) from `detect`, and the API clipped its grey form to white."""
    import cv2
    import numpy as np

    from maskwatch.data.images import decode_image
    from maskwatch.serving.uploads import image_from_upload

    ramp = np.tile(np.linspace(0, 4095, 64).astype(np.uint16), (16, 1))
    ok, png = cv2.imencode(kind, ramp if channels == 1 else np.dstack([ramp] * 3))
    assert ok
    cli, api = decode_image(png.tobytes()), image_from_upload(png.tobytes(), 10_000_000)
    assert cli.dtype == api.dtype == np.uint8 and cli.shape == api.shape == (16, 64, 3)
    assert cli.max() == 255 and cli.min() == 0 and abs(int(cli[0, 32, 0]) - 129) <= 2  # the ramp, not 0-15
    assert np.array_equal(cli, api)


def test_a_signed_16_bit_tiff_is_read_as_its_values_not_white():
    import cv2
    import numpy as np

    from maskwatch.data.images import decode_image

    ramp = np.tile(np.linspace(-100, 4095, 64).astype(np.int16), (16, 1))
    ok, tiff = cv2.imencode(".tiff", ramp)
    assert ok
    image = decode_image(tiff.tobytes())
    assert image[0, 0, 0] == 0 and image[0, -1, 0] == 255 and 100 < image.mean() < 150  # it came out all 255


def test_a_client_gone_mid_body_is_told_to_the_app_not_turned_into_a_500():
    """SmallBodies returned with no answer when the client hung up: the app's middleware raised
    "No response returned" and logged a 500 (anyone could fill the log so)."""
    import asyncio

    from maskwatch.serving.drain import SmallBodies

    heard = []

    async def app(scope, receive, send):
        heard.append(await receive())

    async def receive():
        return {"type": "http.disconnect"}

    async def send(message):
        raise AssertionError(f"nothing is sent to a client that is gone: {message}")

    scope = {"type": "http", "path": "/login", "headers": [(b"content-length", b"100")]}
    asyncio.run(SmallBodies(app, upload_paths=("/v1/detect",))(scope, receive, send))
    assert heard == [{"type": "http.disconnect"}]


def test_a_clip_or_a_heic_uploaded_is_named_as_what_it_is(tmp_path):
    """/v1/detect takes one photo: a clip or an iPhone's HEIC got "expected PNG, JPEG, ...", which
    names neither what was sent nor where a video goes."""
    import cv2
    import numpy as np

    from maskwatch.serving.uploads import UploadError, image_from_upload

    writer = cv2.VideoWriter(str(tmp_path / "door.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 5, (64, 64))
    writer.write(np.zeros((64, 64, 3), np.uint8))
    writer.release()
    heic = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64)
    for data, said in [((tmp_path / "door.mp4").read_bytes(), "not an image: a video (MP4"),
                       (heic, "not an image: HEIC/HEIF photos")]:
        with pytest.raises(UploadError) as caught:
            image_from_upload(data, 10_000_000)
        assert caught.value.status == 415 and caught.value.message.startswith(said), caught.value.message


@pytest.mark.parametrize("orientation", [3, 6, 8, 2])
def test_a_turned_avif_is_read_upright_by_detect_as_by_the_api(orientation):
    """An AVIF is turned by its irot and imir boxes, not EXIF: OpenCV left it as stored, so that
    `detect` read a phone's portrait AVIF on its side (its faces missed) where the API read it upright."""
    import io

    from PIL import Image

    from maskwatch.data.images import decode_image
    from maskwatch.serving.uploads import image_from_upload

    stored = Image.new("RGB", (100, 40), (0, 0, 255))
    stored.paste((255, 0, 0), (0, 0, 10, 20))  # a red corner: any turn or mirror moves it
    exif = Image.Exif()
    exif[0x0112] = orientation  # Pillow writes it as the AVIF's irot / imir
    buffer = io.BytesIO()
    stored.save(buffer, format="AVIF", exif=exif, quality=95)
    api, cli = image_from_upload(buffer.getvalue(), 10_000_000), decode_image(buffer.getvalue())
    assert cli.shape == api.shape
    assert abs(api.astype(int) - cli.astype(int)).mean() < 3

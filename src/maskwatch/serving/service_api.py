"""The service's own HTTP routes: health, metrics, POST /v1/detect, the dashboard and its files,
the classes, the OpenAPI document and /docs.

One module-level router of plain functions, included by the app factory (serving/app.py), as
security/routes.py and frigate's api/ are: what a route needs (the detector, the settings, the
metrics) it reads from `request.app.state`, which create_app fills, so each route can be read and
imported on its own rather than only as a closure inside the factory.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import threading
from pathlib import Path

import cv2
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from maskwatch import __version__
from maskwatch.faces import CLASSES, count_labels, frame_record
from maskwatch.render import blur_boxes
from maskwatch.runtime import session_providers
from maskwatch.security.route_access import ALL_CAMERAS, PUBLIC
from maskwatch.serving.openapi import DETECT_BODY, DETECT_RESPONSES, document_security
from maskwatch.serving.uploads import image_from_upload, read_image_bytes
from maskwatch.security.request_checks import client_address, root_of

STATIC = Path(__file__).parent / "static"
# Seconds /healthz waits to learn who asks (their token or session, whether the server has users:
# the users database); then it answers as it does to anyone. A PostgreSQL server that hung held
# /healthz with it, and a load balancer or Docker read the service as down.
WHO_ASKS_WAIT = 2.0
# GET /static/NAME, these only: the dashboard's parts (dashboard.html loads them). Each with an ETag
# (a hash of its bytes) and `Cache-Control: private, no-cache`: the browser (no shared cache: they are
# behind the login) keeps them but asks each time, and
# a 304 answers an unchanged one (no-store sent all 14 in full on every load, slow on a phone's link);
# after an upgrade the hash differs, so a browser never runs the new page with a part kept from before.
# The page itself (/, /login) sets none and stays no-store (SecurityHeaders).
STATIC_ASSETS = {name: {"js": "text/javascript", "css": "text/css"}[name.rpartition(".")[2]] for name in (
    "dashboard.css", "dashboard.js", "account.js", "photo.js", "people.js", "chart.js", "alerts.js", "cameras.js",
    "zones.js", "users.js", "users.css", "access-log.js", "access-log.css", "two-step.js", "two-step.css")}

router = APIRouter()
# Every answer's header naming the page this server serves (page_identity): a dashboard left open
# for weeks (a wall screen) reloads itself when it differs from the one it was loaded as (dashboard.js).
PAGE_HEADER = "X-Maskwatch-Page"


@functools.cache
def page_identity() -> str:
    """A hash of this maskwatch's version and the dashboard's files, the same in every process of a
    release: an upgrade kept an open page running the old scripts against the new API for good."""
    digest = hashlib.sha256(__version__.encode())
    for name in ("dashboard.html", *sorted(STATIC_ASSETS)):
        digest.update(static_part(name)[0] if name in STATIC_ASSETS else (STATIC / name).read_bytes())
    return digest.hexdigest()[:32]


@router.get("/healthz", openapi_extra=PUBLIC)
def healthz(request: Request) -> dict:
    """`{"status": "ok"}` to anyone (a load balancer, Docker's HEALTHCHECK); the models, where they
    run and the site's broker only to whom /metrics answers: they told anyone what to attack."""
    if not _sees_every_camera_soon(request):
        return {"status": "ok"}
    detector, site = request.app.state.detector, request.app.state.site
    return {"status": "ok", "classifier": detector.classifier.model_info(),
            "gate": detector.classifier.gate_info(),
            "closeup": detector.classifier.closeup_info(),
            "night": detector.classifier.night_info(),
            "site": site is not None,
            # Whether the site's MQTT broker is connected (None: no MQTT); the reason is in the log.
            "mqtt": None if getattr(site, "mqtt", None) is None else site.mqtt.status()["connected"],
            "providers": session_providers(detector)}


def _sees_every_camera_soon(request: Request) -> bool:
    """access.sees_every_camera, False when the users database has not answered within
    WHO_ASKS_WAIT (its thread, a daemon, ends whenever the database answers or the pool gives up).
    While a lookup that outlasted the wait is still stuck, the next checks answer False at once,
    with no thread of their own: each took 2 s (a probe with a 1 s timeout read the server as
    down all along) and left a thread stuck behind a database that hung."""
    stuck = getattr(request.app.state, "healthz_stuck_lookup", None)
    if stuck is not None and stuck.is_alive():
        return False
    answer: list[bool] = []
    thread = threading.Thread(target=lambda: answer.append(request.app.state.access.sees_every_camera(request)),
                              name="maskwatch-healthz-who-asks", daemon=True)
    thread.start()
    thread.join(WHO_ASKS_WAIT)
    if thread.is_alive():
        request.app.state.healthz_stuck_lookup = thread
    return bool(answer and answer[0])


@router.get("/metrics", response_class=PlainTextResponse, openapi_extra=ALL_CAMERAS,
            responses={200: {"description": "Prometheus text format",
                             "content": {"text/plain": {"schema": {"type": "string"}}}}})
def prometheus(request: Request) -> Response:
    return Response(request.app.state.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


# Uploads of one caller (a user, a token, an open server's client address) received at once per
# process; the next waits, its body left unread in the socket (uvicorn reads on a little, then
# stops). A body is held in memory as it comes, before its turn to be decoded: a viewer's 40 uploads
# of 10 MB, each left a byte short, held 400 MB for as long as they stayed open.
UPLOADS_SENT_AT_ONCE = 4


@router.post("/v1/detect", response_model=None, responses=DETECT_RESPONSES, openapi_extra=DETECT_BODY)
async def detect(request: Request, annotate: bool = False) -> Response:
    """Faces of one image: multipart field `image` or the raw body. `?annotate=1` returns a JPEG
    with the counts in the X-Maskwatch-Counts header."""
    state = request.app.state
    principal = request.state.principal
    caller = principal.name if principal is not None and principal.name else client_address(request)
    sending = state.uploads_sent.setdefault(caller, [asyncio.Semaphore(UPLOADS_SENT_AT_ONCE), 0])
    sending[1] += 1  # the caller's requests here: the entry goes with the last
    try:
        async with sending[0]:
            data = await read_image_bytes(request, state.settings.max_upload_bytes)
    finally:
        sending[1] -= 1
        if not sending[1]:
            del state.uploads_sent[caller]
    async with state.uploads_at_once:  # every decoded picture of this request is gone when it ends
        image = await run_in_threadpool(image_from_upload, data, state.settings.max_pixels)
        faces, unsure = await run_in_threadpool(state.photos.detect_and_unsure, image)
        counts = count_labels(faces)
        for label, n in counts.items():
            state.metrics.faces.labels(label).inc(n)
        if not annotate:
            return JSONResponse(frame_record(faces, image.shape[1], image.shape[0]))
        # blurred: the candidates under the cut-off too
        shown = blur_boxes(image, unsure) if state.annotator.blur else image
        ok, encoded = cv2.imencode(".jpg", await run_in_threadpool(state.annotator.annotate, shown, faces))
    if not ok:
        return JSONResponse({"error": "could not encode the annotated image as JPEG"}, status_code=500)
    return Response(encoded.tobytes(), media_type="image/jpeg", headers={"X-Maskwatch-Counts": json.dumps(counts)})


@router.get("/", response_class=HTMLResponse)
def dashboard() -> str:
    """The page, with the identity it is loaded as (page_identity) in its <meta name="maskwatch-page">."""
    return (STATIC / "dashboard.html").read_text(encoding="utf-8").replace("{{page}}", page_identity(), 1)


@functools.cache
def static_part(asset: str) -> tuple[bytes, str]:
    """A part's bytes and ETag, read once per process: the tag always names the bytes served."""
    body = (STATIC / asset).read_bytes()
    return body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """If-None-Match's weak comparison (RFC 9110 13.1.2): `*`, or any listed tag, W/ or not."""
    if not if_none_match:
        return False
    tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return "*" in tags or etag in tags


@router.get("/static/{asset}", include_in_schema=False)
def static_asset(asset: str, request: Request) -> Response:
    """The dashboard's styles and scripts, in files of their own (the page's CSP allows no inline
    ones); nothing else. 304 where the browser's copy is the same."""
    if asset not in STATIC_ASSETS:
        return JSONResponse({"error": f"no static file {asset!r}"}, status_code=404)
    body, etag = static_part(asset)
    headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
    if etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=STATIC_ASSETS[asset], headers=headers)


@router.get("/v1/classes")
def classes() -> list[str]:
    return list(CLASSES)


@router.get("/openapi.json", include_in_schema=False)
def openapi(request: Request) -> JSONResponse:
    # open: no login asked, as AccessControl.identify answers (a server beyond loopback never is)
    state = request.app.state
    document = document_security(request.app.openapi(),
                                 open_server=state.settings.auth.open_without_users
                                 and not state.access.reads.call(state.access.has_users))
    if root := root_of(request):  # "Try it out" on /docs calls the API through the proxy's prefix
        document = {**document, "servers": [{"url": root}]}
    if state.site is None:
        return JSONResponse(document)
    from maskwatch.serving.site_api import schema_for

    return JSONResponse(state.site.reads.call(schema_for, document, state.site, request.state.principal))


@router.get("/docs", include_in_schema=False)
def docs() -> HTMLResponse:
    return swagger_page()


# Swagger UI for /docs, from the CDN at a pinned version whose files the browser checks by hash
# (Subresource Integrity; sha384 of the files of the npm package swagger-ui-dist 5.35.0): a
# floating "@5" ran whatever the CDN served, with the logged-in user's session.
SWAGGER_UI = "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5.35.0/"
SWAGGER_FILES = {"swagger-ui-bundle.js": "sha384-gjRm0bEPMeTmMh5jT2cHccIwCUZSTd8YC+j0d0sXw0MdGEfScduGpSyF3ZSSLkX9",
                 "swagger-ui.css": "sha384-WlYgdmXYOOBWL5apwjDEZwN+U3HmXSSu5R6V5aGxEcf7z+KuRNwBhoxKVN1i3D5I"}


def swagger_page() -> HTMLResponse:
    from fastapi.openapi.docs import get_swagger_ui_html

    page = get_swagger_ui_html(openapi_url="openapi.json", title="maskwatch API",  # beside /docs, under a prefix too
                               swagger_js_url=SWAGGER_UI + "swagger-ui-bundle.js",
                               swagger_css_url=SWAGGER_UI + "swagger-ui.css", swagger_favicon_url="data:,")
    html = page.body.decode()
    for name, digest in SWAGGER_FILES.items():
        url = f'"{SWAGGER_UI}{name}"'
        if html.count(url) != 1:  # FastAPI wrote its page otherwise: no unchecked script is served
            raise RuntimeError(f"the /docs page does not load {name} once; update swagger_page()")
        html = html.replace(url, f'{url} integrity="{digest}" crossorigin="anonymous"')
    if html.count(SWAGGER_MOUNT) != 1:
        raise RuntimeError('the /docs page has no empty <div id="swagger-ui">; update swagger_page()')
    return HTMLResponse(html.replace(SWAGGER_MOUNT, f'<div id="swagger-ui">{SWAGGER_OFFLINE}</div>'))


# What /docs shows until Swagger UI replaces it (React empties the element it renders into): where the
# CDN cannot be reached, a network without the internet, the page was blank, though `run` and `serve`
# point to it at their start.
SWAGGER_MOUNT = '<div id="swagger-ui">\n    </div>'
SWAGGER_OFFLINE = ("<p>Swagger UI is loading its scripts from cdn.jsdelivr.net. If this stays, this browser cannot "
                   "reach it (a network without the internet?): the API is described in "
                   "<a href=\"openapi.json\">openapi.json</a>, the OpenAPI document.</p>")

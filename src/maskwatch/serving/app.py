"""The app factory of the HTTP API: the middleware, the error answers and the state the routes
read, with the routers included (service_api.py: POST /v1/detect, /healthz, /metrics, the dashboard;
site_api.py: with a site, its cameras and events; security/: logins, users, tokens).

Models load once, at start; detection runs in the threadpool so the event loop keeps serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import asdict, dataclass, field

from fastapi import Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException

import maskwatch
from maskwatch.detection.detector import Models
from maskwatch.render import FaceAnnotator
from maskwatch.runtime import HeldBackLog, PeriodicTrim
from maskwatch.security.access import AccessControl
from maskwatch.security.auth_settings import AuthSettings
from maskwatch.security.request_checks import AuthError
from maskwatch.security.route_access import AUDIT
from maskwatch.security.headers import SecurityHeaders
from maskwatch.serving.drain import DrainBeforeAnswering, SmallBodies
from maskwatch.serving.head import HeadAsGet
from maskwatch.serving.root_path import RootPath
from maskwatch.site.config.server import check_root_path
from maskwatch.site.database_wait import DatabaseNotAnswering
from maskwatch.serving.openapi import ACCESS_RESPONSES, document_validation_errors
from maskwatch.serving.query import error_line, known_query_only
from maskwatch.serving.service_api import PAGE_HEADER, STATIC, page_identity
from maskwatch.serving.service_api import router as service_routes
from maskwatch.serving.uploads import UploadError

log = logging.getLogger(__name__)

# Routes whose bodies hold a password: a 422 says back none of their values (a form post's whole
# body too). Route paths, not URLs: an admin's reset names its user in the URL. The admins' changes
# but a token's revocation carry the admin's own password (admin_routes.py).
SECRET_BODIES = ("/login", "/password", "/v1/users", "/v1/users/{user_name}/password", "/v1/users/{user_name}",
                 "/v1/users/{user_name}/two-step", "/v1/tokens", "/two-step", "/two-step/recovery-codes",
                 "/two-step/replace")
# Uploads decoded and analysed at once per process; the rest wait their turn. A 143 KB PNG of
# 7000 x 7000 passes the pixel limit and costs about 0.5 GB while it is decoded: forty posted
# together (the threadpool's size) would have asked for 20 GB.
UPLOADS_AT_ONCE = 4

# prometheus_client's multiprocess mode: set by `serve --workers N` (N > 1) and for a local cluster's `--ray-replicas`.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
WORKER_PARENT_ENV = "MASKWATCH_WORKER_PARENT"  # set by `serve --workers N`: the process whose workers these are


@dataclass(frozen=True)
class ServeSettings:
    max_upload_bytes: int = 10 * 1024 * 1024
    max_pixels: int = 50_000_000
    blur: bool = False
    models: Models = field(default_factory=Models)  # each worker or replica loads its own
    auth: AuthSettings = field(default_factory=AuthSettings)  # who may ask (security/access.py)
    root_path: str = ""  # the prefix a reverse proxy serves this under, "/maskwatch" (root_path.py)

    def __post_init__(self) -> None:
        if self.max_upload_bytes < 1 or self.max_pixels < 1:  # either would refuse every upload
            raise ValueError(f"max_upload_bytes and max_pixels must be at least 1, got {self.max_upload_bytes} "
                             f"and {self.max_pixels}")
        object.__setattr__(self, "root_path", check_root_path(self.root_path))
        if isinstance(self.models, dict):  # read back from JSON
            object.__setattr__(self, "models", Models(**self.models))
        if isinstance(self.auth, dict):  # read back from JSON (serve's workers)
            object.__setattr__(self, "auth", AuthSettings(**{k: tuple(v) if isinstance(v, list) else v
                                                             for k, v in self.auth.items()}))

    def to_json(self) -> str:
        return json.dumps(asdict(self))


class Metrics:
    """Prometheus counters of this process (one registry per app, so tests stay independent).

    Under `serve --workers N` (or `--ray-replicas N` on a local cluster) a scrape reaches one
    process of N, so each would report only its own share. There PROMETHEUS_MULTIPROC_DIR is set
    before they start: every process's counters go to files in that folder and `exposition()`
    sums them over all of them.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.extra: list = []
        self.requests = Counter("maskwatch_requests", "HTTP requests", ["path", "status"], registry=self.registry)
        self.latency = Histogram("maskwatch_request_seconds", "Request latency", ["path"], registry=self.registry,
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
        self.faces = Counter("maskwatch_faces", "Faces detected, per class", ["label"], registry=self.registry)

    def add_collector(self, collector) -> None:
        """A collector read at scrape time in this process (the site's cameras)."""
        self.registry.register(collector)
        self.extra.append(collector)

    def exposition(self) -> bytes:
        import os

        if not os.environ.get(MULTIPROC_ENV):
            return generate_latest(self.registry)
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        for collector in self.extra:
            registry.register(collector)
        return generate_latest(registry)


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI):
    """Runs the access control's sweep (AccessControl.start) and the site, if the app serves one, for
    as long as the server runs."""
    site = app.state.site
    app.state.access.start()  # its sweep of failed logins, also while nobody asks anything
    try:
        if site is not None:
            site.start()  # stops what it started if it fails
        yield
    finally:
        # Also when uvicorn is forced out (a second Ctrl-C cancels us at the yield): the people
        # in view were never stored. A site stopped already is passed over.
        if site is not None:
            site.stop()
        app.state.access.close()


async def refused(request: Request, err: AuthError) -> Response:
    from maskwatch.security.routes import refusal

    return refusal(request, err)


async def http_error(request: Request, err: HTTPException) -> Response:
    """FastAPI's answer with an `error` line, and a 405's Allow lists every method of the path:
    Starlette names only the first route's, and GET /login and POST /login are two routes."""
    from fastapi.utils import is_body_allowed_for_status_code

    if err.status_code == 405:
        from starlette.routing import Match

        methods = [method for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
                   if any(route.matches({**request.scope, "method": method})[0] == Match.FULL
                          for route in request.app.router.routes)]
        err = HTTPException(405, err.detail, headers={"Allow": ", ".join(methods)})
    if not is_body_allowed_for_status_code(err.status_code):
        return Response(status_code=err.status_code, headers=err.headers)
    # FastAPI's answer, `detail`, with the one-line `error` of every other refusal beside it.
    error = {404: f"no route {request.url.path}",
             405: f"{request.method} is not allowed on {request.url.path}; it takes "
                  f"{(err.headers or {}).get('Allow', 'other methods')}"}.get(err.status_code, str(err.detail))
    return JSONResponse({"error": error, "detail": err.detail}, status_code=err.status_code, headers=err.headers)


async def invalid_request(request: Request, err: RequestValidationError) -> Response:
    """FastAPI's 422 (`detail`, a list) with the one-line `error` too (openapi.py documents it).
    A password's `input` is not said back (a refused one was echoed whole), and the answer is
    ASCII JSON: a lone surrogate in a field ("\\ud800") made rendering it a 500."""
    detail = jsonable_encoder(err.errors())
    route = request.scope.get("route")
    if getattr(route, "path", None) in SECRET_BODIES:
        for entry in detail:
            if entry.get("loc", ("",))[0] == "body":
                entry.pop("input", None)
    body = json.dumps({"error": error_line(detail), "detail": detail}, separators=(",", ":"))
    return Response(body, status_code=422, media_type="application/json")


async def database_error(request: Request, err: SQLAlchemyError) -> JSONResponse:
    """The database away (a server restarting, a full disk): 503, try again, not a bare 500."""
    request.app.state.database_failures.warning("%s %s: the database failed (%s)", request.method,
                                                request.url.path, str(err).splitlines()[0][:200])
    return JSONResponse({"error": "the database cannot be read or written just now; try again shortly"},
                        status_code=503, headers={"Retry-After": "5"})


async def database_not_answering(request: Request, err: DatabaseNotAnswering) -> JSONResponse:
    """A database that has not answered a read within a few seconds (a server that hangs): 503,
    naming it; the request's thread is free again (site/database_wait.py)."""
    return JSONResponse({"error": str(err)}, status_code=503, headers={"Retry-After": "5"})


async def upload_error(request: Request, err: UploadError) -> JSONResponse:
    return JSONResponse({"error": err.message}, status_code=err.status)


# The app's answers to what a route or middleware raises, each with its one-line `error`.
ERROR_ANSWERS = {AuthError: refused, HTTPException: http_error, RequestValidationError: invalid_request,
                 SQLAlchemyError: database_error, UploadError: upload_error,
                 DatabaseNotAnswering: database_not_answering}


def create_app(detector, settings: ServeSettings = ServeSettings(), site=None) -> FastAPI:
    """The service around an already loaded Detector; with a site (site.runner.Site), also its
    cameras and events (/v1/cameras, /v1/events), run for as long as the server runs."""
    access = AccessControl.from_settings(settings.auth)
    # Deny by default: `authorize` runs first for every route; FastAPI's own /docs and
    # /openapi.json are replaced below by routes that go through it too.
    # The document's version is the package's, which `--version` and the start line say: a client
    # reading it learns which maskwatch answers (it said 0.1.0, written here, whatever was installed).
    app = FastAPI(title="maskwatch", version=maskwatch.__version__, lifespan=lifespan, exception_handlers=ERROR_ANSWERS,
                  dependencies=[Depends(access.authorize), Depends(known_query_only)],
                  docs_url=None, openapi_url=None, redoc_url=None, responses=ACCESS_RESPONSES,
                  description="Who wears a face mask, who wears it wrongly, who wears none.")
    # What the routes (service_api.py, site_api.py, security/) read from request.app.state.
    app.state.access = access
    app.state.site = site  # POST /v1/users checks a viewer's cameras against it
    app.state.privacy = lambda: privacy_statement(settings, site, access, audited_actions(app))
    app.state.settings = settings
    app.state.detector = detector
    app.state.photos = detector.for_photos() if hasattr(detector, "for_photos") else detector  # as `detect` reads a photo
    app.state.metrics = metrics = Metrics()
    app.state.annotator = FaceAnnotator(blur=settings.blur)
    app.state.uploads_at_once = asyncio.Semaphore(UPLOADS_AT_ONCE)
    app.state.uploads_sent = {}  # caller -> [its uploads' semaphore, its requests] (service_api.detect)
    app.state.database_failures = HeldBackLog(log)  # database_error's warnings, one a while
    trim = PeriodicTrim()  # uploads' free memory back to the system once a minute (STEADY_MALLOC)
    if settings.root_path:  # innermost: the middlewares below see the path as the proxy passed it
        app.add_middleware(RootPath, prefix=settings.root_path)
    # Added before `observe`, so it runs inside it and refusals are counted too; drain.py says why.
    app.add_middleware(SmallBodies, upload_paths=("/v1/detect",))
    app.add_middleware(DrainBeforeAnswering, max_bytes=max(4 * settings.max_upload_bytes, 64 * 1024 * 1024))

    @app.middleware("http")
    async def observe(request: Request, call_next):
        started = time.perf_counter()
        response = await call_next(request)
        if getattr(request.state, "audit", None) is not None:  # a database write: off the event loop
            await run_in_threadpool(access.audit_answered, request, response.status_code)
        path = request.scope.get("route").path if request.scope.get("route") else "other"
        metrics.requests.labels(path, str(response.status_code)).inc()
        metrics.latency.labels(path).observe(time.perf_counter() - started)
        trim.maybe()
        if getattr(request.state, "principal", None) is not None:  # not to anyone: it names the release
            response.headers[PAGE_HEADER] = page_identity()
        return response

    app.add_middleware(HeadAsGet)  # inside the headers: a HEAD's answer carries them too
    # Outermost: the headers go on every answer; trusted proxies' X-Forwarded-* are read first.
    app.add_middleware(SecurityHeaders, pages=[STATIC / "dashboard.html", STATIC / "login.html"])
    if settings.auth.trusted_proxies:
        from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=list(settings.auth.trusted_proxies))

    app.include_router(service_routes)
    if site is not None:
        from maskwatch.serving.site_api import router as site_routes
        from maskwatch.site.metrics import SiteCollector

        app.include_router(site_routes)
        metrics.add_collector(SiteCollector(site))

    from maskwatch.security.admin_routes import router as admin_routes
    from maskwatch.security.routes import router as access_routes
    from maskwatch.security.two_step_routes import router as two_step_routes

    app.include_router(access_routes)
    app.include_router(two_step_routes)
    app.include_router(admin_routes)

    plain_openapi = app.openapi

    def openapi_document() -> dict:  # FastAPI's, with the 422 answers as invalid_request makes them
        return document_validation_errors(plain_openapi())

    app.openapi = openapi_document

    return app


def audited_actions(app: FastAPI) -> list[str]:
    """What the access log records: the logins and logouts, and each audited route's action, read
    from the routes' OpenAPI entries (a hand-written list left the events' export out of the statement)."""
    routes = {operation[AUDIT] for path in app.openapi()["paths"].values() for operation in path.values()
              if isinstance(operation, dict) and AUDIT in operation}
    from maskwatch.security.user_words import CHANGES

    # A site's erasures are written by `maskwatch events delete` into the same log, by no route.
    erasures = ["events_erased"] if "events_export" in routes else []
    return ["login", "login_failed", "login_limited", "logout", "password_changed", "password_change_failed",
            *CHANGES, "admin_password_failed", "totp_failed", "recovery_used", "token_expired",
            *sorted([*routes, *erasures])]


def privacy_statement(settings: ServeSettings, site, access: AccessControl, records: list[str]) -> dict:
    """What the running service keeps and who may see it (GET /v1/privacy), from its live config."""
    users = access.store.users() if access.store is not None else []
    statement = {
        "access": {"login_required": bool(users) or not settings.auth.open_without_users,
                   "admins": sum(u["role"] == "admin" for u in users),
                   "viewers": sum(u["role"] == "viewer" for u in users),
                   "viewers_limited_to_cameras": sum(u["role"] == "viewer" and u["cameras"] is not None for u in users),
                   "api_tokens": len(access.store.tokens()) if access.store is not None else 0},
        "access_log": {"kept": access.store is not None, "retention_days": settings.auth.retention_days,
                       "records": records},
        "uploads": "POST /v1/detect images are analysed in memory and never stored",
    }
    if site is not None:
        storage = site.config.storage
        statement["site"] = {
            "cameras": list(site.cameras_by_id),
            # removed from the config or disabled: their people and snapshots are kept to retention
            "cameras_not_running_with_history": site.retired_cameras(),
            "live_frames_blurred": storage.live_blurred,
            "snapshots": "none kept (privacy mode)" if storage.privacy else "one per person, face blurred",
            "events_kept": "camera, zone, track id, voted label, first and last seen, whether seen on grey (infrared) "
                           "frames: no face, no identity",
            "alerts_kept": "compliance alerts: camera, zone, rule, when, the share wearing a mask and the people "
                           "counted over the rule's minutes: no person",
            "retention_days": storage.retention_days,
            "database": storage.database.split("://")[0] if "://" in storage.database else "sqlite",
        }
    return statement


SETTINGS_ENV = "MASKWATCH_SERVE_SETTINGS"


def _end_with_parent(parent: int) -> None:
    """A worker process gets SIGTERM when its parent (process `parent`) ends (Linux's
    PR_SET_PDEATHSIG): a parent killed outright (SIGKILL, the OOM killer) left its workers serving
    the port, and the next `serve` could not bind it. Compared with the parent's own id, not 1:
    in a container `serve` itself is process 1."""
    import ctypes
    import os
    import signal
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent went before the call
        os.kill(os.getpid(), signal.SIGTERM)


def app_from_env() -> FastAPI:
    """uvicorn factory (one per worker process): settings from MASKWATCH_SERVE_SETTINGS (JSON)."""
    import os

    if (parent := os.environ.get(WORKER_PARENT_ENV)) is not None:  # one of `serve --workers N`'s processes
        _end_with_parent(int(parent))
    settings = ServeSettings(**json.loads(os.environ.get(SETTINGS_ENV, "{}")))  # ServeSettings.to_json
    return create_app(settings.models.load(threads=1 if os.environ.get("MASKWATCH_SINGLE_THREAD") else 0), settings)

"""maskwatch behind a reverse proxy under a path prefix (server.root_path, `serve --root-path`):
`maskwatch run` with users, reached through a small prefix-stripping proxy written here (as nginx's
`location /maskwatch/ { proxy_pass http://127.0.0.1:8000/; }`), driven by headless Chromium."""

from __future__ import annotations

import csv
import http.client
import http.server
import io
import json
import threading

import httpx
import pytest

from maskwatch.security.request_checks import PREFIXED_SECURE_COOKIE
from maskwatch.serving.app import ServeSettings
from maskwatch.site.config.server import check_root_path
from maskwatch.site.config import SiteConfigError, load_site_config
from tests.conftest import ADMIN, browser_trouble
from tests.test_cameras import wait_until
from tests.test_dashboard import page  # noqa: F401  (headless Chromium)
from tests.test_security import log_in_with_next
from tests.test_site import SiteProcess, leaving_clip

PREFIX = "/maskwatch"
CSRF = {"X-Maskwatch-CSRF": "1"}


def stripping_proxy(backend_port: int) -> http.server.ThreadingHTTPServer:
    """Passes /maskwatch/X on to the backend as /X, Host kept (as `proxy_set_header Host $host`);
    anything else is the host's other business: 404 here."""

    class Forward(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _forward(self) -> None:
            if not self.path.startswith(PREFIX + "/"):
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            backend = http.client.HTTPConnection("127.0.0.1", backend_port, timeout=30)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "keep-alive")}
            backend.request(self.command, self.path[len(PREFIX):], body=body or None, headers=headers)
            answer = backend.getresponse()
            data = answer.read()
            self.send_response(answer.status)
            for name, value in answer.getheaders():
                if name.lower() not in ("transfer-encoding", "connection", "content-length", "date", "server"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            backend.close()

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _forward

        def log_message(self, *args) -> None:
            pass

    return http.server.ThreadingHTTPServer(("127.0.0.1", 0), Forward)


@pytest.fixture(scope="module")
def proxied(tmp_path_factory, sample_dir):
    """A one-camera site with root_path /maskwatch, and the proxy's base URL (with the prefix)."""
    folder = tmp_path_factory.mktemp("prefixed")
    leaving_clip(folder / "door.mp4", sample_dir)  # its people leave: events, with snapshots
    site = SiteProcess(folder, "  door: {source: door.mp4}\n", server=f", root_path: {PREFIX}")
    proxy = stripping_proxy(site.port)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    yield site, f"http://127.0.0.1:{proxy.server_address[1]}{PREFIX}"
    proxy.shutdown()
    site.stop()


def test_the_prefix_goes_into_redirects_cookies_and_urls_the_server_writes(proxied, sample_dir):
    """Without root_path the login redirect sent the browser to /login (the host's, not
    maskwatch's), and the cookie's Path was / (sent to every application of the host)."""
    site, base = proxied
    away = httpx.get(base + "/?camera=door", headers={"Accept": "text/html"}, timeout=10)
    assert away.status_code == 303 and away.headers["location"] == f"{PREFIX}/login?next={PREFIX}/%3Fcamera%3Ddoor"
    login = httpx.post(base + "/login", json={"username": ADMIN[0], "password": ADMIN[1]}, headers=CSRF, timeout=30)
    cookie = login.headers["set-cookie"]
    assert cookie.startswith(PREFIXED_SECURE_COOKIE + "=") and f"Path={PREFIX}/" in cookie, cookie
    document = httpx.get(base + "/openapi.json", headers=site.credentials.headers, timeout=10).json()
    assert document["servers"] == [{"url": PREFIX}]
    assert "url: 'openapi.json'" in httpx.get(base + "/docs", headers=site.credentials.headers, timeout=10).text
    events = httpx.get(base + "/v1/events", headers=site.credentials.headers, timeout=10).json()["events"]
    assert all(e["snapshot"] is None or e["snapshot"].startswith(PREFIX + "/v1/snapshots/") for e in events)
    # An upload (past the 64 KiB every other body is held to, by its path as the proxy passed it)
    photo = sorted(sample_dir.glob("images/*.png"))[0]
    detected = httpx.post(base + "/v1/detect", files={"image": (photo.name, photo.read_bytes(), "image/png")},
                          headers=site.credentials.headers, timeout=60)
    assert detected.status_code == 200, detected.text
    # Addressed directly (a health check on loopback), it answers all the same.
    assert site.get("/healthz").status_code == 200


def test_a_browser_logs_in_sees_the_dashboard_and_logs_out_through_the_prefix(proxied, page):  # noqa: F811
    """The page named /static/..., /v1/... and /login from the host's root: under a prefix its
    scripts, styles and reads were the host's 404s, and the dashboard stayed empty."""
    _, base = proxied
    page.context.clear_cookies()
    outside = []
    page.on("request", lambda request: outside.append(request.url)
            if request.url.startswith("http") and PREFIX not in request.url else None)
    page.goto(base + "/")  # not logged in: the prefixed login page
    page.wait_for_selector("#login", timeout=20_000)
    assert page.url == f"{base}/login?next={PREFIX}/"
    page.fill("#username", ADMIN[0])
    page.fill("#password", ADMIN[1])
    page.click("button[type=submit]")
    page.wait_for_url(base + "/", timeout=20_000)
    page.wait_for_selector('.camera[data-camera="door"]', timeout=20_000)
    page.wait_for_function("() => document.querySelector('.camera[data-camera=\"door\"] img').naturalWidth > 0",
                           timeout=30_000)
    page.wait_for_function("() => document.getElementById('trend-chart').dataset.buckets !== undefined",
                           timeout=20_000)
    # A session that ends (its cookie gone): the next poll's 401 sends the page to the prefixed
    # login page, and a reload is sent there by the server.
    page.context.clear_cookies()
    page.wait_for_url(f"{base}/login?next=%2Fmaskwatch%2F#ended", timeout=20_000)
    page.goto(base + "/")
    page.wait_for_url(f"{base}/login?next={PREFIX}/", timeout=20_000)
    page.wait_for_selector("#login", timeout=20_000)
    # Logged in again, the logout lands on the prefixed login page too.
    page.fill("#username", ADMIN[0])
    page.fill("#password", ADMIN[1])
    page.click("button[type=submit]")
    page.wait_for_url(base + "/", timeout=20_000)
    page.wait_for_selector("#logout:not([hidden])", timeout=20_000)
    page.click("#logout")
    page.wait_for_url(base + "/login", timeout=20_000)
    assert outside == [] and browser_trouble() == []


def test_the_login_page_goes_on_to_pages_under_the_prefix_only(proxied, page):  # noqa: F811
    """Under a prefix the host's other applications share maskwatch's origin: the login page's
    ?next= went on to any of them (/elsewhere, /maskwatchevil/, or /maskwatch/..%2Felsewhere, which
    nginx decodes and hands to the host's /elsewhere); it goes to the dashboard instead."""
    _, base = proxied
    for written, lands in ((f"{PREFIX}/?camera=door", "/?camera=door"), ("/elsewhere", "/"),
                           ("/maskwatchevil/", "/"), (f"{PREFIX}/..%252Felsewhere", "/"),
                           (f"{PREFIX}/%252e%252e/elsewhere", "/")):
        log_in_with_next(page, base, written, lands)


def test_a_screen_whose_proxy_maps_its_root_to_the_prefix_shows_the_snapshots(proxied, page):  # noqa: F811
    """A wall screen's token-adding proxy that maps its / to https://host/maskwatch/ (site.md) is a
    browser at the backend's own root with a token: the snapshots were read at the answers'
    /maskwatch/v1/snapshots/..., /maskwatch/maskwatch/... to the server: 404, "no picture"."""
    site, base = proxied
    assert wait_until(lambda: any(e["snapshot"] for e in site.get("/v1/events").json()["events"]), 60)
    # events.csv's snapshot column as /v1/events gives it, through the prefix (it lacked the prefix).
    exported = httpx.get(base + "/v1/events.csv", headers=site.credentials.headers, timeout=30)
    snapshots = [row["snapshot"] for row in csv.DictReader(io.StringIO(exported.text)) if row["snapshot"]]
    assert snapshots and all(s.startswith(PREFIX + "/v1/snapshots/") for s in snapshots), exported.text[:500]
    context = page.context.browser.new_context(extra_http_headers=site.credentials.headers)
    try:
        screen = context.new_page()
        screen.goto(f"http://127.0.0.1:{site.port}/")
        screen.wait_for_function("() => [...document.querySelectorAll('#event-list [data-snapshot] img')]"
                                 ".some((img) => img.naturalWidth > 0)", timeout=60_000)
        assert screen.locator("#event-list .nosnap").count() == 0
    finally:
        context.close()


def test_a_root_path_that_is_no_url_path_is_refused_naming_the_setting(tmp_path):
    assert check_root_path("/maskwatch/") == "/maskwatch" and check_root_path("/") == ""
    for wrong in ("maskwatch", "/mask watch", "/a?b", "//evil.example", "/..", "/a/./b", "/maskwatch/../other"):
        with pytest.raises(ValueError, match="server.root_path"):
            check_root_path(wrong, "server.root_path")
    with pytest.raises(ValueError, match="root_path '/a b'"):
        ServeSettings(root_path="/a b")
    config = tmp_path / "site.yaml"
    config.write_text('cameras:\n  door: {source: door.mp4}\nserver: {root_path: "maskwatch"}\n')
    with pytest.raises(SiteConfigError, match=r"site.yaml: field 'server.root_path': the value 'maskwatch' is not a URL path"):
        load_site_config(config, files=False)
    # as `serve --workers N` hands the settings to each worker
    assert ServeSettings(**json.loads(ServeSettings(root_path="/maskwatch/").to_json())).root_path == "/maskwatch"


def test_a_login_under_the_prefix_ends_the_session_cookie_made_at_the_root(tmp_path):
    """A browser that used maskwatch at https://host/ before root_path was set kept its
    __Host-maskwatch-session (Path=/): sent to every application of the host for up to
    session_max_hours, its token still logged in under the prefix. A login under the prefix ends
    it and drops it from the browser."""
    from fastapi.testclient import TestClient

    from maskwatch.security.auth_settings import AuthSettings
    from maskwatch.security.request_checks import SECURE_COOKIE
    from maskwatch.security.store import AuthStore
    from maskwatch.serving.app import create_app
    from tests.test_security_deploy import NoFaces

    database = str(tmp_path / "users.db")
    AuthStore(database).add_user(*ADMIN, "admin")
    login = {"username": ADMIN[0], "password": ADMIN[1]}

    def app(root_path: str):
        return create_app(NoFaces(), ServeSettings(auth=AuthSettings(database=database, open_without_users=False),
                                                   root_path=root_path))

    with TestClient(app(""), base_url="https://maskwatch.lan") as client:
        old = client.post("/login", json=login, headers=CSRF).cookies[SECURE_COOKIE]
    with TestClient(app(PREFIX), base_url="https://maskwatch.lan") as client:
        stale = {"Cookie": f"{SECURE_COOKIE}={old}"}
        assert client.get("/v1/me", headers={"Cookie": f"{PREFIXED_SECURE_COOKIE}={old}"}).status_code == 200
        answer = client.post("/login", json=login, headers=CSRF | stale)
        assert answer.status_code == 200
        dropped = [c for c in answer.headers.get_list("set-cookie") if c.startswith(SECURE_COOKIE + "=")]
        assert len(dropped) == 1 and "Path=/;" in dropped[0] and "Max-Age=0" in dropped[0], dropped
        assert client.get("/v1/me", headers={"Cookie": f"{PREFIXED_SECURE_COOKIE}={old}"}).status_code == 401


def test_the_prefix_is_put_before_a_path_whose_raw_path_the_server_left_out():
    """ASGI lets a server leave raw_path out or None: None failed every request (bytes + None)."""
    from maskwatch.serving.root_path import RootPath

    seen = []

    async def inner(scope, receive, send):
        seen.append((scope["root_path"], scope["path"], scope["raw_path"]))

    for raw in ({"raw_path": None}, {}, {"raw_path": b"/v1/a%20b"}):
        scope = {"type": "http", "path": "/v1/a b", "root_path": "", **raw}
        # run to its end here: nothing in it waits (asyncio.run refuses: Playwright's loop runs in this thread)
        with pytest.raises(StopIteration):
            RootPath(inner, PREFIX)(scope, None, None).send(None)
    assert seen == [(PREFIX, PREFIX + "/v1/a b", b"/maskwatch/v1/a b")] * 2 + [(PREFIX, PREFIX + "/v1/a b", b"/maskwatch/v1/a%20b")]

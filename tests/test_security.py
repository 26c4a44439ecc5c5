"""Who may see the cameras (issue 25), against real parts: `maskwatch run` with users in its SQLite
database called over HTTP, the login page in headless Chromium, a cross-origin page served from
another port, the CLI, PostgreSQL, and HTTPS with a certificate made here."""

from __future__ import annotations

import base64
import hashlib
import http.server
import re
import sqlite3
import subprocess
import sys
import threading

import httpx
import pytest
from playwright.sync_api import Error as PlaywrightError, TimeoutError as PlaywrightTimeout

from fastapi import Request

from maskwatch.security.access import AccessControl, Principal
from maskwatch.security.auth_settings import AuthSettings
from maskwatch.security.request_checks import PLAIN_COOKIE, SECURE_COOKIE, AuthError
from maskwatch.security.store import AuthStore
from tests.conftest import ADMIN, VIEWER, browser_trouble, log_in, watched
from tests.postgres import postgres  # noqa: F401  (fixture)
from tests.rtsp import refused_port, reserved_port
from tests.test_cameras import wait_until
from tests.test_dashboard import page  # noqa: F401  (headless Chromium)
from tests.test_detection import make_video
from tests.test_site import SiteProcess, leaving_clip, still_clip

CSRF = {"X-Maskwatch-CSRF": "1"}
CLI = [sys.executable, "-m", "maskwatch.cli"]


@pytest.fixture(scope="module")
def secured(tmp_path_factory, sample_dir):
    """A two-camera site with an admin, a viewer of `door` only, and API tokens."""
    folder = tmp_path_factory.mktemp("secured")
    still_clip(folder / "door.mp4", sample_dir)
    leaving_clip(folder / "till.mp4", sample_dir)  # its people leave: till has events to hide
    running = SiteProcess(folder, "  door: {source: door.mp4}\n  till: {source: till.mp4}\n",
                          viewer_cameras=["door"])
    yield running
    running.stop()


def login(base: str, user: tuple[str, str], **headers) -> httpx.Response:
    return httpx.post(base + "/login", json={"username": user[0], "password": user[1]},
                      headers=CSRF | headers, timeout=30)


def session_of(response: httpx.Response) -> dict:
    """The session cookie as a Cookie header (httpx keeps no Secure cookie for plain http)."""
    return {"Cookie": f"{SECURE_COOKIE}={response.cookies[SECURE_COOKIE]}"}


def fill(path: str) -> str:
    return (path.replace("{camera_id}", "door").replace("{name}", "door-1.jpg").replace("{user_name}", "viewer")
            .replace("{token_name}", "nobody"))


def test_every_route_but_the_public_ones_refuses_a_request_without_credentials(secured):
    """Walks the OpenAPI document, so a route added later cannot slip through."""
    spec = secured.get("/openapi.json").json()
    public, checked = [], 0
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            response = httpx.request(method.upper(), secured.base + fill(path), timeout=30)
            if operation.get("x-maskwatch-access") == "public":
                public.append((method, path))
                assert response.status_code not in (401, 403), (method, path)
                assert operation["security"] == [], (method, path)
            else:
                assert response.status_code in (401, 403), (method, path, response.status_code, response.text)
                # as a generated client reads it: this route needs the token
                assert operation["security"] == [{"token": []}], (method, path)
                checked += 1
    assert sorted(public) == [("get", "/healthz"), ("get", "/login"), ("post", "/login")]
    assert spec["components"]["securitySchemes"]["token"] | {"description": ""} == {
        "type": "http", "scheme": "bearer", "description": ""}
    assert checked >= 15
    for path in ("/openapi.json", "/docs", "/"):  # not in the document, denied the same way
        assert httpx.get(secured.base + path, timeout=10).status_code == 401
    assert httpx.get(secured.base + "/", headers={"Accept": "text/html"}, timeout=10).headers["location"] == "/login?next=/"


def test_loopback_with_users_still_asks_for_a_login_and_headers_are_on_every_answer(secured):
    for response in (httpx.get(secured.base + "/v1/cameras", timeout=10),  # 401
                     secured.get("/v1/cameras"), secured.get("/v1/nothing-here"), httpx.get(secured.base + "/login")):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        assert response.headers["referrer-policy"] == "same-origin"
        assert response.headers["cache-control"] == "no-store"  # a viewer's answers stay out of caches
        assert "strict-transport-security" not in response.headers  # plain http


def test_login_session_logout_and_the_cookie_no_longer_works(secured):
    response = login(secured.base, ADMIN)
    assert response.status_code == 200 and response.json()["role"] == "admin"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(SECURE_COOKIE + "=") and "HttpOnly" in cookie and "Secure" in cookie
    assert "samesite=lax" in cookie.lower() and "Path=/" in cookie and "Domain" not in cookie
    session = session_of(response)
    assert httpx.get(secured.base + "/v1/me", headers=session, timeout=10).json()["user"] == "admin"
    assert httpx.post(secured.base + "/logout", headers=session | CSRF, timeout=10).status_code == 200
    assert httpx.get(secured.base + "/v1/me", headers=session, timeout=10).status_code == 401


def test_state_changing_requests_need_the_csrf_header_and_our_origin(secured):
    session = session_of(login(secured.base, ADMIN))
    refused = httpx.post(secured.base + "/logout", headers=session, timeout=10)
    assert refused.status_code == 403 and "X-Maskwatch-CSRF" in refused.json()["error"]
    foreign = httpx.post(secured.base + "/logout", headers=session | CSRF | {"Origin": "http://evil.example"},
                         timeout=10)
    assert foreign.status_code == 403 and "cross-origin" in foreign.json()["error"]
    assert httpx.get(secured.base + "/v1/me", headers=session, timeout=10).status_code == 200  # still logged in
    assert login(secured.base, ADMIN, Origin="http://evil.example").status_code == 403  # login CSRF too


def test_unknown_user_and_wrong_password_get_the_same_answer_then_429(secured):
    unknown, wrong = login(secured.base, ("nobody", "whatever123")), login(secured.base, ("victim", "x"))
    store = AuthStore(str(secured.folder / "site.db"))
    store.add_user("victim", "victim's own password", "viewer")
    wrong = login(secured.base, ("victim", "not the password"))
    assert unknown.status_code == wrong.status_code == 401 and unknown.json() == wrong.json()
    for _ in range(4):  # the name's fifth failure since it became a user's (the one before is counted apart)
        assert login(secured.base, ("victim", "not the password")).status_code == 401
    limited = login(secured.base, ("victim", "victim's own password"))  # even the right one, for a while
    assert limited.status_code == 429 and 1 <= int(limited.headers["retry-after"]) <= 15 * 60
    for _ in range(5):  # refused guesses are cheap for the guesser: the log takes one a minute, not each
        assert login(secured.base, ("victim", "guess")).status_code == 429
    logged = secured.get("/v1/access-log", action="login_limited").json()["entries"]
    assert sum(e["target"] == "victim" for e in logged) == 1
    assert login(secured.base, VIEWER).status_code == 200  # another user from the same address still may
    store.close()


def test_x_forwarded_for_is_ignored_from_an_untrusted_client(secured):
    spoofed = login(secured.base, ("spoofer", "wrong password"), **{"X-Forwarded-For": "203.0.113.9"})
    assert spoofed.status_code == 401, spoofed.text
    entries = secured.get("/v1/access-log", action="login_failed").json()["entries"]
    entry = next((e for e in entries if e["target"] == "(unknown name)"), entries)  # no user's name: not kept
    assert entry["client"] == "127.0.0.1"


def test_a_request_head_without_end_is_refused_by_a_site(secured):
    from tests.test_http_limits import refuses_a_head_without_end

    refuses_a_head_without_end(secured.base)


def test_tokens_read_only_and_revoked(secured, sample_dir):
    read = {"Authorization": f"Bearer {secured.credentials.read_token}"}
    assert httpx.get(secured.base + "/v1/events", headers=read, timeout=10).status_code == 200
    png = next(sample_dir.glob("images/*.png")).read_bytes()
    post = httpx.post(secured.base + "/v1/detect", content=png, headers=read, timeout=30)
    assert post.status_code == 403 and "read-only" in post.json()["error"]
    # the document's examples of a 401 and a 403 are these answers
    documented = secured.get("/openapi.json").json()["paths"]["/v1/detect"]["post"]["responses"]
    assert documented["403"]["content"]["application/json"]["example"] == post.json()
    anonymous = httpx.post(secured.base + "/v1/detect", content=png, timeout=30)
    assert anonymous.status_code == 401 and documented["401"]["content"]["application/json"]["example"] == anonymous.json()
    assert httpx.get(secured.base + "/v1/access-log", headers=read, timeout=10).status_code == 403
    assert "maskwatch_requests" in httpx.get(secured.base + "/metrics", headers=read, timeout=10).text  # Prometheus
    assert httpx.post(secured.base + "/v1/detect", content=png, headers=secured.credentials.headers,
                      timeout=60).status_code == 200  # full scope, no CSRF header: not a browser session
    revoke = subprocess.run([*CLI, "tokens", "revoke", "tests-read", "--config", str(secured.config)],
                            capture_output=True, text=True, timeout=60)
    assert revoke.returncode == 0, revoke.stderr
    gone = httpx.get(secured.base + "/v1/events", headers=read, timeout=10)
    assert gone.status_code == 401 and "revoked" in gone.json()["error"]
    assert httpx.get(secured.base + "/v1/events", headers={"Authorization": "Bearer mw_made-up"},
                     timeout=10).status_code == 401


def test_a_read_token_may_check_zone_text_and_no_other_write(secured):
    """A read-only token was refused the zone editor's check, a POST that writes nothing, so a
    script could not validate zone text before a deploy; a route marked reads-only lets it, and
    every other write still refuses it, whatever it would change."""
    store = AuthStore(str(secured.folder / "site.db"))
    read = {"Authorization": f"Bearer {store.add_token('zone-checker', 'read')}"}
    store.close()
    zones = "zones:\n  front: [[0.1, 0.1], [0.9, 0.1], [0.5, 0.8]]\n"
    checked = httpx.post(secured.base + "/v1/cameras/door/zones/check", json={"text": zones}, headers=read, timeout=10)
    assert checked.status_code == 200, checked.text
    assert [zone["name"] for zone in checked.json()["zones"]] == ["front"]
    bad = httpx.post(secured.base + "/v1/cameras/door/zones/check", json={"text": "zones: {q: [[0, 0]]}"},
                     headers=read, timeout=10)
    assert bad.status_code == 400 and "needs at least 3 points" in bad.json()["error"]
    spec = secured.get("/openapi.json").json()
    reads_only, writes = [], 0
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            if method == "get" or operation.get("x-maskwatch-access") == "public":
                continue
            if operation.get("x-maskwatch-reads-only"):
                reads_only.append((method, path))
                continue
            answer = httpx.request(method.upper(), secured.base + fill(path), json={}, headers=read, timeout=30)
            assert answer.status_code == 403, (method, path, answer.text)
            assert answer.json() == {"error": "this API token is read-only"}, (method, path)
            writes += 1
    assert reads_only == [("post", "/v1/cameras/{camera_id}/zones/check")] and writes >= 8
    assert "POST /v1/cameras/{camera_id}/zones/check" in spec["components"]["securitySchemes"]["token"]["description"]


def test_a_viewer_sees_only_their_cameras_and_no_admin_route(secured):
    session = session_of(login(secured.base, VIEWER))

    def get(path, **params):
        return httpx.get(secured.base + path, params=params, headers=session, timeout=10)

    assert wait_until(lambda: get("/v1/cameras/door/frame.jpg").status_code == 200, 60)
    [door] = get("/v1/cameras").json()
    assert door["id"] == "door" and door["source"] == "***"  # a file on the server: its path is the admins'
    assert get("/v1/cameras/till/frame.jpg").status_code == 403
    assert get("/v1/events", camera="till").status_code == 403
    assert get("/v1/snapshots/till-1.jpg").status_code == 403
    assert get("/v1/snapshots/till-1.jpg", camera="door").status_code == 403  # the path decides, not ?camera=
    # The API's own document names their camera and zones only (it listed every camera to them).
    mine, whole = get("/openapi.json"), secured.get("/openapi.json")
    assert mine.status_code == 200 and '"door"' in mine.text and '"till"' not in mine.text
    assert '"till"' in whole.text
    # None of till's events, once it has some (else the filter would pass unexercised).
    assert wait_until(lambda: secured.get("/v1/events", camera="till").json()["events"], 120)
    assert all(e["camera"] == "door" for e in get("/v1/events").json()["events"])
    assert get("/v1/compliance", camera="till").status_code == 403
    for path in ("/v1/access-log", "/v1/users", "/metrics"):
        assert get(path).status_code == 403, path
    assert get("/v1/report.csv").status_code == 200
    # Nor are the other cameras' names told: the privacy statement lists theirs only.
    privacy = get("/v1/privacy").json()
    assert privacy["site"]["cameras"] == ["door"] and "admins" not in privacy["access"]
    assert "till" not in get("/v1/compliance", zone="nope").json()["error"]
    # ... and the admin reads who looked
    entries = secured.get("/v1/access-log", user="viewer").json()["entries"]
    actions = {(e["action"], e["target"]) for e in entries}
    assert ("camera_frame", "/v1/cameras/door/frame.jpg") in actions and ("report", "/v1/report.csv") in actions
    assert ("login", None) in actions
    assert all(e["client"] == "127.0.0.1" for e in entries)


def test_a_token_limited_to_a_camera_reads_it_alone_as_a_viewer_of_it_does(secured):
    """A token had no camera list: the lobby screen's read token fetched every camera's frames and
    snapshots. `tokens add --camera door` gives it a viewer's list, enforced where a viewer's is;
    `tokens list` and GET /v1/tokens say it; a full token with a list is refused."""
    def cli(*args):
        return subprocess.run([*CLI, "tokens", *args, "--config", str(secured.config)],
                              capture_output=True, text=True, timeout=60)

    made = cli("add", "lobby-screen", "--camera", "door")
    assert made.returncode == 0 and "(read; door only; a site token)" in made.stderr, made.stderr
    lobby = {"Authorization": f"Bearer {made.stdout.strip()}"}
    refused = cli("add", "elsewhere", "--camera", "pharmacy")
    assert refused.returncode == 1 and f"no camera 'pharmacy' in {secured.config}" in refused.stderr
    refused = cli("add", "wide", "--scope", "full", "--camera", "door")
    assert refused.returncode == 1 and "a camera list (--camera) is for read tokens" in refused.stderr
    listed = {line.split("\t")[0]: line.split("\t")[-1] for line in cli("list").stdout.splitlines()}
    assert listed["lobby-screen"] == "cameras=door" and listed["tests-full"] == "cameras=all"
    assert "elsewhere" not in listed and "wide" not in listed
    tokens = {t["name"]: t["cameras"] for t in secured.get("/v1/tokens").json()["tokens"]}
    assert tokens["lobby-screen"] == ["door"] and tokens["tests-full"] is None

    def get(path, **params):
        return httpx.get(secured.base + path, params=params, headers=lobby, timeout=10)

    try:
        assert wait_until(lambda: get("/v1/cameras/door/frame.jpg").status_code == 200, 60)
        for path, params in (("/v1/cameras/till/frame.jpg", {}), ("/v1/events", {"camera": "till"}),
                             ("/v1/snapshots/till-1.jpg", {}), ("/v1/compliance", {"camera": "till"}),
                             ("/v1/events.csv", {"camera": "till"}), ("/metrics", {})):
            answer = get(path, **params)
            assert answer.status_code == 403, (path, answer.status_code)
        me = get("/v1/me").json()
        assert (me["user"], me["scope"], me["cameras"]) == ("token:lobby-screen", "read", ["door"])
        assert [c["id"] for c in get("/v1/cameras").json()] == ["door"]
        assert wait_until(lambda: secured.get("/v1/events", camera="till").json()["events"], 120)
        assert "till" in secured.get("/v1/events.csv").text  # what the filter leaves out is there
        assert {e["camera"] for e in get("/v1/events").json()["events"]} <= {"door"}
        for export in ("/v1/events.csv", "/v1/report.csv"):
            answer = get(export)
            assert answer.status_code == 200 and "till" not in answer.text, export
        assert all(a["camera"] == "door" for a in get("/v1/alerts").json()["alerts"])
        assert get("/v1/privacy").json()["site"]["cameras"] == ["door"]
        assert '"till"' not in get("/openapi.json").text
        assert get("/").status_code == 200  # the wall screen's page: its lists are those above
    finally:
        assert cli("revoke", "lobby-screen").returncode == 0


def test_a_viewer_or_a_limited_token_reads_why_a_camera_is_down_without_its_address(tmp_path):
    """/v1/cameras showed a viewer (or a read token limited to the camera: a contractor's
    integration) the source as `rtsp://***`, "a camera's address: admins only", and under it
    `last_error`: `no such host (door-cam.invalid does not resolve)`, the host and port in it."""
    site = SiteProcess(tmp_path, '  door: {source: "rtsp://ops:pw@door-cam.invalid:8554/live"}\n',
                       viewer_cameras=["door"])
    store = AuthStore(str(tmp_path / "site.db"))
    lobby = {"Authorization": f"Bearer {store.add_token('lobby', 'read', cameras=['door'])}"}
    store.close()
    try:
        assert wait_until(lambda: site.camera("door")["last_error"], 60), site.camera("door")
        assert "door-cam.invalid" in site.camera("door")["last_error"]  # the admin's: the address to mend
        for headers in (lobby, session_of(login(site.base, VIEWER))):
            [door] = httpx.get(site.base + "/v1/cameras", headers=headers, timeout=10).json()
            assert door["source"] == "rtsp://***" and door["last_error"].startswith("no such host (*** does not "), door
            assert "door-cam" not in str(door) and "8554" not in str(door), door
    finally:
        site.stop()


def test_only_what_was_answered_is_written_to_the_access_log(secured):
    """A row was written before the handler ran: 300 requests for snapshots that do not exist left
    300 "snapshot fetched" rows (a new path each, so no once-a-minute limit), 422s as reports."""
    session = session_of(login(secured.base, VIEWER))
    for n in range(5):
        missing = httpx.get(secured.base + f"/v1/snapshots/door-9990{n}.jpg", headers=session, timeout=10)
        assert missing.status_code == 404
    assert httpx.get(secured.base + "/v1/report.csv", params={"bogus": 1}, headers=session, timeout=10).status_code == 422
    assert httpx.get(secured.base + "/v1/report.csv", headers=session, timeout=10).status_code == 200
    entries = secured.get("/v1/access-log", user="viewer").json()["entries"]
    assert not [e for e in entries if e["action"] == "snapshot" and "9990" in (e["target"] or "")]
    assert [e for e in entries if e["action"] == "report"]  # the one answered


def test_a_viewer_of_a_camera_since_removed_is_not_told_the_others(secured):
    store = AuthStore(str(secured.folder / "site.db"))
    store.add_user("stale", "stale viewer password", "viewer", cameras=["door", "oldcam"])
    try:
        session = session_of(login(secured.base, ("stale", "stale viewer password")))
        for path, params in (("/v1/events", {"camera": "oldcam"}), ("/v1/cameras/oldcam/frame.jpg", {})):
            refused = httpx.get(secured.base + path, params=params, headers=session, timeout=10)
            assert refused.status_code in (400, 404) and "door" in refused.text and "till" not in refused.text, path
    finally:
        store.remove_user("stale")
        store.close()


def test_privacy_says_what_the_site_keeps(secured):
    privacy = secured.get("/v1/privacy").json()
    assert privacy["site"]["retention_days"] == 7 and privacy["site"]["live_frames_blurred"] is False
    assert privacy["site"]["snapshots"] == "one per person, face blurred"
    assert privacy["access"]["login_required"] is True and privacy["access"]["viewers_limited_to_cameras"] == 1
    assert privacy["access"]["admins"] == 1


def test_removing_a_user_or_changing_a_password_ends_their_sessions(secured):
    store = AuthStore(str(secured.folder / "site.db"))
    store.add_user("temp", "temporary password", "viewer")
    first = session_of(login(secured.base, ("temp", "temporary password")))
    passwd = subprocess.run([*CLI, "users", "passwd", "temp", "--config", str(secured.config)],
                            input="another password 2\n", capture_output=True, text=True, timeout=60)
    assert passwd.returncode == 0, passwd.stderr
    assert "another password" not in passwd.stdout + passwd.stderr
    assert httpx.get(secured.base + "/v1/me", headers=first, timeout=10).status_code == 401
    second = session_of(login(secured.base, ("temp", "another password 2")))
    assert httpx.get(secured.base + "/v1/me", headers=second, timeout=10).status_code == 200
    store.remove_user("temp")
    assert httpx.get(secured.base + "/v1/me", headers=second, timeout=10).status_code == 401
    store.close()


def test_an_admin_on_the_dashboard_gives_a_viewer_only_cameras_of_the_site(secured):
    """POST /v1/users checks a viewer's cameras as `users add --config` does, in its words."""
    session = session_of(login(secured.base, ADMIN)) | CSRF

    def add(cameras):
        return httpx.post(secured.base + "/v1/users", json={"name": "dora", "cameras": cameras,
                                                              "password": "dora's long password",
                                                              "admin_password": ADMIN[1]},
                          headers=session, timeout=30)

    typo = add(["door", "Till"])
    assert typo.status_code == 400 and typo.json() == {
        "error": "no camera 'Till' in the site's config, nor any history of it in its database; cameras: door, till"}
    added = add(["door"])
    assert added.status_code == 201 and added.json()["user"]["cameras"] == ["door"]
    dora = session_of(login(secured.base, ("dora", "dora's long password")))
    assert httpx.get(secured.base + "/v1/cameras/till/frame.jpg", headers=dora, timeout=10).status_code == 403
    assert httpx.request("DELETE", secured.base + "/v1/users/dora", json={"admin_password": ADMIN[1]},
                         headers=session, timeout=10).status_code == 200
    assert httpx.get(secured.base + "/v1/me", headers=dora, timeout=10).status_code == 401


def test_an_admin_on_the_dashboard_gives_a_token_only_cameras_of_the_site(secured):
    """POST /v1/tokens had no camera list: a token made there read every camera. `cameras` is
    checked as a viewer's (POST /v1/users), in its words, before the admin's password."""
    session = session_of(login(secured.base, ADMIN)) | CSRF

    def add(cameras, scope="read", password=ADMIN[1]):
        return httpx.post(secured.base + "/v1/tokens", json={"name": "car-park", "scope": scope, "cameras": cameras,
                                                               "admin_password": password},
                          headers=session, timeout=30)

    typo = add(["door", "Till"], password="not the admin's")  # the value said first: no guess spent
    assert typo.status_code == 400 and typo.json() == {
        "error": "no camera 'Till' in the site's config, nor any history of it in its database; cameras: door, till"}
    full = add(["door"], scope="full")
    assert full.status_code == 400 and full.json() == {
        "error": "a full token acts as an admin, who sees every camera: a camera list (cameras) is for read tokens"}
    assert add([]).status_code == 422
    added = add(["door"])
    assert added.status_code == 201 and added.json()["cameras"] == ["door"]
    token = {"Authorization": f"Bearer {added.json()['token']}"}
    listed = {t["name"]: t["cameras"] for t in httpx.get(secured.base + "/v1/tokens", headers=session,
                                                         timeout=10).json()["tokens"]}
    assert listed["car-park"] == ["door"]
    assert httpx.get(secured.base + "/v1/cameras/till/frame.jpg", headers=token, timeout=10).status_code == 403
    assert ("token_added", "car-park (read; door; never expires)") in {
        (e["action"], e["target"]) for e in secured.get("/v1/access-log", action="token_added").json()["entries"]}
    assert httpx.request("DELETE", secured.base + "/v1/tokens/car-park", headers=session, timeout=10).status_code == 200


class OtherOrigin:
    """A page on another port of the same host (the same *site* for SameSite, so the browser
    sends the session cookie): a form that posts to the maskwatch server on load."""

    def __init__(self, target: str) -> None:
        form = (f'<form id="f" method="post" action="{target}" enctype="text/plain">'
                '<input name="x" value="1"></form><script>document.getElementById("f").submit()</script>').encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.end_headers()
                self.wfile.write(form)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)  # the OS picks a free port
        self.url = f"http://127.0.0.1:{self.server.server_port}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_the_browser_logs_in_sees_the_cameras_refuses_a_cross_origin_post_and_logs_out(secured, page):  # noqa: F811
    log_in(page, secured.base)
    page.wait_for_function("() => document.querySelectorAll('#camera-grid .camera').length === 2", timeout=30_000)
    page.wait_for_function(
        "() => document.querySelector('.camera[data-camera=\"door\"] img').naturalWidth > 0", timeout=30_000)
    assert "admin" in page.inner_text("#account")
    [cookie] = [c for c in page.context.cookies() if c["name"] == SECURE_COOKIE]
    assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Lax"
    session = {"Cookie": f"{SECURE_COOKIE}={cookie['value']}"}

    other = OtherOrigin(secured.base + "/logout")
    try:
        page.goto(other.url)
        page.wait_for_url(secured.base + "/logout", timeout=20_000)
        # 403: a form from another origin cannot send our header (the Origin check is the second line)
        assert "X-Maskwatch-CSRF" in page.inner_text("body")
    finally:
        other.close()
    assert httpx.get(secured.base + "/v1/me", headers=session, timeout=10).status_code == 200  # ... session lives

    page.goto(secured.base + "/")
    page.wait_for_selector("#account:not([hidden])", timeout=20_000)
    page.click("#logout")
    page.wait_for_url(secured.base + "/login", timeout=20_000)
    assert httpx.get(secured.base + "/v1/me", headers=session, timeout=10).status_code == 401
    page.goto(secured.base + "/")
    page.wait_for_selector("#login", timeout=20_000)  # back to the login page


def test_a_logout_lands_on_the_plain_login_page_while_a_poll_is_refused(secured, page):  # noqa: F811
    """A poll answered 401 while the logout's own answer was on its way (the session it ends) sent
    the page to /login?next=/#ended, "Your session has ended", not the logout's /login: the wrong
    words to someone who just logged out, and the test above timed out on a busy machine."""
    log_in(page, secured.base)
    page.wait_for_selector("#account:not([hidden])", timeout=20_000)
    held = []
    page.route("**/logout", lambda route: held.append((route, route.fetch())))  # the session ends here
    try:
        page.click("#logout")
        page.wait_for_event("response", lambda r: r.status == 401 and "/v1/" in r.url, timeout=30_000)
        # The handler's fetch may not be back yet: the server ended the session, and the poll it
        # refused can reach the page before the logout's answer reaches the handler (a busy machine).
        for _ in range(400):
            if held:
                break
            page.wait_for_timeout(50)  # lets the handler run on
        [(route, answer)] = held
        try:  # time for the refused poll to send the page away, as it did
            page.wait_for_url(re.compile(re.escape(secured.base) + "/login.*"), timeout=3_000)
        except PlaywrightTimeout:
            pass
        try:
            route.fulfill(response=answer)
        except Exception:  # noqa: BLE001 - the old page had gone to the login page already
            pass
        page.wait_for_url(re.compile(re.escape(secured.base) + "/login.*"), timeout=20_000)
        page.wait_for_selector("#login", timeout=20_000)
        assert page.url == secured.base + "/login" and page.inner_text("#error") == ""
    finally:
        page.unroute("**/logout")


def test_the_login_page_goes_on_to_pages_of_this_site_only(secured, page):  # noqa: F811
    """?next= is where the login page goes after a login: a page of the site, never another site,
    however the address is written (browsers drop a tab or newline: "/\t/evil" is "//evil")."""
    for written, lands in (("/v1/privacy", "/v1/privacy"), ("%2F%09%2Fevil.example%2Fx", "/"),
                           ("%2F%0A%2Fevil.example", "/"), ("https://evil.example/", "/"),
                           ("/.//evil.example/x", "//evil.example/x")):
        log_in_with_next(page, secured.base, written, lands)


def log_in_with_next(tab, base: str, written: str, lands: str) -> None:
    """A fresh login at `base`'s /login?next=`written`, which must end at `base` + `lands` (the
    browser's 404 of a page elsewhere, or a timeout, said as where it ended instead)."""
    tab.goto("about:blank")  # the last round's dashboard, logged out, sent the page to /login?next=/
    tab.context.clear_cookies()
    tab.goto(f"{base}/login?next={written}")
    tab.wait_for_selector("#login", timeout=20_000)
    tab.fill("#username", ADMIN[0])
    tab.fill("#password", ADMIN[1])
    with tab.expect_response(lambda r: r.url.endswith("/login") and r.request.method == "POST") as answer:
        tab.click("button[type=submit]")
    assert answer.value.status == 200, (written, answer.value.status)
    try:
        tab.wait_for_url(base + lands, timeout=30_000)
    except PlaywrightError:  # a timeout among them
        raise AssertionError(f"next={written}: at {tab.url}, not {base + lands}") from None


def test_the_dashboard_runs_under_its_content_security_policy(secured, page):  # noqa: F811
    """A fresh context that obeys the CSP: the page works, its styles apply, and the browser refuses
    nothing and meets no script error (a file's top level using what a later file declares)."""
    context = page.context.browser.new_context()
    strict = watched(context.new_page())
    try:
        log_in(strict, secured.base)
        strict.wait_for_selector('.camera[data-camera="till"]', timeout=30_000)  # cameras.js
        strict.wait_for_selector("#account:not([hidden])", timeout=20_000)  # account.js
        strict.wait_for_selector("#events:not([hidden])", timeout=20_000)
        strict.wait_for_selector("#event-list tr", timeout=20_000)  # people.js
        strict.wait_for_selector("#trend-chart[data-buckets]", timeout=20_000)  # chart.js
        strict.wait_for_selector("#users-open:not([hidden])", timeout=20_000)  # users.js, a file of its own
        strict.wait_for_selector("#access-log-open:not([hidden])", timeout=20_000)  # access-log.js, too
        strict.wait_for_selector("#two-step-open:not([hidden])", timeout=20_000)  # two-step.js
        strict.click('.camera[data-camera="till"] .draw-zones')  # zones.js
        strict.wait_for_selector("#zone-editor[open]", timeout=20_000)
        styled = strict.evaluate("""() => [getComputedStyle(document.getElementById("stale-region")).position,
                                           getComputedStyle(document.getElementById("trend-patterns")).position,
                                           getComputedStyle(document.getElementById("two-step-dialog")).boxSizing]""")
        assert styled == ["sticky", "absolute", "border-box"]  # dashboard.css and two-step.css applied
        # A reload revalidates the parts the browser kept (ETag, no-cache) and runs them again.
        parts = []
        strict.on("response", lambda answer: parts.append(answer.status) if "/static/" in answer.url else None)
        strict.reload()
        strict.wait_for_selector('.camera[data-camera="till"]', timeout=30_000)
        strict.wait_for_selector("#two-step-open:not([hidden])", timeout=20_000)
        assert strict.evaluate("() => getComputedStyle(document.getElementById('stale-region')).position") == "sticky"
        from maskwatch.serving.service_api import STATIC_ASSETS
        assert parts == [304] * len(STATIC_ASSETS)  # each part asked again, none sent again (no-store: 200s)
        assert browser_trouble() == []
    finally:
        context.close()


def test_the_dashboards_files_are_no_staler_than_the_page_and_none_of_it_is_inline(secured):
    """The page has no inline script, style or style attribute, so its CSP allows none ('unsafe-inline'
    let an injected <style> or style="" through); the page is no-store, and each file it names, the
    package's own, is kept by the browser but revalidated by its ETag each time (no-store sent all
    of them in full on every load; an upgrade changes the tag, so no old script runs)."""
    from maskwatch.serving.service_api import STATIC, STATIC_ASSETS

    answer = secured.get("/")
    assert answer.status_code == 200 and answer.headers["cache-control"] == "no-store"
    assert "etag" not in answer.headers
    assert httpx.get(secured.base + "/login", timeout=10).headers["cache-control"] == "no-store"
    policy = answer.headers["content-security-policy"]
    assert "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy
    assert "script-src 'self'" in policy and "style-src 'self'" in policy
    assert re.search(r"<script>|<style|\sstyle=", answer.text) is None
    # relative to the page (static/NAME): the same page works under a proxy's prefix (test_root_path.py)
    named = re.findall(r'<script src="static/([^"]+)"></script>|<link rel="stylesheet" href="static/([^"]+)">',
                       answer.text)
    named = [script or style for script, style in named]
    assert sorted(named) == sorted(STATIC_ASSETS)  # every part the page names is served, and only those
    tags = set()
    for name in named:
        part = secured.get("/static/" + name)
        assert part.status_code == 200 and part.headers["cache-control"] == "private, no-cache", name
        assert part.content == (STATIC / name).read_bytes(), name
        assert part.headers["content-type"].split(";")[0] == STATIC_ASSETS[name], name
        etag = part.headers["etag"]
        assert re.fullmatch(r'"[0-9a-f]{32}"', etag), etag
        assert etag == secured.get("/static/" + name).headers["etag"], name  # the same each time
        tags.add(etag)
        for kept in (etag, "W/" + etag, f'"other", {etag}', "*"):
            same = httpx.get(secured.base + "/static/" + name, headers=secured.credentials.headers | {
                "If-None-Match": kept}, timeout=10)
            assert same.status_code == 304 and same.content == b"", (name, kept)
            assert same.headers["etag"] == etag and same.headers["cache-control"] == "private, no-cache"
            assert same.headers["content-security-policy"] == policy and same.headers["x-frame-options"] == "DENY"
            assert same.headers["x-content-type-options"] == "nosniff"
            assert same.headers["referrer-policy"] == "same-origin"
        stale = httpx.get(secured.base + "/static/" + name, headers=secured.credentials.headers | {
            "If-None-Match": '"' + "0" * 32 + '"'}, timeout=10)  # a copy from before an upgrade
        assert stale.status_code == 200 and stale.content == part.content and stale.headers["etag"] == etag
    assert len(tags) == len(named)  # a tag of each file's own bytes
    # a revalidation is no way around the login: the tag opens nothing
    anonymous = httpx.get(secured.base + "/static/dashboard.js", headers={"If-None-Match": "*"}, timeout=10)
    assert anonymous.status_code == 401 and "etag" not in anonymous.headers
    assert secured.get("/static/site.yaml").status_code == 404


def test_the_login_pages_inline_script_and_style_are_those_its_policy_allows(secured):
    """The login page's one <script> and one <style> run by their SHA-256 in the CSP, computed at
    start from the file: the bytes served must hash to them (an edit that broke the match left the
    login page without its script, and no login, where no browser test ran)."""
    from maskwatch.security.headers import SCRIPT, STYLE

    answer = httpx.get(secured.base + "/login", timeout=10)
    assert answer.status_code == 200
    directives = dict(d.strip().split(" ", 1) for d in answer.headers["content-security-policy"].split(";"))
    for block, directive in ((SCRIPT, "script-src"), (STYLE, "style-src")):
        [body] = block.findall(answer.text)
        digest = base64.b64encode(hashlib.sha256(body.encode("utf-8")).digest()).decode()
        assert f"'sha256-{digest}'" in directives[directive].split(), directive
    assert "'unsafe-inline'" not in answer.headers["content-security-policy"]


def test_a_viewer_in_the_browser_gets_403_outside_their_cameras(secured, page):  # noqa: F811
    log_in(page, secured.base, VIEWER)
    page.wait_for_function("() => document.querySelectorAll('#camera-grid .camera').length === 1", timeout=30_000)
    response = page.goto(secured.base + "/v1/cameras/till/frame.jpg")
    assert response.status == 403
    assert page.goto(secured.base + "/v1/access-log").status == 403


def run_cli(*args, stdin: str = "", timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], input=stdin, capture_output=True, text=True, timeout=timeout)


def run_app(*args, stdin: str = "") -> subprocess.CompletedProcess:
    """The command line's app in this process (Typer's runner; stdin not a terminal, as a pipe),
    read as run_cli's answer: where the process itself is not what is checked, its start (~0.8 s)
    bought nothing. Not maskwatch.cli.main: its one line for a failed database needs run_cli."""
    from typer.testing import CliRunner

    from maskwatch.cli import app

    result = CliRunner().invoke(app, list(args), input=stdin)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception  # as a process would have printed its traceback
    return subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)


@pytest.mark.system  # runs the command line in a process of its own
def test_binding_beyond_loopback_needs_a_user(tmp_path, sample_dir):
    # Reserved ports: serve and run check their port before their users; on a free_port() that the
    # other xdist worker took meanwhile, they refused for the port instead.
    with reserved_port() as port:
        refused = run_cli("serve", "--host", "0.0.0.0", "--port", str(port), "--database", str(tmp_path / "u.db"))
    assert refused.returncode == 1
    [line] = refused.stderr.strip().splitlines()
    assert "no users" in line and "maskwatch users add" in line
    make_video(tmp_path / "door.mp4", sample_dir, frames=3)
    with reserved_port() as port:  # held until the site below has ended
        (tmp_path / "site.yaml").write_text(f"cameras: {{door: {{source: door.mp4}}}}\n"
                                            f"server: {{host: 0.0.0.0, port: {port}}}\n")
        refused = run_cli("run", "--config", str(tmp_path / "site.yaml"))
        assert refused.returncode == 1 and f"--config {tmp_path / 'site.yaml'}" in refused.stderr
        # With a user it starts, warning of plain http in the words of a site's file: `run` has no
        # --tls-cert, which the warning told a newcomer to use.
        assert run_app("users", "add", "ana", "--role", "admin", "-c", str(tmp_path / "site.yaml"),
                       stdin="ana's long password\n").returncode == 0
        site = subprocess.Popen([*CLI, "run", "--config", str(tmp_path / "site.yaml")], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        deadline = threading.Timer(60, site.kill)  # a start that says nothing ends the read, not the suite
        deadline.start()
        try:
            warning = site.stderr.readline()
        finally:
            deadline.cancel()
            site.terminate()
            site.wait(timeout=30)
        assert warning.startswith("warning: serving on 0.0.0.0 over plain http") and \
            "use server: {tls: {cert, key}} in the site's file or a TLS reverse proxy" in warning, warning


@pytest.mark.system  # runs the command line in a process of its own
def test_a_database_that_cannot_be_reached_is_one_line_that_names_it(tmp_path, sample_dir):
    pytest.importorskip("psycopg")  # the postgres extra's driver
    dead = f"postgresql+psycopg://site:hunter2@127.0.0.1:{refused_port()}/maskwatch"  # nothing listens there
    make_video(tmp_path / "door.mp4", sample_dir, frames=3)
    (tmp_path / "site.yaml").write_text(f"cameras: {{door: {{source: door.mp4}}}}\n"
                                        f"storage: {{database: '{dead}'}}\n")
    for args in (("users", "list", "--database", dead), ("serve", "--database", dead),
                 ("run", "--config", str(tmp_path / "site.yaml"))):
        refused = run_cli(*args)
        assert refused.returncode == 1, refused.stderr
        [line] = [l for l in refused.stderr.strip().splitlines() if l.startswith("error:")]
        assert "127.0.0.1" in line and "cannot open or migrate the database" in line
        assert "Traceback" not in refused.stderr
        assert "hunter2" not in refused.stderr


@pytest.mark.system  # runs the command line in a process of its own
def test_users_commands_take_the_password_from_stdin_and_never_print_it(tmp_path):
    db = str(tmp_path / "users.db")
    # A process of its own: a log line with the password would reach its stderr (pytest catches the log here).
    added = run_cli("users", "add", "ana", "--role", "admin", "--database", db, stdin="ana's long password\n")
    assert added.returncode == 0 and "ana's long password" not in added.stdout + added.stderr
    weak = run_app("users", "add", "bob", "--database", db, stdin="short\n")
    assert weak.returncode == 1 and "at least 10 characters" in weak.stderr
    assert run_app("users", "add", "cy", "--camera", "door", "--database", db, stdin="cy's password 1\n").returncode == 0
    # Refused in the command's own names, as POST /v1/users refuses in the JSON's (`cameras`).
    for args, said in ((("--role", "admin", "--camera", "door"), "an admin sees every camera: a camera list (--camera) is for viewers"),
                       (("--camera", " "), "--camera names no camera: leave it out for all cameras")):
        refused = run_app("users", "add", "dee", *args, "--database", db, stdin="dee's password 1\n")
        assert (refused.returncode, refused.stderr) == (1, f"error: {said}\n")
    with sqlite3.connect(db) as connection:  # made at 01:30 on 7 December in Kolkata, 20:00 UTC the day before
        connection.execute("UPDATE users SET created = 1796587200 WHERE name = 'ana'")
    listed = run_app("users", "list", "--database", db).stdout
    assert "ana\tadmin\tcameras=all" in listed and "cy\tviewer\tcameras=door" in listed
    # UTC's date said without a zone, to an admin for whom it was the 7th: now the time, in UTC, as `tokens list`'s
    assert "\tsince 2026-12-06 20:00 UTC\n" in listed, listed
    assert run_app("users", "remove", "cy", "--database", db).returncode == 0
    assert "cy" not in run_app("users", "list", "--database", db).stdout
    store = AuthStore(db)
    [row] = [u for u in store.users() if u["name"] == "ana"]
    assert store.check_login("ana", "ana's long password")["id"] == row["id"]
    with store.engine.connect() as connection:
        stored = connection.exec_driver_sql("SELECT password_hash FROM users").scalar()
    assert stored.startswith("$argon2id$") and "long password" not in stored
    store.close()
    # A database that fails mid-command (a full disk; a trigger stands in for it): one line, and
    # not the new user's Argon2 hash (a 73-line traceback showed the INSERT's parameters).
    with sqlite3.connect(db) as connection:
        connection.execute("CREATE TRIGGER full BEFORE INSERT ON users BEGIN SELECT RAISE(ABORT, 'database or disk "
                           "is full'); END")
    full = run_cli("users", "add", "dee", "--database", db, stdin="dee's long password\n")
    assert full.returncode == 1 and full.stderr == "error: the database failed: database or disk is full\n"
    latin = subprocess.run([*CLI, "users", "add", "eve", "--database", db], input="\xe4ve's long password\n".encode("latin-1"),
                           capture_output=True, timeout=120)  # said as a codec error of "\\udce4"
    assert latin.returncode == 1 and latin.stderr == b"error: the password on stdin is not UTF-8 text\n"


WHAT_A_COMMAND_IMPORTED = """import sys
sys.argv = ["maskwatch", *sys.argv[1:]]
try:
    from maskwatch.cli import app
    app()
finally:
    print(sorted(m for m in ("scipy", "fastapi", "uvicorn", "apprise", "torch") if m in sys.modules), file=sys.stderr)
"""


@pytest.mark.system  # runs the command line in a process of its own
def test_users_commands_start_without_what_only_a_site_or_training_needs(tmp_path):
    """Each `maskwatch users ...` took ~1.6 s to start: the serve extra's check imported FastAPI,
    uvicorn and apprise, the events store scipy's optimizer (for the tracker), and the unknown
    user's stand-in hash was made at import."""
    db = str(tmp_path / "users.db")
    for args, stdin in ((["add", "ana", "--role", "admin"], "ana's long password\n"), (["list"], "")):
        ran = subprocess.run([sys.executable, "-c", WHAT_A_COMMAND_IMPORTED, "users", *args, "--database", db],
                             input=stdin, capture_output=True, text=True, timeout=120)
        assert ran.returncode == 0 and ran.stderr == "[]\n", ran.stderr
    assert "ana\tadmin" in ran.stdout


@pytest.mark.shipped_hash  # the shipped parameters themselves, which the test process otherwise hashes without
def test_the_unknown_users_stand_in_hash_costs_what_a_users_does():
    """It is written out in passwords.py: with other parameters than the hasher's, a login naming
    nobody would answer faster (or slower) than a wrong password, and say so to a guesser."""
    from maskwatch.security.passwords import (DUMMY_HASH, LANES, MEMORY_KIB, TIME_COST, hash_password, needs_rehash,
                                              verify_password)

    assert f"$m={MEMORY_KIB},t={TIME_COST},p={LANES}$" in DUMMY_HASH
    assert not needs_rehash(DUMMY_HASH)
    assert DUMMY_HASH.split("$")[:4] == hash_password("any long password").split("$")[:4]  # argon2id, v, m/t/p
    assert verify_password("maskwatch: no such user", DUMMY_HASH)  # a real hash, so the work is real
    assert not verify_password("maskwatch: no such user", None)


def test_users_passwd_refuses_the_current_password(tmp_path):
    """It took the current password as the new one: "changed", every session ended, nothing changed."""
    db = str(tmp_path / "users.db")
    assert run_app("users", "add", "ana", "--role", "admin", "--database", db, stdin="ana's long password\n").returncode == 0
    store = AuthStore(db)
    checked = store.check_login("ana", "ana's long password")
    store.start_session(checked["id"], checked["password_hash"])
    same = run_app("users", "passwd", "ana", "--database", db, stdin="ana's long password\n")
    assert same.returncode == 1 and same.stderr == "error: the new password is the current one: choose another\n"
    assert store.session_count("ana") == 1  # nothing changed
    with store.engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT password_hash FROM users").scalar() == checked["password_hash"]
    other = run_app("users", "passwd", "ana", "--database", db, stdin="ana's other password\n")
    assert other.returncode == 0, other.stderr
    assert store.session_count("ana") == 0 and store.check_login("ana", "ana's other password") is not None
    store.close()


def test_users_commands_refuse_what_would_lock_a_site_or_mislead(tmp_path):
    db = str(tmp_path / "users.db")
    assert run_app("users", "add", "ana", "--role", "admin", "--database", db, stdin="ana's long password\n").returncode == 0
    assert run_app("users", "add", "bob", "--database", db, stdin="bob's long password\n").returncode == 0
    last = run_app("users", "remove", "ana", "--database", db)  # bob would be left with no admin
    assert last.returncode == 1 and "'ana' is the last admin" in last.stderr
    twin = run_app("users", "add", "Bob", "--database", db, stdin="another long password\n")
    assert twin.returncode == 1 and "user 'bob' exists already" in twin.stderr
    typo = run_app("users", "list", "--database", str(tmp_path / "typo.db"))
    assert typo.returncode == 1 and "no such database" in typo.stderr and not (tmp_path / "typo.db").exists()
    bad = run_app("users", "add", "no spaces", "--database", str(tmp_path / "new.db"), stdin="")
    assert bad.returncode == 1 and "user names are" in bad.stderr and not (tmp_path / "new.db").exists()
    # The cameras' passwords and the webhook's secret need not be set to manage users (the
    # database's would be); the file as a site writes it:
    (tmp_path / "site.yaml").write_text("cameras:\n  entrance: {source: 'rtsp://viewer:${CAM1_PASSWORD}@h/s'}\n"
                                        "  till: {source: '${TILL_URL}'}\n"
                                        "alerts: {webhooks: [{url: '${HOOK_URL}', secret: '${WEBHOOK_SECRET}'}]}\n"
                                        "mqtt: {host: broker, port: '${MQTT_PORT}'}\n"
                                        "storage: {database: site.db}\n")
    misspelt = run_app("users", "add", "vic", "--camera", "Entrance", "--config", str(tmp_path / "site.yaml"),
                       stdin="vic's long password\n")
    assert misspelt.returncode == 1 and "no camera 'Entrance'" in misspelt.stderr and "cameras: entrance, till" in misspelt.stderr
    assert run_app("users", "add", "vic", "--camera", "entrance", "--config", str(tmp_path / "site.yaml"),
                   stdin="vic's long password\n").returncode == 0


def test_users_commands_say_the_name_rule_of_a_name_nobody_can_have(tmp_path):
    """A name holding a control character (a shell's $'ana\\e'; argv holds no NUL) was answered
    "no user 'ana\\x1b'", as if ana were missing, where adding it says the name rule."""
    db = str(tmp_path / "users.db")
    assert run_app("users", "add", "ana", "--role", "admin", "--database", db, stdin="ana's long password\n").returncode == 0
    rule = "no user 'ana\\x1b': user names are 1-64 of A-Z, a-z, 0-9, _ . @ or -"
    for args in (("remove",), ("edit", "--role", "viewer"), ("passwd",), ("2fa", "--off")):
        refused = run_app("users", args[0], "ana\x1b", *args[1:], "--database", db, stdin="a long new password\n")
        assert refused.returncode == 1 and refused.stderr.startswith(f"error: {rule}"), (args, refused.stderr)
    missing = run_app("users", "remove", "bob", "--database", db)  # a name the rule allows: no rule said
    assert missing.returncode == 1 and missing.stderr == "error: no user 'bob'\n"


def test_a_viewer_may_be_given_a_camera_removed_from_the_file_whose_history_is_kept(tmp_path):
    """A removed camera's stored people are read as long as they are kept; `users add --camera` said
    "no camera 'old'", so no new viewer could be given last month's figures of it."""
    import numpy as np

    from maskwatch.site.events import EventStore
    from tests.test_events import person

    (tmp_path / "site.yaml").write_text("cameras:\n  entrance: {source: 'rtsp://h/s'}\nstorage: {database: site.db}\n")
    no_history = run_app("users", "add", "vic", "--camera", "old", "--config", str(tmp_path / "site.yaml"),
                         stdin="vic's long password\n")  # nothing stored yet: not even a database file
    assert no_history.returncode == 1 and not (tmp_path / "site.db").exists()
    assert no_history.stderr == ("error: no camera 'old' in " + str(tmp_path / "site.yaml") +
                                 ", nor any history of it in its database; cameras: entrance\n")
    store = EventStore(str(tmp_path / "site.db"))
    store.record("old", None, person(1, (0.9, 0.05, 0.05)), np.zeros((8, 8, 3), np.uint8))
    store.close()
    added = run_app("users", "add", "vic", "--camera", "entrance", "--camera", "old", "--config",
                    str(tmp_path / "site.yaml"), stdin="vic's long password\n")
    assert added.returncode == 0, added.stderr
    assert AuthStore(str(tmp_path / "site.db")).users()[0]["cameras"] == ["entrance", "old"]
    typo = run_app("users", "add", "cy", "--camera", "olt", "--config", str(tmp_path / "site.yaml"),
                   stdin="cy's long password\n")
    assert typo.returncode == 1 and "no camera 'olt'" in typo.stderr


def test_a_name_with_a_newline_or_a_token_name_too_long_for_the_access_log_is_refused(tmp_path):
    """`users add "dan\n"` was accepted, and nobody could then log in or remove "dan"; a token
    named with 59-64 characters overflowed the access log's user column on PostgreSQL."""
    store = AuthStore(str(tmp_path / "s.db"))
    with pytest.raises(ValueError, match="user names are"):
        store.add_user("dan\n", "dan's long password", "viewer")
    with pytest.raises(ValueError, match="token names are 1-58"):
        store.add_token("p" * 59, "read")
    assert store.add_token("p" * 58, "read").startswith("mw_")
    store.close()


def test_housekeeping_writes_that_fail_do_not_fail_the_request(tmp_path, caplog):
    """On a full disk every request with a token or session answered 503: their last-use writes
    and the access log came first. A trigger stands in for the disk: the database's own error."""
    store = AuthStore(str(tmp_path / "s.db"))
    token = store.add_token("prometheus", "read")
    store.add_user("ana", "ana's long password", "admin")
    user = store.check_login("ana", "ana's long password")
    session = store.start_session(user["id"], user["password_hash"], now=1000.0)
    with sqlite3.connect(tmp_path / "s.db") as connection:
        for table, when in (("access_log", "INSERT"), ("api_tokens", "UPDATE"), ("sessions", "UPDATE")):
            connection.execute(f"CREATE TRIGGER full_{table} BEFORE {when} ON {table} "
                               "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END")
    assert store.token(token) == {"name": "prometheus", "scope": "read", "cameras": None, "expires": None}
    assert store.token(token) == {"name": "prometheus", "scope": "read", "cameras": None, "expires": None}  # not tried again at once
    kept = store.session_user(session, idle=600, absolute=3600, now=1500.0)
    assert kept["name"] == "ana"
    assert kept["ends"] == 1600.0  # its last use unwritten: the database ends it at 1000 + 600, not 1500 + 600
    store.log("report", "ana", "127.0.0.1", "/v1/report.csv")
    said = [r.getMessage() for r in caplog.records if r.name == "maskwatch.security.store"]
    assert said == ["the users database cannot be written (last uses, access log); requests are answered "
                    "meanwhile, unlogged: database or disk is full"], said
    store.close()


def test_sessions_end_when_idle_or_too_old(tmp_path):
    store = AuthStore(str(tmp_path / "s.db"))
    store.add_user("ana", "ana's long password", "admin")
    user = store.check_login("ana", "ana's long password")
    token = store.start_session(user["id"], user["password_hash"], now=1000.0)
    assert store.session_user(token, idle=600, absolute=3600, now=1500.0)["name"] == "ana"
    assert store.session_user(token, idle=600, absolute=3600, now=2200.0) is None  # 700 s idle
    token = store.start_session(user["id"], user["password_hash"], now=1000.0)
    for now in range(1300, 4600, 300):  # used every 5 minutes: alive for its first hour ...
        assert store.session_user(token, idle=600, absolute=3600, now=float(now)) is not None
    assert store.session_user(token, idle=600, absolute=3600, now=4700.0) is None  # ... and not after
    with store.engine.connect() as connection:  # nothing but hashes at rest
        assert token not in str(connection.exec_driver_sql("SELECT * FROM sessions").all())


def test_a_login_checked_before_a_password_change_or_removal_starts_no_session(tmp_path):
    """A login hashes for 80-150 ms: 3 of 37 logins racing `users passwd` outlived it, and one racing
    `users remove` left a session that SQLite's reused id gave to the next user, an admin."""
    store = AuthStore(str(tmp_path / "s.db"))
    store.add_user("ana", "ana's long password", "admin")
    store.add_user("bob", "bob's long password", "viewer")
    checked = store.check_login("bob", "bob's long password")
    store.set_password("bob", "bob's new long password")
    assert store.start_session(checked["id"], checked["password_hash"]) is None
    checked = store.check_login("bob", "bob's new long password")
    store.remove_user("bob")
    assert store.start_session(checked["id"], checked["password_hash"]) is None
    carol = store.add_user("carol", "carol's long password", "admin")
    assert carol["id"] != checked["id"]  # no id is given twice
    # A session left by such a race before this version goes when the database is opened.
    with store.engine.begin() as connection:
        connection.exec_driver_sql("INSERT INTO sessions VALUES ('orphan', 99, 1.0, 1.0)")
        connection.exec_driver_sql("DELETE FROM auth_schema_version WHERE version >= 2")
    store.close()
    store = AuthStore(str(tmp_path / "s.db"))
    assert store.session_count() == 0
    store.close()


def test_a_login_from_an_https_page_to_a_server_seeing_http_gets_no_cookie(secured):
    """A TLS proxy whose X-Forwarded-Proto is not believed: no cookie without Secure goes out."""
    host = secured.base.removeprefix("http://")
    refused = login(secured.base, VIEWER, Origin=f"https://{host}")
    assert refused.status_code == 403 and "trusted_proxies" in refused.json()["error"]
    assert "set-cookie" not in refused.headers


def test_logging_in_again_ends_the_browsers_earlier_session(secured):
    first = session_of(login(secured.base, VIEWER))
    second = login(secured.base, VIEWER, **first)
    assert second.status_code == 200
    assert httpx.get(secured.base + "/v1/cameras", headers=first, timeout=10).status_code == 401
    assert httpx.get(secured.base + "/v1/cameras", headers=session_of(second), timeout=10).status_code == 200


def open_principal(settings: AuthSettings, store: AuthStore | None, base: str = "http://testserver") -> dict:
    """Who an anonymous request is, to an AccessControl with these settings (through the ASGI app)."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    access = AccessControl(settings, store)
    app = FastAPI()

    @app.get("/who")
    def who(request: Request) -> dict:
        try:
            principal: Principal = access.identify(request)
        except AuthError as err:
            return {"refused": err.status}
        return {"via": principal.via}

    return TestClient(app, base_url=base).get("/who").json()


def test_open_only_on_loopback_and_only_while_no_user_exists(tmp_path):
    store = AuthStore(str(tmp_path / "o.db"))
    assert open_principal(AuthSettings(open_without_users=True), store) == {"via": "open"}
    assert open_principal(AuthSettings(open_without_users=False), store) == {"refused": 401}
    store.add_user("ana", "ana's long password", "admin")
    assert open_principal(AuthSettings(open_without_users=True), store) == {"refused": 401}


def test_an_open_server_answers_only_requests_addressed_to_loopback():
    """DNS rebinding: evil.example resolved to 127.0.0.1 must not read an open server's cameras."""
    settings = AuthSettings(open_without_users=True, open_to_loopback_hosts_only=True)
    assert open_principal(settings, None, "http://127.0.0.1:8000") == {"via": "open"}
    assert open_principal(settings, None, "http://localhost:8000") == {"via": "open"}
    assert open_principal(settings, None, "http://evil.example:8000") == {"refused": 401}


def test_plain_http_beyond_loopback_uses_a_cookie_without_the_host_prefix(tmp_path):
    from fastapi.testclient import TestClient

    from maskwatch.serving.app import ServeSettings, create_app

    class NoFaces:
        classifier = type("C", (), {"info": {}, "gate_info": lambda self: None})()

        def detect(self, image):
            return []

    db = str(tmp_path / "c.db")
    AuthStore(db).add_user(*ADMIN, "admin")
    app = create_app(NoFaces(), ServeSettings(auth=AuthSettings(database=db, open_without_users=False,
                                                                trusted_proxies=("127.0.0.1",))))
    with TestClient(app, base_url="http://maskwatch.lan", client=("127.0.0.1", 50000)) as client:
        response = client.post("/login", json={"username": ADMIN[0], "password": ADMIN[1]}, headers=CSRF)
        assert response.status_code == 200 and PLAIN_COOKIE in response.cookies
        assert "secure" not in response.headers["set-cookie"].lower()
        assert client.get("/v1/me").json()["user"] == "admin"
        # from a trusted proxy (127.0.0.1 here), X-Forwarded-For names the client
        client.post("/login", json={"username": "nobody", "password": "x"}, headers=CSRF | {"X-Forwarded-For": "198.51.100.7"})
        [failed] = AuthStore(db).access_log(action="login_failed")
        assert failed["client"] == "198.51.100.7"
    with TestClient(app, base_url="https://maskwatch.lan") as client:  # https: __Host- and Secure, and HSTS
        response = client.post("/login", json={"username": ADMIN[0], "password": ADMIN[1]}, headers=CSRF)
        assert response.headers["set-cookie"].startswith(SECURE_COOKIE) and "Secure" in response.headers["set-cookie"]
        assert response.headers["strict-transport-security"].startswith("max-age=")


def test_failed_logins_are_limited_per_client_address_across_user_names(tmp_path, caplog):
    from fastapi.testclient import TestClient

    from maskwatch.serving.app import ServeSettings, create_app
    from tests.test_security_deploy import NoFaces

    db = str(tmp_path / "l.db")
    AuthStore(db).add_user(*ADMIN, "admin")
    app = create_app(NoFaces(), ServeSettings(auth=AuthSettings(database=db, open_without_users=False,
                                                                client_limit=3, user_limit=100)))
    with TestClient(app, base_url="http://maskwatch.lan") as client:
        for name in ("a", "b", "c"):  # one guess each at three names: the address's third failure
            assert client.post("/login", json={"username": name, "password": "guess"}, headers=CSRF).status_code == 401
        limited = client.post("/login", json={"username": ADMIN[0], "password": ADMIN[1]}, headers=CSRF)
        assert limited.status_code == 429 and "Retry-After" in limited.headers
        for n in range(50):  # a spray of new names: a row each was 700 rows a second from one address
            assert client.post("/login", json={"username": f"n{n}", "password": "guess"}, headers=CSRF).status_code == 429
    with TestClient(app, base_url="http://maskwatch.lan", client=("10.0.0.2", 4000)) as other:  # another address
        assert other.post("/login", json={"username": ADMIN[0], "password": ADMIN[1]}, headers=CSRF).status_code == 200
    assert [e["target"] for e in AuthStore(db).access_log(action="login_limited")] == [ADMIN[0]]
    # The server's log too, for fail2ban: each failure with its client, the limit once a minute.
    said = [r.getMessage() for r in caplog.records if r.name == "maskwatch.security.access"]
    assert said[:3] == ["login failed for user (unknown name) from testclient"] * 3, said  # no user's: not said
    assert len(said) == 4 and said[3].startswith("logins from testclient refused for "), said


def test_a_user_logs_in_with_their_name_in_any_case_limited_and_logged_as_themselves(tmp_path, caplog):
    """`Ana` (a phone capitalises the first letter) for the user `ana` was "wrong user name, password or
    code", names being one whatever their case. She logs in now, as `ana`: the answer, the session
    and the access log name her as stored. Her name's limit is hers in every spelling (counted per
    spelling, `ana`, `Ana`, `ANA`... each had the whole limit: the guesses a case-blind login lets
    through would have been the limit times the spellings), and her failures name `ana`."""
    from fastapi.testclient import TestClient

    from maskwatch.serving.app import ServeSettings, create_app
    from tests.test_security_deploy import NoFaces

    db = str(tmp_path / "l.db")
    store = AuthStore(db)
    store.add_user(*VIEWER, "viewer")
    app = create_app(NoFaces(), ServeSettings(auth=AuthSettings(database=db, open_without_users=False,
                                                                client_limit=100, user_limit=3)))
    shouted = VIEWER[0].upper()
    with TestClient(app, base_url="http://maskwatch.lan") as client:
        answer = client.post("/login", json={"username": shouted, "password": VIEWER[1]}, headers=CSRF)
        assert answer.status_code == 200 and answer.json()["user"] == VIEWER[0], answer.text
        assert client.get("/v1/me").json()["user"] == VIEWER[0]
        for name in (VIEWER[0], shouted, VIEWER[0].capitalize()):
            assert client.post("/login", json={"username": name, "password": "guess"}, headers=CSRF).status_code == 401
        limited = client.post("/login", json={"username": VIEWER[0].swapcase(), "password": VIEWER[1]}, headers=CSRF)
        assert limited.status_code == 429, limited.text
    rows = [(e["action"], e["user"], e["target"]) for e in reversed(store.access_log(limit=100))]
    assert rows == [("login", VIEWER[0], None)] + [("login_failed", None, VIEWER[0])] * 3 + [
        ("login_limited", None, VIEWER[0])]
    said = [r.getMessage() for r in caplog.records if r.name == "maskwatch.security.access"]
    assert said[:3] == [f"login failed for user {VIEWER[0]!r} from testclient"] * 3, said


def test_the_case_of_a_name_tells_no_guesser_whether_it_is_a_users(tmp_path):
    """A user's failures are counted under one key in every spelling (the test above), a name no
    user's was counted per spelling as typed: `ANA` to the name's limit and then `ana` answered 429,
    `ZED` so and then `zed` 401, which told whoever tried that ana is a user and zed is not (an
    unknown name's limit is a user's so as to tell nothing). Every name is now counted whatever the
    case of its ASCII letters (the Kelvin sign is none of them): ana's and zed's answers are alike."""
    from fastapi.testclient import TestClient

    from maskwatch.serving.app import ServeSettings, create_app
    from tests.test_security_deploy import NoFaces

    db = str(tmp_path / "oracle.db")
    AuthStore(db).add_user("ana", "ana's long password", "viewer")
    app = create_app(NoFaces(), ServeSettings(auth=AuthSettings(database=db, open_without_users=False,
                                                                client_limit=100, user_limit=2)))
    with TestClient(app, base_url="http://maskwatch.lan") as client:
        answers = {name: [client.post("/login", json={"username": typed, "password": "guess"},
                                      headers=CSRF).status_code for typed in (name.upper(), name.upper(), name)]
                   for name in ("ana", "zed")}
        kelvin = [client.post("/login", json={"username": typed, "password": "guess"}, headers=CSRF).status_code
                  for typed in ("\u212aim", "\u212aim", "kim")]
    assert answers == {"ana": [401, 401, 429], "zed": [401, 401, 429]}, answers
    assert kelvin == [401, 401, 401]  # two names: 'kim' is not the Kelvin sign's


def test_failed_logins_of_one_ipv6_network_are_counted_together(tmp_path):
    """An IPv6 client holds a /64 (2**64 addresses): counted per address, each of them had its own
    20 guesses, and a spray from one network met only the per-name limit."""
    from fastapi.testclient import TestClient

    from maskwatch.serving.app import ServeSettings, create_app
    from tests.test_security_deploy import NoFaces

    db = str(tmp_path / "v6.db")
    AuthStore(db).add_user(*ADMIN, "admin")
    app = create_app(NoFaces(), ServeSettings(auth=AuthSettings(database=db, open_without_users=False,
                                                                client_limit=3, user_limit=100)))

    def log_in_from(address: str, name: str, password: str) -> int:
        with TestClient(app, base_url="http://maskwatch.lan", client=(address, 4000)) as client:
            return client.post("/login", json={"username": name, "password": password}, headers=CSRF).status_code

    for n in range(3):  # three addresses of one network, a guess each
        assert log_in_from(f"2001:db8:7:1::{n + 1}", f"n{n}", "guess") == 401
    assert log_in_from("2001:db8:7:1::ff", *ADMIN) == 429  # a fourth address of it: limited
    assert log_in_from("::ffff:198.51.100.9", "m", "guess") == 401  # IPv4 (mapped) is counted per address
    assert log_in_from("2001:db8:7:2::1", *ADMIN) == 200  # the next network is another client


def test_a_failed_login_with_a_newline_in_its_name_is_one_log_line(tmp_path, caplog):
    from fastapi.testclient import TestClient

    from maskwatch.serving.app import ServeSettings, create_app
    from tests.test_security_deploy import NoFaces

    db = str(tmp_path / "n.db")
    AuthStore(db).add_user(*ADMIN, "admin")
    app = create_app(NoFaces(), ServeSettings(auth=AuthSettings(database=db, open_without_users=False)))
    with TestClient(app, base_url="http://maskwatch.lan") as client:
        forged = "x from 10.0.0.1\nlogin failed for user 'admin'"
        assert client.post("/login", json={"username": forged, "password": "guess"}, headers=CSRF).status_code == 401
    (line,) = [r.getMessage() for r in caplog.records if r.name == "maskwatch.security.access"]
    assert "\n" not in line and line.endswith(" from testclient")


def test_the_document_says_the_token_is_needed_where_the_server_is_not_open_without_users(tmp_path):
    """A server beyond loopback is never open, users or not: one whose only credential is a token
    (its users removed, or none added) refused every request without it, while its document told a
    generated client that the token was optional."""
    from fastapi.testclient import TestClient

    from maskwatch.serving.app import ServeSettings, create_app
    from tests.test_security_deploy import NoFaces

    db = str(tmp_path / "t.db")
    token = AuthStore(db).add_token("prometheus", "read")
    app = create_app(NoFaces(), ServeSettings(auth=AuthSettings(database=db, open_without_users=False)))
    with TestClient(app, base_url="http://maskwatch.lan") as client:
        assert client.get("/v1/me").status_code == 401  # no users, and still not open
        spec = client.get("/openapi.json", headers={"Authorization": f"Bearer {token}"}).json()
        assert spec["paths"]["/v1/detect"]["post"]["security"] == [{"token": []}]
        assert spec["paths"]["/healthz"]["get"]["security"] == []


def test_every_refusal_the_document_lists_has_the_error_body_the_server_answers(tmp_path):
    """The admin, login and two-step routes described their own 400, 403, 409, 429 and 503 without a
    body, so a client generated from the document (or one validating against it) read a full
    token's 403 from POST /v1/tokens, JSON with its `error`, as an answer that has none."""
    from fastapi.testclient import TestClient

    from maskwatch.serving.app import ServeSettings, create_app
    from tests.test_security_deploy import NoFaces

    db = str(tmp_path / "t.db")
    AuthStore(db).add_user(*ADMIN, "admin")
    token = {"Authorization": f"Bearer {AuthStore(db).add_token('ops', 'full')}"}
    app = create_app(NoFaces(), ServeSettings(auth=AuthSettings(database=db)))
    with TestClient(app, base_url="http://127.0.0.1") as client:
        spec = client.get("/openapi.json", headers=token).json()

        def required(response: dict) -> list[str]:
            schema = response.get("content", {}).get("application/json", {}).get("schema", {})
            if "$ref" in schema:
                schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
            return schema.get("required", [])

        bodiless = [(method, path, status) for path, operations in spec["paths"].items()
                    for method, operation in operations.items()
                    for status, response in operation["responses"].items()
                    if status[0] in "45" and "error" not in required(response)]
        assert bodiless == []
        refused = client.post("/v1/tokens", json={"name": "more"}, headers=token)
        assert refused.status_code == 403 and refused.headers["content-type"] == "application/json"
        documented = spec["paths"]["/v1/tokens"]["post"]["responses"]["403"]["content"]["application/json"]["schema"]
        assert set(documented["required"]) <= set(refused.json())


def test_a_burst_of_parallel_guesses_is_limited_as_a_row_of_them_is(tmp_path):
    """The failures are read before a password is hashed and written after: parallel guesses
    all passed the check until one of them was recorded."""
    from concurrent.futures import ThreadPoolExecutor

    from fastapi.testclient import TestClient

    from maskwatch.serving.app import ServeSettings, create_app
    from tests.test_security_deploy import NoFaces

    db = str(tmp_path / "burst.db")
    AuthStore(db).add_user(*ADMIN, "admin")

    def worker():  # one `serve --workers` process: its own AccessControl, the shared database
        return create_app(NoFaces(), ServeSettings(auth=AuthSettings(database=db, open_without_users=False,
                                                                     client_limit=100, user_limit=5)))

    # Two workers: each counted the guesses it was checking in its own memory, so two let 10 through.
    with TestClient(worker(), base_url="http://maskwatch.lan") as one, \
            TestClient(worker(), base_url="http://maskwatch.lan") as two, ThreadPoolExecutor(12) as pool:
        codes = list(pool.map(lambda n: (one, two)[n % 2].post("/login", json={"username": ADMIN[0], "password": "guess"},
                                                               headers=CSRF).status_code, range(12)))
        assert codes.count(401) == 5 and codes.count(429) == 7, codes
        # The right password afterwards is limited too, and counts nothing once it goes through.
        assert one.post("/login", json=dict(zip(("username", "password"), ADMIN)), headers=CSRF).status_code == 429
    store = AuthStore(db)
    with store.engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM login_failures WHERE key = 'user:admin'").scalar() == 5
    ids, _ = store.reserve_attempt({"client:10.0.0.9": 3, "user:ana": 3}, 900.0)  # a login that went through
    store.release_attempt(ids)
    with store.engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM login_failures WHERE key = 'user:ana'").scalar() == 0


def test_a_password_typed_as_the_name_is_counted_but_not_kept_in_clear(tmp_path):
    """Failed logins are counted per name in the database: a name that is no user's (often a
    password) sat there as typed for a day. Counted under its hash now, and limited as a user's is."""
    from fastapi.testclient import TestClient

    from maskwatch.serving.app import ServeSettings, create_app
    from tests.test_security_deploy import NoFaces

    db = str(tmp_path / "k.db")
    AuthStore(db).add_user(*ADMIN, "admin")
    app = create_app(NoFaces(), ServeSettings(auth=AuthSettings(database=db, open_without_users=False, user_limit=2)))
    with TestClient(app, base_url="http://maskwatch.lan") as client:
        tried = [client.post("/login", json={"username": name, "password": "guess"}, headers=CSRF).status_code
                 for name in (ADMIN[1], ADMIN[1], ADMIN[1], ADMIN[0], ADMIN[0], ADMIN[0])]
    assert tried == [401, 401, 429] * 2  # an unknown name limited as a user's: nothing told apart
    store = AuthStore(db)
    with store.engine.connect() as connection:
        keys = connection.exec_driver_sql("SELECT key FROM login_failures").scalars().all()
    assert ADMIN[1] not in str(keys) and keys.count("user:admin") == 2, keys
    assert keys.count("unknown:" + hashlib.sha256(ADMIN[1].encode()).hexdigest()) == 2, keys


def test_failed_logins_go_once_no_limit_counts_them(tmp_path):
    """Failure rows (unknown names among them: an unsalted digest, often of a password) were kept a
    day though every limit reads back window_minutes: now they go at the server's next request once
    past the longest window any process using the database said it counts within a day (now from
    the server's start and every minute: test_failed_logins_go_on_an_idle_server_too)."""
    import time

    from fastapi.testclient import TestClient

    from maskwatch.serving.app import ServeSettings, create_app
    from tests.test_security_deploy import NoFaces

    db = str(tmp_path / "w.db")
    store = AuthStore(db)
    store.add_user(*ADMIN, "admin")
    now = time.time()

    def keys():
        with store.engine.connect() as connection:
            return sorted(connection.exec_driver_sql("SELECT key FROM login_failures").scalars())

    for key, age in (("unknown:old", 16 * 60), ("secret:admin", 16 * 60), ("client:10.0.0.9", 14 * 60)):
        store.reserve_attempt({key: 99}, 900.0, now=now - age)
    app = create_app(NoFaces(), ServeSettings(auth=AuthSettings(database=db, open_without_users=False)))
    with TestClient(app, base_url="http://maskwatch.lan") as client:
        assert client.post("/login", json=dict(zip(("username", "password"), ADMIN)), headers=CSRF).status_code == 200
    assert keys() == ["client:10.0.0.9"]  # 15 minutes by default: 14 minutes old is still counted
    windows_of_two_processes(store)


def test_failed_logins_go_on_an_idle_server_too(tmp_path, monkeypatch):
    """The sweep ran from requests: on a server nobody asked anything, failure rows (hashed names
    typed as passwords among them) and access-log rows past retention stayed until the next one.
    Each server process sweeps from its start, every FAILURES_SWEPT_EVERY (shortened here)."""
    import time

    from fastapi.testclient import TestClient

    from maskwatch.security import access
    from maskwatch.serving.app import ServeSettings, create_app
    from tests.test_security_deploy import NoFaces

    db = str(tmp_path / "idle.db")
    store = AuthStore(db, retention_days=1)
    store.add_user(*ADMIN, "admin")
    now = time.time()
    store.reserve_attempt({"unknown:before": 99}, 900.0, now=now - 16 * 60)
    store.log("login", ADMIN[0], "10.0.0.9", now=now - 2 * 86400)

    def rows(query: str) -> list:
        with store.engine.connect() as connection:
            return connection.exec_driver_sql(query).scalars().all()

    monkeypatch.setattr(access, "FAILURES_SWEPT_EVERY", 0.2)
    app = create_app(NoFaces(), ServeSettings(auth=AuthSettings(database=db, open_without_users=False,
                                                                retention_days=1)))
    with TestClient(app, base_url="http://maskwatch.lan"):  # started, and never asked anything
        assert wait_until(lambda: not rows("SELECT key FROM login_failures") and not rows("SELECT action FROM access_log"),
                          10), (rows("SELECT key FROM login_failures"), rows("SELECT action FROM access_log"))
        store.reserve_attempt({"unknown:later": 99}, 900.0, now=time.time() - 16 * 60)
        store.reserve_attempt({"client:10.0.0.9": 99}, 900.0, now=time.time() - 14 * 60)
        assert wait_until(lambda: rows("SELECT key FROM login_failures") == ["client:10.0.0.9"], 10), \
            rows("SELECT key FROM login_failures")


def test_the_sweep_runs_only_where_there_is_a_users_database(tmp_path):
    """A server with no users database ran the sweep's thread anyway, a turn a minute of nothing.
    Now none runs without one; a users file made after the start is swept at once when a request
    has opened it (its thread started then, not a minute later on the idle one's next turn)."""
    import time

    from fastapi.testclient import TestClient

    from maskwatch.serving.app import ServeSettings, create_app
    from tests.test_security_deploy import NoFaces

    def sweeps(before: set) -> list:
        return [t for t in threading.enumerate() if t.name == "maskwatch-auth-sweep" and t not in before]

    before = set(threading.enumerate())
    db = tmp_path / "later.db"
    for auth in (AuthSettings(), AuthSettings(database=str(db))):  # no database at all; a file not made yet
        with TestClient(create_app(NoFaces(), ServeSettings(auth=auth))) as client:  # started: its lifespan ran
            assert not sweeps(before), auth
            if auth.database is None:
                assert client.get("/v1/me").status_code == 200 and not sweeps(before)  # open: nothing to sweep
                continue
            store = AuthStore(str(db))  # `users add` meanwhile
            store.add_user(*ADMIN, "admin")
            store.reserve_attempt({"unknown:before": 99}, 900.0, now=time.time() - 16 * 60)
            assert client.get("/v1/me").status_code == 401  # the request that opens it
            assert len(sweeps(before)) == 1

            def failures() -> list:
                with store.engine.connect() as connection:
                    return connection.exec_driver_sql("SELECT key FROM login_failures").scalars().all()

            assert wait_until(lambda: not failures(), 10), failures()
            store.close()


def test_the_hourly_sweep_drops_sessions_left_idle(tmp_path):
    """A session left idle past idle_minutes was refused when presented but stayed in the table
    until then or until absolute_hours, days later; the sweep now drops it by the same rule."""
    store = AuthStore(str(tmp_path / "s.db"))
    store.add_user("ana", "ana's long password", "admin")
    user = store.check_login("ana", "ana's long password")
    left = store.start_session(user["id"], user["password_hash"], now=1000.0)
    used = store.start_session(user["id"], user["password_hash"], now=1000.0)
    assert store.session_user(used, idle=3600, absolute=86400, now=4000.0) is not None  # touched at 4000
    store.enforce_retention(86400, now=4700.0)
    assert store.session_count("ana") == 2  # without `idle`: only past the absolute limit
    store.enforce_retention(86400, now=4700.0, idle=3600)
    assert store.session_count("ana") == 1
    assert store.session_user(used, idle=3600, absolute=86400, now=4700.0) is not None
    assert store.session_user(left, idle=3600, absolute=86400, now=4700.0) is None
    store.close()


def test_a_stop_does_not_wait_on_a_sweep_held_by_a_locked_database(tmp_path):
    """With the users database locked by another connection (another process's long write), the
    sweep at the start waits on it, and a server's stop waited 10 s for the sweep (Periodic.stop's
    join). A sweep loses nothing by being cut, so the stop waits SWEEP_STOP_WAIT for it: the join
    it is given, not the time the stop took (under 5 s, timed on a busy machine)."""
    import time

    from maskwatch.security.access import SWEEP_STOP_WAIT

    db = str(tmp_path / "locked.db")
    AuthStore(db).add_user(*ADMIN, "admin")
    control = AccessControl.from_settings(AuthSettings(database=db, open_without_users=False))
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # held until the stop returned
    try:
        control.start()  # its first sweep at once, waiting on the lock (the store's busy timeout: 30 s)
        sweeping = lambda: any(t.name == "maskwatch-auth-sweep" for t in threading.enumerate())  # noqa: E731
        time.sleep(0.5)
        assert sweeping()
        given = []  # the stop's waits for the sweep
        thread = control._sweeper._thread
        thread.join = lambda timeout=None, join=thread.join: (given.append(timeout), join(timeout))
        control.close()
        # A sweep under way is given its moment, then cut, still waiting on the lock: not waited for
        assert given == [SWEEP_STOP_WAIT] and sweeping(), given
    finally:
        other.execute("ROLLBACK")
        other.close()


def windows_of_two_processes(store: AuthStore) -> None:
    """A process with a 60-minute window beside one of 15: rows stay for it, until it has not said so for a day."""
    import time

    now = time.time()
    store.reserve_attempt({"user:admin": 99}, 900.0, now=now - 30 * 60)
    store.reserve_attempt({"user:old": 99}, 900.0, now=now - 61 * 60)
    assert store.drop_failures(3600.0, now=now) == 3600.0
    assert store.drop_failures(900.0, now=now) == 3600.0
    with store.engine.connect() as connection:
        kept = connection.exec_driver_sql("SELECT key FROM login_failures").scalars().all()
    assert "user:admin" in kept and "user:old" not in kept, kept
    assert store.drop_failures(900.0, now=now + 86401) == 900.0
    with store.engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM login_failures").scalar() == 0


def test_failed_logins_on_a_clock_set_ahead_lock_no_one_out_once_it_is_set_back(tmp_path):
    """An installer's 3 wrong passwords on a clock a week ahead (set by hand, an RTC's garbage):
    once NTP set it back, the name was locked out for that week; the rows stayed as long."""
    import time

    store = AuthStore(str(tmp_path / "auth.db"))
    now = time.time()
    for _ in range(3):
        assert store.reserve_attempt({"user:ana": 3}, 900.0, now=now + 7 * 86400)[0]
    assert store.reserve_attempt({"user:ana": 3}, 900.0, now=now + 7 * 86400)[0] is None  # on that clock
    assert store.reserve_attempt({"user:ana": 3}, 900.0, now=now)[0]  # set back
    store.drop_failures(900.0, now=now)
    with store.engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM login_failures").scalar() == 1


def test_failed_logins_of_two_windows_postgresql(postgres):  # noqa: F811
    windows_of_two_processes(AuthStore(postgres.new_database("windows")))


def test_a_flood_of_logins_leaves_threads_for_everything_else(tmp_path):
    """Each login waits for one of four Argon2 slots on a threadpool thread (40 in all): past 16
    at once a login is told to come back (503), so the other requests still find a thread."""
    from concurrent.futures import ThreadPoolExecutor

    from fastapi.testclient import TestClient

    from maskwatch.security import passwords

    from maskwatch.serving.app import ServeSettings, create_app
    from tests.test_security_deploy import NoFaces

    db = str(tmp_path / "flood.db")
    AuthStore(db).add_user(*ADMIN, "admin")
    app = create_app(NoFaces(), ServeSettings(auth=AuthSettings(database=db, open_without_users=False,
                                                                client_limit=10_000, user_limit=10_000)))
    with TestClient(app, base_url="http://maskwatch.lan") as client, ThreadPoolExecutor(49) as pool:
        # Every Argon2 slot busy: each login let in holds its thread until they are given back. A
        # thread was free for the request all the same, shown with no clock that a busy neighbour
        # (the other xdist worker) could stretch: without the bound, the 40 threads waited on the
        # slots and the request could not be answered until they were given back.
        for _ in range(4):
            passwords._CONCURRENT.acquire()
        try:
            logins = [pool.submit(client.post, "/login", json={"username": ADMIN[0], "password": "guess"},
                                  headers=CSRF) for _ in range(48)]
            # The flood is in: all but the 16 let in (MAX_LOGINS_AT_ONCE) told to come back.
            wait_until(lambda: sum(f.done() for f in logins) >= 48 - 16, 30)
            other = pool.submit(client.get, "/v1/classes")  # its access check needs a threadpool thread
            assert other.result(timeout=30).status_code == 401  # the limit keeps a broken test from hanging
            assert not any(f.done() and f.result().status_code == 401 for f in logins)  # none was checked yet
        finally:
            for _ in range(4):
                passwords._CONCURRENT.release()
        codes = [f.result().status_code for f in logins]
    assert set(codes) <= {401, 503} and 503 in codes, codes


def test_a_server_started_before_its_users_file_closes_once_a_user_is_added(tmp_path):
    """`serve` with no users file yet is open on loopback; the first `users add` makes the file,
    and the running server asks for a login from then on (within its 2 s re-read)."""
    import time

    from fastapi.testclient import TestClient

    from maskwatch.serving.app import ServeSettings, create_app
    from tests.test_security_deploy import NoFaces

    db = tmp_path / "maskwatch.db"
    app = create_app(NoFaces(), ServeSettings(auth=AuthSettings(database=str(db), open_without_users=True)))
    with TestClient(app, base_url="http://127.0.0.1") as client:
        assert client.get("/v1/me").status_code == 200  # open, and no file made by serving
        assert not db.exists()
        AuthStore(str(db)).add_user(*ADMIN, "admin")
        time.sleep(2.1)
        assert client.get("/v1/me").status_code == 401
        assert client.post("/login", json={"username": ADMIN[0], "password": ADMIN[1]},
                           headers=CSRF).status_code == 200


def test_a_relative_users_file_is_made_absolute_for_workers_and_replicas_elsewhere(tmp_path, monkeypatch):
    from maskwatch.security.commands import auth_for

    monkeypatch.chdir(tmp_path)
    assert auth_for("127.0.0.1", "users.db", ()).database == str(tmp_path / "users.db")
    assert auth_for("127.0.0.1", "sqlite:///x.db", ()).database == "sqlite:///x.db"


def test_the_access_log_reads_since_as_the_events_do(secured):
    """nan and inf were taken as floats: nothing answered, or everything (-inf); a date was a 422."""
    for bad in ("nan", "inf", "-inf", "1e400"):
        refused = secured.get("/v1/access-log", since=bad)
        assert refused.status_code == 400 and "since" in refused.json()["error"], bad
    assert secured.get("/v1/access-log", since="2026-01-01").status_code == 200
    assert secured.get("/v1/access-log", since="2999-01-01T00:00:00Z").json()["entries"] == []


def test_healthz_tells_anyone_its_status_only_and_no_answer_names_the_server(secured):
    """/healthz named the models and the providers they run on to anyone, and uvicorn added
    `server: uvicorn` to every answer. Whom /metrics answers (a token, an admin) sees the details;
    a viewer of some cameras, as /metrics refuses them, sees the status."""
    anyone = httpx.get(secured.base + "/healthz", timeout=10)
    assert anyone.status_code == 200 and anyone.json() == {"status": "ok"}
    assert "server" not in anyone.headers and "server" not in secured.get("/v1/cameras").headers
    details = secured.get("/healthz").json()
    assert details["status"] == "ok" and details["site"] is True and "providers" in details and "classifier" in details
    viewer = httpx.get(secured.base + "/healthz", headers=session_of(login(secured.base, VIEWER)), timeout=10)
    assert viewer.json() == {"status": "ok"}
    wrong = httpx.get(secured.base + "/healthz", headers={"Authorization": "Bearer nothing"}, timeout=10)
    assert wrong.status_code == 200 and wrong.json() == {"status": "ok"}


def test_healthz_answers_its_status_while_the_users_database_fails(tmp_path):
    """/healthz asked the users database who calls (an open server reads it at every request) to
    choose what to tell: with the database failing, a load balancer's or Docker's check got a 503
    and read the server as down. It says its status, and no details."""
    import sqlite3

    from fastapi.testclient import TestClient

    from maskwatch.serving.app import ServeSettings, create_app
    from tests.test_security_deploy import NoFaces

    db = str(tmp_path / "open.db")
    AuthStore(db).close()  # no user yet: an open server, which asks the database at each request
    with TestClient(create_app(NoFaces(), ServeSettings(auth=AuthSettings(database=db)))) as client:
        assert client.get("/metrics").status_code == 200  # open: /healthz would tell it the details
        with sqlite3.connect(db) as connection:  # the users table gone: every read of it fails
            connection.execute("ALTER TABLE users RENAME TO users_away")
        assert client.get("/metrics").status_code == 503
        health = client.get("/healthz")
        assert health.status_code == 200 and health.json() == {"status": "ok"}


def test_healthz_behind_a_hung_users_database_starts_one_lookup_and_answers_at_once(postgres):  # noqa: F811
    """A PostgreSQL server that hung (`kill -STOP`) held /healthz 2 s at each check, each check
    leaving a thread behind, stuck for good on the hung connection: a probe timing out at 1 s
    (Kubernetes' default) read the server as down all along. Now the lookup still stuck is
    remembered: the next checks answer at once, with no new thread."""
    import os
    import signal

    from fastapi.testclient import TestClient

    from maskwatch.serving.app import ServeSettings, create_app
    from tests.conftest import Credentials
    from tests.test_security_deploy import NoFaces

    pytest.importorskip("psycopg")
    database = postgres.new_database("healthz_hung")
    credentials = Credentials(database)
    postmaster = int((postgres.data / "postmaster.pid").read_text().split()[0])
    lookups = lambda: [t for t in threading.enumerate() if t.name == "maskwatch-healthz-who-asks"]  # noqa: E731
    with TestClient(create_app(NoFaces(), ServeSettings(auth=AuthSettings(database=database)))) as client:
        assert client.get("/v1/me", headers=credentials.headers).status_code == 200  # the token read: connected
        server = [postmaster, *map(int, subprocess.run(["pgrep", "-P", str(postmaster)], capture_output=True,
                                                        text=True).stdout.split())]
        try:
            for pid in server:
                os.kill(pid, signal.SIGSTOP)
            for _ in range(3):
                health = client.get("/healthz", headers=credentials.headers)
                assert health.status_code == 200 and health.json() == {"status": "ok"}
            assert len(lookups()) == 1, lookups()  # (one a check: 3, each stuck for good)
        finally:
            for pid in server:
                os.kill(pid, signal.SIGCONT)
        assert wait_until(lambda: not lookups(), 30)  # the stuck one ended with the hang


def test_head_is_answered_as_get_without_its_body(secured):
    """Every HEAD was a 405 (FastAPI registers GET alone): an uptime monitor's HEAD /healthz read
    the service as down. The refusals and headers are a GET's too."""
    health = httpx.head(secured.base + "/healthz", timeout=10)
    assert health.status_code == 200 and health.content == b"" and health.headers["x-content-type-options"] == "nosniff"
    document = httpx.head(secured.base + "/openapi.json", headers=secured.credentials.headers, timeout=10)
    assert document.status_code == 200 and document.content == b""
    assert int(document.headers["content-length"]) == len(secured.get("/openapi.json").content)
    assert httpx.head(secured.base + "/v1/events", timeout=10).status_code == 401  # the same access rules
    export = httpx.head(secured.base + "/v1/events.csv", headers=secured.credentials.headers, timeout=10)
    assert export.status_code == 200 and export.content == b"" and export.headers["content-type"].startswith("text/csv")


REMOVE_WHEN_TOLD = """import os, sys, time
from maskwatch.security.store import AuthStore
store = AuthStore(sys.argv[1])
print("ready", flush=True)
while not os.path.exists(sys.argv[3]):
    time.sleep(0.001)
try:
    store.remove_user(sys.argv[2])
    print("removed")
except ValueError as err:
    print(err)
"""


@pytest.mark.system  # starts processes
def test_two_processes_cannot_remove_the_last_two_admins_together(tmp_path):
    """Each read "another admin is left" before either removed theirs: a site with no admin."""
    import tempfile
    from pathlib import Path

    for attempt in range(3):
        db = str(tmp_path / f"a{attempt}.db")
        store = AuthStore(db)
        for name in ("ana", "bea"):
            store.add_user(name, f"{name}'s long password", "admin")
        store.add_user("vic", "vic's long password", "viewer")
        store.close()
        go = Path(tempfile.mkdtemp()) / "go"
        running = [subprocess.Popen([sys.executable, "-c", REMOVE_WHEN_TOLD, db, name, str(go)], stdout=subprocess.PIPE,
                                    text=True) for name in ("ana", "bea")]
        assert [p.stdout.readline().strip() for p in running] == ["ready", "ready"]
        go.touch()
        said = sorted(p.communicate(timeout=60)[0].strip() for p in running)
        assert said[1] == "removed" and "is the last admin" in said[0], said
        assert [u["role"] for u in AuthStore(db).users()].count("admin") == 1


def test_logins_that_go_through_or_fail_on_the_database_count_no_failure(tmp_path):
    """Each attempt is written before its password is checked: one that went through, or one the
    database failed mid-check (a 503), must not stay counted, or an office behind one address
    (or a user during an outage) would be locked out by right passwords."""
    import sqlalchemy
    from fastapi.testclient import TestClient

    from maskwatch.serving.app import ServeSettings, create_app
    from tests.test_security_deploy import NoFaces

    db = str(tmp_path / "ok.db")
    AuthStore(db).add_user(*ADMIN, "admin")
    app = create_app(NoFaces(), ServeSettings(auth=AuthSettings(database=db, open_without_users=False,
                                                                client_limit=3, user_limit=3)))
    right = dict(zip(("username", "password"), ADMIN))
    with TestClient(app, base_url="http://maskwatch.lan") as client:
        for _ in range(5):  # more than either limit, from one address
            assert client.post("/login", json=right, headers=CSRF).status_code == 200
        store = app.state.access.store
        checked = store.check_login

        def away(*args):
            raise sqlalchemy.exc.OperationalError("SELECT", {}, Exception("server closed the connection"))

        store.check_login = away
        for _ in range(5):
            assert client.post("/login", json=right, headers=CSRF).status_code == 503
        store.check_login = checked
        assert client.post("/login", json=right, headers=CSRF).status_code == 200

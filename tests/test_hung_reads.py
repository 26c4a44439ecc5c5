"""Requests that read a PostgreSQL server that hangs (`kill -STOP`: its connections stay open, nothing
answers) are answered within seconds, a 503 naming the database, and end by themselves once it
continues: each waited as long as the server did, holding a server thread, until the threadpool was
full and the static files waited too (measured on 2026-12-07: 42 requests of a dashboard's kinds, all
but /healthz without an answer after 8 s). Real uvicorn on loopback, a real PostgreSQL server."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import sqlalchemy

from maskwatch.detection.detector import WEIGHTS, Detector
from maskwatch.security.auth_settings import AuthSettings
from maskwatch.security.store import token_hash
from maskwatch.serving.app import ServeSettings, create_app
from maskwatch.site.config import load_site_config
from maskwatch.site.database_wait import READS_AT_ONCE, DatabaseNotAnswering, DatabaseWait
from maskwatch.site.runner import Site
from tests.conftest import ADMIN, Credentials, log_in
from tests.postgres import postgres  # noqa: F401  (fixture)
from tests.rtsp import refused_port
from tests.test_cameras import wait_until
from tests.test_dashboard import page  # noqa: F401  (headless Chromium)
from tests.test_security_deploy import NoFaces
from tests.test_site_trend import serving

pytestmark = pytest.mark.usefixtures("cheap_hashing")
ASKED = 15  # seconds a request of these tests may take before it counts as held (a read waits 3 s at most)


@contextlib.contextmanager
def hung(server):
    """The PostgreSQL server `server` stopped (SIGSTOP) for the block, continued after it, whatever
    happens. The postmaster first, then its processes: a backend it forked for a connection the
    open dashboard made meanwhile, after they were listed, went on answering."""
    postmaster = int((server.data / "postmaster.pid").read_text().split()[0])
    processes = [postmaster]
    try:
        os.kill(postmaster, signal.SIGSTOP)
        processes += map(int, subprocess.run(["pgrep", "-P", str(postmaster)], capture_output=True,
                                             text=True).stdout.split())
        for pid in processes[1:]:
            os.kill(pid, signal.SIGSTOP)
        yield
    finally:
        for pid in processes:
            os.kill(pid, signal.SIGCONT)


def test_a_read_stuck_past_the_wait_is_refused_and_the_next_are_refused_at_once_until_it_ends(caplog):
    """The wait's own rules, a read that blocks standing for the server that hangs: the first is
    refused once the wait is over, the next at once with no thread of their own, a read within a
    read runs in it, and reads go through again once the stuck one ends, the log saying both."""
    hang = threading.Event()
    reads = DatabaseWait("the test database", wait=0.2, at_once=2)
    assert reads.call(lambda: reads.call(lambda: 7)) == 7  # nested: no second slot, no second thread
    with pytest.raises(ValueError):
        reads.call(int, "not a number")  # the read's own error, raised on the caller's thread
    with caplog.at_level("WARNING", logger="maskwatch.site.database_wait"):
        with pytest.raises(DatabaseNotAnswering, match=r"^the test database has not answered for \d+ s"):
            reads.call(hang.wait)
        for _ in range(5):
            with pytest.raises(DatabaseNotAnswering):
                reads.call(hang.wait)
            with pytest.raises(DatabaseNotAnswering):
                reads.check()
        assert reads.stuck() == 2  # the first and the one let through to tell (a thread a call: 11 stuck)
        hang.set()
        assert wait_until(lambda: reads.stuck() == 0, 10)
        assert reads.call(lambda: "answered") == "answered"
    said = [record.getMessage() for record in caplog.records]
    assert len(said) == 2 and "has not answered a read for" in said[0] and "answered again after" in said[1], said


def test_a_read_slow_past_the_wait_while_others_are_answered_refuses_it_alone():
    """A database slow but working (a /v1/compliance over a year on a Raspberry Pi's SQLite, 3 s and
    more): the slow read alone is a 503, saying it is this read, and the next reads go through. Each
    was a 503 at once while it ran, "a server that hangs?", the open dashboard's every poll with it."""
    done = threading.Event()
    reads = DatabaseWait("the test database", wait=0.2, at_once=3)
    with pytest.raises(DatabaseNotAnswering, match="a server that hangs"):
        reads.call(done.wait)  # none answered meanwhile: it may hang
    assert reads.call(lambda: 7) == 7  # let through to tell, answered: the database answers
    assert reads.call(lambda: 8) == 8 and reads.check() is None
    answered = []

    def long_read():  # another request's read answered while this one runs
        other = threading.Thread(target=lambda: answered.append(reads.call(lambda: "quick")))
        other.start()
        other.join()
        done.wait()

    with pytest.raises(DatabaseNotAnswering, match=r"has not answered this read for \d+ s \(it answers others"):
        reads.call(long_read)
    assert answered == ["quick"] and reads.call(lambda: 9) == 9  # not refused at once
    done.set()
    assert wait_until(lambda: reads.stuck() == 0, 10)


def test_a_read_that_fails_before_asking_the_database_does_not_tell_that_it_answers():
    """While a read is stuck, the read let through to tell slow from hung may end in an error of its
    own before it asks the database (identify refusing a request with no credential, or a malformed
    Authorization header, at once): that is no answer. It counted as one, and every read went
    through again to wait on the hung server, each request held its full wait, not refused at once."""
    hang = threading.Event()
    reads = DatabaseWait("the test database", wait=0.2, at_once=3)
    with pytest.raises(DatabaseNotAnswering, match="a server that hangs"):
        reads.call(hang.wait)
    with pytest.raises(ValueError):
        reads.call(int, "not a number")  # let through to tell, but told nothing
    asked = []
    with pytest.raises(DatabaseNotAnswering, match="a server that hangs"):
        reads.call(lambda: asked.append("asked") or hang.wait())  # the next let through to tell: stuck too
    with pytest.raises(DatabaseNotAnswering):
        reads.call(lambda: asked.append("asked again") or hang.wait())
    assert asked == ["asked"] and reads.stuck() == 2  # refused at once: a hang keeps one more stuck read
    hang.set()
    assert wait_until(lambda: reads.stuck() == 0, 10)
    assert reads.call(lambda: 7) == 7


def test_a_hung_events_database_is_a_503_within_seconds_and_the_live_view_answers(tmp_path, postgres, page):  # noqa: F811
    """The site's events on a server that hangs, its users in SQLite: /v1/events answers 503 naming
    the events database, /v1/cameras answers with today's counts null, the page's files and
    /healthz answer, and a dashboard's worth of requests leaves READS_AT_ONCE reads stuck at most.
    The open dashboard's notice of stale figures names the database (it said "The server does not
    answer" of a server that answered at once), and goes once it answers again."""
    pytest.importorskip("psycopg")
    database = postgres.new_database("hung_events")
    (tmp_path / "site.yaml").write_text(f'cameras:\n  door: {{source: "rtsp://127.0.0.1:{refused_port()}/none"}}\n'
                                        f'storage: {{database: "{database}"}}\n')
    config = load_site_config(tmp_path / "site.yaml", environ={})
    credentials = Credentials(tmp_path / "users.db")
    detector = Detector.load(config=WEIGHTS / "centerface.json")  # never called: the camera sends no frame
    site = Site(config, detector)
    app = create_app(detector, ServeSettings(auth=AuthSettings(database=str(tmp_path / "users.db"))), site=site)
    with serving(app) as base, httpx.Client(base_url=base, headers=credentials.headers, timeout=ASKED) as client:
        assert client.get("/v1/events").status_code == 200
        assert client.get("/v1/cameras").json()[0]["today"] is not None
        log_in(page, base)
        with hung(postgres), ThreadPoolExecutor(12) as pool:
            answers = list(pool.map(lambda _: client.get("/v1/events"), range(12)))  # (each held: ReadTimeout)
            assert {answer.status_code for answer in answers} == {503}, [a.text for a in answers]
            said = answers[0].json()["error"]
            assert said.startswith("the events database has not answered for ") and said.endswith("hangs?)"), said
            assert client.get("/v1/compliance").status_code == 503
            cameras = client.get("/v1/cameras")
            assert cameras.status_code == 200 and cameras.json()[0]["today"] is None  # the live state, without counts
            assert client.get("/v1/cameras/door/frame.jpg").status_code == 404  # no frame yet, said at once
            assert client.get("/static/dashboard.js").status_code == 200
            assert client.get("/healthz").status_code == 200
            assert 1 <= site.reads.stuck() <= READS_AT_ONCE  # (none: each request held a thread)
            page.wait_for_selector("#stale:not([hidden])", timeout=ASKED * 1000)
            assert wait_until(lambda: page.inner_text("#stale-why").startswith(
                "The events database has not answered for "), ASKED), page.inner_text("#stale")
        assert wait_until(lambda: client.get("/v1/events").status_code == 200, 30)  # by itself, once it continues
        page.click("#retry")
        page.wait_for_selector("#stale", state="hidden", timeout=ASKED * 1000)
        assert page.inner_text("#stale-why") == "The server does not answer"  # its words for the next time
        assert wait_until(lambda: site.reads.stuck() == 0, 30)
        assert client.get("/v1/cameras").json()[0]["today"] is not None


def _ending_token_and_session(database, browser, base, login):
    """Headers of a token and of a session that end 3 s from now, written in the database."""
    added = browser.post("/v1/tokens", json={"name": "ending", "scope": "read", "admin_password": ADMIN[1]},
                         headers={"X-Maskwatch-CSRF": "1"})
    assert added.status_code == 201, added.text
    cookie = dict(httpx.post(base + "/login", json=login, headers={"X-Maskwatch-CSRF": "1"}, timeout=ASKED).cookies)
    ends, engine = time.time() + 3, sqlalchemy.create_engine(database)
    with engine.begin() as connection:
        connection.execute(sqlalchemy.text("UPDATE api_tokens SET expires = :ends WHERE name = 'ending'"), {"ends": ends})
        connection.execute(sqlalchemy.text("UPDATE sessions SET created = :began WHERE token_hash = :key"),
                           {"began": ends - AuthSettings().absolute_hours * 3600,
                            "key": token_hash(*cookie.values())})
    engine.dispose()
    return {"Authorization": f"Bearer {added.json()['token']}"}, {"Cookie": "; ".join(f"{k}={v}" for k, v in cookie.items())}


def test_a_hung_users_database_is_a_503_for_logins_and_lets_in_the_sessions_it_knows(postgres):  # noqa: F811
    """The users on a server that hangs: a login is a 503 naming the users database (never a 401,
    read as a wrong password), so is a caller not let in lately and a change; a token let in
    before goes on reading what needs no database (the page's files), and everything is as
    before once the server continues."""
    pytest.importorskip("psycopg")
    database = postgres.new_database("hung_users")
    credentials = Credentials(database)
    read_token = {"Authorization": f"Bearer {credentials.read_token}"}
    login = {"username": ADMIN[0], "password": ADMIN[1]}
    app = create_app(NoFaces(), ServeSettings(auth=AuthSettings(database=database)))
    with serving(app) as base, httpx.Client(base_url=base, headers=credentials.headers, timeout=ASKED) as client:
        assert client.get("/v1/me").status_code == 200  # let in: known while the database hangs
        session = httpx.post(base + "/login", json=login, headers={"X-Maskwatch-CSRF": "1"}, timeout=ASKED).cookies
        # a dashboard's session: its cookie (Secure: httpx keeps it from http://)
        browser = httpx.Client(base_url=base, timeout=ASKED, headers={"Cookie": "; ".join(f"{k}={v}" for k, v in session.items())})
        assert browser.get("/v1/me").json()["via"] == "session"
        csrf = {"X-Maskwatch-CSRF": "1"}
        added = browser.post("/v1/tokens", json={"name": "gone", "scope": "read", "admin_password": ADMIN[1]},
                             headers=csrf)
        assert added.status_code == 201, added.text
        gone = {"Authorization": f"Bearer {added.json()['token']}"}
        assert client.get("/v1/me", headers=gone).status_code == 200  # let in once...
        assert browser.delete("/v1/tokens/gone", headers=csrf).status_code == 200
        assert client.get("/v1/me", headers=gone).status_code == 401  # ...then revoked: refused
        ending, ends = _ending_token_and_session(database, browser, base, login), time.time() + 3
        for headers in ending:  # let in, 3 s before its expiry (a token's) or its absolute limit (a session's)
            assert httpx.get(base + "/v1/me", headers=headers, timeout=ASKED).status_code == 200
        time.sleep(max(0.0, ends - time.time()))  # past it: the database would refuse them now
        with hung(postgres):
            assert client.get("/static/dashboard.js", headers=gone).status_code == 503  # not let in from memory
            for headers in ending:  # past their end: not let in from memory (they were, up to 10 minutes on)
                assert httpx.get(base + "/static/dashboard.js", headers=headers, timeout=ASKED).status_code == 503
            refused = httpx.post(base + "/login", json=login, headers={"X-Maskwatch-CSRF": "1"}, timeout=ASKED)
            assert refused.status_code == 503, refused.text  # (no answer at all)
            assert refused.json()["error"].startswith("the users database has not answered for "), refused.text
            assert client.get("/v1/me", headers=read_token).status_code == 503  # never let in here
            assert client.get("/static/dashboard.js").status_code == 200
            assert client.get("/v1/me").json()["user"] == "token:tests-full"
            assert browser.get("/static/dashboard.js").status_code == 200  # the page's files, to its session
            me = browser.get("/v1/me").json()  # who it is, from memory: a page loaded now shows its cards
            assert me["user"] == ADMIN[0] and me["via"] == "session" and me["session"] is None, me
            assert client.get("/v1/users").status_code == 503  # reads the users: answered, not held
            assert client.post("/v1/tokens", json={"name": "x", "scope": "read", "admin_password": ADMIN[1]}
                               ).status_code == 503  # a change waits for the database: not let in from memory
            assert 1 <= app.state.access.reads.stuck() <= READS_AT_ONCE
        assert wait_until(lambda: client.get("/v1/me", headers=read_token).status_code == 200, 30)
        assert httpx.post(base + "/login", json=login, headers={"X-Maskwatch-CSRF": "1"}, timeout=ASKED).status_code == 200
        assert browser.get("/v1/me").json()["via"] == "session"
        browser.close()
        assert wait_until(lambda: app.state.access.reads.stuck() == 0, 30)

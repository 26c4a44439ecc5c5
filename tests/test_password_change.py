"""A user changes their own password (POST /password, and the dashboard's form): checked as a
login is, under the same guessing limits, on the real app and SQLite; the form in headless Chromium
against a real `maskwatch serve`."""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete

from maskwatch.security.auth_settings import AuthSettings
from maskwatch.security.passwords import COMMON_PASSWORD, WeakPassword, check_strength
from maskwatch.security.schema import sessions, users
from maskwatch.security.store import AuthStore
from maskwatch.serving.app import ServeSettings, create_app
from maskwatch.site.database import USERS_LOCK, hold_database
from tests.conftest import log_in
from tests.postgres import postgres  # noqa: F401  (fixture)
from tests.test_dashboard import page, tab  # noqa: F401  (headless Chromium)
from tests.test_security_deploy import NoFaces
from tests.test_serve import serving

CSRF = {"X-Maskwatch-CSRF": "1"}
ANA = ("ana", "ana's first password")
NEW = "ana's second password"


def app_of(db: str, **settings):
    return create_app(NoFaces(), ServeSettings(auth=AuthSettings(database=db, open_without_users=False, **settings)))


def log_in_api(client: TestClient, user: tuple[str, str]):
    return client.post("/login", json={"username": user[0], "password": user[1]}, headers=CSRF)


def change(client: TestClient, current: str, new: str, headers: dict = CSRF):
    return client.post("/password", json={"current": current, "new": new}, headers=headers)


def test_a_user_changes_their_password_and_their_other_sessions_end(tmp_path):
    db = str(tmp_path / "p.db")
    AuthStore(db).add_user(*ANA, "viewer")
    app = app_of(db)
    with TestClient(app, base_url="http://maskwatch.lan") as here, \
            TestClient(app, base_url="http://maskwatch.lan") as elsewhere:  # the same user on a phone
        assert log_in_api(here, ANA).status_code == 200 and log_in_api(elsewhere, ANA).status_code == 200
        before = dict(here.cookies)
        changed = change(here, ANA[1], NEW)
        assert changed.status_code == 200, changed.text
        assert changed.json()["user"] == "ana"
        # this browser gets a new session (a session id known before the change is worth nothing)
        assert dict(here.cookies) != before and here.get("/v1/me").json()["user"] == "ana"
        assert elsewhere.get("/v1/me").status_code == 401  # the other session ended
        with TestClient(app, base_url="http://maskwatch.lan", cookies=before) as old_cookie:
            assert old_cookie.get("/v1/me").status_code == 401
        assert log_in_api(elsewhere, ANA).status_code == 401  # the old password no longer logs in
        assert log_in_api(elsewhere, ("ana", NEW)).status_code == 200  # the new one does
        records = here.get("/v1/privacy").json()["access_log"]["records"]  # the statement names it
        assert {"password_changed", "password_change_failed"} <= set(records)
    store = AuthStore(db)
    [entry] = store.access_log(action="password_changed")
    assert entry["user"] == "ana" and entry["client"] == "testclient"
    written = repr(store.access_log(limit=1000))
    assert ANA[1] not in written and NEW not in written
    assert store.session_count("ana") == 2


def test_a_user_with_two_step_login_changes_their_password_only_with_a_code(tmp_path):
    """POST /password asked the current password alone where turning two-step login off asks a
    code too: a stolen session and a password seen once took the account. Now a user with it on
    sends the app's code or a recovery code (used up); none is refused before the password is
    checked (nothing counted), a wrong one is a failed login."""
    import pyotp

    from maskwatch.security.access import CODE_TOO
    from tests.test_two_step import code_at, enrolled

    db = str(tmp_path / "t.db")
    AuthStore(db).add_user(*ANA, "viewer")
    with TestClient(app_of(db), base_url="http://maskwatch.lan") as here:
        assert log_in_api(here, ANA).status_code == 200
        secret, codes = enrolled(here)
        missing = change(here, ANA[1], NEW)
        assert missing.status_code == 403 and missing.json() == {"error": CODE_TOO}
        other_phone = pyotp.TOTP(pyotp.random_base32()).now()
        wrong = here.post("/password", json={"current": ANA[1], "new": NEW, "code": other_phone}, headers=CSRF)
        assert wrong.status_code == 403 and wrong.json() == {"error": "wrong current password or code"}
        store = AuthStore(db)
        assert len(store.access_log(action="password_change_failed")) == 1  # the wrong code; not the missing one
        assert store.check_login(*ANA) is not None  # unchanged
        recovered = here.post("/password", json={"current": ANA[1], "new": NEW, "code": codes[0]}, headers=CSRF)
        assert recovered.status_code == 200, recovered.text
        assert store.recovery_left("ana") == 9 and store.check_login("ana", NEW) is not None
        again = here.post("/password", json={"current": NEW, "new": ANA[1], "code": code_at(secret, 1)}, headers=CSRF)
        assert again.status_code == 200, again.text
    assert [e["action"] for e in reversed(store.access_log(limit=100)) if e["action"].startswith("password")] == [
        "password_change_failed", "password_changed", "password_changed"]


def test_a_new_password_too_short_spends_no_recovery_code(tmp_path):
    """A user with two-step login on, changing their password with a recovery code (the phone
    lost), sent a new one too short: refused (400) after the code was checked, the code used up
    for nothing, one of their ten. It is said first now, and the code still works; so is a new
    password the same as the current one typed (it too was said after the code was spent)."""
    from tests.test_two_step import enrolled

    db = str(tmp_path / "t.db")
    AuthStore(db).add_user(*ANA, "viewer")
    with TestClient(app_of(db), base_url="http://maskwatch.lan") as here:
        assert log_in_api(here, ANA).status_code == 200
        _, codes = enrolled(here)
        short = here.post("/password", json={"current": ANA[1], "new": "short", "code": codes[0]}, headers=CSRF)
        assert short.status_code == 400 and "10" in short.json()["error"], short.text
        same = here.post("/password", json={"current": ANA[1], "new": ANA[1], "code": codes[0]}, headers=CSRF)
        assert same.status_code == 400 and same.json()["error"].startswith("the new password is the current one")
        store = AuthStore(db)
        assert store.recovery_left("ana") == 10 and store.access_log(action="recovery_used") == []
        wrong = here.post("/password", json={"current": "not ana's password", "new": NEW, "code": codes[0]},
                          headers=CSRF)
        assert wrong.status_code == 403  # a wrong current password is still the answer with a good new one
        changed = here.post("/password", json={"current": ANA[1], "new": NEW, "code": codes[0]}, headers=CSRF)
        assert changed.status_code == 200, changed.text
        assert store.recovery_left("ana") == 9 and store.check_login("ana", NEW) is not None


def test_a_change_checked_against_a_password_an_admin_replaced_meanwhile_changes_nothing(tmp_path):
    """`users passwd` between the current password's check and the write: the admin's password stays,
    and no session is started with the user's."""
    store = AuthStore(str(tmp_path / "race.db"))
    store.add_user(*ANA, "viewer")
    checked = store.check_login(*ANA)["password_hash"]
    store.set_password("ana", "the admin's choice")
    assert store.change_own_password("ana", checked, NEW) is None
    assert store.check_login("ana", "the admin's choice") is not None and store.session_count("ana") == 0


def test_a_wrong_current_password_is_a_failed_login_and_enough_lock_as_login_does(tmp_path, caplog):
    db = str(tmp_path / "w.db")
    AuthStore(db).add_user(*ANA, "viewer")
    with TestClient(app_of(db, user_limit=3), base_url="http://maskwatch.lan") as client:
        assert log_in_api(client, ANA).status_code == 200
        with caplog.at_level(logging.WARNING, logger="maskwatch.security.access"):
            for _ in range(3):
                wrong = change(client, "not the password", NEW)
                assert wrong.status_code == 403 and wrong.json() == {"error": "wrong current password"}
        # the user's limit is reached: the right password is refused too, here and at /login
        limited = change(client, ANA[1], NEW)
        assert limited.status_code == 429 and 1 <= int(limited.headers["retry-after"]) <= 15 * 60
        assert log_in_api(client, ANA).status_code == 429
        assert client.get("/v1/me").json()["user"] == "ana"  # the session itself goes on
    said = [r.getMessage() for r in caplog.records if r.name == "maskwatch.security.access"]
    assert said[:3] == ["login failed for user 'ana' from testclient"] * 3, said  # for fail2ban, as a login's
    assert len(said) == 4 and said[3].startswith("logins from testclient refused for "), said
    failed = AuthStore(db).access_log(action="password_change_failed")
    assert [(e["user"], e["target"]) for e in failed] == [("ana", None)] * 3
    another_worker = TestClient(app_of(db, user_limit=3), base_url="http://maskwatch.lan")  # counted in the database
    assert log_in_api(another_worker, ANA).status_code == 429


def test_too_many_checks_at_once_are_named_for_what_the_caller_did(tmp_path):
    """Past MAX_LOGINS_AT_ONCE passwords being checked, POST /password answered "too many logins at
    once": now "too many password checks at once", and /login still "too many logins at once". The
    checks are held inside Argon2's real limit of hashes at once (its four slots taken here)."""
    from maskwatch.security import passwords
    from maskwatch.security.access import MAX_LOGINS_AT_ONCE

    db = str(tmp_path / "busy.db")
    AuthStore(db).add_user(*ANA, "viewer")
    app = app_of(db, user_limit=1000, client_limit=1000)
    with TestClient(app, base_url="http://maskwatch.lan") as client:
        assert log_in_api(client, ANA).status_code == 200
        slots = 0
        while passwords._CONCURRENT.acquire(blocking=False):  # every hashing slot, so each check waits
            slots += 1
        waiting = []
        try:
            for _ in range(MAX_LOGINS_AT_ONCE):
                thread = threading.Thread(target=log_in_api, args=(TestClient(app, base_url="http://maskwatch.lan"), ANA))
                thread.start()
                waiting.append(thread)
            deadline = time.monotonic() + 30
            while app.state.access._in_flight < MAX_LOGINS_AT_ONCE and time.monotonic() < deadline:
                time.sleep(0.05)
            assert app.state.access._in_flight == MAX_LOGINS_AT_ONCE
            busy = change(client, ANA[1], NEW)
            assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
            assert busy.json() == {"error": "too many password checks at once; try again in a second"}
            busy = log_in_api(TestClient(app, base_url="http://maskwatch.lan"), ANA)
            assert busy.status_code == 503 and busy.json() == {"error": "too many logins at once; try again in a second"}
        finally:
            for _ in range(slots):
                passwords._CONCURRENT.release()
            for thread in waiting:
                thread.join(60)
        assert change(client, ANA[1], NEW).status_code == 200  # once they are done, it goes through


def test_a_weak_or_unchanged_password_and_callers_without_a_session_are_refused(tmp_path):
    db = str(tmp_path / "r.db")
    store = AuthStore(db)
    store.add_user(*ANA, "viewer")
    token = store.add_token("script", "full")
    with TestClient(app_of(db), base_url="http://maskwatch.lan") as client:
        assert change(client, ANA[1], NEW).status_code == 401  # no session
        assert log_in_api(client, ANA).status_code == 200
        with pytest.raises(WeakPassword) as cli_says:  # what `users add` and `users passwd` say
            check_strength("short", "ana")
        weak = change(client, ANA[1], "short")
        assert weak.status_code == 400 and weak.json() == {"error": str(cli_says.value)}
        same = change(client, ANA[1], ANA[1])
        assert same.status_code == 400 and same.json() == {"error": "the new password is the current one: choose another"}
        no_csrf = change(client, ANA[1], NEW, headers={})
        assert no_csrf.status_code == 403 and "X-Maskwatch-CSRF" in no_csrf.json()["error"]
        foreign = change(client, ANA[1], NEW, headers=CSRF | {"Origin": "http://evil.example"})
        assert foreign.status_code == 403 and "cross-origin" in foreign.json()["error"]
        assert change(client, ANA[1], "").status_code == 422
    with TestClient(app_of(db), base_url="http://maskwatch.lan") as script:
        by_token = change(script, ANA[1], NEW, headers={"Authorization": f"Bearer {token}"})
        assert by_token.status_code == 403 and "API token has no password" in by_token.json()["error"] \
            and "dashboard's Users" in by_token.json()["error"]
    # none of these was a guess: no failure counted, and the password is still the first one
    assert store.access_log(action="password_change_failed") == []
    assert store.check_login(*ANA) is not None and store.access_log(action="password_changed") == []
    empty = str(tmp_path / "open.db")
    AuthStore(empty).close()
    open_app = create_app(NoFaces(), ServeSettings(auth=AuthSettings(database=empty, open_without_users=True)))
    with TestClient(open_app) as anyone:
        refused = change(anyone, "x", NEW)
        assert refused.status_code == 403 and "no users yet" in refused.json()["error"]


def test_a_wrong_current_password_is_the_answer_whatever_the_new_one(tmp_path):
    """The new password's refusals were said before the current one was checked: a wrong guess
    sent as both was told "the new password is the current one", and with a short new one, "too
    short", not that it was wrong."""
    db = str(tmp_path / "w.db")
    store = AuthStore(db)
    store.add_user(*ANA, "viewer")
    with TestClient(app_of(db), base_url="http://maskwatch.lan") as client:
        assert log_in_api(client, ANA).status_code == 200
        for new in ("a wrong guess", "short", "ana"):  # as the current one, too short, the user name
            wrong = change(client, "a wrong guess", new)
            assert (wrong.status_code, wrong.json()) == (403, {"error": "wrong current password"}), new
        # each counted as a failed login (the limits kept); the right one then says what is wrong with the new
        assert len(store.access_log(action="password_change_failed")) == 3
        same = change(client, ANA[1], ANA[1])
        assert same.status_code == 400 and same.json() == {"error": "the new password is the current one: choose another"}
        assert store.check_login(*ANA) is not None


def at_fault(tab_page) -> list:
    """The field focused (where the focus stayed on the button), whether it is marked invalid, and
    what it is described by: a screen reader says which field is wrong, and why."""
    return tab_page.evaluate("[document.activeElement.id, document.activeElement.getAttribute('aria-invalid'),"
                         " document.activeElement.getAttribute('aria-describedby')]")


def test_the_dashboards_form_changes_the_password_on_a_phone(tmp_path, tab):  # noqa: F811
    db = tmp_path / "users.db"
    AuthStore(str(db)).add_user(*ANA, "viewer")
    with serving(["--database", str(db)], tmp_path) as base:
        phone = tab(360, 740)
        log_in(phone, base, ANA)
        phone.click("#password-open")
        assert phone.evaluate("document.getElementById('password-dialog').open")
        assert phone.evaluate("document.activeElement.id") == "password-current"
        autocomplete = [phone.get_attribute(f"#password-{field}", "autocomplete")
                        for field in ("user", "current", "new", "again")]
        assert autocomplete == ["username", "current-password", "new-password", "new-password"]
        assert phone.input_value("#password-user") == "ana"
        # two-step login off: no code asked (the field is a two-step user's, below)
        assert phone.locator("#password-code").count() == 1 and phone.is_hidden("#password-code")
        assert phone.evaluate("document.documentElement.scrollWidth") <= 360  # no sideways scroll
        phone.fill("#password-current", "typed, then left")
        phone.keyboard.press("Escape")  # closed, and nothing typed is left in the page
        # the dialog's close event (which empties it) comes after Escape's cancel, not with it
        phone.wait_for_function("() => !document.getElementById('password-dialog').open"
                                " && document.getElementById('password-current').value === ''", timeout=20_000)
        phone.click("#password-open")
        phone.fill("#password-current", ANA[1])
        phone.fill("#password-new", NEW)
        phone.fill("#password-again", NEW + "x")
        phone.click("#password-form button[type=submit]")
        assert phone.inner_text("#password-error") == "Not changed: the two new passwords differ."
        assert at_fault(phone) == ["password-again", "true", "password-error"]
        phone.fill("#password-again", NEW)
        phone.route("**/password", lambda route: route.abort("internetdisconnected"))  # the network down
        phone.click("#password-form button[type=submit]")
        phone.wait_for_function("() => document.getElementById('password-error').textContent.includes('answer')")
        assert phone.inner_text("#password-error") == "Not changed: the server did not answer; try again."
        phone.unroute("**/password")
        phone.fill("#password-current", "not the password")
        with phone.expect_response(lambda r: r.url.endswith("/password")) as answer:
            phone.click("#password-form button[type=submit]")
        assert answer.value.status == 403
        phone.wait_for_function("() => document.getElementById('password-error').textContent.includes('wrong')")
        assert phone.inner_text("#password-error") == "Not changed: wrong current password."
        assert at_fault(phone) == ["password-current", "true", "password-error"]
        assert phone.get_attribute("#password-again", "aria-invalid") is None  # mended: no longer marked
        phone.fill("#password-current", ANA[1])  # the new one's refusals come once the current one is right
        phone.fill("#password-new", "short")
        phone.fill("#password-again", "short")
        phone.click("#password-form button[type=submit]")
        phone.wait_for_function("() => document.getElementById('password-error').textContent.includes('10 characters')")
        assert phone.inner_text("#password-error") == "Not changed: the password needs at least 10 characters, got 5."
        assert at_fault(phone) == ["password-new", "true", "password-rule password-error"]
        phone.fill("#password-new", "Qwertyuiop")  # one of the common passwords: said why
        phone.fill("#password-again", "Qwertyuiop")
        phone.click("#password-form button[type=submit]")
        phone.wait_for_function("() => document.getElementById('password-error').textContent.includes('common')")
        assert phone.inner_text("#password-error") == f"Not changed: {COMMON_PASSWORD}."
        assert at_fault(phone) == ["password-new", "true", "password-rule password-error"]
        phone.fill("#password-new", NEW)
        phone.fill("#password-again", NEW)
        with phone.expect_response(lambda r: r.url.endswith("/password")) as answer:
            phone.click("#password-form button[type=submit]")
        assert answer.value.status == 200
        phone.wait_for_function("() => document.getElementById('password-message').textContent.startsWith('Password')")
        assert phone.is_hidden("#password-dialog") and phone.evaluate("document.activeElement.id") == "password-open"
        assert [phone.input_value(f"#password-{f}") for f in ("current", "new", "again")] == ["", "", ""]
        assert phone.get_attribute("#password-current", "aria-invalid") is None
        # still logged in (with the new session's cookie), and the server holds the new password
        assert phone.evaluate("fetch('/v1/me').then((r) => r.status)") == 200
        for password, status in ((ANA[1], 401), (NEW, 200)):
            assert httpx.post(base + "/login", json={"username": "ana", "password": password}, headers=CSRF,
                              timeout=30).status_code == status

        # past the guessing limits: the 429's Retry-After said once, as the time on the page's clock (no
        # site: the browser's own; the server's "try again in 898 s" was shown beside it)
        for _ in range(6):
            if httpx.post(base + "/login", json={"username": "ana", "password": "a guess"}, headers=CSRF,
                          timeout=30).status_code == 429:
                break
        phone.click("#password-open")
        for field, value in (("current", NEW), ("new", NEW + "!"), ("again", NEW + "!")):
            phone.fill(f"#password-{field}", value)
        with phone.expect_response(lambda r: r.url.endswith("/password")) as answer:
            phone.keyboard.press("Enter")
        assert answer.value.status == 429
        phone.wait_for_function("() => document.getElementById('password-error').textContent !== ''")
        said = phone.inner_text("#password-error")
        assert re.fullmatch(r"Not changed: too many failed logins; try again at \d\d:\d\d\.", said), said
        wait, now = int(answer.value.headers["retry-after"]), time.time()
        zone = ZoneInfo(phone.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone"))
        at = [datetime.fromtimestamp(math.ceil((now - ago + wait) / 60) * 60, zone) for ago in (0, 5)]
        assert said in [f"Not changed: too many failed logins; try again at {t:%H:%M}." for t in at], (said, wait, at)


def test_the_dashboards_form_asks_a_two_step_user_for_the_code(tmp_path, tab):  # noqa: F811
    """POST /password asks a user with two-step login on for a code, and the dialog had no field for
    it: such a user was refused ("send the code ...") with no way to send one. Now it asks for one,
    and a wrong one is said at it (marked with the password: the server says not which was wrong)."""
    from tests.test_two_step import SECRET, ana_with_two_step, code_at, serving_ana

    db = ana_with_two_step(tmp_path)
    with serving_ana(db, tmp_path) as base:
        desk = tab(1280, 800)
        desk.goto(base + "/login")
        for field, value in (("#username", ANA[0]), ("#password", ANA[1]), ("#code", code_at(SECRET))):
            desk.fill(field, value)
        desk.click("button[type=submit]")
        desk.wait_for_url(base + "/", timeout=20_000)
        desk.wait_for_selector("#password-open", state="visible")
        desk.click("#password-open")
        desk.wait_for_selector("#password-code", state="visible")  # once /v1/me said two-step login is on
        assert desk.get_attribute("#password-code", "autocomplete") == "one-time-code"
        for field, value in (("current", ANA[1]), ("new", NEW), ("again", NEW)):
            desk.fill(f"#password-{field}", value)
        desk.click("#password-form button[type=submit]")  # no code: said here, nothing sent
        assert desk.inner_text("#password-error") == "Not changed: fill in all four fields."
        assert at_fault(desk) == ["password-code", "true", "password-error"]
        desk.fill("#password-code", "000000" if code_at(SECRET, 1) != "000000" else "111111")
        with desk.expect_response(lambda r: r.url.endswith("/password")) as answer:
            desk.click("#password-form button[type=submit]")
        assert answer.value.status == 403
        desk.wait_for_function("() => document.getElementById('password-error').textContent.includes('wrong')")
        assert desk.inner_text("#password-error") == "Not changed: wrong current password or code."
        assert at_fault(desk) == ["password-code", "true", "password-error"]
        assert desk.input_value("#password-code") == ""  # good once: the next try takes the app's next
        assert desk.get_attribute("#password-current", "aria-invalid") == "true"
        desk.fill("#password-code", code_at(SECRET, 1))
        with desk.expect_response(lambda r: r.url.endswith("/password")) as answer:
            desk.click("#password-form button[type=submit]")
        assert answer.value.status == 200
        desk.wait_for_function("() => document.getElementById('password-message').textContent.startsWith('Password')")
        assert desk.is_hidden("#password-dialog") and desk.input_value("#password-code") == ""
    store = AuthStore(db)
    assert len(store.access_log(action="password_change_failed")) == 1  # the wrong code
    assert len(store.access_log(action="password_changed")) == 1 and store.check_login("ana", NEW) is not None


def test_a_refused_body_says_no_password_back_and_a_lone_surrogate_is_a_422(tmp_path):
    """FastAPI's 422 echoed a refused password whole in `detail`, and one holding a lone surrogate
    ("\\ud800", which JSON allows) made rendering the 422 itself a 500."""
    db = str(tmp_path / "b.db")
    AuthStore(db).add_user(*ANA, "viewer")
    with TestClient(app_of(db), base_url="http://maskwatch.lan") as client:
        assert log_in_api(client, ANA).status_code == 200
        too_long = "my secret phrase " * 60  # over the 1000 characters
        for body in ({"current": too_long, "new": NEW}, {"current": ANA[1], "new": too_long}):
            refused = change(client, body["current"], body["new"])
            assert refused.status_code == 422 and "at most 1000 characters" in refused.json()["error"]
            assert "my secret phrase" not in refused.text
        raw = '{"current": "%s", "new": "ana\'s \\ud800 password"}' % ANA[1].replace("'", "\\u0027")
        surrogate = client.post("/password", content=raw, headers=CSRF | {"Content-Type": "application/json"})
        assert surrogate.status_code == 422 and surrogate.json()["error"].startswith("body field 'new': ")
        assert "input" not in surrogate.json()["detail"][0]
        form = client.post("/password", data={"current": ANA[1], "new": "a form's password"}, headers=CSRF)
        assert form.status_code == 422 and "form's" not in form.text and "first" not in form.text
        login = client.post("/login", content='{"username": "ana", "password": "\\udc00 a guess here"}',
                            headers=CSRF | {"Content-Type": "application/json"})
        assert login.status_code == 422 and login.json()["error"].startswith("body field 'password': ")
        assert "a guess here" not in login.text
    store = AuthStore(db)
    assert store.check_login(*ANA) is not None and store.access_log(action="password_changed") == []


@pytest.mark.parametrize("change_of", ["own", "admin"])
def test_a_password_change_waits_for_users_remove_on_postgresql(postgres, change_of):  # noqa: F811
    """`users remove` ends the sessions, then deletes the user; a change wrote the user's row, then
    ended the sessions: the two in flight at once locked each other's rows, and PostgreSQL broke the
    deadlock by failing one (the removal, or the change with a 503). Now a change waits for the
    removal (the lock `users remove` holds) and finds nobody."""
    store = AuthStore(postgres.url)
    if store.user("ana") is not None:  # the server is the module's: the run before left it
        store.remove_user("ana")
    store.add_user(*ANA, "viewer")
    checked = store.check_login(*ANA)
    assert store.start_session(checked["id"], checked["password_hash"]) is not None
    changer = AuthStore(postgres.url)  # another worker, or the CLI
    outcome = {}

    def change_now():
        try:
            if change_of == "own":
                outcome["token"] = changer.change_own_password("ana", checked["password_hash"], NEW)
            else:
                changer.set_password("ana", NEW)
                outcome["token"] = None
        except Exception as err:  # noqa: BLE001  (what the test reports)
            outcome["error"] = err

    with store.engine.begin() as connection:  # remove_user's steps, the change landing between them
        hold_database(connection, USERS_LOCK)
        connection.execute(delete(sessions).where(sessions.c.user_id == checked["id"]))
        changing = threading.Thread(target=change_now)
        changing.start()
        time.sleep(1.5)  # past PostgreSQL's deadlock_timeout (1 s), had the change taken the user's row
        connection.execute(delete(users).where(users.c.id == checked["id"]))
    changing.join(30)
    if change_of == "own":
        assert outcome == {"token": None}, outcome  # the change found nobody: 409
    else:
        assert isinstance(outcome.get("error"), ValueError) and "no user 'ana'" in str(outcome["error"]), outcome
    assert store.user("ana") is None and store.session_count() == 0
    changer.close()
    store.close()


def test_a_poll_answered_401_while_the_password_changes_is_asked_again_not_sent_to_login(tmp_path, tab):  # noqa: F811
    """A request sent while the change is in flight carries the session the change ends: the
    server answers it 401 when it comes in after the change (a poll on a phone's slow link). The
    page went to the login page ("your session has ended") although the change went through."""
    db = tmp_path / "users.db"
    AuthStore(str(db)).add_user(*ANA, "viewer")
    with serving(["--database", str(db)], tmp_path) as base:
        phone = tab(360, 740)
        log_in(phone, base, ANA)
        held = {"change": [], "read": []}
        phone.route("**/password", lambda route: held["change"].append(route))
        phone.route("**/v1/classes", lambda route: held["read"].append(route) if not held["read"]
                    else route.continue_())
        phone.click("#password-open")
        phone.fill("#password-current", ANA[1])
        phone.fill("#password-new", NEW)
        phone.fill("#password-again", NEW)
        phone.click("#password-form button[type=submit]")
        while not held["change"]:
            phone.wait_for_timeout(20)
        # in flight: said, the button marked busy; a second press is answered (it was ignored unsaid)
        assert phone.inner_text("#password-busy") == "Changing your password…"
        assert phone.get_attribute("#password-form button[type=submit]", "aria-disabled") == "true"
        phone.keyboard.press("Enter")  # the button has the focus (Playwright will not click one marked disabled)
        assert phone.inner_text("#password-busy") == "Still changing your password: a moment."
        assert len(held["change"]) == 1
        phone.evaluate("() => { window.read = api('/v1/classes').then((r) => r.status, (e) => e.message); }")
        while not held["read"]:
            phone.wait_for_timeout(20)
        with phone.expect_response(lambda r: r.url.endswith("/password")) as changed:
            held["change"][0].continue_()
        assert changed.value.status == 200
        # what the server says to the old session's cookie, once the change has ended it
        held["read"][0].fulfill(status=401, content_type="application/json", body='{"error": "log in first"}')
        phone.wait_for_function("() => window.read !== undefined", timeout=20_000)  # undefined: gone to /login
        assert phone.evaluate("window.read") == 200 and "/login" not in phone.url
        phone.wait_for_function("() => document.getElementById('password-message').textContent.startsWith('Password')")
        assert phone.inner_text("#password-busy") == ""
        assert phone.get_attribute("#password-form button[type=submit]", "aria-disabled") is None


def test_a_body_naming_a_user_is_refused_not_read_as_your_own_change(tmp_path):
    """An admin scripting bob's reset sent {"username": "bob", "current": <theirs>, "new": ...}: the
    name was ignored, and the admin's own password changed (their sessions ended) while bob's stayed."""
    db = str(tmp_path / "n.db")
    store = AuthStore(db)
    store.add_user("boss", "the boss's password", "admin")
    store.add_user(*ANA, "viewer")
    with TestClient(app_of(db), base_url="http://maskwatch.lan") as admin:
        assert log_in_api(admin, ("boss", "the boss's password")).status_code == 200
        refused = admin.post("/password", json={"username": "ana", "current": "the boss's password", "new": NEW},
                             headers=CSRF)
        assert refused.status_code == 422, refused.text
        assert "not 'username'" in refused.json()["error"] and "users passwd" in refused.json()["error"] \
            and "/v1/users/NAME/password" in refused.json()["error"]
        assert admin.get("/v1/me").json()["user"] == "boss"  # still logged in: nothing changed
    assert store.check_login("boss", "the boss's password") is not None and store.check_login(*ANA) is not None


def test_a_common_password_is_refused_wherever_one_is_set_and_a_user_who_has_one_still_logs_in(tmp_path):
    """Only a password's length and the user's name were checked: `1234567890`, `qwertyuiop` and
    `Password123` were taken, the first a guesser tries (NIST SP 800-63B 5.1.1.2 asks a verifier to
    refuse passwords of lists of common or leaked ones). Now each place a password is set refuses
    them, whatever their case, in one message; a user who already has one still logs in."""
    from typer.testing import CliRunner

    from maskwatch.cli import app
    from maskwatch.security.passwords import hash_password

    for common in ("1234567890", "qwertyuiop", "Password123", " PASSWORD123 "):
        with pytest.raises(WeakPassword, match="most common passwords") as said:
            check_strength(common, "ana")
        assert str(said.value) == COMMON_PASSWORD
    check_strength("password123 of ana's", "ana")  # a common one inside a longer one is not refused
    db = str(tmp_path / "c.db")

    def cli(password: str, *args: str):
        return CliRunner().invoke(app, [*args, "--database", db], input=password + "\n")

    first = cli("qwertyuiop", "users", "add", "ana", "--role", "admin")  # the first admin
    assert first.exit_code == 1 and COMMON_PASSWORD in first.output, first.output
    assert cli(ANA[1], "users", "add", "ana", "--role", "admin").exit_code == 0
    renewed = cli("1q2w3e4r5t", "users", "passwd", "ana")
    assert renewed.exit_code == 1 and COMMON_PASSWORD in renewed.output, renewed.output
    store = AuthStore(db)
    with store.engine.begin() as connection:  # set before the list was checked: the hash of a common one
        connection.execute(users.insert().values(name="old", password_hash=hash_password("password123"),
                                                 role="viewer", created=time.time()))
    with TestClient(app_of(db), base_url="http://maskwatch.lan") as ana, \
            TestClient(app_of(db), base_url="http://maskwatch.lan") as old:
        assert log_in_api(old, ("old", "password123")).status_code == 200  # not locked out
        assert log_in_api(ana, ANA).status_code == 200
        refusals = [change(ana, ANA[1], "1234567890"), change(old, "password123", "Password123"),
                    ana.post("/v1/users", json={"name": "cy", "password": "1qaz2wsx3edc", "admin_password": ANA[1]},
                             headers=CSRF),
                    ana.post("/v1/users/old/password", json={"password": "qwerty123456", "admin_password": ANA[1]},
                             headers=CSRF)]
        assert [(r.status_code, r.json()) for r in refusals] == [(400, {"error": COMMON_PASSWORD})] * 4
        assert change(old, "password123", "old's own new password").status_code == 200  # and moves off it
    assert [u["name"] for u in store.users()] == ["ana", "old"] and store.check_login(*ANA) is not None
    assert store.access_log(action="password_change_failed") == []  # none of these was a guess

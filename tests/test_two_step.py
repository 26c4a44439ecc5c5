"""Two-step login (RFC 6238 codes): POST /login with a code, the dashboard's enrolment routes and
`maskwatch users 2fa`, on the real app, SQLite (PostgreSQL for the migration) and pyotp's codes."""

from __future__ import annotations

import functools
import logging
import os
import re
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import httpx
import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from maskwatch.security.access import NOT_ON_TO_REPLACE, TWO_STEP_CHANGED, TWO_STEP_REQUIRED, WRONG_LOGIN
from maskwatch.security.auth_settings import AuthSettings
from maskwatch.security.passwords import hash_password
from maskwatch.security.request_checks import PLAIN_COOKIE
from maskwatch.security.store import RENEWED_MEANWHILE, AuthStore, Conflict
from maskwatch.security.two_step import (STEP, matching_step, new_recovery_codes, recovery_hash,
                                         recovery_hashes)
from maskwatch.serving.app import ServeSettings, create_app
from tests.conftest import hashing, log_in as log_in_page, watched
from tests.postgres import postgres  # noqa: F401  (fixture)
from tests.test_dashboard import page  # noqa: F401  (headless Chromium)
from tests.test_security_deploy import NoFaces
from tests.test_serve import serving

CSRF = {"X-Maskwatch-CSRF": "1"}
ANA = ("ana", "ana's first password")
SECRET = pyotp.random_base32(32)
RECOVERY_CODE = re.compile(r"[a-z2-9]{4}-[a-z2-9]{4}")
# The page's session still good: a request of its own, with the browser's cookies, answered.
ME_STATUS = "async () => (await fetch('/v1/me')).status"


def code_at(secret: str, steps: int = 0) -> str:
    """The code `steps` time steps from now, away from a step's edge (a step ending between making
    a code and checking it would move it one step)."""
    if time.time() % STEP > STEP - 3:
        time.sleep(STEP - time.time() % STEP + 0.1)
    return pyotp.TOTP(secret).at(time.time() + steps * STEP)


def client_of(db: str, **settings) -> TestClient:
    app = create_app(NoFaces(), ServeSettings(auth=AuthSettings(database=db, open_without_users=False, **settings)))
    return TestClient(app, base_url="http://maskwatch.lan")


def log_in(client: TestClient, code: str | None = None, password: str = ANA[1]):
    body = {"username": ANA[0], "password": password} | ({"code": code} if code is not None else {})
    return client.post("/login", json=body, headers=CSRF)


def until(read, timeout: float = 10.0):
    """`read()`'s first true value within `timeout` s, else its last (a read from here, such as
    is_visible or inner_text, polled)."""
    deadline = time.monotonic() + timeout
    while not (value := read()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return value


@functools.cache
def served_hash() -> str:
    """Ana's password hashed as `serve` hashes it (the shipped Argon2 cost), made once."""
    with hashing("shipped"):
        return hash_password(ANA[1])


def on_users(db, statement: str, **values):
    """`statement` run on the SQLite file `db` as it is (an AuthStore opened on it would upgrade an
    older one's tables): its first value, if it returns rows."""
    engine = create_engine(f"sqlite:///{db}")
    try:
        with engine.begin() as connection:
            result = connection.execute(text(statement), values)
            return result.scalar() if result.returns_rows else None
    finally:
        engine.dispose()


def hashed_as_served(db) -> None:
    """Ana's password in `db` hashed as a server hashes it: a server run as a command keeps the
    shipped hasher, so her cheap hash of the tests was hashed again at her first login (the shipped
    cost, and a write: the stored hash no longer the one the test made)."""
    on_users(db, "UPDATE users SET password_hash = :hash WHERE name = 'ana'", hash=served_hash())


def serving_ana(db, log_dir):
    """serving(...) on `db`, Ana's password hashed there as the server hashes it (hashed_as_served)."""
    hashed_as_served(db)
    return serving(["--database", str(db)], log_dir)


def ana_with_two_step(tmp_path) -> str:
    db = str(tmp_path / "two-step.db")
    store = AuthStore(db)
    store.add_user(*ANA, "admin")
    assert store.turn_on("ana", SECRET, step=0) == ""  # as `users 2fa --on` stores it
    store.close()
    return db


def test_drift_of_one_step_is_taken_and_a_code_is_good_once():
    now = 1_000_000 * STEP + 10.0
    totp = pyotp.TOTP(SECRET)
    assert matching_step(SECRET, totp.at(now), None, now) == 1_000_000
    assert matching_step(SECRET, totp.at(now - STEP), None, now) == 999_999  # a phone 30 s behind
    assert matching_step(SECRET, totp.at(now + STEP), None, now) == 1_000_001  # or ahead
    assert matching_step(SECRET, totp.at(now - 2 * STEP), None, now) is None
    assert matching_step(SECRET, totp.at(now), 1_000_000, now) is None  # its step used already
    assert matching_step(SECRET, totp.at(now + STEP), 1_000_000, now) == 1_000_001
    code = totp.at(now)
    assert matching_step(SECRET, f"{code[:3]} {code[3:]}", None, now) == 1_000_000  # as apps show it
    assert matching_step(SECRET, "12345", None, now) is None and matching_step(SECRET, "", None, now) is None


def test_a_login_needs_the_password_and_a_fresh_code_and_says_neither_which(tmp_path, caplog):
    db = ana_with_two_step(tmp_path)
    with client_of(db, user_limit=4) as client, caplog.at_level(logging.DEBUG):
        answers = [log_in(client), log_in(client, "000000" if code_at(SECRET) != "000000" else "111111"),
                   log_in(client, code_at(SECRET), password="not ana's password")]
        # no code, a wrong one, and the right code with a wrong password: one answer
        assert {(a.status_code, a.json()["error"]) for a in answers} == {(401, WRONG_LOGIN)}
        right = code_at(SECRET)
        assert log_in(client, right).status_code == 200  # and the failures of the name are cleared
        assert client.get("/v1/me").json()["two_step"] is True
        assert log_in(client, right).status_code == 401  # replayed (seen over a shoulder, in a log)
        # wrong codes count as wrong passwords (the replay too): past the user's limit even the right
        # code is refused
        for _ in range(3):
            assert log_in(client, "999999" if code_at(SECRET, 1) != "999999" else "888888").status_code == 401
        assert log_in(client, code_at(SECRET, 1)).status_code == 429
        answered = [a.text for a in answers]
    store = AuthStore(db)
    assert [e["user"] for e in store.access_log(action="login")] == ["ana"]
    assert len(store.access_log(action="login_failed")) == 7
    written = repr(store.access_log(limit=1000)) + caplog.text + "".join(answered)
    assert SECRET not in written and ANA[1] not in written


def test_a_user_without_two_step_logs_in_with_the_password_whatever_code(tmp_path):
    db = str(tmp_path / "plain.db")
    AuthStore(db).add_user(*ANA, "viewer")
    with client_of(db) as client:
        assert log_in(client).status_code == 200 and log_in(client, "").status_code == 200
        assert log_in(client, "123456").status_code == 200
        assert client.get("/v1/me").json()["two_step"] is False


def test_a_user_turns_it_on_on_the_dashboard_with_a_code_and_off_with_another(tmp_path, caplog):
    db = str(tmp_path / "enrol.db")
    AuthStore(db).add_user(*ANA, "viewer")
    with client_of(db) as here, client_of(db) as phone, caplog.at_level(logging.DEBUG):
        assert log_in(here).status_code == 200 and log_in(phone).status_code == 200
        made = here.post("/two-step/secret", headers=CSRF)
        assert made.status_code == 200 and made.headers["cache-control"] == "no-store"
        secret = made.json()["secret"]
        assert made.json()["uri"].startswith("otpauth://totp/maskwatch:ana?secret=" + secret)
        assert made.json()["qr_svg"].startswith("data:image/svg+xml")
        assert log_in(client_of(db)).status_code == 200  # nothing changed until a code confirms it

        def turn(method: str, password: str, code: str):
            return here.request(method, "/two-step", json={"password": password, "code": code}, headers=CSRF)

        wrong_password = turn("POST", "not ana's password", code_at(secret))
        assert wrong_password.status_code == 403 and wrong_password.json()["error"] == "wrong password"
        typo = turn("POST", ANA[1], pyotp.TOTP(SECRET).now())  # another secret's code
        assert typo.status_code == 400 and "not the app's code" in typo.json()["error"]
        before = dict(here.cookies)
        assert turn("POST", ANA[1], code_at(secret)).status_code == 200
        assert dict(here.cookies) != before and here.get("/v1/me").json()["two_step"] is True
        assert phone.get("/v1/me").status_code == 401  # the other session ended
        assert turn("POST", ANA[1], code_at(secret)).status_code == 409  # on already
        assert log_in(client_of(db)).status_code == 401  # the password alone no longer logs in
        too_long = here.request("DELETE", "/two-step", json={"password": ANA[1], "code": "1" * 17}, headers=CSRF)
        assert too_long.status_code == 422 and ANA[1] not in too_long.text
        assert turn("DELETE", ANA[1], "000000" if code_at(secret, 1) != "000000" else "111111").status_code == 403
        assert turn("DELETE", ANA[1], code_at(secret, 1)).status_code == 200  # the code of the next step
        assert here.get("/v1/me").json()["two_step"] is False and log_in(client_of(db)).status_code == 200
        assert {"totp_on", "totp_off", "totp_failed"} <= set(here.get("/v1/privacy").json()["access_log"]["records"])
    store = AuthStore(db)
    assert [(e["user"], e["action"]) for e in store.access_log(limit=1000) if e["action"].startswith("totp")] == [
        ("ana", "totp_off"), ("ana", "totp_failed"), ("ana", "totp_on"), ("ana", "totp_failed")]
    assert secret not in repr(store.access_log(limit=1000)) + caplog.text


def enrolled(client: TestClient) -> tuple[str, list[str]]:
    """Two-step login turned on on the dashboard for ana, logged in on `client`: the secret and
    the recovery codes its answer showed."""
    secret = client.post("/two-step/secret", headers=CSRF).json()["secret"]
    on = client.post("/two-step", json={"password": ANA[1], "code": code_at(secret)}, headers=CSRF)
    assert on.status_code == 200 and on.headers["cache-control"] == "no-store"
    return secret, on.json()["recovery_codes"]


def test_a_recovery_code_is_read_whatever_its_case_spaces_and_dashes():
    code = new_recovery_codes()[0]
    assert recovery_hash(SECRET, f" {code.upper().replace('-', ' ')} ") == recovery_hash(SECRET, code)
    assert recovery_hash(SECRET, code.replace("-", "")) == recovery_hash(SECRET, code)
    assert recovery_hash(pyotp.random_base32(32), code) != recovery_hash(SECRET, code)  # keyed with the secret
    assert recovery_hash(SECRET, "123456") is None and recovery_hash(SECRET, code + "a") is None
    assert recovery_hash(SECRET, "") is None


def test_a_recovery_code_logs_in_once_in_place_of_the_apps_code(tmp_path, caplog):
    db = str(tmp_path / "recovery.db")
    AuthStore(db).add_user(*ANA, "viewer")
    with client_of(db, user_limit=2) as here, client_of(db) as lost, caplog.at_level(logging.DEBUG):
        assert log_in(here).status_code == 200
        _, codes = enrolled(here)
        assert len(set(codes)) == 10 and all(RECOVERY_CODE.fullmatch(c) for c in codes)
        assert here.get("/v1/me").json()["recovery_codes_left"] == 10
        assert log_in(lost, f" {codes[0].upper().replace('-', ' ')} ").status_code == 200  # as typed from paper
        assert lost.get("/v1/me").json() | {"two_step": True, "recovery_codes_left": 9} == lost.get("/v1/me").json()
        # once only, and a wrong one: the answer of a wrong code, counted as a failed login
        answers = [log_in(here, codes[0]), log_in(here, "2345-6789")]
        assert {(a.status_code, a.json()["error"]) for a in answers} == {(401, WRONG_LOGIN)}
        assert log_in(here, codes[1]).status_code == 429  # past the user's limit (2), as for codes
        answered = "".join(a.text for a in answers)
    store = AuthStore(db)
    assert store.recovery_left("ana") == 9  # the refused one was not used up
    assert [(e["user"], e["target"]) for e in store.access_log(action="recovery_used")] == [("ana", "ana")]
    assert len(store.access_log(action="login_failed")) == 2
    written = repr(store.access_log(limit=1000)) + caplog.text + answered
    assert not any(code in written or code.replace("-", "") in written for code in codes)


def test_a_new_set_of_recovery_codes_replaces_the_old_and_turning_off_deletes_them(tmp_path):
    db = str(tmp_path / "renew.db")
    AuthStore(db).add_user(*ANA, "viewer")
    with client_of(db) as here:
        assert log_in(here).status_code == 200
        _, old = enrolled(here)

        def renew(password: str, code: str):
            return here.post("/two-step/recovery-codes", json={"password": password, "code": code}, headers=CSRF)

        wrong = renew("not ana's password", old[0])
        assert (wrong.status_code, wrong.json()["error"]) == (403, "wrong password or code")
        made = renew(ANA[1], old[0])  # a recovery code stands in for the app's code here too
        assert made.status_code == 200 and made.headers["cache-control"] == "no-store"
        new = made.json()["recovery_codes"]
        assert len(set(new)) == 10 and not set(new) & set(old)
        assert here.get("/v1/me").json()["recovery_codes_left"] == 10
        assert log_in(client_of(db), old[1]).status_code == 401  # the old set's unused codes no longer work
        assert log_in(client_of(db), new[0]).status_code == 200
        assert here.request("DELETE", "/two-step", json={"password": ANA[1], "code": new[1]},
                            headers=CSRF).status_code == 200
        assert here.get("/v1/me").json()["recovery_codes_left"] is None
        off = renew(ANA[1], "123456")
        assert off.status_code == 409 and "not on" in off.json()["error"]
    store = AuthStore(db)
    with store.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM recovery_codes")).scalar() == 0
    assert [e["target"] for e in store.access_log(action="recovery_renewed")] == ["ana"]
    assert [e["target"] for e in store.access_log(action="totp_failed")] == ["recovery codes"]
    assert len(store.access_log(action="recovery_used")) == 3


def ana_with_recovery_codes(db: str) -> tuple[AuthStore, list[str]]:
    """Ana, a viewer, with two-step login on (SECRET) and a set of recovery codes: the store and the codes."""
    store = AuthStore(db)
    store.add_user(*ANA, "viewer")
    codes = new_recovery_codes()
    assert store.turn_on("ana", SECRET, step=0, recovery=recovery_hashes(SECRET, codes)) == ""
    return store, codes


def test_of_two_renewals_at_once_the_one_whose_check_read_the_old_set_changes_nothing(tmp_path):
    """Two tabs (or the dialog and `users 2fa --recovery-codes`) each made a new set: both answered
    200 with theirs, only the later was stored, and the other tab showed codes that never worked.
    The renewal is now made on the set its check read: here the other tab's lands between this
    one's check and its write."""
    db = str(tmp_path / "two-tabs.db")
    store, old = ana_with_recovery_codes(db)
    with client_of(db) as here, client_of(db) as there:
        assert log_in(here, old[0]).status_code == 200 and log_in(there, old[1]).status_code == 200
        racing = here.app.state.access.store
        checked = racing.check_login
        other: list = []

        def renewed_meanwhile(name: str, password: str):  # this tab's password read, then the other's set is made
            user = checked(name, password)
            other.append(there.post("/two-step/recovery-codes", json={"password": ANA[1], "code": old[2]},
                                    headers=CSRF))
            return user

        racing.check_login = renewed_meanwhile
        refused = here.post("/two-step/recovery-codes", json={"password": ANA[1], "code": code_at(SECRET)},
                            headers=CSRF)
        racing.check_login = checked
        assert other[0].status_code == 200, other[0].text
        assert (refused.status_code, refused.json()["error"]) == (
            409, "a new set of recovery codes was made meanwhile: use that one, or make another")
        kept = other[0].json()["recovery_codes"]
        assert store.recovery_left("ana") == 10 and log_in(client_of(db), kept[0]).status_code == 200
        assert log_in(client_of(db), old[3]).status_code == 401
    assert len(store.access_log(action="recovery_renewed")) == 1
    # The command too: a set made after it read the codes (`seen`) is not replaced.
    with pytest.raises(Conflict, match="made meanwhile"):
        store.renew_recovery("ana", SECRET, recovery_hashes(SECRET, new_recovery_codes()), seen=old)
    assert store.use_recovery(store.user("ana")["id"], recovery_hash(SECRET, kept[1]))


def test_a_recovery_code_whose_set_another_tab_renewed_meanwhile_is_409_not_a_failed_login(tmp_path):
    """A right recovery code whose set another tab replaced between this check's read and its use
    was a failed login (401 or 403, counted, a row) where the renewal itself answers 409. It is
    told apart only once the password and the code were right (nothing for a guesser to learn);
    a code another login used meanwhile is still a wrong code."""
    db = str(tmp_path / "renewed.db")
    store, codes = ana_with_recovery_codes(db)
    with client_of(db) as here, client_of(db) as there:
        assert log_in(there, codes[0]).status_code == 200
        racing = here.app.state.access.store
        checked = racing.check_login

        def meanwhile(request, then):
            """`request()`'s answer, `then()` run once its password and codes were read."""
            def check(name: str, password: str):
                user = checked(name, password)
                then()
                return user
            racing.check_login = check
            try:
                return request()
            finally:
                racing.check_login = checked

        def renewed():  # the other tab's new set, made with a code of the set it replaces
            made = there.post("/two-step/recovery-codes", json={"password": ANA[1], "code": codes[1]}, headers=CSRF)
            assert made.status_code == 200, made.text
            codes[:] = made.json()["recovery_codes"]

        for request in (lambda: log_in(here, codes[2]),
                        lambda: here.post("/two-step/recovery-codes", json={"password": ANA[1], "code": codes[2]},
                                          headers=CSRF),
                        lambda: here.request("DELETE", "/two-step", json={"password": ANA[1], "code": codes[2]},
                                             headers=CSRF)):
            refused = meanwhile(request, renewed)
            assert (refused.status_code, refused.json()["error"]) == (409, RENEWED_MEANWHILE)
            if here.get("/v1/me").status_code != 200:
                assert log_in(here, codes[0]).status_code == 200
                codes.pop(0)
        assert here.get("/v1/me").json()["two_step"] is True
        with store.engine.connect() as connection:  # none of them counted as a failure
            assert connection.execute(text("SELECT count(*) FROM login_failures")).scalar() == 0
        used = meanwhile(lambda: log_in(here, codes[2]), lambda: log_in(client_of(db), codes[2]))
        assert (used.status_code, used.json()["error"]) == (401, WRONG_LOGIN)
    assert store.access_log(action="totp_failed") == []
    assert len(store.access_log(action="login_failed")) == 1


def test_turning_it_off_oneself_ends_the_other_sessions_and_keeps_this_browser(tmp_path):
    """The user's own turning off kept their other sessions (an admin's ended them): a session
    started with the second factor, on a phone since lost, outlived it."""
    db = ana_with_two_step(tmp_path)
    with client_of(db) as here, client_of(db) as other:
        assert log_in(here, code_at(SECRET, -1)).status_code == 200
        assert log_in(other, code_at(SECRET)).status_code == 200
        before = dict(here.cookies)
        off = here.request("DELETE", "/two-step", json={"password": ANA[1], "code": code_at(SECRET, 1)}, headers=CSRF)
        assert off.status_code == 200 and other.get("/v1/me").status_code == 401
        assert dict(here.cookies) != before and here.get("/v1/me").json()["two_step"] is False
        assert "other sessions ended" in off.json()["status"]
        assert AuthStore(db).session_count("ana") == 1


def test_new_secrets_are_bounded_per_user_and_leave_the_login_alone(tmp_path):
    """POST /two-step/secret overwrote the pending secret as often as it was called."""
    from maskwatch.security.access import SECRETS_PER_WINDOW

    db = str(tmp_path / "secrets.db")
    AuthStore(db).add_user(*ANA, "viewer")
    with client_of(db) as here:
        assert log_in(here).status_code == 200
        made = [here.post("/two-step/secret", headers=CSRF) for _ in range(SECRETS_PER_WINDOW + 1)]
        assert [m.status_code for m in made] == [200] * SECRETS_PER_WINDOW + [429]
        assert "too many new secrets" in made[-1].json()["error"] and int(made[-1].headers["retry-after"]) > 0
        assert log_in(client_of(db)).status_code == 200  # logins are counted apart
        last = made[-2].json()["secret"]  # the last one made still confirms
        assert here.post("/two-step", json={"password": ANA[1], "code": code_at(last)}, headers=CSRF).status_code == 200


def one_use_of_a_recovery_code_at_once(url: str) -> None:
    """Four workers sent the same recovery code at once: one of them takes it."""
    store = AuthStore(url)
    store.add_user(*ANA, "admin")
    codes = new_recovery_codes()
    assert store.turn_on("ana", SECRET, step=0, recovery=recovery_hashes(SECRET, codes)) == ""
    user_id = store.user("ana")["id"]
    workers = [AuthStore(url) for _ in range(4)]
    ready = threading.Barrier(len(workers))

    def use(worker: AuthStore) -> bool:
        ready.wait()
        return worker.use_recovery(user_id, recovery_hash(SECRET, codes[0]))

    with ThreadPoolExecutor(len(workers)) as pool:
        assert sorted(pool.map(use, workers)) == [False, False, False, True]
    assert store.recovery_left("ana") == 9
    for worker in [*workers, store]:
        worker.close()


def test_a_recovery_code_sent_to_workers_at_once_is_used_once_sqlite(tmp_path):
    one_use_of_a_recovery_code_at_once(str(tmp_path / "race.db"))


def test_a_recovery_code_sent_to_workers_at_once_is_used_once_postgresql(postgres):  # noqa: F811
    one_use_of_a_recovery_code_at_once(postgres.new_database("recovery_race"))


def password_alone_does_not_outlive_two_step(db: str) -> None:
    """A session from before `users 2fa --on`, and a login whose password was checked (no code
    asked) while it was turned on, were kept: a stolen password's way in stayed open after the
    second factor was added (a guesser looping logins always has one being checked)."""
    AuthStore(db).add_user(*ANA, "admin")
    with client_of(db) as before, client_of(db) as racing:
        assert log_in(before).status_code == 200
        store = racing.app.state.access.store
        checked = store.check_login

        def turned_on_meanwhile(name: str, password: str):  # the password right, then `users 2fa --on` lands
            user = checked(name, password)
            assert AuthStore(db).turn_on("ana", SECRET, step=0) == ""
            return user

        store.check_login = turned_on_meanwhile
        refused = log_in(racing)
        store.check_login = checked
        assert (refused.status_code, refused.json()["error"]) == (401, WRONG_LOGIN)
        assert before.get("/v1/me").status_code == 401 and store.session_count("ana") == 0
        assert log_in(racing, code_at(SECRET)).status_code == 200


def test_nothing_started_with_the_password_alone_outlives_two_step_turned_on_sqlite(tmp_path):
    password_alone_does_not_outlive_two_step(str(tmp_path / "meanwhile.db"))


def test_nothing_started_with_the_password_alone_outlives_two_step_turned_on_postgresql(postgres):  # noqa: F811
    password_alone_does_not_outlive_two_step(postgres.new_database("two_step_meanwhile"))


def test_a_password_change_checked_while_two_step_was_turned_on_is_refused(tmp_path):
    """POST /password whose current password was being checked while two-step login was turned on
    ended every session again (the enrolment's too), started one for itself and changed the
    password: a session the enrolment had ended kept the account, and its owner was locked out."""
    db = str(tmp_path / "changing.db")
    AuthStore(db).add_user(*ANA, "viewer")
    with client_of(db) as stolen:
        assert log_in(stolen).status_code == 200
        store = stolen.app.state.access.store
        checked = store.check_login

        def turned_on_meanwhile(name: str, password: str):
            user = checked(name, password)
            assert AuthStore(db).turn_on("ana", SECRET, step=0) == ""
            return user

        store.check_login = turned_on_meanwhile
        changed = stolen.post("/password", json={"current": ANA[1], "new": "a thief's new password"}, headers=CSRF)
        store.check_login = checked
        assert changed.status_code == 409 and "two-step login was changed" in changed.json()["error"]
        assert stolen.get("/v1/me").status_code == 401 and store.session_count("ana") == 0
        assert log_in(stolen, code_at(SECRET)).status_code == 200  # the password as it was


def test_a_right_password_with_a_wrong_code_is_not_hashed_again(tmp_path):
    """A password hashed under older Argon2 parameters was hashed again at its first right check,
    whatever the code: a guesser holding the password but no code saw it right by the answer's
    extra 150 ms (and the stored hash changed). Now only once the code is right too."""
    from pwdlib.hashers.argon2 import Argon2Hasher

    from maskwatch.security.passwords import needs_rehash

    db = ana_with_two_step(tmp_path)
    older = Argon2Hasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash(ANA[1])
    store = AuthStore(db)
    with store.engine.begin() as connection:
        connection.execute(text("UPDATE users SET password_hash = :hash"), {"hash": older})

    def stored() -> str:
        with store.engine.connect() as connection:
            return connection.execute(text("SELECT password_hash FROM users")).scalar()

    with client_of(db) as client:
        assert log_in(client, "000000" if code_at(SECRET) != "000000" else "111111").status_code == 401
        assert stored() == older
        assert log_in(client, code_at(SECRET)).status_code == 200
    assert stored() != older and not needs_rehash(stored())


@pytest.mark.system  # a command process
def test_users_2fa_on_prints_the_secret_and_stores_it_once_a_code_confirms_it(tmp_path):
    db = str(tmp_path / "cli.db")
    AuthStore(db).add_user(*ANA, "admin")
    from typer.testing import CliRunner

    from maskwatch.cli import app

    def cli(*args: str, stdin: str = ""):
        return CliRunner().invoke(app, ["users", *args, "--database", db], input=stdin)

    before = AuthStore(db)
    checked = before.check_login(*ANA)
    assert before.start_session(checked["id"], checked["password_hash"]) is not None  # a password's session
    typo = cli("2fa", "ana", "--on", stdin="12345\n")
    assert typo.exit_code == 1 and "not the app's code" in typo.output and not AuthStore(db).user("ana")["two_step"]
    # A process of its own: the code is typed after the secret is read from its output.
    command = subprocess.Popen([sys.executable, "-u", "-m", "maskwatch.cli", "users", "2fa", "ana", "--on",
                                "--database", db], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=os.environ | {"PYTHONPATH": "src"})
    uri = command.stdout.readline()
    secret = command.stdout.readline().removeprefix("secret: ").strip()
    assert uri.startswith(f"otpauth://totp/maskwatch:ana?secret={secret}")
    out, err = command.communicate(code_at(secret) + "\n", timeout=60)
    assert command.returncode == 0 and "two-step login on for ana: their sessions ended" in out, err
    codes = RECOVERY_CODE.findall(out)
    assert len(set(codes)) == 10 and AuthStore(db).recovery_left("ana") == 10
    assert before.session_count("ana") == 0  # a session of a stolen password is worth nothing after
    assert "\ttwo-step=on (10 recovery codes left)\t" in cli("list").output  # as the dialog says it
    again = cli("2fa", "ana", "--on")
    assert again.exit_code == 1 and "on already" in again.output
    # The user's own New phone first: --off then --on leaves the account on the password alone between
    assert again.output.index("New phone") < again.output.index("--off"), again.output
    renewed = cli("2fa", "ana", "--recovery-codes")
    new = RECOVERY_CODE.findall(renewed.output)
    assert renewed.exit_code == 0 and len(set(new)) == 10 and not set(new) & set(codes)
    assert "old ones no longer work" in renewed.output
    with client_of(db) as client:
        assert log_in(client, codes[0]).status_code == 401 and log_in(client, new[0]).status_code == 200
        assert "\ttwo-step=on (9 recovery codes left)\t" in cli("list").output
        assert log_in(client).status_code == 401 and log_in(client, code_at(secret, 1)).status_code == 200
        off = cli("2fa", "ana", "--off")  # the way back for a lost phone: its holder's session ends (it was kept)
        assert off.exit_code == 0 and "their sessions ended" in off.output and "two-step=off" in cli("list").output
        assert client.get("/v1/me").status_code == 401 and log_in(client).status_code == 200
    assert cli("2fa", "ana", "--off").exit_code == 1 and cli("2fa", "nobody", "--off").exit_code == 1
    assert AuthStore(db).recovery_left("ana") == 0  # gone with it
    none = cli("2fa", "ana", "--recovery-codes")
    assert none.exit_code == 1 and "not on for ana" in none.output
    both = cli("2fa", "ana", "--on", "--recovery-codes")
    assert both.exit_code == 1 and "one of them" in both.output
    assert [e["target"] for e in AuthStore(db).access_log(action="recovery_renewed")] == ["ana"]
    rows = [e for e in AuthStore(db).access_log(limit=1000) if e["action"].startswith("totp")]
    assert [(e["action"], e["target"], e["client"]) for e in rows] == [("totp_off", "ana", "local"),
                                                                       ("totp_on", "ana", "local")]
    assert all(e["user"].startswith("cli:") for e in rows) and secret not in repr(rows)


def two_step_of_version_3(url: str) -> None:
    """A database from before two-step login (auth schema 3) opens: its users have it off, and it
    can be turned on, with recovery codes (version 5)."""
    store = AuthStore(url)
    store.add_user(*ANA, "admin")
    with store.engine.begin() as connection:  # back to version 3's tables
        for column in ("totp_secret", "totp_pending", "totp_step"):
            connection.execute(text(f"ALTER TABLE users DROP COLUMN {column}"))
        connection.execute(text("DROP TABLE recovery_codes"))
        connection.execute(text("DELETE FROM auth_schema_version WHERE version >= 4"))
    store.close()
    store = AuthStore(url)
    assert store.user("ana")["two_step"] is False and store.check_login(*ANA)["totp_secret"] is None
    codes = new_recovery_codes()
    assert store.turn_on("ana", SECRET, step=5, recovery=recovery_hashes(SECRET, codes)) == ""
    assert store.user("ana")["two_step"] is True and store.recovery_left("ana") == 10
    assert store.use_step(store.user("ana")["id"], 6) and not store.use_step(store.user("ana")["id"], 6)
    store.close()


def version_4_with_two_step(url: str, step: int) -> None:
    """A database as auth schema 4 left it (no recovery codes' table), ana an admin with two-step
    login on, its last code's step `step`."""
    store = AuthStore(url)
    store.add_user(*ANA, "admin")
    assert store.turn_on("ana", SECRET, step=step) == ""
    with store.engine.begin() as connection:  # back to version 4's tables
        connection.execute(text("DROP TABLE recovery_codes"))
        connection.execute(text("DELETE FROM auth_schema_version WHERE version >= 5"))
    store.close()


def recovery_codes_of_version_4(url: str) -> None:
    """A database from before recovery codes (auth schema 4) opens: a user with two-step login on
    has none left (the dialog says so) until they make a set, which then works once each."""
    version_4_with_two_step(url, step=5)
    store = AuthStore(url)
    assert store.user("ana")["two_step"] is True and store.recovery_left("ana") == 0
    codes = new_recovery_codes()
    store.renew_recovery("ana", SECRET, recovery_hashes(SECRET, codes), seen=[])
    ana = store.user("ana")["id"]
    assert store.use_recovery(ana, recovery_hash(SECRET, codes[0])) and not store.use_recovery(
        ana, recovery_hash(SECRET, codes[0]))
    assert store.recovery_left("ana") == 9
    with pytest.raises(Conflict, match="turned off or on again"):
        store.renew_recovery("ana", "another secret", [], seen=store.two_step("ana")["recovery"])
    store.close()


def test_a_version_3_database_migrates_sqlite(tmp_path):
    two_step_of_version_3(str(tmp_path / "v3.db"))


def test_a_version_3_database_migrates_postgresql(postgres):  # noqa: F811
    two_step_of_version_3(postgres.new_database("two_step_v3"))


def test_a_version_4_database_migrates_sqlite(tmp_path):
    recovery_codes_of_version_4(str(tmp_path / "v4.db"))


def test_a_version_4_database_migrates_postgresql(postgres):  # noqa: F811
    recovery_codes_of_version_4(postgres.new_database("two_step_v4"))


def test_the_dashboard_turns_it_on_and_the_login_page_takes_the_code(tmp_path, page):  # noqa: F811
    """In Chromium under the page's real CSP (the QR code is a data: image), on a phone's width."""
    db = tmp_path / "users.db"
    AuthStore(str(db)).add_user(*ANA, "viewer")

    with serving_ana(db, tmp_path) as base:
        phone = watched(page.context.browser.new_page(viewport={"width": 360, "height": 740}))
        try:
            log_in_page(phone, base, ANA)
            # nothing for the server to hash again
            assert on_users(db, "SELECT password_hash FROM users") == served_hash()
            until(lambda: phone.is_visible("#two-step-open"))
            phone.click("#two-step-open")
            assert phone.is_visible("#two-step-begin") and phone.is_hidden("#two-step-password")
            phone.click("#two-step-begin")
            secret = until(lambda: phone.inner_text("#two-step-secret"))
            assert phone.get_attribute("#two-step-uri", "href").startswith("otpauth://totp/maskwatch:ana?")
            assert until(lambda: phone.evaluate("document.getElementById('two-step-qr').naturalWidth")) > 0
            assert phone.evaluate("document.documentElement.scrollWidth") <= 360  # no sideways scroll
            phone.fill("#two-step-password", ANA[1])
            phone.fill("#two-step-code", code_at(secret))
            phone.click("#two-step-submit")
            assert until(lambda: phone.inner_text("#two-step-status").startswith("Two-step login is on"))
            assert phone.inner_text("#two-step-secret") == "" and phone.input_value("#two-step-password") == ""
            codes = phone.input_value("#two-step-codes").split("\n")  # shown this once, to copy or print
            assert len(set(codes)) == 10 and all(RECOVERY_CODE.fullmatch(c) for c in codes)
            assert "10 recovery codes left" in phone.inner_text("#two-step-state") and phone.is_hidden("#two-step-few")
            assert phone.evaluate("document.documentElement.scrollWidth") <= 360
            # Every other session ended: the browser's cookie is the new session's. (No poll runs here
            # to show it: under `serve` the page's cameras loop ends at its 404, /v1/me's once read.)
            assert phone.evaluate(ME_STATUS) == 200
            assert "/login" not in phone.url and phone.inner_text("#two-step-submit") == "Turn off"
            phone.keyboard.press("Escape")
            # Change password asks for the code now: its field followed the page's first /v1/me
            # only, and POST /password refused her for a code the dialog had no field for
            phone.click("#password-open")
            assert phone.is_visible("#password-code")
            phone.keyboard.press("Escape")
            phone.click("#logout")
            phone.wait_for_url(base + "/login", timeout=10_000)
            phone.fill("#username", ANA[0])
            phone.fill("#password", ANA[1])
            phone.click("button[type=submit]")
            assert until(lambda: phone.inner_text("#error")) == WRONG_LOGIN
            phone.fill("#code", code_at(secret, 1))
            phone.click("button[type=submit]")
            phone.wait_for_url(base + "/", timeout=10_000)
            # Down to two recovery codes: the button says so; a new set made with one of them.
            store = AuthStore(str(db))
            for code in codes[2:]:
                assert store.use_recovery(store.user("ana")["id"], recovery_hash(secret, code))
            phone.reload()
            assert until(lambda: phone.inner_text("#two-step-open") == "Two-step login (2 recovery codes left)")
            phone.click("#two-step-open")
            assert "Only 2 recovery codes left" in phone.inner_text("#two-step-few")
            phone.fill("#two-step-password", ANA[1])
            phone.fill("#two-step-code", codes[0])
            phone.click("#two-step-renew")
            assert until(lambda: phone.inner_text("#two-step-status").startswith("New recovery codes made"))
            new = phone.input_value("#two-step-codes").split("\n")
            assert len(set(new)) == 10 and not set(new) & set(codes) and phone.is_hidden("#two-step-few")
            assert phone.inner_text("#two-step-open") == "Two-step login" and store.recovery_left("ana") == 10
            phone.keyboard.press("Escape")
            assert until(lambda: phone.evaluate("document.getElementById('two-step-codes').value === ''"))  # on close
        finally:
            phone.close()


def test_a_site_that_requires_two_step_of_admins_answers_them_nothing_else_until_it_is_on(tmp_path):
    """server.require_two_step: an admin without it logs in, and gets only the page, who they are,
    the two-step routes and logout; a viewer is not covered by `admins`, and everyone by `all`."""
    db = str(tmp_path / "required.db")
    store = AuthStore(db)
    store.add_user(*ANA, "admin")
    store.add_user("bob", "bob's first password", "viewer")
    token = store.add_token("scripts", "full")
    with client_of(db, require_two_step="admins") as admin, client_of(db, require_two_step="admins") as viewer:
        assert log_in(admin).status_code == 200
        refused = admin.get("/v1/users")
        assert (refused.status_code, refused.json()["error"]) == (403, TWO_STEP_REQUIRED)
        assert admin.get("/v1/classes").status_code == 403 and admin.get("/v1/privacy").status_code == 403
        me = admin.get("/v1/me").json()
        assert me["two_step_required"] is True and me["two_step"] is False
        assert admin.get("/").status_code == 200 and admin.get("/static/two-step.js").status_code == 200
        _, codes = enrolled(admin)  # POST /two-step/secret and POST /two-step are answered
        assert admin.get("/v1/users").status_code == 200 and admin.get("/v1/me").json()["two_step_required"] is False
        assert viewer.post("/login", json={"username": "bob", "password": "bob's first password"},
                           headers=CSRF).status_code == 200
        assert viewer.get("/v1/classes").status_code == 200 and viewer.get("/v1/me").json()["two_step_required"] is False
        assert admin.get("/v1/classes", headers={"Authorization": f"Bearer {token}"}).status_code == 200  # no login
        assert admin.post("/logout", headers=CSRF).status_code == 200
    with client_of(db, require_two_step="all") as viewer:
        assert viewer.post("/login", json={"username": "bob", "password": "bob's first password"},
                           headers=CSRF).status_code == 200
        assert viewer.get("/v1/classes").status_code == 403 and viewer.post("/logout", headers=CSRF).status_code == 200


def test_a_user_the_site_requires_two_step_of_cannot_turn_their_own_off_but_an_admin_can(tmp_path):
    """Under server.require_two_step a covered user turned their own two-step login off, leaving
    their account the password alone until they set it up again. Refused, before the password is
    checked (no failed login); another admin's turning it off (a lost phone) stays allowed."""
    db = ana_with_two_step(tmp_path)  # an admin
    store = AuthStore(db)
    store.add_user("bob", "bob's first password", "admin")
    bobs = pyotp.random_base32(32)
    assert store.turn_on("bob", bobs, step=0) == ""
    body = {"password": ANA[1], "code": code_at(SECRET)}
    with client_of(db, require_two_step="admins") as ana:
        assert log_in(ana, code_at(SECRET, -1)).status_code == 200
        me = ana.get("/v1/me").json()
        assert (me["two_step_kept"], me["two_step_required"]) == (True, False)
        refused = ana.request("DELETE", "/two-step", json=body, headers=CSRF)
        assert refused.status_code == 403 and refused.json()["error"].startswith(
            "this site requires two-step login of admins (server.require_two_step: admins): you cannot turn it off; "
            "for a new phone, use New phone under Two-step login (POST /two-step/replace)"), refused.text
        assert store.two_step("ana")["secret"] == SECRET and ana.get("/v1/users").status_code == 200
        assert store.access_log(action="totp_failed") == [] and store.access_log(action="totp_off") == []
    with client_of(db, require_two_step="all") as ana:
        assert log_in(ana, code_at(SECRET)).status_code == 200
        assert "of every user (server.require_two_step: all)" in ana.request(
            "DELETE", "/two-step", json=body, headers=CSRF).json()["error"]
    with client_of(db) as ana:  # no rule: hers to turn off, the password and code checked
        assert log_in(ana, code_at(SECRET, 1)).status_code == 200
        assert ana.get("/v1/me").json()["two_step_kept"] is False
        wrong = ana.request("DELETE", "/two-step", json=body | {"code": new_recovery_codes()[0]}, headers=CSRF)
        assert wrong.status_code == 403 and wrong.json()["error"] == "wrong password or code"
    with client_of(db, require_two_step="admins") as bob:  # another admin: ana sets it up again at her next login
        assert bob.post("/login", json={"username": "bob", "password": "bob's first password", "code": code_at(bobs)},
                        headers=CSRF).status_code == 200
        assert bob.get("/v1/users").json()["two_step_kept"] == ["ana", "bob"]  # the Users dialog's question says so
        reset = bob.request("DELETE", "/v1/users/ana/two-step", json={"admin_password": "bob's first password"},
                            headers=CSRF)
        assert reset.status_code == 200, reset.text
        assert reset.json()["status"] == (  # not "their password alone logs in"
            "two-step login off for ana: their sessions ended; the site requires two-step login of admins "
            "(server.require_two_step: admins): at their next login they set it up again before anything else "
            "(whoever logs in first with their password sets up their phone)")
    assert store.two_step("ana")["secret"] is None
    store.close()


@pytest.mark.parametrize("rule, role, said", [
    ("admins", "admin", "the site requires two-step login of admins (server.require_two_step: admins): at their "
                        "next login they set it up again before anything else"),
    ("all", "viewer", "the site requires two-step login of every user (server.require_two_step: all)"),
    ("admins", "viewer", "their sessions ended; their password alone logs in"),
    (None, "admin", "their password alone logs in, unless the site's server.require_two_step covers them"),
])
def test_users_2fa_off_says_what_the_sites_rule_leaves_the_user_to_do(tmp_path, rule, role, said):
    """`users 2fa NAME --off` said "their password alone logs in" of a user whom the site's
    server.require_two_step covers, who can do nothing but set it up again: --config reads the
    rule; without it (--database) the rule is not known, and said so."""
    from typer.testing import CliRunner

    from maskwatch.cli import app

    db = tmp_path / "site.db"
    store = AuthStore(str(db))
    store.add_user("ana", ANA[1], role)
    assert store.turn_on("ana", SECRET, step=0) == ""
    tokens_said = "; 1 API token of theirs still works (ana-script): a token has no login"
    if role == "admin":  # a token has no login: it keeps working, and the answer says so
        store.add_token("ana-script", "full", owner="ana")
    store.close()
    site = tmp_path / "site.yaml"
    site.write_text(f"cameras:\n  a: {{source: clip.mp4}}\nstorage: {{database: {db}}}\n"
                    + (f"server: {{require_two_step: {rule}}}\n" if rule else ""))
    where = ["--config", str(site)] if rule else ["--database", str(db)]
    off = CliRunner().invoke(app, ["users", "2fa", "ana", "--off", *where])
    assert off.exit_code == 0 and said in off.output, off.output
    assert (tokens_said in off.output) == (role == "admin"), off.output
    assert AuthStore(str(db)).two_step("ana")["secret"] is None
    site.write_text(f"cameras:\n  a: {{source: clip.mp4}}\nstorage: {{database: {db}}}\nserver: {{require_two_step: admin}}\n")
    typo = CliRunner().invoke(app, ["users", "list", "--config", str(site)])
    assert typo.exit_code == 1 and "field 'server.require_two_step': Input should be 'none', 'admins' or 'all'" in typo.output


def test_require_two_step_takes_none_admins_or_all_and_names_a_bad_value(tmp_path):
    from maskwatch.site.config import SiteConfigError, load_site_config

    (tmp_path / "clip.mp4").write_bytes(b"")
    path = tmp_path / "site.yaml"
    path.write_text("cameras:\n  a: {source: clip.mp4}\n")
    assert load_site_config(path).server.require_two_step == "none"
    path.write_text("server: {require_two_step: admins}\ncameras:\n  a: {source: clip.mp4}\n")
    assert load_site_config(path).server.require_two_step == "admins"
    path.write_text("server: {require_two_step: yes}\ncameras:\n  a: {source: clip.mp4}\n")
    with pytest.raises(SiteConfigError) as err:
        load_site_config(path)
    assert any("require_two_step" in line and "'none', 'admins' or 'all'" in line for line in err.value.problems), \
        err.value.problems


@contextmanager
def site_requiring_two_step(tmp_path, sample_dir, rule: str):
    """`maskwatch run` of a one-camera site whose server.require_two_step is `rule`, its users in
    tmp_path/site.db (add them first); its address, once it answers."""
    from tests.rtsp import reserved_port
    from tests.test_detection import make_video

    make_video(tmp_path / "door.mp4", sample_dir, frames=3)
    # Held until the site has ended: on a free_port(), the other xdist worker's server could take it first.
    with reserved_port() as port, open(tmp_path / "run.log", "w+") as log:
        (tmp_path / "site.yaml").write_text(
            "cameras: {door: {source: door.mp4}}\nstorage: {database: site.db, snapshots: snapshots}\n"
            f"server: {{host: 127.0.0.1, port: {port}, require_two_step: {rule}}}\n")
        base = f"http://127.0.0.1:{port}"
        site = subprocess.Popen([sys.executable, "-m", "maskwatch.cli", "run", "--config", str(tmp_path / "site.yaml")],
                                stdout=log, stderr=subprocess.STDOUT, env=os.environ | {"PYTHONUNBUFFERED": "1"})

        def healthy() -> bool:
            try:
                return httpx.get(base + "/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        try:
            if not until(lambda: site.poll() is not None or healthy(), 60) or not healthy():
                log.seek(0)
                pytest.fail(f"maskwatch run did not start:\n{log.read()}")
            yield base
        finally:
            site.terminate()
            site.wait(timeout=30)


def test_the_dashboard_opens_the_dialog_by_itself_where_the_site_requires_two_step(tmp_path, page, sample_dir):  # noqa: F811
    """`maskwatch run` with server.require_two_step: all: the admin's page, every read refused,
    opens the two-step dialog at once; once it is on and the dialog closed, the page reloads and reads."""
    AuthStore(str(tmp_path / "site.db")).add_user(*ANA, "admin")
    hashed_as_served(tmp_path / "site.db")
    with site_requiring_two_step(tmp_path, sample_dir, "all") as base:
        phone = watched(page.context.browser.new_page(viewport={"width": 360, "height": 740}))
        try:
            log_in_page(phone, base, ANA)
            phone.wait_for_selector("#two-step-dialog[open]", timeout=20_000)
            assert "requires two-step login of your account" in phone.inner_text("#two-step-state")
            phone.click("#two-step-begin")
            secret = until(lambda: phone.inner_text("#two-step-secret"))
            phone.fill("#two-step-password", ANA[1])
            phone.fill("#two-step-code", code_at(secret))
            phone.click("#two-step-submit")
            assert until(lambda: phone.inner_text("#two-step-status").startswith("Two-step login is on"))
            with phone.expect_navigation(timeout=20_000):  # the page again, its reads answered now
                phone.click("#two-step-close")
            phone.wait_for_selector("#two-step-open:not([hidden])", timeout=20_000)
            assert not phone.is_visible("#two-step-dialog")
            assert phone.evaluate("fetch('/v1/me').then((r) => r.json())")["two_step_required"] is False
            phone.click("#two-step-open")  # on now, and kept so: no "Turn off" (the server refuses it)
            assert "This site requires it of your account: it stays on." in phone.inner_text("#two-step-state")
            assert phone.is_hidden("#two-step-submit") and phone.is_visible("#two-step-renew")
            # Enter in a field submitted the form by its hidden first button: a DELETE the server refused
            sent = []
            phone.on("request", lambda request: sent.append(request.method) if request.url.endswith("/two-step") else None)
            phone.fill("#two-step-password", ANA[1])
            phone.fill("#two-step-code", code_at(secret))
            phone.press("#two-step-password", "Enter")
            phone.wait_for_timeout(500)  # what must not happen: nothing to wait on
            assert sent == [] and phone.inner_text("#two-step-error") == ""
        finally:
            phone.close()


def test_a_refused_body_of_any_route_does_not_say_a_password_or_code_back(tmp_path):
    """The 422 of POST /two-step/recovery-codes echoed the password and the code as sent (a
    recovery code pasted with a space too many, a password over 1000 characters), and that of
    DELETE /v1/users/NAME/two-step the admin's password, where /two-step's said neither: every
    route taking JSON is tried, so that a new one is too."""
    db = ana_with_two_step(tmp_path)  # an admin
    code = new_recovery_codes()[0]
    long_code, long_password = f"{code} {code}", "p" * 1001
    bodies = ({"password": long_password, "admin_password": long_password, "current": long_password},
              {"password": "short enough", "code": long_code, "admin_password": 1, "more": code},
              [long_password, code])
    with client_of(db) as client:
        assert log_in(client, code_at(SECRET)).status_code == 200
        answered = []
        for path, operations in client.app.openapi()["paths"].items():
            for method, operation in operations.items():
                if "application/json" not in operation.get("requestBody", {}).get("content", {}):
                    continue
                for body in bodies:
                    refused = client.request(method, path.replace("{user_name}", "ana"), json=body, headers=CSRF)
                    assert refused.status_code == 422, (method, path, refused.status_code)
                    answered.append(refused.text)
    said = "".join(answered)
    assert long_password not in said and code not in said and code.replace("-", "") not in said


def every_route(routes) -> list:
    """The app's routes, those of included routers too (FastAPI 0.165 keeps an included router as
    one entry)."""
    found = []
    for route in routes:
        if hasattr(route, "effective_candidates"):
            found += every_route(route.effective_candidates())
        else:
            found.append(route)
    return found


def test_require_two_step_answers_a_user_without_it_nothing_on_any_route_however_asked(tmp_path):
    """Every route of `run`'s app (events, snapshots, frames, metrics, report.csv, zones, users,
    /openapi.json, /docs), with every method, HEAD, a trailing slash and a percent-encoded path,
    answers a covered admin without two-step login 403, but the page, /v1/me, /two-step* and /logout."""
    from maskwatch.security.access import TWO_STEP_SETUP
    from tests.conftest import ADMIN
    from tests.test_site_history import make_site

    site, detector = make_site(tmp_path, users=True)
    app = create_app(detector, ServeSettings(auth=AuthSettings(database=site.config.storage.database,
                                                               open_without_users=False, require_two_step="all")),
                     site=site)
    fill = {"camera_id": "door", "name": "old-1.jpg"}
    try:
        client = TestClient(app)  # no lifespan: no camera started
        assert client.post("/login", json=dict(zip(("username", "password"), ADMIN)), headers=CSRF).status_code == 200
        answered = {}
        for route in every_route(app.routes):
            if route.path in TWO_STEP_SETUP or getattr(route, "openapi_extra", None) == {"x-maskwatch-access": "public"}:
                continue
            path = re.sub(r"\{(\w+)(:\w+)?\}", lambda m: fill.get(m[1], "x"), route.path)
            encoded = path.replace("v", "%76", 1) if "v" in path else path
            for method in route.methods | {"HEAD"} if "GET" in route.methods else route.methods:
                for asked in {path, encoded, path + "/"}:
                    refused = client.request(method, asked, headers=CSRF, json={}, follow_redirects=True)
                    said = refused.json()["error"] if method != "HEAD" else TWO_STEP_REQUIRED
                    answered[(method, asked)] = (refused.status_code, said)
        assert answered and set(answered.values()) == {(403, TWO_STEP_REQUIRED)}, answered
        assert {"/v1/events", "/v1/events.csv", "/metrics", "/openapi.json", "/v1/users"} <= {p for _, p in answered}
        assert client.get("/v1/me").json()["two_step_required"] is True
    finally:
        site.stop()


def test_a_covered_user_whose_two_step_an_admin_turned_off_is_answered_nothing_else(tmp_path):
    """Logged in with the code, then two-step login turned off for them (their own turning off is
    refused: above): that session ends, and the next, with the password alone, is one of a user without it."""
    db = ana_with_two_step(tmp_path)
    with client_of(db, require_two_step="all") as client:
        assert log_in(client, code_at(SECRET)).status_code == 200 and client.get("/v1/classes").status_code == 200
        AuthStore(db).turn_off_for("ana")  # as `users 2fa ana --off` or the Users dialog
        assert client.get("/v1/classes").status_code == 401
        assert log_in(client).status_code == 200
        refused = client.get("/v1/classes")
        assert (refused.status_code, refused.json()["error"]) == (403, TWO_STEP_REQUIRED)
        assert client.get("/v1/me").json()["two_step_required"] is True


def test_a_version_4_database_keeps_its_logins_and_the_dashboard_says_no_codes_are_left(tmp_path, page):  # noqa: F811
    """`serve` on a database from before recovery codes: the user with two-step login logs in with
    the app's code, the page says no recovery codes are left, and a set made there logs in, none of
    it said in the server's output."""
    db = str(tmp_path / "v4.db")
    version_4_with_two_step(db, step=0)

    def log_in_with(phone, base: str, code: str) -> None:
        phone.goto(base + "/login")
        phone.fill("#username", ANA[0])
        phone.fill("#password", ANA[1])
        phone.fill("#code", code)
        phone.click("button[type=submit]")
        phone.wait_for_url(base + "/", timeout=20_000)

    with serving_ana(db, tmp_path) as base:
        phone = watched(page.context.browser.new_page(viewport={"width": 360, "height": 740}))
        try:
            log_in_with(phone, base, code_at(SECRET))
            assert until(lambda: phone.inner_text("#two-step-open") == "Two-step login (no recovery codes left)", 20)
            phone.click("#two-step-open")
            assert "No recovery codes left." in phone.inner_text("#two-step-state")
            assert phone.inner_text("#two-step-few").startswith("No recovery codes left: make a new set")
            phone.fill("#two-step-password", ANA[1])
            phone.fill("#two-step-code", code_at(SECRET, 1))
            phone.click("#two-step-renew")
            assert until(lambda: phone.inner_text("#two-step-status").startswith("New recovery codes made"))
            codes = phone.input_value("#two-step-codes").split("\n")
            assert len(set(codes)) == 10 and all(RECOVERY_CODE.fullmatch(c) for c in codes)
            phone.keyboard.press("Escape")
            phone.click("#logout")
            phone.wait_for_url(base + "/login", timeout=10_000)
            log_in_with(phone, base, codes[0])
            assert until(lambda: phone.inner_text("#two-step-open") == "Two-step login")
        finally:
            phone.close()
    output = (tmp_path / "serve.log").read_text()
    assert "login failed" not in output  # each login went through the first time
    assert not any(code in output or code.replace("-", "") in output for code in codes)


def test_a_wrong_recovery_code_costs_a_right_password_no_more_than_a_wrong_one(tmp_path):
    """A right password with a wrong recovery code (any 8 signs of its alphabet) ran a DELETE in a
    write transaction that a wrong password never ran: the answer's time (a wait for the database's
    writer, on a site whose cameras write to it) told a guesser the password was right. Now each
    login runs the same statements, whichever was wrong and whichever kind of code was sent."""
    from sqlalchemy import event

    db = ana_with_two_step(tmp_path)
    with client_of(db, user_limit=10) as client:
        store = client.app.state.access.store
        store.renew_recovery("ana", SECRET, recovery_hashes(SECRET, new_recovery_codes()), seen=[])
        assert log_in(client, "2345-6789", password="warm-up").status_code == 401  # the hourly sweep done
        ran: list[str] = []
        event.listen(store.engine, "before_cursor_execute",
                     lambda connection, cursor, statement, *_: ran.append(" ".join(statement.split())))
        statements = {}
        for password in (ANA[1], "not ana's password"):
            for code in ("2345-6789", "000000" if code_at(SECRET) != "000000" else "111111"):
                ran.clear()
                assert log_in(client, code, password=password).status_code == 401
                statements[(password, code)] = list(ran)
    assert len({tuple(s) for s in statements.values()}) == 1, statements
    assert store.recovery_left("ana") == 10


def test_a_recovery_code_is_good_once_across_routes_and_not_after_two_step_is_turned_off_and_on(tmp_path):
    """A code used to make a new set is not taken again at the login; one of a set made before
    two-step login was turned off and on again logs in nowhere, though it was never used."""
    db = str(tmp_path / "again.db")
    AuthStore(db).add_user(*ANA, "viewer")
    with client_of(db, user_limit=10) as here:
        assert log_in(here).status_code == 200
        secret, first = enrolled(here)
        made = here.post("/two-step/recovery-codes", json={"password": ANA[1], "code": first[0]}, headers=CSRF)
        assert made.status_code == 200 and log_in(client_of(db), first[0]).status_code == 401
        second = made.json()["recovery_codes"]
        assert here.request("DELETE", "/two-step", json={"password": ANA[1], "code": code_at(secret, 1)},
                            headers=CSRF).status_code == 200
        _, third = enrolled(here)
        for code in (*first[1:3], *second[:2]):
            assert log_in(client_of(db), code).status_code == 401
        assert log_in(client_of(db), third[0]).status_code == 200


@contextmanager
def two_step_dialog_on_a_phone(page, base: str, init_script: str | None = None):  # noqa: F811
    """A 360 px phone page logged in as ana with her app's code, the two-step dialog open; closed after."""
    phone = watched(page.context.browser.new_page(viewport={"width": 360, "height": 740}))
    if init_script is not None:
        phone.add_init_script(init_script)
    try:
        phone.goto(base + "/login")
        for field, value in (("#username", ANA[0]), ("#password", ANA[1]), ("#code", code_at(SECRET))):
            phone.fill(field, value)
        phone.click("button[type=submit]")
        phone.wait_for_url(base + "/", timeout=20_000)
        until(lambda: phone.is_visible("#two-step-open"))
        phone.click("#two-step-open")
        yield phone
    finally:
        phone.close()


def test_a_double_click_in_the_dialog_sends_one_request(tmp_path, page):  # noqa: F811
    """"New recovery codes" (and "Turn off", "Set up") clicked twice sent two requests: the second,
    with the code the first had used, was a failed login, and its "Not changed: wrong password or
    code" stood under the new codes, which then looked not made."""
    db = str(tmp_path / "double.db")
    store, old = ana_with_recovery_codes(db)
    with serving_ana(db, tmp_path) as base:
        with two_step_dialog_on_a_phone(page, base) as phone:
            sent, ended = [], []  # the renewals asked, and those answered or failed
            renewal = "/two-step/recovery-codes"
            phone.on("request", lambda r: sent.append(r) if r.url.endswith(renewal) else None)
            for done in ("requestfinished", "requestfailed"):
                phone.on(done, lambda r: ended.append(r) if r.url.endswith(renewal) else None)
            phone.fill("#two-step-password", ANA[1])
            phone.fill("#two-step-code", old[0])
            phone.dblclick("#two-step-renew")
            assert until(lambda: phone.inner_text("#two-step-status").startswith("New recovery codes made"))
            # both clicks' handlers ran before the first answer came: a second request was sent by now
            assert until(lambda: len(ended) == len(sent)) and len(sent) == 1, [r.url for r in sent]
            assert phone.inner_text("#two-step-error") == ""
            shown = phone.input_value("#two-step-codes").split("\n")
    assert store.access_log(action="totp_failed") == [] and store.recovery_left("ana") == 10
    assert store.use_recovery(store.user("ana")["id"], recovery_hash(SECRET, shown[0]))  # the set shown is the one kept


def test_the_new_secrets_key_is_no_user_name_and_its_limit_locks_no_login(tmp_path):
    """The limit's rows are keyed `secret:NAME` beside the logins' `user:NAME` and `client:ADDRESS`:
    no user can be named so (no ':'), and a user at the limit still logs in, as others do."""
    from maskwatch.security.access import SECRETS_PER_WINDOW
    from maskwatch.security.user_rules import name_problem

    assert name_problem("secret:ana", "user") is not None and name_problem("user:ana", "user") is not None
    db = str(tmp_path / "keys.db")
    store = AuthStore(db)
    store.add_user(*ANA, "viewer")
    store.add_user("bob", "bob's first password", "viewer")
    with client_of(db) as here:
        assert log_in(here).status_code == 200
        assert [here.post("/two-step/secret", headers=CSRF).status_code
                for _ in range(SECRETS_PER_WINDOW + 1)][-1] == 429
        for name, password in (ANA, ("bob", "bob's first password")):
            assert client_of(db).post("/login", json={"username": name, "password": password},
                                      headers=CSRF).status_code == 200
    with store.engine.connect() as connection:
        keys = set(connection.execute(text("SELECT key FROM login_failures")).scalars())
    assert keys == {"secret:ana"}


def test_a_wrong_recovery_code_to_turn_off_or_renew_is_a_wrong_code_counted_as_a_failed_login(tmp_path):
    """DELETE /two-step and POST /two-step/recovery-codes: a wrong recovery code is answered and
    counted as a wrong app's code is; past the user's limit, even a right one is refused."""
    db = ana_with_two_step(tmp_path)
    with client_of(db, user_limit=4) as client:
        assert log_in(client, code_at(SECRET)).status_code == 200
        wrong_totp = "000000" if code_at(SECRET, 1) != "000000" else "111111"
        answers = [client.request(method, path, json={"password": ANA[1], "code": code}, headers=CSRF)
                   for method, path in (("DELETE", "/two-step"), ("POST", "/two-step/recovery-codes"))
                   for code in ("2345-6789", wrong_totp)]
        assert {(a.status_code, a.json()["error"]) for a in answers} == {(403, "wrong password or code")}
        limited = client.request("DELETE", "/two-step", json={"password": ANA[1], "code": code_at(SECRET, 1)},
                                 headers=CSRF)
        assert limited.status_code == 429
    assert [e["target"] for e in AuthStore(db).access_log(action="totp_failed")] == \
        ["recovery codes", "recovery codes", "off", "off"]  # newest first



# Wraps window.open so that the print() of a window the page opens is recorded (its title, the
# printed page's header, and its text) before the browser's own print runs.
RECORD_PRINTS = """window.printed = [];
const openWindow = window.open;
window.open = function (...args) {
  const sheet = openWindow.apply(this, args);
  if (sheet) {
    const print = sheet.print.bind(sheet);
    sheet.print = () => {
      window.printed.push({title: sheet.document.title, text: sheet.document.body.innerText});
      print();
    };
  }
  return sheet;
};"""


def test_print_gives_the_printer_the_codes_alone_titled_and_its_window_goes_with_them(tmp_path, page):  # noqa: F811
    """The recovery codes dialog's Print: its window was untitled (the printed page's header said
    "about:blank", nor which site the codes are for) and stayed open with the codes after printing
    and after the dialog, which drops them, had closed."""
    db = str(tmp_path / "print.db")
    store, old = ana_with_recovery_codes(db)
    with serving_ana(db, tmp_path) as base:
        with two_step_dialog_on_a_phone(page, base, RECORD_PRINTS) as phone:
            phone.fill("#two-step-password", ANA[1])
            phone.fill("#two-step-code", old[0])
            phone.click("#two-step-renew")
            assert until(lambda: phone.inner_text("#two-step-status").startswith("New recovery codes made"))
            codes = phone.input_value("#two-step-codes")
            whose = f"maskwatch recovery codes of ana at {base}"
            with phone.expect_popup() as opened:
                phone.click("#two-step-print")
            sheet = opened.value
            assert phone.evaluate("window.printed") == [{"title": whose, "text": f"{whose}\n\n{codes}"}]
            sheet.emulate_media(media="print")  # what the printer gets: the codes and whose they are, nothing else
            assert sheet.inner_text("body") == f"{whose}\n\n{codes}" and len(codes.split("\n")) == 10
            # headless Chromium's print() shows no dialog: its end, afterprint, is sent as a browser does
            sheet.evaluate("dispatchEvent(new Event('afterprint'))")
            assert until(lambda: phone.evaluate("true") and sheet.is_closed())  # (a call lets Playwright hear it)
            with phone.expect_popup() as opened:
                phone.click("#two-step-print")
            assert not opened.value.is_closed()
            phone.keyboard.press("Escape")  # the dialog closed: the codes dropped, their window too
            assert until(lambda: phone.evaluate("true") and opened.value.is_closed())
            assert phone.evaluate("document.getElementById('two-step-codes').value") == ""


def new_phone(client: TestClient, code: str, new_code: str, password: str = ANA[1]):
    return client.post("/two-step/replace", json={"password": password, "code": code, "new_code": new_code},
                       headers=CSRF)


def test_a_new_phone_takes_the_old_ones_place_in_one_step(tmp_path):
    """Moving two-step login to a new phone took turning it off (the account on the password
    alone meanwhile) and on again. Now one request, with the password, the current phone's code
    and the new one's: until then the old phone logs in; after, only the new one, with new
    recovery codes; a wrong current code is a failed login, and a code used once stays used."""
    db = ana_with_two_step(tmp_path)
    store = AuthStore(db)
    with client_of(db) as here, client_of(db) as other:
        assert log_in(here, code_at(SECRET, -1)).status_code == 200
        assert new_phone(here, code_at(SECRET, 1), "123456").status_code == 409  # no new secret made yet
        made = here.post("/two-step/secret", headers=CSRF)  # on: 409 before
        assert made.status_code == 200 and made.headers["cache-control"] == "no-store"
        new = made.json()["secret"]
        assert store.two_step("ana")["secret"] == SECRET  # the old phone works until the new one is confirmed
        assert log_in(other, code_at(SECRET)).status_code == 200
        typo = new_phone(here, code_at(SECRET, 1), code_at(SECRET, 1))  # the old app's code as the new one's
        assert typo.status_code == 400 and "not the new app's code" in typo.json()["error"]
        assert store.access_log(action="totp_failed") == []  # a typo, not a guess: not counted
        wrong = new_phone(here, "000000" if code_at(SECRET) != "000000" else "111111", code_at(new))
        assert (wrong.status_code, wrong.json()["error"]) == (403, "wrong password or code")
        assert new_phone(here, code_at(SECRET), code_at(new), "not ana's password").status_code == 403
        replayed = new_phone(here, code_at(SECRET), code_at(new))  # used by the login above
        assert replayed.status_code == 403 and store.two_step("ana")["secret"] == SECRET
        before = dict(here.cookies)
        confirming = code_at(new)
        moved = new_phone(here, code_at(SECRET, 1), confirming)
        assert moved.status_code == 200, moved.text
        codes = moved.json()["recovery_codes"]
        assert len(set(codes)) == 10 and all(RECOVERY_CODE.fullmatch(c) for c in codes)
        assert dict(here.cookies) != before and here.get("/v1/me").json()["recovery_codes_left"] == 10
        assert other.get("/v1/me").status_code == 401  # the other sessions ended, as turning it on does
        assert (store.two_step("ana")["secret"], store.two_step("ana")["pending"]) == (new, None)
        assert log_in(client_of(db), code_at(SECRET)).status_code == 401  # the old phone no longer logs in
        # The code that confirmed it, not the one of now: a step ended since (a loaded machine) gave a fresh one.
        assert log_in(client_of(db), confirming).status_code == 401  # the new code was used to confirm it
        assert log_in(client_of(db), codes[0]).status_code == 200
        assert "totp_replaced" in here.get("/v1/privacy").json()["access_log"]["records"]
    assert [(e["user"], e["target"]) for e in store.access_log(action="totp_replaced")] == [("ana", "ana")]
    assert [e["target"] for e in store.access_log(action="totp_failed")] == ["new phone"] * 3
    assert new not in repr(store.access_log(limit=1000))
    store.close()


def test_a_recovery_code_proves_the_old_phone_once_and_the_old_set_goes(tmp_path):
    db = str(tmp_path / "lost.db")
    store, old = ana_with_recovery_codes(db)
    with client_of(db) as here:
        assert log_in(here, old[0]).status_code == 200
        new = here.post("/two-step/secret", headers=CSRF).json()["secret"]
        assert new_phone(here, old[0], code_at(new)).status_code == 403  # used by the login
        moved = new_phone(here, old[1], code_at(new))
        assert moved.status_code == 200, moved.text
        assert store.recovery_left("ana") == 10 and not set(moved.json()["recovery_codes"]) & set(old)
        assert log_in(client_of(db), old[2]).status_code == 401  # the old set went with the old secret
        assert log_in(client_of(db), moved.json()["recovery_codes"][0]).status_code == 200
    assert [e["target"] for e in store.access_log(action="recovery_used")] == ["ana"] * 3
    store.close()


def test_a_session_left_on_a_lost_phone_that_replaces_the_new_secret_is_named_and_a_password_change_ends_it(tmp_path):
    """A session elsewhere (the lost phone's browser) makes its own new secret in place of the one
    the user is confirming: the user's move changes nothing and spends no code, as before, but its
    400 sent them to the new phone's clock; it now says that such a session exists and that a
    password change ends it, after which the move goes through."""
    db = ana_with_two_step(tmp_path)
    store = AuthStore(db)
    with client_of(db) as here, client_of(db) as lost:
        assert log_in(lost, code_at(SECRET, -1)).status_code == 200
        assert log_in(here, code_at(SECRET)).status_code == 200
        new = here.post("/two-step/secret", headers=CSRF).json()["secret"]
        assert lost.post("/two-step/secret", headers=CSRF).status_code == 200  # in place of the user's
        refused = new_phone(here, code_at(SECRET, 1), code_at(new))
        assert refused.status_code == 400 and "change your password" in refused.json()["error"], refused.text
        assert store.two_step("ana")["secret"] == SECRET and store.access_log(action="totp_failed") == []
        codes = new_recovery_codes()  # the change's code (POST /password asks one): the app's next is the move's
        store.renew_recovery("ana", SECRET, recovery_hashes(SECRET, codes), seen=[])
        changed = here.post("/password", json={"current": ANA[1], "new": "ana's second password", "code": codes[0]},
                            headers=CSRF)
        assert changed.status_code == 200 and lost.get("/v1/me").status_code == 401
        new = here.post("/two-step/secret", headers=CSRF).json()["secret"]
        moved = new_phone(here, code_at(SECRET, 1), code_at(new), "ana's second password")  # the code was not spent
        assert moved.status_code == 200, moved.text
    assert store.two_step("ana")["secret"] == new
    store.close()


def test_a_user_the_site_requires_two_step_of_moves_it_to_a_new_phone_themselves(tmp_path):
    """Under server.require_two_step only an admin's turning it off moved a covered user to a new
    phone, their account on the password alone until their next login."""
    db = ana_with_two_step(tmp_path)
    with client_of(db, require_two_step="all") as ana:
        assert log_in(ana, code_at(SECRET)).status_code == 200
        new = ana.post("/two-step/secret", headers=CSRF).json()["secret"]
        assert new_phone(ana, code_at(SECRET, 1), code_at(new)).status_code == 200
        assert ana.get("/v1/me").json() | {"two_step": True, "two_step_required": False} == ana.get("/v1/me").json()
    assert AuthStore(db).two_step("ana")["secret"] == new


def test_of_two_new_phones_at_once_the_loser_is_409_and_no_failed_login(tmp_path):
    """Two POST /two-step/replace at once (two tabs, a double send): the loser's check read the
    secret before the winner replaced it, and its current code, checked against the new secret,
    was 403 "wrong password or code", a failed login and a `totp_failed` row. Now 409, not
    counted; a code wrong against the secret the loser read is still a failure."""
    db = ana_with_two_step(tmp_path)
    store = AuthStore(db)
    with client_of(db) as winner, client_of(db) as loser:
        assert log_in(winner, code_at(SECRET, -1)).status_code == 200
        assert log_in(loser, code_at(SECRET)).status_code == 200
        late = loser.app.state.access.store
        checked = late.check_login

        def race(current: str, loser_code: str):
            """The loser's answer: its two-step state read, its password checked only once the
            winner (its own thread, here the caller's) moved two-step login."""
            new = winner.post("/two-step/secret", headers=CSRF).json()["secret"]
            entered, won, answers = threading.Event(), threading.Event(), []

            def check(name: str, password: str):
                entered.set()
                assert won.wait(30)
                return checked(name, password)
            late.check_login = check
            try:
                thread = threading.Thread(target=lambda: answers.append(new_phone(loser, loser_code, code_at(new))))
                thread.start()
                assert entered.wait(30)
                moved = new_phone(winner, current, code_at(new))
                assert moved.status_code == 200, moved.text
                won.set()
                thread.join(30)
            finally:
                won.set()  # a failure above must not leave the loser waiting
                late.check_login = checked
            return new, answers[0]

        new, lost = race(code_at(SECRET, 1), code_at(SECRET, 1))  # a double send: the same code
        assert (lost.status_code, lost.json()["error"]) == (409, TWO_STEP_CHANGED), lost.text
        with store.engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM login_failures WHERE key NOT LIKE 'secret:%'")).scalar() == 0
        assert store.access_log(action="totp_failed") == [] and store.two_step("ana")["secret"] == new
        # Its session ended with the move; a new one without spending a code of this step
        user = store.check_login(*ANA)
        loser.cookies.set(PLAIN_COOKIE, store.start_session(user["id"], user["password_hash"], new))
        wrong = "000000" if code_at(new, 1) != "000000" else "111111"
        _, guessed = race(code_at(new, 1), wrong)  # wrong for the secret it read: counted as before
        assert (guessed.status_code, guessed.json()["error"]) == (403, "wrong password or code")
    assert [e["target"] for e in store.access_log(action="totp_failed")] == ["new phone"]
    store.close()


def test_a_covered_user_without_two_step_asking_for_a_new_phone_is_told_it_is_not_on(tmp_path):
    """The docs let such a user use "the /two-step routes"; POST /two-step/replace answered 403
    "two-step login required" where 409 "not on: set it up" is what is true, and no failure."""
    db = str(tmp_path / "covered.db")
    store = AuthStore(db)
    store.add_user(*ANA, "admin")
    with client_of(db, require_two_step="all") as ana:
        assert log_in(ana).status_code == 200
        refused = new_phone(ana, "123456", "654321")
        assert (refused.status_code, refused.json()["error"]) == (409, NOT_ON_TO_REPLACE), refused.text
        assert ana.post("/two-step/secret", headers=CSRF).status_code == 200  # set up as before
        assert new_phone(ana, "123456", "654321").status_code == 409
    with store.engine.connect() as connection:  # the new secret's own count aside
        assert connection.execute(text("SELECT count(*) FROM login_failures WHERE key NOT LIKE 'secret:%'")).scalar() == 0
    assert store.access_log(action="totp_failed") == []
    store.close()


def test_the_dialogs_new_phone_moves_two_step_login_in_one_step(tmp_path, page):  # noqa: F811
    """"New phone" on a phone's width, by the keyboard: the new secret shown, the password, the
    current phone's code and the new one's typed, Enter; the new recovery codes shown."""
    db = ana_with_two_step(tmp_path)
    with serving_ana(db, tmp_path) as base:
        with two_step_dialog_on_a_phone(page, base) as phone:
            assert phone.is_hidden("#two-step-new-code") and phone.is_visible("#two-step-move")
            phone.click("#two-step-move")
            new = until(lambda: phone.inner_text("#two-step-secret"))
            assert phone.is_visible("#two-step-new-code") and phone.is_hidden("#two-step-move")
            assert phone.inner_text("#two-step-submit") == "Move to the new phone"
            assert AuthStore(db).two_step("ana")["secret"] == SECRET  # nothing changed yet
            phone.fill("#two-step-password", ANA[1])
            phone.fill("#two-step-code", code_at(SECRET, 1))  # the login used this step's
            phone.fill("#two-step-new-code", code_at(new))
            phone.press("#two-step-new-code", "Enter")
            assert until(lambda: phone.inner_text("#two-step-status").startswith("Two-step login moved to the new phone"))
            codes = phone.input_value("#two-step-codes").split("\n")
            assert len(set(codes)) == 10 and all(RECOVERY_CODE.fullmatch(c) for c in codes)
            assert phone.inner_text("#two-step-secret") == "" and phone.input_value("#two-step-new-code") == ""
            assert phone.is_hidden("#two-step-new-code") and phone.inner_text("#two-step-submit") == "Turn off"
            assert phone.evaluate("document.documentElement.scrollWidth") <= 360
            assert phone.evaluate(ME_STATUS) == 200  # the browser's cookie is the new session's
            assert "/login" not in phone.url
    store = AuthStore(db)
    assert store.two_step("ana")["secret"] == new and store.recovery_left("ana") == 10
    assert [e["target"] for e in store.access_log(action="totp_replaced")] == ["ana"]

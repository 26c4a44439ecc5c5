"""An admin manages users (adds, edits a role or cameras, resets, removes) and API tokens over
HTTP (security/admin_routes.py), with `maskwatch users`, and in the dashboard's Users dialog
(static/users.js): on the real app and SQLite, the races on SQLite and PostgreSQL, the camera
list's bound on PostgreSQL, and the dialog in headless Chromium against a real `maskwatch serve` at a phone's width,
with the Access log dialog (static/access-log.js) on the same server.
A viewer's cameras checked against a running site: tests/test_security.py."""

from __future__ import annotations

import contextlib
import getpass
import logging
import re
import threading
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import httpx
import pyotp
import pytest
from fastapi.testclient import TestClient

from maskwatch.security.auth_settings import AuthSettings
from maskwatch.security.passwords import COMMON_PASSWORD, WeakPassword, check_strength
from maskwatch.security.store import AuthStore
from maskwatch.security.user_rules import new_user_problem
from maskwatch.security.user_words import CHANGES
from maskwatch.serving.app import ServeSettings, create_app
from tests.conftest import log_in
from tests.postgres import postgres  # noqa: F401  (fixture)
from tests.test_dashboard import page, tab  # noqa: F401  (headless Chromium)
from tests.test_dashboard_mobile import SIDEWAYS, SMALL, phone_tab
from tests.test_security_deploy import NoFaces
from tests.test_serve import serving
from tests.test_two_step import code_at

CSRF = {"X-Maskwatch-CSRF": "1"}
BOSS = ("boss", "the boss's password")
BY_BOSS = {"admin_password": BOSS[1]}  # each change but a revocation: the acting admin's own password
ANA = ("ana", "ana's first password")
SECRETS = ("the boss's password", "ana's first password", "cy's own password", "ana's second password",
           "dee's password")


def cells(screen, row: str) -> list[str]:
    """The values of a table's row, one a cell (the heading a stacked row shows before each is not among them)."""
    return screen.locator(row + " td").all_inner_texts()


# Where each row's button of the Users dialog lies: its name, on the screen sideways or not, its height.
ROW_BUTTONS = """() => [...document.querySelectorAll('#users-table tbody button, #tokens-table tbody button')].map((b) => {
  const box = b.getBoundingClientRect();
  return [b.getAttribute('aria-label'), box.left >= 0 && box.right <= innerWidth, box.height]; })"""


ZONE = "Intl.DateTimeFormat().resolvedOptions().timeZone"  # the page's clock on `serve` without a site


# The field the focus is on, and whether it is marked invalid.
AT_FAULT = "[document.activeElement.id, document.activeElement.getAttribute('aria-invalid')]"


def site_users(tmp_path) -> str:
    """A users database with an admin (boss) and a viewer (ana)."""
    db = str(tmp_path / "users.db")
    store = AuthStore(db)
    store.add_user(*BOSS, "admin")
    store.add_user(*ANA, "viewer")
    store.close()
    return db


def client_of(db: str, **settings) -> TestClient:
    app = create_app(NoFaces(), ServeSettings(auth=AuthSettings(database=db, open_without_users=False, **settings)))
    return TestClient(app, base_url="http://maskwatch.lan")


def logged_in(db: str, user: tuple[str, str]) -> TestClient:
    client = client_of(db)
    assert client.post("/login", json={"username": user[0], "password": user[1]}, headers=CSRF).status_code == 200
    return client


def test_an_admin_adds_resets_and_removes_users_ending_their_sessions_each_change_logged(tmp_path):
    db = site_users(tmp_path)
    boss, ana = logged_in(db, BOSS), logged_in(db, ANA)
    added = boss.post("/v1/users", json=BY_BOSS | {"name": "cy", "cameras": [" door ", "till", ""],
                                                   "password": "cy's own password"}, headers=CSRF)
    assert added.status_code == 201, added.text
    assert added.json()["user"] | {"id": 0, "created": 0} == {"id": 0, "name": "cy", "role": "viewer",
                                                             "cameras": ["door", "till"], "created": 0,
                                                             "two_step": False, "recovery_codes_left": None}
    cy = logged_in(db, ("cy", "cy's own password"))
    assert cy.get("/v1/me").json()["cameras"] == ["door", "till"]
    listed = boss.get("/v1/users").json()["users"]
    assert [(u["name"], u["role"], u["cameras"]) for u in listed] == [
        ("ana", "viewer", None), ("boss", "admin", None), ("cy", "viewer", ["door", "till"])]
    assert listed[2] == added.json()["user"]  # the same user object from every route

    reset = boss.post("/v1/users/ana/password", json=BY_BOSS | {"password": "ana's second password"}, headers=CSRF)
    assert reset.status_code == 200 and reset.json()["user"] == "ana"
    assert ana.get("/v1/me").status_code == 401  # as `users passwd`: her sessions ended
    assert client_of(db).post("/login", json={"username": "ana", "password": ANA[1]}, headers=CSRF).status_code == 401
    logged_in(db, ("ana", "ana's second password"))

    removed = boss.request("DELETE", "/v1/users/cy", json=BY_BOSS, headers=CSRF)
    assert removed.status_code == 200 and removed.json()["user"] == "cy"
    assert cy.get("/v1/me").status_code == 401 and boss.get("/v1/me").json()["user"] == "boss"
    assert [u["name"] for u in boss.get("/v1/users").json()["users"]] == ["ana", "boss"]
    assert set(CHANGES) <= set(boss.get("/v1/privacy").json()["access_log"]["records"])

    store = AuthStore(db)
    changes = [(e["action"], e["user"], e["client"], e["target"]) for e in reversed(store.access_log(limit=100))
               if e["action"] in CHANGES]
    assert changes == [("user_added", "boss", "testclient", "cy (viewer; door,till)"),
                       ("password_set", "boss", "testclient", "ana"),
                       ("user_removed", "boss", "testclient", "cy")]
    assert store.session_count("cy") == 0 and store.session_count("ana") == 1
    for answer in (added, reset, removed):
        assert not any(secret in answer.text for secret in SECRETS)
    assert not any(secret in repr(store.access_log(limit=1000)) for secret in SECRETS)


def test_a_token_is_shown_once_listed_without_its_secret_and_revoked(tmp_path):
    db = site_users(tmp_path)
    boss = logged_in(db, BOSS)
    made = boss.post("/v1/tokens", json=BY_BOSS | {"name": "prometheus"}, headers=CSRF)
    assert made.status_code == 201, made.text
    token = made.json()["token"]
    assert made.json() == {"name": "prometheus", "scope": "read", "cameras": None, "owner": "boss", "expires": None,
                           "token": token}
    assert token.startswith("mw_")
    listed = boss.get("/v1/tokens")
    assert [(t["name"], t["scope"]) for t in listed.json()["tokens"]] == [("prometheus", "read")]
    assert token not in listed.text and token[3:] not in repr(AuthStore(db).tokens())
    bearer = {"Authorization": f"Bearer {token}"}
    with client_of(db) as script:
        assert script.get("/v1/me", headers=bearer).json()["user"] == "token:prometheus"
        assert boss.get("/v1/tokens").json()["tokens"][0]["last_used"] is not None
        taken = boss.post("/v1/tokens", json=BY_BOSS | {"name": "prometheus", "scope": "full"}, headers=CSRF)
        assert taken.status_code == 409 and "exists already" in taken.json()["error"]
        wrong = boss.post("/v1/tokens", json=BY_BOSS | {"name": "ci", "scope": "all"}, headers=CSRF)
        assert wrong.status_code == 400 and wrong.json()["error"] == "scope must be one of read, full; got 'all'"
        revoked = boss.delete("/v1/tokens/prometheus", headers=CSRF)  # one click: no password asked
        assert revoked.status_code == 200
        assert script.get("/v1/me", headers=bearer).status_code == 401  # the next request with it
        assert boss.delete("/v1/tokens/prometheus", headers=CSRF).status_code == 404
    changes = [(e["action"], e["user"], e["target"]) for e in reversed(AuthStore(db).access_log(limit=100))
               if e["action"] in CHANGES]
    assert changes == [("token_added", "boss", "prometheus (read; never expires)"), ("token_revoked", "boss", "prometheus")]


def test_an_admins_tokens_are_revoked_when_they_are_made_a_viewer_or_removed_and_a_site_token_stays(tmp_path):
    """A token belonged to no user: an admin removed or made a viewer left the tokens they made
    working (a departing admin's script kept its access). Now each is revoked in the change's
    transaction, said in the answer and logged; a site token (`tokens add` on the server) stays."""
    db = site_users(tmp_path)
    store = AuthStore(db)
    store.add_user("bea", "bea's long password", "admin")
    site = {"Authorization": f"Bearer {store.add_token('prometheus', 'read')}"}
    boss, bea = logged_in(db, BOSS), logged_in(db, ("bea", "bea's long password"))
    by_bea = {"admin_password": "bea's long password"}

    def made(name: str) -> dict:
        answer = bea.post("/v1/tokens", json=by_bea | {"name": name, "scope": "full"}, headers=CSRF)
        assert answer.status_code == 201 and answer.json()["owner"] == "bea", answer.text
        return {"Authorization": f"Bearer {answer.json()['token']}"}

    ci, backup = made("bea-ci"), made("bea-backup")
    assert [(t["name"], t["owner"]) for t in boss.get("/v1/tokens").json()["tokens"]] == [
        ("bea-backup", "bea"), ("bea-ci", "bea"), ("prometheus", None)]
    with client_of(db) as script:
        assert script.get("/v1/me", headers=ci).json()["user"] == "token:bea-ci"
        demoted = boss.patch("/v1/users/bea", json=BY_BOSS | {"role": "viewer"}, headers=CSRF)
        assert demoted.status_code == 200 and demoted.json()["tokens_revoked"] == ["bea-backup", "bea-ci"]
        assert script.get("/v1/me", headers=ci).status_code == 401 and script.get("/v1/me", headers=backup).status_code == 401
        assert bea.get("/v1/me").json()["role"] == "viewer"  # her session stays, as any edit's
        again = boss.patch("/v1/users/bea", json=BY_BOSS | {"role": "admin"}, headers=CSRF)
        assert again.json()["tokens_revoked"] == []  # made an admin: nothing to take
        ci = made("bea-ci")
        removed = boss.request("DELETE", "/v1/users/bea", json=BY_BOSS, headers=CSRF)
        assert removed.status_code == 200 and removed.json()["tokens_revoked"] == ["bea-ci"]
        assert removed.json()["status"] == "removed bea; their sessions ended; 1 API token of theirs revoked (bea-ci)"
        assert script.get("/v1/me", headers=ci).status_code == 401
        assert script.get("/v1/me", headers=site).json()["user"] == "token:prometheus"  # nobody's: it stays
    assert [(t["name"], t["owner"]) for t in store.tokens()] == [("prometheus", None)]
    revocations = [(e["user"], e["target"]) for e in reversed(store.access_log(action="token_revoked"))]
    assert revocations == [("boss", "bea-backup (owner bea made a viewer)"), ("boss", "bea-ci (owner bea made a viewer)"),
                           ("boss", "bea-ci (owner bea removed)")]


def test_tokens_add_owner_on_the_server_and_the_users_commands_say_which_tokens_went(tmp_path):
    from typer.testing import CliRunner

    from maskwatch.cli import app

    db = site_users(tmp_path)
    AuthStore(db).add_user("bea", "bea's long password", "admin")

    def cli(*args: str):
        return CliRunner().invoke(app, [*args, "--database", db])

    assert cli("tokens", "add", "nightly", "--owner", "bea").exit_code == 0
    assert cli("tokens", "add", "prometheus").exit_code == 0  # a site token, as ever
    for owner, said in (("ana", "'ana' is a viewer: a token's owner is an admin"), ("nobody", "no user 'nobody'")):
        refused = cli("tokens", "add", "x", "--owner", owner)
        assert refused.exit_code == 1 and said in refused.output, refused.output
    missing = CliRunner().invoke(app, ["tokens", "add", "x", "--owner", "bea", "--database", str(tmp_path / "typo.db")])
    assert missing.exit_code == 1 and "no such database" in missing.output and not (tmp_path / "typo.db").exists()
    listed = [line.split("\t") for line in cli("tokens", "list").output.splitlines()]
    assert [line[:3] for line in listed] == [["nightly", "read", "owner=bea"], ["prometheus", "read", "owner=(site)"]]
    assert all(re.fullmatch(r"made \d{4}-\d\d-\d\d \d\d:\d\d UTC", line[3]) and line[4] == "last used never"
               for line in listed)
    demoted = cli("users", "edit", "bea", "--role", "viewer")
    assert demoted.output == "bea is now viewer (all cameras); from their next request; 1 API token of theirs " \
                             "revoked (nightly)\n"
    assert [line.split("\t")[0] for line in cli("tokens", "list").output.splitlines()] == ["prometheus"]
    assert cli("users", "remove", "bea").output == "removed bea; their sessions ended\n"  # a viewer: none left
    assert [e["target"] for e in AuthStore(db).access_log(action="token_revoked")] == ["nightly (owner bea made a viewer)"]


def test_users_remove_of_the_last_user_says_what_the_site_is_left_as(tmp_path):
    """`users remove` of the only user said "removed boss; their sessions ended" alone: a server on
    loopback was then open to anyone on the machine, one beyond it let nobody log in and would not
    start again, and nothing said so. It says it (on stderr), and how to add an admin."""
    from typer.testing import CliRunner

    from maskwatch.cli import app

    db = site_users(tmp_path)

    def remove(name: str):
        return CliRunner().invoke(app, ["users", "remove", name, "--database", db])

    assert remove("ana").output == "removed ana; their sessions ended\n"  # boss is left: nothing more to say
    last = remove("boss")
    assert last.exit_code == 0 and last.output.startswith("removed boss; their sessions ended\n"), last.output
    assert ("warning: the database has no users now: a server on loopback lets in anyone on this machine, one "
            "beyond it lets nobody log in and refuses to start; add an admin: maskwatch users add NAME --role admin"
            ) in " ".join(last.output.split()), last.output
    assert AuthStore(db).user_count() == 0


def tokens_of_version_2(url: str) -> None:
    """A database from before tokens had owners (auth schema 2, set back as an older maskwatch left
    it) opens: its token still works, as a site token that no admin's removal takes."""
    from sqlalchemy import text

    store = AuthStore(url)
    store.add_user("old-admin", "the old admin's password", "admin")
    store.add_user("other", "the other admin's password", "admin")
    old = store.add_token("old-script", "full")
    with store.engine.begin() as connection:  # back to version 2's table
        connection.execute(text("ALTER TABLE api_tokens DROP COLUMN owner"))
        connection.execute(text("DELETE FROM auth_schema_version WHERE version >= 3"))
    store.close()
    store = AuthStore(url)
    assert store.token(old)["name"] == "old-script"
    assert [(t["name"], t["owner"]) for t in store.tokens()] == [("old-script", None)]
    owned = store.add_token("owned", "read", owner="old-admin")  # the new column, written and read
    assert store.remove_user("old-admin") == ["owned"] and store.token(owned) is None
    assert store.token(old)["scope"] == "full"
    store.close()


def test_a_version_2_database_keeps_its_tokens_as_site_tokens_sqlite(tmp_path):
    tokens_of_version_2(str(tmp_path / "v2.db"))


def test_a_version_2_database_keeps_its_tokens_as_site_tokens_postgresql(postgres):  # noqa: F811
    tokens_of_version_2(postgres.new_database("tokens_v2"))


def test_a_token_made_to_expire_is_refused_as_a_revoked_one_once_due_and_the_access_log_says_expired(tmp_path):
    """Tokens never expired: a script's token forgotten on a machine worked for good. `tokens add
    --expires DAYS` sets a date; past it the token gets the revoked one's 401, and the access log
    says `token_expired` under its name. Without --expires it never expires, as before."""
    from sqlalchemy import update
    from typer.testing import CliRunner

    from maskwatch.cli import app
    from maskwatch.security.schema import api_tokens

    db = site_users(tmp_path)

    def cli(*args: str):
        return CliRunner().invoke(app, [*args, "--database", db])

    made = cli("tokens", "add", "nightly", "--expires", "30")
    assert made.exit_code == 0 and "expires in 30 days" in made.output, made.output
    nightly = {"Authorization": f"Bearer {made.output.splitlines()[-1]}"}
    forever = {"Authorization": f"Bearer {cli('tokens', 'add', 'prometheus').output.splitlines()[-1]}"}
    for days in ("0", "-1", "3651", "ten"):
        assert cli("tokens", "add", "x", "--expires", days).exit_code == 2, days  # a usage error, nothing made
    listed = dict(line.split("\t")[::5] for line in cli("tokens", "list").output.splitlines())
    assert listed.keys() == {"nightly", "prometheus"} and listed["prometheus"] == "expires never"
    assert re.fullmatch(r"expires \d{4}-\d\d-\d\d \d\d:\d\d UTC", listed["nightly"])
    assert 29.9 < (AuthStore(db).tokens()[0]["expires"] - time.time()) / 86400 <= 30
    with client_of(db) as script:
        assert script.get("/v1/me", headers=nightly).json()["user"] == "token:nightly"
        store = AuthStore(db)
        with store.engine.begin() as connection:  # its 30 days gone by
            connection.execute(update(api_tokens).where(api_tokens.c.name == "nightly").values(expires=time.time() - 1))
        expired = script.get("/v1/me", headers=nightly)
        unknown = script.get("/v1/me", headers={"Authorization": "Bearer mw_no-such-token"})
        assert expired.status_code == unknown.status_code == 401 and expired.json() == unknown.json()
        assert expired.headers["www-authenticate"] == "Bearer"
        assert script.get("/v1/me", headers=forever).json()["user"] == "token:prometheus"
    assert [(e["action"], e["user"]) for e in store.access_log(action="token_expired")] == [
        ("token_expired", "token:nightly")]
    assert cli("tokens", "list").output.splitlines()[0].split("\t")[5].startswith("expired ")


def test_a_token_made_on_the_dashboard_expires_in_the_days_chosen_as_with_the_cli(tmp_path):
    """POST /v1/tokens had no expiry: every token an admin made on the dashboard worked for good.
    `expires_days` is `tokens add --expires DAYS`: the same bounds, the same expiry; left out, never."""
    db = site_users(tmp_path)
    boss = logged_in(db, BOSS)

    def make(name: str, **body):
        return boss.post("/v1/tokens", json=BY_BOSS | {"name": name} | body, headers=CSRF)

    before = time.time()
    made = make("ci-upload", scope="full", expires_days=30)
    assert made.status_code == 201, made.text
    assert before + 30 * 86400 <= made.json()["expires"] <= time.time() + 30 * 86400
    assert make("ten-years", expires_days=3650).status_code == 201
    assert make("forever", expires_days=None).json()["expires"] is None
    listed = {t["name"]: t["expires"] for t in boss.get("/v1/tokens").json()["tokens"]}
    assert listed == {"ci-upload": made.json()["expires"], "forever": None, "ten-years": listed["ten-years"]}
    assert AuthStore(db).token(made.json()["token"])["name"] == "ci-upload"
    assert AuthStore(db).token(made.json()["token"], now=made.json()["expires"]) == {"name": "ci-upload", "expired": True}
    for days, bound in ((0, "greater than or equal to 1"), (-1, "greater than or equal to 1"),
                        (3651, "less than or equal to 3650")):  # the CLI's bounds, in the API's name and schema
        refused = make("x", expires_days=days)
        assert refused.status_code == 422 and refused.json()["error"] == (
            f"body field 'expires_days': Input should be {bound}"), days
    for days in ("30", 30.5, True):  # a number of days, not text read as one
        refused = make("x", expires_days=days)
        assert refused.status_code == 422 and refused.json()["error"] == (
            "body field 'expires_days': Input should be a valid integer"), days
    assert [t["name"] for t in AuthStore(db).tokens()] == ["ci-upload", "forever", "ten-years"]


def test_tokens_that_stop_working_within_a_week_are_said_in_the_servers_log_at_the_start_and_daily(tmp_path, caplog):
    """A token made on the dashboard expires in 90 days unless changed: a Prometheus token made
    there stopped with no word before it. The server's log says each token that stops working
    within 7 days, by name, owner and date, never its secret, at the start and then once a day
    (the auth sweep's thread, not one of its own); one further off, one never ending, one ended, not."""
    from maskwatch.site.event_views import minute_utc

    db = site_users(tmp_path)
    store = AuthStore(db)
    now = time.time()
    ends = {"prometheus": now + 3 * 86400 - 60, "backup": now + 5 * 86400, "grafana": now + 8 * 86400,
            "ended": now - 60, "forever": None}
    secrets = [store.add_token(name, "read", owner=None if name == "backup" else "boss", expires=at)
               for name, at in ends.items()]
    store.close()
    app = create_app(NoFaces(), ServeSettings(auth=AuthSettings(database=db, open_without_users=False)))

    def said() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name == "maskwatch.security.token_expiry"]

    with caplog.at_level(logging.WARNING), TestClient(app):  # its lifespan starts the sweep
        deadline = time.monotonic() + 30
        while len(said()) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        app.state.access._sweep()  # the next minute's sweep: said once a day, not at each
    advice = ("make its successor (the dashboard's Users, or maskwatch tokens add --expires DAYS) and put it where "
              "this one is used")
    assert said() == [
        f"API token 'prometheus' (read, owner boss) stops working at {minute_utc(ends['prometheus'])}, in 3 days: "
        + advice,
        f"API token 'backup' (read, a site token) stops working at {minute_utc(ends['backup'])}, in 5 days: " + advice]
    assert not any(secret in caplog.text for secret in secrets)


def test_the_tokens_ending_soon_are_said_once_a_day_for_the_whole_site_not_by_each_process(tmp_path, caplog):
    """`run` with its Ray actors, `serve --workers`: each process's sweep said the tokens ending
    soon at its start and daily, so the log held the same warning once per process, each day. The
    site says it once a day, whichever process's sweep comes first (the users database holds when);
    a restart within the day says nothing again; a clock set back says it again, not a week later."""
    from maskwatch.security.access import AccessControl

    db = site_users(tmp_path)
    store = AuthStore(db)
    store.add_token("mqtt-bridge", "read", expires=time.time() + 3 * 86400)
    settings = AuthSettings(database=db, open_without_users=False)
    processes = [AccessControl.from_settings(settings) for _ in range(3)]  # a site's workers, each its own store

    def said() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name == "maskwatch.security.token_expiry"]

    with caplog.at_level(logging.WARNING):
        for sweep in range(2):  # each process's first sweep (its start), then the next minute's
            for control in processes:
                control._sweep()
        AccessControl.from_settings(settings)._sweep()  # one restarted within the day
    assert len(said()) == 1 and said()[0].startswith("API token 'mqtt-bridge' (read, a site token) stops working")


def daily_claims(url: str) -> None:
    """Of two processes asking, one says the day's notice: the first, then a day on; a clock set
    back since says it again."""
    first, second = AuthStore(url), AuthStore(url)
    now = time.time()
    assert first.claim_daily("tokens_ending", 86400, now) and not second.claim_daily("tokens_ending", 86400, now + 1)
    assert not first.claim_daily("tokens_ending", 86400, now + 86399)
    assert second.claim_daily("tokens_ending", 86400, now + 86400)
    assert not first.claim_daily("tokens_ending", 86400, now + 86401)
    assert first.claim_daily("tokens_ending", 86400, now - 3 * 86400)  # the clock set back 4 days since
    assert not second.claim_daily("tokens_ending", 86400, now - 3 * 86400 + 60)
    assert first.claim_daily("other", 86400, now)  # a notice of its own
    first.close(), second.close()


def test_a_daily_notice_is_claimed_by_one_process_sqlite(tmp_path):
    daily_claims(str(tmp_path / "users.db"))


def test_a_daily_notice_is_claimed_by_one_process_postgresql(postgres):  # noqa: F811
    daily_claims(postgres.new_database("daily_notices"))


def test_a_daily_notice_written_by_hand_as_no_number_is_said_and_mended_not_a_sweep_failing_each_minute(tmp_path,
                                                                                                         caplog):
    """SQLite keeps a text in daily_notices.said (a hand's `UPDATE ... SET said = 'yesterday'`):
    claim_daily compared it with the clock, a TypeError, so every process's sweep failed each minute
    ("the users database's sweep ... failed", the database fine) and the tokens ending soon were
    never said again. Such a row is due: said once, by one process, and the time written over it."""
    from sqlalchemy import create_engine, text

    from maskwatch.security.access import AccessControl

    db = site_users(tmp_path)
    AuthStore(db).add_token("mqtt-bridge", "read", expires=time.time() + 3 * 86400)
    engine = create_engine(f"sqlite:///{db}")
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO daily_notices (notice, said) VALUES ('tokens_ending', 'yesterday')"))
    settings = AuthSettings(database=db, open_without_users=False)
    with caplog.at_level(logging.WARNING):
        for control in [AccessControl.from_settings(settings) for _ in range(2)]:  # two processes
            control._sweep()
    said = [r.getMessage() for r in caplog.records if r.name == "maskwatch.security.token_expiry"]
    assert len(said) == 1 and said[0].startswith("API token 'mqtt-bridge'"), said
    with engine.connect() as connection:
        mended = connection.execute(text("SELECT said FROM daily_notices")).scalar()
    engine.dispose()
    assert isinstance(mended, float) and abs(mended - time.time()) < 3600


def test_tokens_list_marks_the_tokens_that_end_within_14_days_as_the_dashboard_does(tmp_path):
    """On Friday the admin reads `tokens list`: it gave the date alone, so a token ending on Monday
    looked like one ending next year, where the dashboard's table said "ends in 3 days"."""
    from typer.testing import CliRunner

    from maskwatch.cli import app
    from maskwatch.site.event_views import minute_utc

    db = site_users(tmp_path)
    store = AuthStore(db)
    now = time.time()
    ends = {"mqtt-bridge": now + 3 * 86400 + 600, "ci-upload": now + 5 * 3600 + 60, "wall": now + 13.9 * 86400,
            "yearly": now + 30 * 86400, "gone": now - 60, "prometheus": None}
    for name, at in ends.items():
        store.add_token(name, "read", expires=at)
    listed = CliRunner().invoke(app, ["tokens", "list", "--database", db]).output
    expiry = dict(line.split("\t")[::5] for line in listed.splitlines())
    assert expiry == {
        "mqtt-bridge": f"expires {minute_utc(ends['mqtt-bridge'])} (ends in 3 days: make its successor)",
        "ci-upload": f"expires {minute_utc(ends['ci-upload'])} (ends in 5 hours: make its successor)",
        "wall": f"expires {minute_utc(ends['wall'])} (ends in 14 days: make its successor)",
        "yearly": f"expires {minute_utc(ends['yearly'])}", "gone": f"expired {minute_utc(ends['gone'])}",
        "prometheus": "expires never"}


def test_token_names_are_unique_whatever_their_case_as_users_names_are(tmp_path):
    """`tokens add WALL` beside `wall` made a second token: the admin who revoked `wall` after a
    leak (or `DELETE /v1/tokens/wall`) left `WALL` working, and the two read alike in the list."""
    from typer.testing import CliRunner

    from maskwatch.cli import app

    db = site_users(tmp_path)
    wall = AuthStore(db).add_token("wall", "read")
    refused = CliRunner().invoke(app, ["tokens", "add", "WALL", "--database", db])
    assert refused.exit_code == 1 and "a token named 'wall' exists already" in refused.output, refused.output
    made = logged_in(db, BOSS).post("/v1/tokens", json=BY_BOSS | {"name": "Wall", "scope": "read"}, headers=CSRF)
    assert made.status_code == 409 and "a token named 'wall' exists already" in made.json()["error"], made.text
    assert [t["name"] for t in AuthStore(db).tokens()] == ["wall"] and AuthStore(db).token(wall)["name"] == "wall"


def test_a_token_is_revoked_by_its_name_whatever_its_case_and_the_stored_name_is_said(tmp_path):
    """Names are one whatever their case (`tokens add WALL` beside `wall` is refused), yet `tokens
    revoke WALL` and `DELETE /v1/tokens/Wall` answered "no token" for `wall`: the admin revoking
    after a leak, typing the name as they remembered it, left it working."""
    from typer.testing import CliRunner

    from maskwatch.cli import app

    db = site_users(tmp_path)
    store = AuthStore(db)
    wall, script = store.add_token("wall", "read"), store.add_token("Script", "full")
    revoked = CliRunner().invoke(app, ["tokens", "revoke", "WALL", "--database", db])
    assert (revoked.exit_code, revoked.output) == (0, "revoked wall\n")
    assert store.token(wall) is None
    answer = logged_in(db, BOSS).delete("/v1/tokens/sCRIPT", headers=CSRF)
    assert answer.status_code == 200 and answer.json() == {"status": "revoked Script", "name": "Script"}, answer.text
    assert store.token(script) is None
    assert [row["target"] for row in store.access_log(action="token_revoked")] == ["Script", "wall"]


def test_the_users_commands_find_a_users_name_whatever_its_case_and_say_the_stored_one(tmp_path):
    """Names are one whatever their case (`users add Ana` beside `ana` is refused), yet `users
    remove ANA` said "no user 'ANA'" while `users list` showed `ana`, and so did edit, passwd, 2fa
    and `tokens add --owner`. Each finds the user now, and says and logs the name as stored."""
    from typer.testing import CliRunner

    from maskwatch.cli import app

    db = site_users(tmp_path)
    store = AuthStore(db)
    store.add_user("bea", "bea's long password", "admin")

    def cli(*args: str, input: str | None = None):
        return CliRunner().invoke(app, [*args, "--database", db], input=input)

    owned = cli("tokens", "add", "nightly", "--owner", "BEA")
    assert owned.exit_code == 0 and "token nightly (read; bea's)" in owned.output, owned.output
    assert [t["owner"] for t in store.tokens()] == ["bea"]
    edited = cli("users", "edit", "Ana", "--camera", "door")
    assert edited.output == "ana is now viewer (door); from their next request\n", edited.output
    reset = cli("users", "passwd", "ANA", input="ana's second password\n")
    assert reset.output == "password of ana changed; their sessions ended\n", reset.output
    assert store.check_login("ana", "ana's second password") is not None
    no_codes = cli("users", "2fa", "aNA", "--recovery-codes")
    assert no_codes.exit_code == 1 and "two-step login is not on for ana:" in no_codes.output, no_codes.output
    removed = cli("users", "remove", "BEA")
    assert removed.output == "removed bea; their sessions ended; 1 API token of theirs revoked (nightly)\n"
    assert [u["name"] for u in store.users()] == ["ana", "boss"]
    assert [(e["action"], e["target"]) for e in reversed(store.access_log(limit=100))
            if e["action"] not in ("token_added", "user_added")] == [
        ("user_changed", "ana (viewer; door)"), ("password_set", "ana"), ("user_removed", "bea"),
        ("token_revoked", "nightly (owner bea removed)")]
    missing = cli("users", "remove", "cy")
    assert missing.exit_code == 1 and "no user 'cy'" in missing.output, missing.output


def test_the_admin_routes_find_a_users_name_whatever_its_case_and_your_own_stays_yours(tmp_path):
    """PATCH, DELETE, POST .../password and DELETE .../two-step under /v1/users/NAME answered 404 for
    `Ana` while GET /v1/users listed `ana`. They find her now, answer and log `ana`; `BOSS` is the
    acting boss's own account, refused as `boss` is (a reset of your own password asks no current one)."""
    db = site_users(tmp_path)
    boss = logged_in(db, BOSS)
    edited = boss.patch("/v1/users/Ana", json=BY_BOSS | {"cameras": ["door"]}, headers=CSRF)
    assert edited.status_code == 200 and edited.json()["user"]["name"] == "ana", edited.text
    reset = boss.post("/v1/users/ANA/password", json=BY_BOSS | {"password": "ana's second password"}, headers=CSRF)
    assert reset.status_code == 200 and reset.json()["user"] == "ana", reset.text
    not_on = boss.request("DELETE", "/v1/users/aNa/two-step", json=BY_BOSS, headers=CSRF)
    assert (not_on.status_code, not_on.json()["error"]) == (409, "two-step login is not on for ana")
    for method, url, body in (("PATCH", "/v1/users/BOSS", {"role": "viewer"}),
                              ("POST", "/v1/users/Boss/password", {"password": "a new long password"}),
                              ("DELETE", "/v1/users/BOSS/two-step", {})):
        own = boss.request(method, url, json=BY_BOSS | body, headers=CSRF)
        assert own.status_code == 400 and own.json()["error"].startswith("your own "), (url, own.text)
    removed = boss.request("DELETE", "/v1/users/ANA", json=BY_BOSS, headers=CSRF)
    assert removed.status_code == 200 and removed.json()["user"] == "ana", removed.text
    assert [u["name"] for u in AuthStore(db).users()] == ["boss"]
    assert [(e["action"], e["target"]) for e in reversed(AuthStore(db).access_log(limit=100)) if e["action"] in CHANGES] == [
        ("user_changed", "ana (viewer; door)"), ("password_set", "ana"), ("user_removed", "ana")]
    assert boss.request("DELETE", "/v1/users/cy", json=BY_BOSS, headers=CSRF).status_code == 404


def test_a_name_two_users_stored_before_the_case_rule_both_match_is_refused_never_guessed(tmp_path):
    """A database from before names were one whatever their case may hold `alice` beside `Alice`:
    each is found by its exact name (the command, the API, the login), and a third spelling that
    both match (`ALICE`) is refused by the commands and the API, naming both, and logs nobody in."""
    from sqlalchemy import create_engine, text
    from typer.testing import CliRunner

    from maskwatch.cli import app

    db = site_users(tmp_path)
    store = AuthStore(db)
    store.add_user("alice", "the small alice's password", "viewer")
    store.add_user("alice-made-before", "the big Alice's password", "viewer")
    engine = create_engine(f"sqlite:///{db}")
    with engine.begin() as connection:  # as a release before the rule let `users add Alice` make her
        connection.execute(text("UPDATE users SET name = 'Alice' WHERE name = 'alice-made-before'"))
    engine.dispose()
    both = "'Alice', 'alice' differ from it in case alone"
    guessed = CliRunner().invoke(app, ["users", "remove", "ALICE", "--database", db])
    assert guessed.exit_code == 1 and f"no user 'ALICE'; {both}" in " ".join(guessed.output.split()), guessed.output
    boss = logged_in(db, BOSS)
    refused = boss.request("DELETE", "/v1/users/aLiCe", json=BY_BOSS, headers=CSRF)
    assert refused.status_code == 404 and both in refused.json()["error"], refused.text
    stranger = client_of(db)
    for name, password in (("ALICE", "the big Alice's password"), ("ALICE", "the small alice's password"),
                           ("alice", "the big Alice's password")):
        assert stranger.post("/login", json={"username": name, "password": password}, headers=CSRF).status_code == 401
    big = stranger.post("/login", json={"username": "Alice", "password": "the big Alice's password"}, headers=CSRF)
    assert big.status_code == 200 and big.json()["user"] == "Alice"
    assert [u["name"] for u in store.users()] == ["Alice", "alice", "ana", "boss"]
    removed = CliRunner().invoke(app, ["users", "remove", "alice", "--database", db])
    assert removed.output == "removed alice; their sessions ended\n", removed.output
    assert [u["name"] for u in store.users()] == ["Alice", "ana", "boss"]


def test_a_command_on_a_database_server_that_never_answers_gives_up_naming_it(monkeypatch, tmp_path):
    """`users list`, `tokens revoke`, `copy-database` (every `users`/`tokens` command, `events`, `report`) on a
    PostgreSQL port that takes the connection and never answers (a stuck server, a proxy with nothing
    behind it) waited for ever with no word, where `run --probe` gives up in 5 s: libpq's own wait has
    no end. Now each gives up after COMMAND_CONNECT_TIMEOUT, naming the database (its password hidden)."""
    import socket

    from typer.testing import CliRunner

    from maskwatch.cli import app
    from maskwatch.site import database

    pytest.importorskip("psycopg", reason="the postgres extra (its driver) is not installed")
    monkeypatch.setattr(database, "COMMAND_CONNECT_TIMEOUT", 2)  # a command's 10 s, shortened for the test
    results = []
    with socket.create_server(("127.0.0.1", 0)) as listener:
        held = []

        def take() -> None:
            with contextlib.suppress(OSError):  # the listener closed: the test is over
                while True:
                    held.append(listener.accept()[0])

        threading.Thread(target=take, daemon=True).start()
        url = f"postgresql://maskwatch:secret@127.0.0.1:{listener.getsockname()[1]}/site"
        asked = (["users", "list", "--database", url], ["tokens", "revoke", "wall", "--database", url],
                 ["copy-database", "--database", url, str(tmp_path / "copy.db")])
        commands = threading.Thread(target=lambda: results.extend(CliRunner().invoke(app, args) for args in asked),
                                    daemon=True)
        commands.start()
        commands.join(60)  # a guard against the hang, not a timing
        for connection in held:
            connection.close()
    assert not commands.is_alive(), "a command still waits on a database server that never answers"
    shown = url.replace(":secret@", ":***@")
    assert [(result.exit_code, " ".join(result.output.split())) for result in results] == [
        (1, f"error: {shown}: cannot open or migrate the database: connection timeout expired")] * 2 + [
        (1, f"error: the copy from {shown} to sqlite:///{tmp_path / 'copy.db'} failed, nothing was kept in the "
            "target: connection timeout expired")]


def test_revoking_one_of_two_tokens_stored_whose_names_differ_in_case_alone_says_the_other_still_works(tmp_path):
    """A database from before names were one whatever their case can hold `wall` and `WALL`: the
    admin revoking `wall` after a leak read "revoked wall" alone while `WALL` kept working, the very
    case the rule was made for. The revocation says the other, and how to revoke it."""
    from sqlalchemy import create_engine, text
    from typer.testing import CliRunner

    from maskwatch.cli import app

    db = site_users(tmp_path)
    store = AuthStore(db)
    store.add_token("wall", "read")
    upper = store.add_token("WALL-made-before", "read")
    engine = create_engine(f"sqlite:///{db}")
    with engine.begin() as connection:  # as the last release let `tokens add WALL` make it
        connection.execute(text("UPDATE api_tokens SET name = 'WALL' WHERE name = 'WALL-made-before'"))
    engine.dispose()
    revoked = CliRunner().invoke(app, ["tokens", "revoke", "wall", "--database", db])
    assert revoked.exit_code == 0 and revoked.output.startswith("revoked wall\n"), revoked.output
    assert ("warning: token 'WALL' still works: its name differs from 'wall' in case alone (two tokens, made "
            "before names were one whatever their case); if it is the same, revoke it too: maskwatch tokens revoke "
            f"WALL --database {db}") in " ".join(revoked.output.split()), revoked.output
    assert store.token(upper)["name"] == "WALL"
    store.add_token("door", "read")
    with engine.begin() as connection:  # a third spelling matches two: which one is meant is not guessed
        connection.execute(text("UPDATE api_tokens SET name = 'Wall' WHERE name = 'door'"))
    guessed = CliRunner().invoke(app, ["tokens", "revoke", "wAll", "--database", db])
    assert guessed.exit_code == 1 and ("error: no token 'wAll'; 'WALL', 'Wall' differ from it in case alone: "
                                       "revoke each by its own name") in " ".join(guessed.output.split()), guessed.output
    assert [t["name"] for t in store.tokens()] == ["WALL", "Wall"]
    assert CliRunner().invoke(app, ["tokens", "revoke", "WALL", "--database", db]).output.startswith("revoked WALL\n")


def tokens_of_version_5(url: str) -> None:
    """A database from before tokens could expire (auth schema 5, set back as an older maskwatch
    left it) opens: its tokens keep working and never expire."""
    from sqlalchemy import text

    store = AuthStore(url)
    old = store.add_token("old-script", "full")
    with store.engine.begin() as connection:
        connection.execute(text("ALTER TABLE api_tokens DROP COLUMN expires"))
        connection.execute(text("DELETE FROM auth_schema_version WHERE version >= 6"))
    store.close()
    store = AuthStore(url)
    assert store.token(old, now=time.time() + 100 * 365 * 86400)["name"] == "old-script"
    assert [(t["name"], t["expires"]) for t in store.tokens()] == [("old-script", None)]
    due = store.add_token("due", "read", expires=time.time() - 1)  # the new column, written and read
    assert store.token(due) == {"name": "due", "expired": True}
    store.close()


def test_a_version_5_database_keeps_its_tokens_without_expiry_sqlite(tmp_path):
    tokens_of_version_5(str(tmp_path / "v5.db"))


def test_a_version_5_database_keeps_its_tokens_without_expiry_postgresql(postgres):  # noqa: F811
    tokens_of_version_5(postgres.new_database("tokens_v5"))


def tokens_of_version_6(url: str) -> None:
    """A database from before tokens had cameras (auth schema 6, set back as an older maskwatch
    left it) opens: its tokens keep reading every camera, and a new one's list is kept."""
    from sqlalchemy import text

    store = AuthStore(url)
    old = store.add_token("old-screen", "read")
    with store.engine.begin() as connection:
        connection.execute(text("ALTER TABLE api_tokens DROP COLUMN cameras"))
        connection.execute(text("DELETE FROM auth_schema_version WHERE version >= 7"))
    store.close()
    store = AuthStore(url)
    assert store.token(old) == {"name": "old-screen", "scope": "read", "cameras": None, "expires": None}
    lobby = store.add_token("lobby", "read", cameras=["door", " till ", "door"])  # the new column, written and read
    assert store.token(lobby)["cameras"] == ["door", "till"]
    assert [(t["name"], t["cameras"]) for t in store.tokens()] == [("lobby", ["door", "till"]), ("old-screen", None)]
    store.close()


def test_a_version_6_database_keeps_its_tokens_reading_every_camera_sqlite(tmp_path):
    tokens_of_version_6(str(tmp_path / "v6.db"))


def test_a_version_6_database_keeps_its_tokens_reading_every_camera_postgresql(postgres):  # noqa: F811
    tokens_of_version_6(postgres.new_database("tokens_v6"))


def test_a_tokens_cameras_follow_a_viewers_rules_in_the_store_the_cli_and_the_api(tmp_path):
    """Without a site (`serve`, `--database`) any camera id, as a viewer's; a full token, a list of
    blanks or ids no URL can hold are refused, in the asker's words; nothing is made then."""
    from typer.testing import CliRunner

    from maskwatch.cli import app

    db = site_users(tmp_path)
    store = AuthStore(db)
    for cameras, said in (([" ", ""], "--camera names no camera"), (["door,till"], "camera ids are 1-64 letters"),
                          (["door"], "a camera list (--camera) is for read tokens")):
        with pytest.raises(ValueError, match=re.escape(said)):
            store.add_token("x", "full" if "read tokens" in said else "read", cameras=cameras)
    made = CliRunner().invoke(app, ["tokens", "add", "lobby", "--camera", "door", "--camera", "till", "--database", db])
    assert made.exit_code == 0 and "(read; door, till only; a site token)" in made.output, made.output
    refused = CliRunner().invoke(app, ["tokens", "add", "x", "--camera", "door,till", "--database", db])
    assert refused.exit_code == 1 and "camera ids are 1-64 letters, digits, _ or -; got 'door,till'" in refused.output
    boss = logged_in(db, BOSS)
    answer = boss.post("/v1/tokens", json=BY_BOSS | {"name": "car-park", "cameras": ["car-park"]}, headers=CSRF)
    assert answer.status_code == 201 and answer.json()["cameras"] == ["car-park"]
    bad = boss.post("/v1/tokens", json=BY_BOSS | {"name": "y", "cameras": ["a b"]}, headers=CSRF)
    assert bad.status_code == 400 and bad.json()["error"] == "camera ids are 1-64 letters, digits, _ or -; got 'a b'"
    assert {t["name"]: t["cameras"] for t in boss.get("/v1/tokens").json()["tokens"]} == {
        "car-park": ["car-park"], "lobby": ["door", "till"]}
    with client_of(db) as screen:
        me = screen.get("/v1/me", headers={"Authorization": f"Bearer {answer.json()['token']}"}).json()
        assert (me["via"], me["cameras"]) == ("token", ["car-park"])
    store.close()


def test_users_add_with_a_password_refused_leaves_no_new_database(tmp_path):
    """`users add bob --database new.db` with a short password said so, and left new.db (with its -wal
    and -shm), a database of no user, behind: a mistyped path then was no longer "no such database"."""
    from typer.testing import CliRunner

    from maskwatch.cli import app

    new = tmp_path / "new.db"
    refused = CliRunner().invoke(app, ["users", "add", "bob", "--database", str(new)], input="short\n")
    assert refused.exit_code == 1 and "error: the password needs at least 10 characters, got 5" in refused.output
    assert list(tmp_path.iterdir()) == []
    added = CliRunner().invoke(app, ["users", "add", "bob", "--database", str(new)], input="bob's long password\n")
    assert added.exit_code == 0 and AuthStore(str(new)).user("bob")["role"] == "viewer", added.output


@pytest.mark.parametrize("command", [["tokens", "add", "lobby"], ["users", "add", "dora"], ["users", "edit", "dora"]])
def test_config_beside_database_is_said_before_the_cameras_are_checked(tmp_path, command):
    """`--camera till --config site.yaml --database other.db` said "no camera 'till' in site.yaml", read
    against the site's database; once the camera was right, it said --config and --database go not together."""
    from typer.testing import CliRunner

    from maskwatch.cli import app

    (tmp_path / "site.yaml").write_text("cameras:\n  door: {source: webcam:0}\n")
    said = CliRunner().invoke(app, [*command, "--camera", "till", "--config", str(tmp_path / "site.yaml"),
                                    "--database", str(tmp_path / "other.db")], input="dora's long password\n")
    assert said.exit_code == 1 and said.output == ("error: --config names the site's database (storage.database); "
                                                   "give --config or --database, not both\n"), said.output


def test_a_camera_named_twice_is_one_camera_in_the_answer_the_words_and_the_access_log(tmp_path):
    """`tokens add --camera door --camera door` said "(read; door, door only ...)" and POST /v1/tokens
    answered and logged ["door", "door"], while the database kept "door" once."""
    from typer.testing import CliRunner

    from maskwatch.cli import app

    db = site_users(tmp_path)
    made = CliRunner().invoke(app, ["tokens", "add", "lobby", "--camera", "door", "--camera", "door", "--database", db])
    assert made.exit_code == 0 and "(read; door only; a site token)" in made.output, made.output
    boss = logged_in(db, BOSS)
    answer = boss.post("/v1/tokens", json=BY_BOSS | {"name": "car-park", "cameras": ["door", "till", "door"]},
                       headers=CSRF)
    assert answer.status_code == 201 and answer.json()["cameras"] == ["door", "till"]
    logged = {e["target"] for e in boss.get("/v1/access-log", params={"action": "token_added"}).json()["entries"]}
    assert logged == {"lobby (read; door; never expires)", "car-park (read; door,till; never expires)"}, logged


WRITES = [("post", "/v1/users", BY_BOSS | {"name": "eve", "role": "admin", "password": "eve's long password"}),
          ("post", "/v1/users/ana/password", BY_BOSS | {"password": "chosen by someone else"}),
          ("delete", "/v1/users/ana", BY_BOSS),
          ("post", "/v1/tokens", BY_BOSS | {"name": "mine", "scope": "full"}),
          ("delete", "/v1/tokens/script", None)]


def test_viewers_tokens_other_sites_and_open_servers_change_nothing(tmp_path):
    db = site_users(tmp_path)
    store = AuthStore(db)
    full = {"Authorization": f"Bearer {store.add_token('script', 'full')}"}
    viewer, boss, script = logged_in(db, ANA), logged_in(db, BOSS), client_of(db)
    for method, path, body in WRITES:
        def call(client, headers):
            return client.request(method, path, json=body, headers=headers)

        refused = call(viewer, CSRF)
        assert refused.status_code == 403 and refused.json() == {"error": "this needs the admin role"}, path
        by_token = call(script, full)  # a full token is an admin elsewhere, not here
        assert by_token.status_code == 403 and "not with an API token" in by_token.json()["error"], path
        no_header = call(boss, {})
        assert no_header.status_code == 403 and "X-Maskwatch-CSRF" in no_header.json()["error"], path
        foreign = call(boss, CSRF | {"Origin": "http://evil.example"})
        assert foreign.status_code == 403 and "cross-origin" in foreign.json()["error"], path
    assert viewer.get("/v1/tokens").status_code == 403
    assert [u["name"] for u in store.users()] == ["ana", "boss"] and [t["name"] for t in store.tokens()] == ["script"]
    assert store.check_login(*ANA) is not None and store.session_count("ana") == 1
    assert not [e for e in store.access_log(limit=1000) if e["action"] in CHANGES]
    empty = str(tmp_path / "open.db")
    AuthStore(empty).close()
    with TestClient(create_app(NoFaces(), ServeSettings(auth=AuthSettings(database=empty)))) as anyone:
        first = anyone.post("/v1/users", json=WRITES[0][2], headers=CSRF)
        assert first.status_code == 403 and "maskwatch users add NAME --role admin" in first.json()["error"]
    assert AuthStore(empty).users() == []


def test_the_clis_rules_answer_in_the_apis_names(tmp_path):
    """POST /v1/users refuses as `users add` does, naming the JSON's `cameras` (it said "--camera")."""
    db = site_users(tmp_path)
    boss = logged_in(db, BOSS)

    def add(**body):
        return boss.post("/v1/users", json=BY_BOSS | {"password": "dee's password"} | body, headers=CSRF)

    with pytest.raises(WeakPassword) as cli_says:
        check_strength("short", "dee")
    assert add(name="dee", password="short").json() == {"error": str(cli_says.value)}
    assert add(name="dee", role="admin", cameras=["door"]).json() == {
        "error": "an admin sees every camera: a camera list (cameras) is for viewers"}
    for body in ({"name": "dee ee"}, {"name": "dee", "role": "owner"}, {"name": "dee", "role": "admin", "cameras": ["door"]}):
        refused = add(**body)
        problem = new_user_problem(body["name"], body.get("role", "viewer"), body.get("cameras"), "cameras")
        assert refused.status_code == 400 and refused.json() == {"error": problem}, body
    taken = add(name="ANA")  # names are one whatever their case
    assert taken.status_code == 409 and taken.json() == {
        "error": "user 'ana' exists already (maskwatch users passwd changes a password)"}
    for odd in ("door,till", '<img src=x onerror="alert(1)">'):  # read back as two cameras; markup
        camera = add(name="dee", cameras=["door", odd])
        assert camera.status_code == 400 and camera.json() == {"error": f"camera ids are 1-64 letters, digits, _ or -; got {odd!r}"}
    blank = add(name="dee", cameras=[" "])
    assert blank.status_code == 400 and blank.json() == {"error": "cameras names no camera: leave it out for all cameras"}
    own = boss.post("/v1/users/boss/password", json=BY_BOSS | {"password": "the boss's new password"}, headers=CSRF)
    assert own.status_code == 400 and "Change password" in own.json()["error"]
    assert boss.post("/v1/users/nobody/password", json=BY_BOSS | {"password": "nobody's password"},
                     headers=CSRF).json() == {"error": "no user 'nobody'"}
    assert boss.request("DELETE", "/v1/users/nobody", json=BY_BOSS, headers=CSRF).status_code == 404
    extra = boss.post("/v1/users/ana/password", json=BY_BOSS | {"password": "ana's other password", "current": "x"},
                      headers=CSRF)
    assert extra.status_code == 422  # not read as something else
    too_many = add(name="dee", cameras=[f"camera-{n}" for n in range(31)])
    assert too_many.status_code == 422 and "at most 30" in too_many.json()["error"]
    assert [u["name"] for u in AuthStore(db).users()] == ["ana", "boss"]
    assert AuthStore(db).check_login(*BOSS) is not None


def test_an_admin_changes_a_role_and_cameras_which_hold_from_the_users_next_request(tmp_path):
    """A role and a viewer's cameras were set when the user was added, and changed only by removing
    and adding them again (their password lost). PATCH /v1/users/NAME changes them; the user's
    session stays and its next request has them (each request reads them from the database)."""
    db = site_users(tmp_path)
    boss, ana = logged_in(db, BOSS), logged_in(db, ANA)

    def edit(client, name, **body):
        return client.patch(f"/v1/users/{name}", json=BY_BOSS | body, headers=CSRF)

    assert ana.get("/v1/users").status_code == 403
    made = edit(boss, "ana", role="admin")
    assert made.status_code == 200 and made.json() == {"user": AuthStore(db).user("ana"), "tokens_revoked": []}
    assert made.json()["user"]["role"] == "admin" and "password" not in made.text
    assert ana.get("/v1/users").status_code == 200  # the same session, its next request: an admin
    narrowed = edit(boss, "ana", role="viewer", cameras=[" door ", "till"])
    assert narrowed.status_code == 200 and narrowed.json()["user"]["cameras"] == ["door", "till"]
    assert ana.get("/v1/users").status_code == 403
    assert ana.get("/v1/me").json()["cameras"] == ["door", "till"]
    assert edit(boss, "ana", cameras=["door"]).json()["user"] | {"created": 0} == {
        "id": 2, "name": "ana", "role": "viewer", "cameras": ["door"], "created": 0, "two_step": False,
        "recovery_codes_left": None}  # the role kept
    assert edit(boss, "ana", role="admin").json()["user"]["cameras"] is None  # an admin sees every camera
    assert edit(boss, "ana", role="viewer").json()["user"]["cameras"] is None
    assert edit(boss, "ana", cameras=["till"]).status_code == 200
    assert edit(boss, "ana", all_cameras=True).json()["user"]["cameras"] is None
    me = ana.get("/v1/me").json()
    assert set(me.pop("session")) == {"ends_at", "idle_ends_at"}  # when the session ends: the dashboard warns
    assert me | {"scope": None} == {"user": "ana", "role": "viewer", "via": "session",
                                    "scope": None, "cameras": None, "two_step": False,
                                    "recovery_codes_left": None, "two_step_required": False,
                                    "two_step_kept": False, "timezone": None}  # no site: the browser's clock
    store = AuthStore(db)
    assert store.check_login(*ANA) is not None and store.session_count("ana") == 1  # password and session kept
    rows = [(e["user"], e["target"]) for e in reversed(store.access_log(action="user_changed"))]
    assert rows == [("boss", "ana (admin; all cameras)"), ("boss", "ana (viewer; door,till)"),
                    ("boss", "ana (viewer; door)"), ("boss", "ana (admin; all cameras)"),
                    ("boss", "ana (viewer; all cameras)"), ("boss", "ana (viewer; till)"),
                    ("boss", "ana (viewer; all cameras)")]
    assert not any(secret in repr(store.access_log(limit=1000)) for secret in SECRETS)

    refusals = [(edit(boss, "boss", role="viewer"), 400, "your own role is not changed here: another admin does it "
                                                         "(or maskwatch users edit on the server)"),
                (edit(boss, "ana"), 400, "nothing to change: give role, cameras or all_cameras"),
                (edit(boss, "ana", cameras=["door"], all_cameras=True), 400, "give cameras or all_cameras, not both"),
                (edit(boss, "ana", cameras=[" "]), 400, "cameras names no camera: use all_cameras for every camera"),
                (edit(boss, "ana", role="root"), 400, "role must be one of admin, viewer; got 'root'"),
                (edit(boss, "ana", role="admin", cameras=["door"]), 400,  # said in the body's words, not --camera
                 "an admin sees every camera: a camera list (cameras) is for viewers"),
                (edit(boss, "ana", cameras=["door,till"]), 400,
                 "camera ids are 1-64 letters, digits, _ or -; got 'door,till'"),
                (edit(boss, "nobody", role="admin"), 404, "no user 'nobody'"),
                (edit(ana, "boss", role="viewer"), 403, "this needs the admin role")]
    for answer, status, error in refusals:
        assert (answer.status_code, answer.json()["error"]) == (status, error)
    assert edit(boss, "ana", role="admin", password="ana's new one").status_code == 422  # extra="forbid"
    # `expected`: the role and cameras the caller read; another admin's change meanwhile is refused, not undone
    store.edit_user("ana", cameras=["door"])  # meanwhile (here the CLI's store), while a form showed "all cameras"
    stale = edit(boss, "ana", role="admin", expected={"role": "viewer", "cameras": None})
    assert (stale.status_code, stale.json()["error"]) == (409, "'ana' was changed meanwhile (now viewer of door): "
                                                               "nothing changed; look at them again and redo the change")
    assert store.user("ana")["role"] == "viewer" and store.user("ana")["cameras"] == ["door"]
    assert edit(boss, "ana", cameras=["till"], expected={"role": "viewer", "cameras": ["door"]}).status_code == 200
    assert edit(boss, "ana", all_cameras=True, expected={"role": "viewer", "cameras": ["till"], "x": 1}).status_code == 422
    with pytest.raises(ValueError, match=r"^'ana' was changed meanwhile \(now viewer of till\)"):  # in the write's transaction
        store.edit_user("ana", "admin", expected={"role": "admin", "cameras": None})
    assert edit(boss, "ana", all_cameras=True).json()["user"]["cameras"] is None
    wrong = boss.patch("/v1/users/ana", json={"role": "admin", "admin_password": "a guess"}, headers=CSRF)
    assert wrong.status_code == 403 and wrong.json() == {"error": "your password (admin_password) is wrong"}
    assert [e["target"] for e in store.access_log(action="admin_password_failed")] == ["user_changed ana"]
    store.add_user("deputy", "the deputy's password", "admin")
    store.edit_user("ana", "admin")
    assert edit(boss, "ana", cameras=["door"]).json()["error"] == (
        "an admin sees every camera: a camera list (cameras) is for viewers")  # the store's check, as it is now
    token = store.add_token("ops", "full")
    by_token = client_of(db).patch("/v1/users/ana", json=BY_BOSS | {"role": "viewer"},
                                   headers={"Authorization": f"Bearer {token}"})
    assert by_token.status_code == 403 and "not with an API token" in by_token.json()["error"]
    assert [(u["name"], u["role"]) for u in store.users()] == [("ana", "admin"), ("boss", "admin"), ("deputy", "admin")]

    # The last admin stays one (the store, so the CLI and a race alike): made a viewer, the site is nobody's.
    store.edit_user("ana", "viewer")
    store.remove_user("deputy")
    with pytest.raises(ValueError, match=r"^'boss' is the last admin: add another admin first"):
        store.edit_user("boss", "viewer")
    assert store.user("boss")["role"] == "admin"
    store.close()


def test_the_users_list_offers_every_camera_a_viewers_list_may_name(tmp_path):
    """GET /v1/users' `cameras`, the Users dialog's boxes: it offered /v1/cameras and
    /v1/cameras/retired, so `spare` (enabled: false, nothing stored) could not be ticked; and POST
    /v1/users refused it (the site's running cameras only), where `users add --config` took it."""
    from maskwatch.site.config import load_site_config
    from maskwatch.site.runner import Site
    from tests.conftest import ADMIN
    from tests.test_site_history import make_site

    site, detector = make_site(tmp_path, users=True)  # door runs, till is disabled, old was removed
    path = tmp_path / "site.yaml"
    path.write_text(path.read_text().replace("timezone:", '  spare: {source: "rtsp://127.0.0.1:9/x", '
                                                          'enabled: false}\ntimezone:'))
    site.store.close()
    site = Site(load_site_config(path, environ={}), detector)
    app = create_app(detector, ServeSettings(auth=AuthSettings(database=site.config.storage.database,
                                                               open_without_users=False)), site=site)
    admin = TestClient(app, base_url="http://maskwatch.lan")
    try:
        assert admin.post("/login", json=dict(zip(("username", "password"), ADMIN)), headers=CSRF).status_code == 200
        offered = admin.get("/v1/users").json()["cameras"]
        assert offered == ["door", "till", "spare", "old"]  # the file's order, then the history's
        # `old`, removed (renamed) from the file, is marked on oldviewer's list by the dialog: none was
        assert admin.get("/v1/users").json()["in_file"] == ["door", "till", "spare"]
        assert "spare" not in [c["id"] for c in admin.get("/v1/cameras/retired").json()["cameras"]]
        for number, camera in enumerate(offered):  # each one offered is taken
            added = admin.post("/v1/users", json={"name": f"v{number}", "cameras": [camera], "admin_password": ADMIN[1],
                                                  "password": "a viewer's password"}, headers=CSRF)
            assert added.status_code == 201 and added.json()["user"]["cameras"] == [camera], added.text
        refused = admin.post("/v1/users", json={"name": "v9", "cameras": ["olt"], "admin_password": ADMIN[1],
                                                "password": "a viewer's password"}, headers=CSRF)
        assert refused.status_code == 400 and "no camera 'olt'" in refused.json()["error"]
    finally:
        site.store.close()
    (tmp_path / "serve").mkdir()
    no_site = logged_in(site_users(tmp_path / "serve"), BOSS).get("/v1/users").json()
    assert no_site["cameras"] is None and no_site["in_file"] is None  # no site: any camera, none marked


def test_users_edit_on_the_server_checks_the_sites_cameras_and_keeps_the_last_admin(tmp_path):
    """`maskwatch users edit`: the same rule and words as `users add`, a row of the access log."""
    from typer.testing import CliRunner

    from maskwatch.cli import app

    db = str(tmp_path / "site.db")
    site = tmp_path / "site.yaml"
    site.write_text(f"cameras:\n  door: {{source: 'rtsp://h/s'}}\n  till: {{source: 'rtsp://h/t'}}\n"
                    f"storage: {{database: '{db}'}}\n")
    store = AuthStore(db)
    store.add_user(*BOSS, "admin")
    store.add_user(*ANA, "viewer")

    def edit(*args):
        ran = CliRunner().invoke(app, ["users", "edit", *args], catch_exceptions=False)
        return ran.exit_code, ran.output

    assert edit("ana", "--camera", "door", "--camera", "till", "--config", str(site)) == (
        0, "ana is now viewer (door, till); from their next request\n")
    assert edit("ana", "--camera", "Till", "--config", str(site)) == (
        1, f"error: no camera 'Till' in {site}, nor any history of it in its database; cameras: door, till\n")
    assert edit("ana", "--role", "admin", "--database", db) == (0, "ana is now admin (all cameras); from their next request\n")
    assert edit("boss", "--role", "viewer", "--database", db) == (0, "boss is now viewer (all cameras); from their next request\n")
    assert edit("ana", "--role", "viewer", "--database", db) == (
        1, "error: 'ana' is the last admin: add another admin first (maskwatch users add NAME --role admin)\n")
    assert edit("ana", "--camera", "door", "--config", str(site)) == (
        1, "error: an admin sees every camera: a camera list (--camera) is for viewers\n")
    assert edit("boss", "--all-cameras", "--camera", "door", "--database", db) == (
        1, "error: give --camera or --all-cameras, not both\n")
    assert edit("boss", "--database", db) == (1, "error: nothing to change: give --role, --camera or --all-cameras\n")
    assert edit("boss", "--camera", "", "--database", db) == (
        1, "error: --camera names no camera: use --all-cameras for every camera\n")
    assert edit("boss", "--role", "root", "--database", db) == (1, "error: role must be one of admin, viewer; got 'root'\n")
    assert edit("cy", "--role", "admin", "--database", db) == (1, "error: no user 'cy'\n")
    assert edit("ana", "--role", "admin", "--database", str(tmp_path / "typo.db")) == (
        1, f"error: {tmp_path / 'typo.db'}: no such database (a wrong path? maskwatch users add, or tokens add without --owner, makes one)\n")
    assert not (tmp_path / "typo.db").exists()
    assert [(u["name"], u["role"], u["cameras"]) for u in store.users()] == [("ana", "admin", None),
                                                                              ("boss", "viewer", None)]
    by = f"cli:{getpass.getuser()}"
    assert [(e["user"], e["client"], e["target"]) for e in reversed(store.access_log(action="user_changed"))] == [
        (by, "local", "ana (viewer; door,till)"), (by, "local", "ana (admin; all cameras)"),
        (by, "local", "boss (viewer; all cameras)")]
    assert store.check_login(*ANA) is not None and store.check_login(*BOSS) is not None
    store.close()


def test_the_last_admin_stays_even_alone_and_an_admin_may_leave_another(tmp_path):
    """`users remove` keeps the last admin while others are left; the dashboard keeps them alone
    too: removing themselves, an admin left a site nobody can log in to."""
    db = str(tmp_path / "alone.db")
    AuthStore(db).add_user(*BOSS, "admin")
    boss = logged_in(db, BOSS)

    def leave(client, name, password):
        return client.request("DELETE", f"/v1/users/{name}", json={"admin_password": password}, headers=CSRF)

    alone = leave(boss, *BOSS)
    assert alone.status_code == 409 and alone.json()["error"].startswith("'boss' is the last admin")
    assert boss.post("/v1/users", json=BY_BOSS | {"name": "ana", "password": ANA[1]}, headers=CSRF).status_code == 201
    assert leave(boss, *BOSS).status_code == 409  # a viewer left with no admin
    assert boss.post("/v1/users", json=BY_BOSS | {"name": "deputy", "role": "admin", "password": "the deputy's password"},
                     headers=CSRF).status_code == 201
    assert leave(boss, *BOSS).status_code == 200  # another admin is left
    assert boss.get("/v1/me").status_code == 401  # and the leaver is logged out
    deputy = logged_in(db, ("deputy", "the deputy's password"))
    assert leave(deputy, "deputy", "the deputy's password").status_code == 409
    assert [(u["name"], u["role"]) for u in AuthStore(db).users()] == [("ana", "viewer"), ("deputy", "admin")]


def test_an_admin_turns_off_a_lost_phones_two_step_login_ending_the_users_sessions(tmp_path):
    """A user who lost their phone could be helped only on the server (`users 2fa NAME --off`).
    An admin now does it on the dashboard with their own password: the user's sessions end (one
    started by whoever has the phone does not go on), the password alone logs in, and the access
    log says which admin did it to whom."""
    db = site_users(tmp_path)
    store = AuthStore(db)
    store.add_user("cy", "cy's own password", "viewer")
    secret = pyotp.random_base32(32)
    assert store.turn_on("ana", secret, step=0) == ""
    full = {"Authorization": f"Bearer {store.add_token('script', 'full')}"}
    phone = client_of(db)  # whoever has ana's phone and password
    assert phone.post("/login", json={"username": "ana", "password": ANA[1], "code": code_at(secret)},
                      headers=CSRF).status_code == 200
    boss, viewer = logged_in(db, BOSS), logged_in(db, ("cy", "cy's own password"))
    off = "/v1/users/ana/two-step"

    def turn_off(client, path=off, body=BY_BOSS, headers=CSRF):
        return client.request("DELETE", path, json=body, headers=headers)

    assert turn_off(viewer).json() == {"error": "this needs the admin role"}
    by_token = turn_off(client_of(db), headers=full)
    assert by_token.status_code == 403 and "not with an API token" in by_token.json()["error"]
    own = turn_off(boss, "/v1/users/boss/two-step")
    assert own.status_code == 400 and own.json()["error"] == (
        "your own two-step login is turned off under Two-step login (DELETE /two-step), which asks for a code")
    assert turn_off(boss, "/v1/users/nobody/two-step").json() == {"error": "no user 'nobody'"}
    not_on = turn_off(boss, "/v1/users/cy/two-step")
    assert not_on.status_code == 409 and not_on.json() == {"error": "two-step login is not on for cy"}
    wrong = turn_off(boss, body={"admin_password": "a thief's guess"})
    assert wrong.status_code == 403 and wrong.json() == {"error": "your password (admin_password) is wrong"}
    with store.engine.connect() as connection:  # a failed login of the admin, as at POST /login
        assert connection.exec_driver_sql("SELECT count(*) FROM login_failures WHERE key = 'user:boss'").scalar() == 1
    assert store.user("ana")["two_step"] and phone.get("/v1/me").json()["user"] == "ana"  # nothing changed yet
    listed = {u["name"]: u for u in boss.get("/v1/users").json()["users"]}  # how many recovery codes are left
    assert (listed["ana"]["two_step"], listed["ana"]["recovery_codes_left"]) == (True, 0)
    assert (listed["cy"]["two_step"], listed["cy"]["recovery_codes_left"]) == (False, None)

    done = turn_off(boss)
    assert done.status_code == 200, done.text
    assert done.json() == {"status": "two-step login off for ana: their sessions ended; their password alone logs in",
                           "user": "ana"}
    assert phone.get("/v1/me").status_code == 401 and store.session_count("ana") == 0
    assert not store.user("ana")["two_step"] and store.two_step("ana")["step"] is None
    assert boss.get("/v1/users").json()["users"][0] | {"id": 0, "created": 0} == {
        "id": 0, "name": "ana", "role": "viewer", "cameras": None, "created": 0, "two_step": False,
        "recovery_codes_left": None}
    assert turn_off(boss).json() == {"error": "two-step login is not on for ana"}  # once
    again = client_of(db)
    assert again.post("/login", json={"username": "ana", "password": ANA[1]}, headers=CSRF).status_code == 200
    assert again.get("/v1/me").json()["two_step"] is False
    rows = [(e["action"], e["user"], e["client"], e["target"]) for e in reversed(store.access_log(limit=100))
            if e["action"] in CHANGES or e["action"] == "admin_password_failed"]
    assert rows == [("admin_password_failed", "boss", "testclient", "totp_off ana"),
                    ("totp_off", "boss", "testclient", "ana")]
    assert secret not in repr(store.access_log(limit=1000)) + done.text + wrong.text


def test_a_refused_body_says_no_password_back(tmp_path):
    """FastAPI's 422 says a refused value back in `detail`: a password too long, or holding a lone
    surrogate, was echoed whole (POST /password had that defect)."""
    db = site_users(tmp_path)
    boss = logged_in(db, BOSS)
    too_long = "my secret phrase " * 60
    for method, path, body in (("POST", "/v1/users", BY_BOSS | {"name": "dee", "password": too_long}),
                               ("POST", "/v1/users/ana/password", BY_BOSS | {"password": too_long}),
                               ("POST", "/v1/users", {"name": "dee", "password": "dee's password", "admin_password": too_long}),
                               ("DELETE", "/v1/users/ana", {"admin_password": too_long}),
                               ("PATCH", "/v1/users/ana", {"role": "admin", "admin_password": too_long}),
                               ("POST", "/v1/tokens", {"name": "ci", "admin_password": too_long})):
        refused = boss.request(method, path, json=body, headers=CSRF)
        assert refused.status_code == 422 and "at most 1000 characters" in refused.json()["error"]
        assert "my secret phrase" not in refused.text
    raw = '{"password": "ana\'s \\ud800 hidden password"}'
    surrogate = boss.post("/v1/users/ana/password", content=raw, headers=CSRF | {"Content-Type": "application/json"})
    assert surrogate.status_code == 422 and "hidden password" not in surrogate.text
    form = boss.post("/v1/users", data={"name": "dee", "password": "a form's password"}, headers=CSRF)
    assert form.status_code == 422 and "form's" not in form.text
    assert AuthStore(db).check_login(*ANA) is not None


def test_each_change_but_a_revocation_needs_the_admins_own_password_counted_as_a_login(tmp_path, caplog):
    """A stolen or unattended session added users, reset passwords, removed users and made tokens
    with its cookie alone. Each now needs `admin_password`, checked as POST /login checks one: a
    wrong one is a failed login of the admin (access log, the server's fail2ban line, the limits
    shared with /login), and is said back nowhere."""
    db = site_users(tmp_path)
    boss = client_of(db, user_limit=3)
    assert boss.post("/login", json={"username": BOSS[0], "password": BOSS[1]}, headers=CSRF).status_code == 200
    guess = {"admin_password": "a thief's guess"}
    changes = [("POST", "/v1/users", {"name": "eve", "role": "admin", "password": "eve's long password"}),
               ("POST", "/v1/users/ana/password", {"password": "chosen by a thief"}),
               ("DELETE", "/v1/users/ana", {}),
               ("POST", "/v1/tokens", {"name": "loot", "scope": "full"})]
    for method, path, body in changes:
        missing = boss.request(method, path, json=body, headers=CSRF)
        assert missing.status_code == 422 and "admin_password" in missing.text, path
        assert not any(secret in missing.text for secret in ("eve's long password", "chosen by a thief")), path
    with caplog.at_level(logging.WARNING, logger="maskwatch.security.access"):
        for method, path, body in changes[:3]:
            wrong = boss.request(method, path, json=body | guess, headers=CSRF)
            assert wrong.status_code == 403 and wrong.json() == {"error": "your password (admin_password) is wrong"}
        limited = boss.request(*changes[3][:2], json=changes[3][2] | BY_BOSS, headers=CSRF)  # the right one, too late
        assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0
    assert client_of(db, user_limit=3).post("/login", json={"username": BOSS[0], "password": BOSS[1]},
                                            headers=CSRF).status_code == 429  # one count with the logins
    assert [r.getMessage() for r in caplog.records if r.name == "maskwatch.security.access"][:3] == [
        "login failed for user 'boss' from testclient"] * 3
    store = AuthStore(db)
    failed = [(e["user"], e["target"]) for e in reversed(store.access_log(action="admin_password_failed"))]
    assert failed == [("boss", "user_added eve"), ("boss", "password_set ana"), ("boss", "user_removed ana")]
    assert [u["name"] for u in store.users()] == ["ana", "boss"] and store.tokens() == []
    assert store.check_login(*ANA) is not None and store.session_count("ana") == 0
    said = caplog.text + repr(store.access_log(limit=1000))
    assert "a thief's guess" not in said and BOSS[1] not in said
    store.clear_failures("user:boss")
    store.clear_failures("client:testclient")

    store.add_token("script", "read")
    assert boss.delete("/v1/tokens/script", headers=CSRF).status_code == 200  # taking access away: one click
    with store.engine.begin() as connection:  # boss made a viewer: the session's next change is refused
        connection.exec_driver_sql("UPDATE users SET role = 'viewer' WHERE name = 'boss'")
    demoted = boss.post("/v1/tokens", json=BY_BOSS | {"name": "loot"}, headers=CSRF)
    assert demoted.status_code == 403 and demoted.json() == {"error": "this needs the admin role"}
    assert boss.post("/logout", headers=CSRF).status_code == 200
    assert boss.post("/v1/tokens", json=BY_BOSS | {"name": "loot"}, headers=CSRF).status_code == 401  # ended session
    assert store.tokens() == []

    reader = logged_in(db, ANA)  # the dialogs' own files, to any user: these only, whatever the path's dots
    assert reader.get("/static/users.js").headers["content-type"] == "text/javascript; charset=utf-8"
    assert reader.get("/static/access-log.js").headers["content-type"] == "text/javascript; charset=utf-8"
    assert reader.get("/static/access-log.css").headers["content-type"] == "text/css; charset=utf-8"
    for path in ("/static/%2e%2e", "/static/..%2fdashboard.html", "/static/dashboard.html", "/static/users.js%00"):
        assert reader.get(path).status_code == 404, path
    assert client_of(db).get("/static/users.js").status_code == 401


def removals_at_once(url: str, removals: list[tuple[tuple[str, str], str]], demote: bool = False) -> list[str]:
    """Each (acting admin, user to remove, or with `demote` to make a viewer) in a thread and a
    store of its own, started together: what each said, sorted ("removed" last)."""
    stores, said, go = [AuthStore(url) for _ in removals], [], threading.Barrier(len(removals))

    def remove(own: AuthStore, acting: tuple[str, str], whom: str) -> None:
        go.wait()
        try:
            if demote:
                own.edit_user(whom, "viewer", acting=acting)
            else:
                own.remove_user(whom, leave_an_admin=True, acting=acting)
            said.append("removed")
        except ValueError as err:
            said.append(str(err))

    threads = [threading.Thread(target=remove, args=(own, *removal)) for own, removal in zip(stores, removals)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for own in stores:
        own.close()
    return sorted(said)


def acting_admins_race(url: str) -> None:
    """Two admins of three remove each other at once, each with their session's check done: one
    removal is made and the other refused, its admin gone (both went, and a removed admin's last
    request still added a token). Then the last two remove themselves at once: one stays (USERS_LOCK).
    Then two admins make each other viewers at once: one stays an admin."""
    store = AuthStore(url)
    for name in ("ada", "bo", "cai"):
        if store.user(name) is not None:  # PostgreSQL's server is the module's
            store.remove_user(name)
        store.add_user(name, f"{name}'s long password", "admin")

    def checked(name: str, password: str) -> tuple[str, str]:  # as confirm_admin gives it
        return name, store.check_login(name, password)["password_hash"]

    acting = {name: checked(name, f"{name}'s long password") for name in ("ada", "bo", "cai")}
    said = removals_at_once(url, [(acting["ada"], "bo"), (acting["bo"], "ada")])
    assert said[1] == "removed" and "was removed, or their role or password changed" in said[0], said
    left = [u["name"] for u in store.users() if u["name"] in ("ada", "bo", "cai")]
    assert len(left) == 2 and "cai" in left
    gone = ({"ada", "bo"} - set(left)).pop()
    with pytest.raises(ValueError, match="was removed"):
        store.add_token("after-removal", "full", acting=acting[gone])
    survivor = left[0]
    store.set_password(survivor, "another long password")  # another admin's reset while theirs was checked
    with pytest.raises(ValueError, match="password changed"):
        store.add_user("eve", "eve's long password", "admin", acting=acting[survivor])
    assert store.user("eve") is None and "after-removal" not in [t["name"] for t in store.tokens()]

    acting[survivor] = checked(survivor, "another long password")
    said = removals_at_once(url, [(acting[survivor], survivor), (acting["cai"], "cai")])
    assert said[1] == "removed" and "is the last admin" in said[0], said
    left = [u["name"] for u in store.users() if u["name"] in ("ada", "bo", "cai")]
    assert len(left) == 1
    store.remove_user(left[0])

    # Two admins making each other viewers at once: one stays an admin (each was checked an admin).
    for name in ("ada", "bo"):
        store.add_user(name, f"{name}'s long password", "admin")
    acting = {name: checked(name, f"{name}'s long password") for name in ("ada", "bo")}
    said = removals_at_once(url, [(acting["ada"], "bo"), (acting["bo"], "ada")], demote=True)
    assert said[1] == "removed" and "was removed, or their role or password changed" in said[0], said
    both = sorted((u["role"], u["name"]) for u in store.users() if u["name"] in ("ada", "bo"))
    assert [role for role, _ in both] == ["admin", "viewer"]
    for _, name in reversed(both):  # the viewer first: the admin is the last one
        store.remove_user(name)
    store.close()


def test_an_admin_removed_or_changed_meanwhile_changes_nothing_sqlite(tmp_path):
    acting_admins_race(str(tmp_path / "race.db"))


def test_an_admin_removed_or_changed_meanwhile_changes_nothing_postgresql(postgres):  # noqa: F811
    acting_admins_race(postgres.url)


def test_dot_and_dash_names_are_refused_for_users_and_tokens_and_an_old_one_removed_with_the_cli(tmp_path):
    """`.` and `..` passed the name rule, but a URL cannot name them (/v1/users/.. is /v1/): such a
    user or token could not be reset, removed or revoked from the dashboard. `-x` passed it too,
    and `maskwatch users remove -x` said "No such option: -x"."""
    from typer.testing import CliRunner

    from maskwatch.cli import app

    db = site_users(tmp_path)
    boss = logged_in(db, BOSS)
    for name, said in ((".", "not . or .."), ("..", "not . or .."), ("-x", "not starting with -"),
                       ("--help", "not starting with -")):
        user = boss.post("/v1/users", json=BY_BOSS | {"name": name, "password": "a dotted password"}, headers=CSRF)
        assert user.status_code == 400 and user.json() == {"error": new_user_problem(name, "viewer", None)}
        assert said in user.json()["error"]
        token = boss.post("/v1/tokens", json=BY_BOSS | {"name": name}, headers=CSRF)
        assert token.status_code == 400 and "token names are 1-58" in token.json()["error"], token.text
        for command, stdin in ((("users", "add"), "a dotted password\n"), (("tokens", "add"), "")):
            ran = CliRunner().invoke(app, [*command, "--database", db, "--", name], input=stdin)
            assert ran.exit_code == 1 and said in ran.output, ran.output
        with pytest.raises(ValueError, match=said):
            AuthStore(db).add_token(name, "read")
    assert AuthStore(db).check_login("boss", BOSS[1])  # no attempt above counted as the admin's guess
    store = AuthStore(db)
    with store.engine.begin() as connection:  # made before the rules, as the docs say to remove them
        connection.exec_driver_sql("INSERT INTO users (name, password_hash, role, created) VALUES "
                                   "('..', 'x', 'viewer', 0), ('-x', 'x', 'viewer', 0)")
    assert CliRunner().invoke(app, ["users", "remove", "..", "--database", db]).exit_code == 0
    assert CliRunner().invoke(app, ["users", "remove", "--database", db, "--", "-x"]).exit_code == 0
    assert [u["name"] for u in store.users()] == ["ana", "boss"] and store.tokens() == []


def test_a_viewers_longest_camera_list_fits_postgresql(postgres):  # noqa: F811
    """users.cameras holds 2000 characters: a longer list (31 cameras of 64) failed on PostgreSQL
    with the driver's error (SQLite kept it); it is refused, as `users add` says it, and the API's
    bound (30 of 64) fits."""
    store = AuthStore(postgres.url)
    for name in ("wide", "wider"):
        if store.user(name) is not None:  # the server is the module's
            store.remove_user(name)
    longest = [f"{n:02d}-" + "c" * 61 for n in range(30)]
    assert store.add_user("wide", "a wide viewer's password", "viewer", longest)["cameras"] == longest
    with pytest.raises(ValueError, match="at most 2000 characters together"):
        store.add_user("wider", "a wider viewer's password", "viewer", longest + ["30-" + "c" * 61])
    assert store.user("wider") is None
    store.remove_user("wide")
    store.close()


def test_the_users_and_access_log_dialogs_on_a_phone(tmp_path, tab, page):  # noqa: F811
    db = site_users(tmp_path)
    marked_up = '<img src=x onerror="window.injected=1">'  # a camera id stored before the rule refused it
    with AuthStore(db).engine.begin() as connection:
        connection.exec_driver_sql("INSERT INTO users (name, password_hash, role, cameras, created) "
                                   "VALUES ('mallory', 'x', 'viewer', ?, 0)", (marked_up,))
    AuthStore(db).add_user("zed", "zed's own password", "viewer", ["c" * 64])  # the longest camera id
    AuthStore(db).turn_on("zed", pyotp.random_base32(32), step=0)  # zed's phone is lost
    AuthStore(db).add_token("m" * 58, "read")  # the longest name a token can have, a site token's
    older = time.time() - 3600
    for second in range(60):  # an hour ago, more than the Access log's first page of 50
        AuthStore(db).log("camera_frame", "ana", "192.0.2.9", f"/v1/cameras/door{second}/frame.jpg", now=older + second)
    # The longest user a row can have, a long path and an IPv6 address, in the first page (a table, not stacked, at 700 px).
    AuthStore(db).log("camera_frame", "token:" + "x" * 58, "2001:db8:1234:5678:9abc:def0:1234:5678", "/v1/" + "y" * 250,
                      now=time.time() - 60)
    with serving(["--database", db], tmp_path) as base:
        phone = tab(360, 740)
        log_in(phone, base, BOSS)
        phone.wait_for_selector("#users-open", state="visible")
        phone.click("#users-open")
        phone.wait_for_selector("#users-table tr[data-user=ana]")
        assert phone.evaluate("document.getElementById('users-dialog').open")
        assert phone.evaluate("document.activeElement.id") == "users-title"
        assert cells(phone, "#users-table tr[data-user=ana]")[:4] == ["ana", "viewer", "all", "off"]
        assert phone.inner_text("#users-table tr[data-user=zed] td:nth-child(4)") == "on (no recovery codes left)"
        assert phone.inner_text("#users-table tr[data-user=mallory] td:nth-child(3)") == marked_up  # as text
        assert phone.evaluate("document.querySelectorAll('#users-dialog img').length === 0 && !window.injected")
        # Whose password each field is, for password managers: the admin's own beside their name, a
        # new one beside the user it is for (never saved as the admin's).
        autocomplete = phone.evaluate("""Object.fromEntries([...document.querySelectorAll('#users-dialog input')]
            .filter((i) => i.type !== 'checkbox').map((i) => [i.id, i.autocomplete]))""")
        assert autocomplete == {"users-me-name": "username", "users-me-password": "current-password",
                                "users-reset-user": "username", "users-reset-password": "new-password",
                                "users-reset-again": "new-password", "users-add-name": "username",
                                "users-add-password": "new-password", "users-add-again": "new-password",
                                "tokens-secret-value": "off", "tokens-add-name": "off", "tokens-add-days": "off"}
        assert phone.input_value("#users-me-name") == "boss"
        assert phone.locator("#users-table tr[data-user=boss] button").all_inner_texts() == ["Remove"]  # own: Change password
        assert phone.is_hidden("#users-add-cameras")  # `serve` with no site: a viewer sees every camera
        assert phone.evaluate("document.documentElement.scrollWidth") <= 360  # no sideways scroll
        # Each user and token stacks, each value after its heading, the buttons under them: at 320 px
        # nothing scrolls sideways, not the page, the dialog nor the tables' own boxes (at 390 px they
        # did, "Remove" and "Revoke" cut at the screen's edge), zed's camera id of 64 characters and
        # the token's name of 58 wrap, and on a touch screen every button is a finger's height.
        touch = phone_tab(page, 320, 740)
        log_in(touch, base, BOSS)
        touch.wait_for_selector("#users-open", state="visible")
        touch.click("#users-open")
        touch.wait_for_selector("#users-table tr[data-user=ana]")
        for screen in (phone, touch):
            screen.set_viewport_size({"width": 320, "height": 740})
            assert screen.eval_on_selector_all("#users-table tr[data-user=zed] td, #tokens-table tbody tr:first-child td",
                                               "(tds) => tds.map((td) => getComputedStyle(td, '::before').content)") == [
                '"Name: "', '"Role: "', '"Cameras: "', '"Two-step login: "', "none",  # the buttons say what they do
                '"Name: "', '"Scope: "', '"Cameras: "', '"Owner: "', '"Made: "', '"Last used: "', '"Expires: "', "none"]
            assert not screen.evaluate(SIDEWAYS)
            assert screen.eval_on_selector_all("#users-dialog, #users-dialog .scroll",
                                               "(boxes) => boxes.every((b) => b.scrollWidth <= b.clientWidth)")
            buttons = screen.evaluate(ROW_BUTTONS)
            assert len(buttons) == 12 and all(within for _, within, _ in buttons), buttons  # zed's four among them
        assert all(height >= 40 for _, _, height in touch.evaluate(ROW_BUTTONS))
        assert touch.evaluate(SMALL, "#users-dialog") == []  # the dialog's other controls too
        touch.context.close()
        phone.set_viewport_size({"width": 360, "height": 740})

        phone.fill("#users-add-name", "cy")
        phone.fill("#users-add-password", "cy's own password")
        phone.fill("#users-add-again", "cy's own passwort")
        phone.click("#users-add button[type=submit]")
        assert phone.inner_text("#users-error") == "Not added: the two passwords differ."
        phone.fill("#users-add-again", "cy's own password")
        phone.click("#users-add button[type=submit]")  # "Your password" left empty: asked for, nothing sent
        assert phone.inner_text("#users-error") == 'Not added: type your own password in "Your password" at the top first.'
        assert phone.evaluate("document.activeElement.id") == "users-me-password"
        phone.fill("#users-me-password", "not the boss's password")
        phone.click("#users-add button[type=submit]")
        phone.wait_for_function("() => document.getElementById('users-error').textContent.includes('wrong')")
        assert phone.inner_text("#users-error") == "Not added: your password (admin_password) is wrong."
        phone.fill("#users-me-password", BOSS[1])  # once: kept for every change while the dialog is open
        phone.click("#users-add button[type=submit]")
        phone.wait_for_selector("#users-table tr[data-user=cy]")
        assert phone.inner_text("#users-status") == "Added viewer cy (all cameras)."
        assert phone.input_value("#users-add-password") == "" and phone.inner_text("#users-error") == ""
        phone.fill("#users-add-name", "dee")
        phone.fill("#users-add-password", "short")
        phone.fill("#users-add-again", "short")
        phone.click("#users-add button[type=submit]")
        phone.wait_for_function("() => document.getElementById('users-error').textContent !== ''")
        assert phone.inner_text("#users-error") == "Not added: the password needs at least 10 characters, got 5."
        assert phone.evaluate(AT_FAULT) == ["users-add-password", "true"]  # said about its field
        phone.fill("#users-add-password", "1234567890")  # one of the common passwords: said why
        phone.fill("#users-add-again", "1234567890")
        phone.click("#users-add button[type=submit]")
        phone.wait_for_function("() => document.getElementById('users-error').textContent.includes('common')")
        assert phone.inner_text("#users-error") == f"Not added: {COMMON_PASSWORD}."
        assert phone.evaluate(AT_FAULT) == ["users-add-password", "true"]
        phone.fill("#users-add-name", "dee ee")  # another 400, about the name: the password not marked
        phone.fill("#users-add-password", "dee's own password")
        phone.fill("#users-add-again", "dee's own password")
        phone.click("#users-add button[type=submit]")
        phone.wait_for_function("() => document.getElementById('users-error').textContent.includes('names are')")
        assert phone.get_attribute("#users-add-password", "aria-invalid") is None

        phone.click("button[aria-label='Reset password of ana']")
        assert phone.evaluate("document.activeElement.id") == "users-reset-password"
        phone.fill("#users-reset-password", "qwerty123456")
        phone.fill("#users-reset-again", "qwerty123456")
        phone.click("#users-reset button[type=submit]")
        phone.wait_for_function("() => document.getElementById('users-error').textContent.includes('common')")
        assert phone.inner_text("#users-error") == f"Not set: {COMMON_PASSWORD}."
        assert phone.evaluate(AT_FAULT) == ["users-reset-password", "true"]
        phone.fill("#users-reset-password", "ana's second password")
        phone.fill("#users-reset-again", "ana's second password")
        phone.click("#users-reset button[type=submit]")
        phone.wait_for_function("() => document.getElementById('users-status').textContent.startsWith('password of ana')")
        assert phone.is_hidden("#users-reset") and phone.input_value("#users-reset-password") == ""
        phone.click("button[aria-label='Reset password of ana']")  # to the one just set: said on its field too
        phone.fill("#users-reset-password", "ana's second password")
        phone.fill("#users-reset-again", "ana's second password")
        phone.click("#users-reset button[type=submit]")
        phone.wait_for_function("() => document.getElementById('users-error').textContent.includes('current')")
        assert phone.inner_text("#users-error") == "Not set: the new password is the current one: choose another."
        assert phone.evaluate(AT_FAULT) == ["users-reset-password", "true"]  # it stood at the top, on no field
        phone.click("#users-reset-cancel")

        assert phone.locator("button[aria-label^='Turn off two-step']").count() == 1  # zed's only: on, not mine
        phone.click("button[aria-label='Turn off two-step login of zed']")
        assert phone.inner_text("#users-confirm-question") == (
            "Turn off two-step login of zed? Their sessions end at once; their password alone logs in.")
        phone.click("#users-confirm-yes")
        phone.wait_for_selector("#users-table tr[data-user=zed] td:nth-child(4):text-is('off')")
        assert phone.inner_text("#users-status") == ("two-step login off for zed: their sessions ended; their password "
                                                     "alone logs in")
        assert phone.locator("button[aria-label^='Turn off two-step']").count() == 0

        # Edit: the role, then a confirm with Keep focused; the row says the change.
        phone.click("button[aria-label='Edit the role and cameras of ana']")
        assert phone.evaluate("document.activeElement.id") == "users-edit-role"
        assert phone.inner_text("#users-edit-title") == "Role and cameras of ana"
        assert phone.is_hidden("#users-edit-cameras")  # no site's cameras, none of ana's
        phone.select_option("#users-edit-role", "admin")
        assert phone.evaluate("document.documentElement.scrollWidth") <= 360
        phone.click("#users-edit button[type=submit]")
        assert phone.is_hidden("#users-edit") and phone.evaluate("document.activeElement.id") == "users-confirm-no"
        assert phone.inner_text("#users-confirm-question") == "Make ana an admin of all cameras? Their next request has it."
        phone.click("#users-confirm-no")
        assert phone.inner_text("#users-status") == "Nothing changed."
        assert phone.evaluate("document.activeElement.id") == "users-title"  # not the page's body: Tab stays here
        phone.click("button[aria-label='Edit the role and cameras of ana']")
        phone.select_option("#users-edit-role", "admin")
        phone.click("#users-edit button[type=submit]")
        phone.click("#users-confirm-yes")
        phone.wait_for_selector("#users-table tr[data-user=ana] td:nth-child(2):text-is('admin')")  # the list read again
        assert phone.inner_text("#users-status") == "ana is now admin (all cameras)."
        assert cells(phone, "#users-table tr[data-user=ana]")[:3] == ["ana", "admin", "all"]
        assert phone.evaluate("document.activeElement.id") == "users-title"
        phone.click("button[aria-label='Edit the role and cameras of ana']")
        phone.select_option("#users-edit-role", "viewer")
        phone.click("#users-edit button[type=submit]")
        phone.click("#users-confirm-yes")
        phone.wait_for_selector("#users-table tr[data-user=ana] td:nth-child(2):text-is('viewer')")
        assert phone.inner_text("#users-status") == "ana is now viewer (all cameras)."
        # A camera of the user's no longer on the site's list is shown, as text, to be unticked.
        phone.click("button[aria-label='Edit the role and cameras of mallory']")
        assert phone.locator("#users-edit-cameras input").evaluate_all(
            "(boxes) => boxes.map((b) => [b.value, b.checked])") == [[marked_up, True]]
        assert phone.inner_text("#users-edit-cameras label").strip() == marked_up
        assert phone.evaluate("document.querySelectorAll('#users-dialog img').length === 0 && !window.injected")
        phone.uncheck("#users-edit-cameras input")
        phone.click("#users-edit button[type=submit]")
        assert phone.inner_text("#users-confirm-question") == "Make mallory a viewer of all cameras? Their next request has it."
        phone.click("#users-confirm-yes")
        phone.wait_for_selector("#users-table tr[data-user=mallory] td:nth-child(3):text-is('all')")
        assert phone.inner_text("#users-status") == "mallory is now viewer (all cameras)."
        assert cells(phone, "#users-table tr[data-user=mallory]")[:3] == ["mallory", "viewer", "all"]
        phone.click("button[aria-label='Edit the role and cameras of zed']")  # its box wraps: no sideways scroll
        assert phone.inner_text("#users-edit-cameras label").strip() == "c" * 64
        assert phone.evaluate("document.documentElement.scrollWidth") <= 360
        assert phone.evaluate("(d => d.scrollWidth <= d.clientWidth)(document.getElementById('users-dialog'))")
        phone.click("button[aria-label='Edit the role and cameras of cy']")
        phone.click("#users-edit-cancel")  # nothing sent
        assert phone.is_hidden("#users-edit") and phone.inner_text("#users-status") == "Nothing changed."
        assert phone.evaluate("document.activeElement.id") == "users-title"
        # Another admin's change meanwhile (here the CLI's): the form, opened on the list read before it,
        # is refused, not saved over it (cy was made an admin of all cameras), and the row shows it.
        AuthStore(db).edit_user("cy", cameras=["door"])
        phone.click("button[aria-label='Edit the role and cameras of cy']")
        phone.select_option("#users-edit-role", "admin")
        phone.click("#users-edit button[type=submit]")
        phone.click("#users-confirm-yes")
        phone.wait_for_function("() => document.getElementById('users-error').textContent !== ''")
        assert phone.inner_text("#users-error") == ("Not changed: 'cy' was changed meanwhile (now viewer of door): "
                                                    "nothing changed; look at them again and redo the change.")
        phone.wait_for_selector("#users-table tr[data-user=cy] td:nth-child(3):text-is('door')")  # read again
        assert AuthStore(db).user("cy")["role"] == "viewer"

        phone.click("button[aria-label='Remove cy']")
        assert phone.evaluate("document.activeElement.id") == "users-confirm-no"  # Enter keeps cy
        assert phone.inner_text("#users-confirm-question") == "Remove cy? Their sessions end at once."
        phone.click("#users-confirm-yes")
        phone.wait_for_selector("#users-table tr[data-user=cy]", state="detached")

        # Its expiry, as `tokens add --expires DAYS` (tokens made here never expired): 90 days unless
        # chosen, here a number of days typed; the table says when, on the page's clock, as `tokens list`.
        assert phone.input_value("#tokens-add-expires") == "90" and phone.is_hidden("#tokens-add-days")
        assert cells(phone, "#tokens-table tbody tr:first-child")[6] == "never"  # the site token's
        phone.fill("#tokens-add-name", "prometheus")
        phone.select_option("#tokens-add-expires", "days")
        assert phone.evaluate("document.activeElement.id") == "tokens-add-days"
        phone.fill("#tokens-add-days", "7")
        phone.click("#tokens-add button[type=submit]")
        phone.wait_for_selector("#tokens-secret", state="visible")
        (made,) = [t for t in AuthStore(db).tokens() if t["name"] == "prometheus"]
        assert 6.99 < (made["expires"] - time.time()) / 86400 <= 7
        ends = f"{datetime.fromtimestamp(made['expires'], ZoneInfo(phone.evaluate(ZONE))):%Y-%m-%d %H:%M:%S}"
        assert phone.inner_text("#users-status") == (f"Token prometheus created (read; expires {ends}): copy it now, "
                                                     "it is not shown again.")
        assert phone.input_value("#tokens-add-expires") == "90" and phone.is_hidden("#tokens-add-days")  # as new
        # within 14 days of its end, said in words (one made with the 90 days chosen stopped unannounced)
        assert cells(phone, "#tokens-table tr[data-token=prometheus]")[6] == f"{ends} (ends in 7 days: make its successor)"
        token = phone.input_value("#tokens-secret-value")
        assert token.startswith("mw_") and phone.evaluate("document.activeElement.id") == "tokens-copy"
        phone.click("#tokens-copy")
        phone.wait_for_function("() => document.getElementById('tokens-copied').textContent !== ''")
        assert phone.inner_text("#tokens-copied") in ("Copied.", "Selected: copy it with the keyboard (Ctrl+C).")
        assert httpx.get(base + "/v1/me", headers={"Authorization": f"Bearer {token}"}, timeout=10).status_code == 200
        assert phone.evaluate("document.documentElement.scrollWidth") <= 360

        phone.keyboard.press("Escape")  # closed: the token shown and the passwords typed go
        # The dialog's `close` event, which empties them, is a task after `open` turns false (2 of
        # 4 runs under load read the field in between): waited for by its own sign, the token field.
        phone.wait_for_function("() => !document.getElementById('users-dialog').open"
                                " && document.getElementById('tokens-secret').hidden")
        assert phone.evaluate("document.activeElement.id") == "users-open"
        assert token not in phone.content() and phone.input_value("#users-add-password") == ""
        assert phone.input_value("#users-me-password") == ""  # the admin's own, too
        phone.click("#users-open")
        phone.wait_for_selector("#tokens-table tr[data-token=prometheus]")
        assert cells(phone, "#tokens-table tr[data-token=prometheus]")[:4] == ["prometheus", "read", "all", "boss"]
        phone.click("button[aria-label='Remove boss']")  # a removal says the tokens it takes
        assert phone.inner_text("#users-confirm-question") == ("Remove boss? Their sessions end at once, yours too. "
                                                               "Their API token will be revoked.")
        phone.click("#users-confirm-no")
        assert phone.is_hidden("#tokens-secret")  # and revoking asks for no password: one click
        phone.click("button[aria-label='Revoke the token prometheus']")
        phone.click("#users-confirm-yes")
        phone.wait_for_selector("#tokens-table tr[data-token=prometheus]", state="detached")
        assert httpx.get(base + "/v1/me", headers={"Authorization": f"Bearer {token}"}, timeout=10).status_code == 401

        # The Access log: newest first, a failed login marked, a name typed at the login page that is
        # no user's not kept, and one logged before that was so (as text).
        phone.keyboard.press("Escape")  # the close handler (the focus back on Users) is waited for, as above
        phone.wait_for_function("() => !document.getElementById('users-dialog').open"
                                " && document.activeElement.id === 'users-open'")
        AuthStore(db).log("login_failed", None, "127.0.0.1", marked_up)
        refused = httpx.post(base + "/login", json={"username": marked_up, "password": "a guess"}, headers=CSRF,
                             timeout=10)
        assert refused.status_code == 401
        phone.click("#access-log-open")
        phone.wait_for_selector("#access-log-table tbody tr")
        assert phone.evaluate("document.getElementById('access-log-dialog').open")
        assert phone.evaluate("document.activeElement.id") == "access-log-title"
        newest = "#access-log-table tbody tr:first-child"
        assert cells(phone, newest)[1:] == ["nobody logged in", "Refused login_failed", "(unknown name)", "127.0.0.1"]
        assert "(unknown name)" in phone.inner_text("#access-log-unknown")  # the marker said in words
        legacy = "#access-log-table tbody tr:nth-child(2)"
        assert cells(phone, legacy)[1:] == ["nobody logged in", "Refused login_failed", marked_up, "127.0.0.1"]
        assert phone.evaluate(f"document.querySelector('{newest}').classList.contains('refused')")
        # `serve` without a site: the browser's clock, said once at the top, as its name there
        zone = phone.evaluate(ZONE)
        assert phone.inner_text("#clock") == f"Times: {zone} (your browser's clock)"
        (entry,) = [e for e in AuthStore(db).access_log(limit=5) if e["id"] == int(phone.get_attribute(newest, "data-id"))]
        at = datetime.fromtimestamp(entry["at"], ZoneInfo(zone))
        assert phone.locator(newest + " td").first.inner_text() == f"{at:%Y-%m-%d %H:%M:%S}"
        assert phone.eval_on_selector(newest + " td:nth-child(4)", "(td) => getComputedStyle(td).unicodeBidi") \
            == "plaintext"  # a right-to-left override in the typed name stays in its own run
        assert phone.evaluate("document.querySelectorAll('#access-log-dialog img').length === 0 && !window.injected")
        records = phone.evaluate("fetch('/v1/privacy').then((r) => r.json()).then((p) => p.access_log.records)")
        assert phone.locator("#access-log-action option").evaluate_all("(os) => os.map((o) => o.value)") == [
            "", *records]  # the server's list, not one of the page's own
        assert phone.evaluate("document.documentElement.scrollWidth") <= 360  # the rows stack on a phone
        phone.set_viewport_size({"width": 700, "height": 740})  # a table: its long cells wrap, none pushed out
        phone.wait_for_function("() => getComputedStyle(document.querySelector('#access-log-table td')).display === 'table-cell'")
        assert phone.evaluate("(d => d.scrollWidth <= d.clientWidth)(document.getElementById('access-log-dialog'))")
        phone.set_viewport_size({"width": 360, "height": 740})
        assert phone.locator("#access-log-table tbody tr").count() == 50
        phone.focus("#access-log-older")  # clicked twice at once: its page is read and shown once
        phone.evaluate("const b = document.getElementById('access-log-older'); b.click(); b.click()")
        phone.wait_for_function("() => document.getElementById('access-log-older').hidden")
        phone.wait_for_load_state("networkidle")  # a second read's answer, had there been one, is in
        shown = phone.locator("#access-log-table tbody tr").evaluate_all("(rows) => rows.map((r) => +r.dataset.id)")
        assert shown == [e["id"] for e in AuthStore(db).access_log(limit=1000)][:len(shown)] and len(shown) > 60
        assert phone.evaluate("document.activeElement.dataset.label") == "When"  # the first older row
        phone.select_option("#access-log-action", "token_added")  # a filter reads the log again
        phone.wait_for_function("() => document.getElementById('access-log-status').textContent.startsWith('1 entries')")
        assert cells(phone, "#access-log-table tbody tr")[1:] == ["boss", "token_added",
                                                                    "prometheus (read; expires in 7 days)", "127.0.0.1"]
        phone.select_option("#access-log-action", "")
        phone.fill("#access-log-user", "ana")
        phone.press("#access-log-user", "Enter")
        # Waited for by its own rows, not their count: the read of the action emptied ("all", 50
        # rows too) may answer first, and a wait for 50 rows then passed on the wrong list.
        phone.wait_for_function("""() => { const users = [...document.querySelectorAll(
            '#access-log-table tbody td:nth-child(2)')].map((td) => td.textContent);
            return users.length === 50 && users.every((user) => user === 'ana'); }""")
        assert phone.is_visible("#access-log-older")  # 60 rows of ana's
        phone.keyboard.press("Escape")  # the focus goes back to its button in the close handler, a task after `open`
        phone.wait_for_function("() => !document.getElementById('access-log-dialog').open"
                                " && document.activeElement.id === 'access-log-open'")

        store = AuthStore(db)
        assert [(u["name"], u["role"]) for u in store.users()] == [("ana", "viewer"), ("boss", "admin"),
                                                                    ("mallory", "viewer"), ("zed", "viewer")]
        assert store.check_login("ana", "ana's second password") is not None
        assert [e["target"] for e in store.access_log(action="admin_password_failed")] == ["user_added cy"]
        assert [e["action"] for e in reversed(store.access_log(limit=100)) if e["action"] in CHANGES] == [
            "user_added", "password_set", "totp_off", "user_changed", "user_changed", "user_changed", "user_removed",
            "token_added", "token_revoked"]
        assert [e["target"] for e in reversed(store.access_log(action="user_changed"))] == [
            "ana (admin; all cameras)", "ana (viewer; all cameras)", "mallory (viewer; all cameras)"]
        viewer = tab(360, 740)
        log_in(viewer, base, ("ana", "ana's second password"))
        viewer.wait_for_selector("#account", state="visible")  # /v1/me answered: the Users button decided
        assert viewer.is_hidden("#users-open") and viewer.is_hidden("#access-log-open")  # a viewer never sees them

        # A `token_expired` row is a request refused (a revoked token's 401), but the dialog marked only
        # actions ending `_failed` or `_limited`: it stood unmarked, read as a token's ordinary use.
        AuthStore(db).log("token_expired", "token:nightly", "192.0.2.9", None)
        phone.click("#access-log-open")
        phone.fill("#access-log-user", "")  # the filter typed above: the whole log again
        phone.press("#access-log-user", "Enter")
        row = "#access-log-table tbody tr:has(td:text-is('token:nightly'))"
        phone.wait_for_selector(row)
        assert cells(phone, row)[1:] == ["token:nightly", "Refused token_expired", "", "192.0.2.9"]
        assert phone.locator(row).evaluate("(tr) => tr.classList.contains('refused')")  # shaded too
        login = "#access-log-table tbody tr:has(td:text-is('login'))"  # ana's login just now: no refusal
        assert phone.locator(login).first.locator("td").all_inner_texts()[1:3] == ["ana", "login"]


def test_the_users_dialog_asks_of_a_user_require_two_step_covers(tmp_path, tab, sample_dir):  # noqa: F811
    """On a site with server.require_two_step: admins, the Users dialog's question of a covered user
    (GET /v1/users's two_step_kept) says they set it up again at their next login, not "their
    password alone logs in" as of a viewer; and of an admin's tokens, that they keep working (a
    token has no login: two-step off or not, nothing stops it)."""
    from tests.test_two_step import site_requiring_two_step

    store = AuthStore(str(tmp_path / "site.db"))
    store.add_user(*BOSS, "admin")
    bosses = pyotp.random_base32(32)
    store.turn_on("boss", bosses, step=0)
    store.add_user(*ANA, "admin")
    store.turn_on("ana", pyotp.random_base32(32), step=0)
    store.add_token("ana-metrics", "read", owner="ana")
    store.add_user("zed", "zed's own password", "viewer")
    store.turn_on("zed", pyotp.random_base32(32), step=0)
    store.close()
    with site_requiring_two_step(tmp_path, sample_dir, "admins") as base:
        phone = tab(360, 740)
        phone.goto(base + "/login")
        phone.fill("#username", BOSS[0])
        phone.fill("#password", BOSS[1])
        phone.fill("#code", code_at(bosses))
        phone.click("button[type=submit]")
        phone.wait_for_url(base + "/", timeout=20_000)
        phone.wait_for_selector("#users-open", state="visible", timeout=20_000)
        phone.click("#users-open")
        phone.wait_for_selector("#users-table tr[data-user=zed]")
        phone.click("button[aria-label='Turn off two-step login of zed']")
        assert phone.inner_text("#users-confirm-question") == (
            "Turn off two-step login of zed? Their sessions end at once; their password alone logs in.")
        phone.click("#users-confirm-no")
        phone.fill("#users-me-password", BOSS[1])
        phone.click("button[aria-label='Turn off two-step login of ana']")
        assert phone.inner_text("#users-confirm-question") == (
            "Turn off two-step login of ana? Their sessions end at once; the site requires two-step login of them: "
            "at their next login they set it up again before anything else. Their API token keeps working (a "
            "token has no login).")
        phone.click("#users-confirm-yes")
        phone.wait_for_selector("#users-table tr[data-user=ana] td:nth-child(4):text-is('off')")
        assert phone.inner_text("#users-status") == (
            "two-step login off for ana: their sessions ended; the site requires two-step login of admins "
            "(server.require_two_step: admins): at their next login they set it up again before anything else "
            "(whoever logs in first with their password sets up their phone); 1 API token of theirs still works "
            "(ana-metrics): a token has no login (revoke it under Tokens or with `tokens revoke`)")


def test_the_cli_writes_the_same_access_log_rows_as_the_dashboard(tmp_path):
    """Who added, removed or reset a user, or made or revoked a token, on the server: the commands
    wrote no row, so the access log told the dashboard's changes only."""
    from typer.testing import CliRunner

    from maskwatch.cli import app

    db = str(tmp_path / "cli.db")
    for command, stdin in ((("users", "add", "cy", "--camera", "door"), "cy's own password\n"),
                           (("users", "passwd", "cy"), "cy's second password\n"), (("users", "remove", "cy"), ""),
                           (("tokens", "add", "prometheus", "--scope", "full", "--expires", "30"), ""), (("tokens", "revoke", "prometheus"), "")):
        ran = CliRunner().invoke(app, [*command, "--database", db], input=stdin)
        assert ran.exit_code == 0, ran.output
    rows = [(e["action"], e["user"], e["client"], e["target"]) for e in reversed(AuthStore(db).access_log())]
    by = f"cli:{getpass.getuser()}"
    assert rows == [("user_added", by, "local", "cy (viewer; door)"), ("password_set", by, "local", "cy"),
                    ("user_removed", by, "local", "cy"), ("token_added", by, "local", "prometheus (full; expires in 30 days)"),
                    ("token_revoked", by, "local", "prometheus")]


def test_the_dashboards_bound_on_a_tokens_days_is_written_once_and_is_the_apis():
    """users.js says and checks a token's days itself (1-3650, as the API and `tokens add --expires`
    refuse past auth_settings.MAX_TOKEN_DAYS): the bound was written there three times by hand (the
    field's label, its max, the check); now once, held equal to the API's here."""
    from pathlib import Path

    from maskwatch.security.auth_settings import MAX_TOKEN_DAYS

    js = (Path(__file__).parents[1] / "src/maskwatch/serving/static/users.js").read_text()
    assert re.findall(r"const MAX_DAYS = (\d+);", js) == [str(MAX_TOKEN_DAYS)]
    assert str(MAX_TOKEN_DAYS) not in js.replace(f"const MAX_DAYS = {MAX_TOKEN_DAYS};", "")

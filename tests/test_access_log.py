"""GET /v1/access-log pages back through the log as /v1/events does (a `before` cursor in each
page's `next`), on the real app and SQLite; a NUL in a name, on PostgreSQL. The dashboard's Access log dialog in Chromium:
tests/test_users_admin.py (the Users dialog's test, on its server)."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from jsonschema import Draft202012Validator

from maskwatch.detection.detector import WEIGHTS, Detector
from maskwatch.security.auth_settings import AuthSettings
from maskwatch.security.schema import MIGRATIONS, access_log
from maskwatch.security.store import AuthStore, Conflict, NoSuch
from maskwatch.serving.app import ServeSettings, create_app
from maskwatch.site.config import load_site_config
from maskwatch.site.runner import Site
from tests.postgres import postgres  # noqa: F401  (fixture)
from tests.test_users_admin import BOSS, CSRF, client_of, logged_in, site_users

NOW = time.time() - 3600  # within the retention (a login deletes older rows)


def test_the_access_log_pages_back_by_cursor_keeping_its_filters(tmp_path):
    db = site_users(tmp_path)
    store = AuthStore(db)
    # Ten failed logins, three of them in the same instant (a tie on the time: the id orders them).
    for second in (1, 2, 3, 3, 3, 4, 5, 6, 7, 8):
        store.log("login_failed", None, "192.0.2.7", f"guess{second}", now=NOW + second)
    store.log("token_added", "boss", "192.0.2.1", "cron (read)", now=NOW + 5.5)  # filtered out below
    admin = logged_in(db, BOSS)
    everything = [e["id"] for e in store.access_log(action="login_failed", limit=1000)]
    assert len(everything) == 10

    first = admin.get("/v1/access-log", params={"action": "login_failed", "limit": 4}).json()
    assert first["next"].startswith("/v1/access-log?action=login_failed&limit=4&before=")
    store.log("login_failed", None, "192.0.2.7", "meanwhile", now=NOW + 9)  # newer: shifts no page
    seen, page = [e["id"] for e in first["entries"]], first
    while page["next"] is not None:
        page = admin.get(page["next"]).json()
        assert len(page["entries"]) <= 4
        seen += [e["id"] for e in page["entries"]]
    assert seen == everything  # none skipped, none twice, newest first, ties by id

    until = admin.get("/v1/access-log", params={"until": NOW + 4, "action": "login_failed"}).json()
    assert [e["target"] for e in until["entries"]] == ["guess3"] * 3 + ["guess2", "guess1"]
    assert until["next"] is None  # the last page says so
    assert {e["action"] for e in admin.get("/v1/access-log", params={"since": NOW + 5, "until": NOW + 6}).json()[
        "entries"]} == {"login_failed", "token_added"}


def test_a_bad_cursor_or_time_range_is_said_in_one_line(tmp_path):
    admin = logged_in(site_users(tmp_path), BOSS)
    bad = admin.get("/v1/access-log", params={"before": "yesterday"})
    assert bad.status_code == 422 and bad.json()["error"].startswith("query parameter 'before': not a cursor")
    backwards = admin.get("/v1/access-log", params={"since": "2026-09-22", "until": "2026-09-21"})
    assert backwards.status_code == 400 and backwards.json()["error"].startswith("since must not be after until")
    late = admin.get("/v1/access-log", params={"until": "tomorrow"})
    assert late.status_code == 400 and late.json()["error"].startswith("until must be Unix seconds or an ISO 8601")


def test_a_nul_in_a_name_is_no_database_outage_on_postgresql(postgres):  # noqa: F811
    """PostgreSQL takes no NUL in text. A login whose name held one answered 503 (the database
    "away") and wrote no row; a filter or a user's or token's name in a URL holding one, 503 too."""
    store = AuthStore(postgres.url)
    store.add_user(*BOSS, "admin")
    stranger = client_of(postgres.url)
    refused = stranger.post("/login", json={"username": "bo\x00ss", "password": BOSS[1]}, headers=CSRF)
    assert refused.status_code == 401 and refused.json() == {"error": "wrong user name, password or code"}
    admin = logged_in(postgres.url, BOSS)  # the log was not held off by a failed write: this login's row is in
    assert [(e["action"], e["target"]) for e in store.access_log()] == [("login", None),
                                                                         ("login_failed", "(unknown name)")]
    bad = admin.get("/v1/access-log", params={"user": "bo\x00ss"})
    assert bad.status_code == 400 and bad.json()["error"] == (
        "user holds a NUL character, which no row's user has; got 'bo\\x00ss'")
    assert admin.get("/v1/access-log", params={"action": "login\x00"}).status_code == 400
    # and the schema says so: it called a NUL valid, and the fuzzer took this 400 for a valid request refused
    schema = {p["name"]: p["schema"] for p in admin.get("/openapi.json").json()["paths"]["/v1/access-log"]["get"]["parameters"]}
    for name in ("user", "action"):
        assert not Draft202012Validator(schema[name]).is_valid("bo\x00ss"), schema[name]
        assert Draft202012Validator(schema[name]).is_valid("boss"), schema[name]
    for method, url in (("PATCH", "/v1/users/bo%00ss"), ("DELETE", "/v1/users/bo%00ss"),
                        ("POST", "/v1/users/bo%00ss/password"), ("DELETE", "/v1/tokens/ops%00")):
        body = {"role": "viewer", "admin_password": BOSS[1]} if method == "PATCH" else {"admin_password": BOSS[1]}
        if url.endswith("password"):
            body["password"] = "a long new password"
        answer = admin.request(method, url, json=body if "tokens" not in url else None, headers=CSRF)
        assert answer.status_code == 404 and answer.json()["error"].startswith("no "), (method, url, answer.text)
        # with the name rule: "no user 'bo\\x00ss'" alone read as a user missing
        assert " names are 1-" in answer.json()["error"], (method, url, answer.text)
    # A Python caller of the store alike: each lookup by name was a DataError (PostgreSQL's refusal)
    assert store.user_spellings("bo\x00ss") == [] and store.two_step("bo\x00ss") is None
    assert store.access_log(user="bo\x00ss") == [] and store.session_count("bo\x00ss") == 0
    for change in (store.remove_user, store.stored_user_name, lambda name: store.edit_user(name, "viewer"), store.turn_off_for,
                   lambda name: store.revoke_token(name)):
        with pytest.raises(NoSuch, match=" names are 1-"):
            change("bo\x00ss")
    store.close()


def test_a_failed_login_keeps_a_users_name_but_not_a_password_typed_as_the_name(tmp_path, caplog):
    """Users type their password or a recovery code into the name field: a failed login's name was
    kept as typed, in clear, in a log shown to admins. Only a user's name (whatever its case) is,
    as the user's: `ANA` is ana's, counted and logged as `ana`."""
    db = site_users(tmp_path)
    stranger = client_of(db, client_limit=100, user_limit=2)
    for name in ("ana", "ANA", BOSS[1], "abcd-efgh"):
        assert stranger.post("/login", json={"username": name, "password": "a guess"}, headers=CSRF).status_code == 401
    assert stranger.post("/login", json={"username": "Ana", "password": "a guess"}, headers=CSRF).status_code == 429
    limited = client_of(db, client_limit=1)  # a client at its limit: the first name of its minute
    assert limited.post("/login", json={"username": BOSS[1], "password": "x"}, headers=CSRF).status_code == 429
    admin = logged_in(db, BOSS)
    rows = admin.get("/v1/access-log").json()["entries"]
    assert [(e["action"], e["target"]) for e in rows if e["action"] != "login"] == [
        ("login_limited", "(unknown name)"), ("login_limited", "ana"),
        ("login_failed", "(unknown name)"), ("login_failed", "(unknown name)"), ("login_failed", "ana"),
        ("login_failed", "ana")]
    assert BOSS[1] not in str(AuthStore(db).access_log(limit=1000))
    assert BOSS[1] not in caplog.text and "login failed for user (unknown name) from testclient" in caplog.text


def old_failed_logins(db: str, names: list[str]) -> None:
    """`db` as a maskwatch before the one-time clean-up left it: no auth_chores table, and failed
    logins logged with the name as typed (a password, a recovery code), built row by row."""
    store = AuthStore(db)
    with store.engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE auth_chores")
        for i, name in enumerate(names):
            connection.execute(access_log.insert().values(at=1_000 + i, user=None, client="10.0.0.9",
                                                          action="login_failed" if i % 2 else "login_limited",
                                                          target=name))
        connection.execute(access_log.insert().values(at=2_000, user="boss", client="10.0.0.9", action="user_removed",
                                                      target="a-password-2024"))  # not a login's: left as it is
    store.close()


def test_failed_logins_logged_before_keep_no_name_that_is_no_users_once_the_store_opens(tmp_path):
    """Rows written before failed logins' names were kept only where they are a user's still held
    what was typed (often a password) for retention_days. The first open replaces each with
    `(unknown name)`, once: a user's name (any case) stays; the schema's version does not move (an
    older maskwatch still opens the database); a user removed later keeps their rows' name."""
    db = site_users(tmp_path)  # users boss and ana
    old_failed_logins(db, ["ana", "ANA", "my secret password", "abcd-efgh", "", "boss", "(unknown name)"])
    store = AuthStore(db)
    rows = sorted(store.access_log(limit=1000), key=lambda row: row["at"])
    assert [row["target"] for row in rows if row["action"] in ("login_failed", "login_limited")] == [
        "ana", "ANA", "(unknown name)", "(unknown name)", "(unknown name)", "boss", "(unknown name)"]
    assert [row["target"] for row in rows if row["action"] == "user_removed"] == ["a-password-2024"]
    with store.engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT max(version) FROM auth_schema_version").scalar() == len(MIGRATIONS)
        assert connection.exec_driver_sql("SELECT chore FROM auth_chores").scalars().all() == ["unknown_names"]
    store.remove_user("ana")
    store.close()
    again = AuthStore(db)  # once only: ana's failed logins were hers when logged
    assert [row["target"] for row in again.access_log(limit=1000)].count("ana") == 1
    again.close()


def test_the_clean_up_of_old_failed_login_names_runs_on_postgresql(postgres):  # noqa: F811
    store = AuthStore(postgres.url)
    store.add_user("ana", "ana's long password", "admin")
    store.close()
    old_failed_logins(postgres.url, ["Ana", "hunter2-typed-as-a-name"])
    store = AuthStore(postgres.url)
    targets = [row["target"] for row in store.access_log(limit=1000)]
    assert "Ana" in targets and "hunter2-typed-as-a-name" not in targets
    store.close()


def test_a_name_that_is_a_users_only_by_pythons_case_folding_is_no_users(tmp_path):
    """'\u212aim' (the Kelvin sign, which Python lowers to k) is no user's name in any case (USER_NAME
    is ASCII) and the clean-up of old rows, lowering in the database, drops it; the live check,
    lowering it in Python, took it for kim's and logged it as typed. `KIM` is kim's, logged as kim."""
    db = site_users(tmp_path)
    store = AuthStore(db)
    store.add_user("kim", "kim's long password", "viewer")
    store.close()
    stranger = client_of(db, client_limit=100)
    for name in ("\u212aim", "KIM"):
        assert stranger.post("/login", json={"username": name, "password": "a guess"}, headers=CSRF).status_code == 401
    admin = logged_in(db, BOSS)
    rows = admin.get("/v1/access-log").json()["entries"]
    assert [(e["action"], e["target"]) for e in rows if e["action"] != "login"] == [
        ("login_failed", "kim"), ("login_failed", "(unknown name)")]


def test_a_name_is_a_users_by_its_ascii_letters_case_alone_on_postgresql_too(postgres):  # noqa: F811
    """PostgreSQL's lower() follows the database's locale (C.UTF-8, en_US.UTF-8): it made the Kelvin
    sign a k and 'İ' an i, so there '\u212aim' was kim's (a failed login logged and counted as kim's)
    and '\u0130van' logged in as ivan, where SQLite's lower(), ASCII's alone, took them for no one's
    (the test above); a copy of the site's database to PostgreSQL changed who a name is. Both
    databases now fold the ASCII letters alone, as user names are ASCII (USER_NAME)."""
    store = AuthStore(postgres.url)
    store.add_user("kim", "kim's long password", "viewer")
    store.add_user("ivan", "ivan's long password", "viewer")
    assert store.user_spellings("KIM") == ["kim"] and store.user_spellings("IVAN") == ["ivan"]
    assert store.user_spellings("\u212aim") == [] and store.user_spellings("\u0130van") == []
    stranger = client_of(postgres.url, client_limit=100)
    for name in ("\u212aim", "KIM"):
        assert stranger.post("/login", json={"username": name, "password": "a guess"}, headers=CSRF).status_code == 401
    assert stranger.post("/login", json={"username": "\u0130van", "password": "ivan's long password"},
                         headers=CSRF).status_code == 401
    assert [(e["action"], e["target"]) for e in store.access_log(limit=3)] == [
        ("login_failed", "(unknown name)"), ("login_failed", "kim"), ("login_failed", "(unknown name)")]
    for name in ("kim", "ivan"):
        store.remove_user(name)
    store.close()


def test_names_are_one_whatever_their_case_in_a_turkish_postgresql_database(postgres):  # noqa: F811
    """A database whose locale is Turkish lowers 'I' to a dotless 'ı': `Ivan` was added beside
    `ivan` (two accounts one person mistakes for each other, what the case rule refuses) and
    `IVAN` found no one. Names are compared by their ASCII letters alone (schema.name_key)."""
    from sqlalchemy import create_engine, text

    server = create_engine(postgres.url, isolation_level="AUTOCOMMIT")
    with server.connect() as connection:
        connection.execute(text("CREATE DATABASE turkish TEMPLATE template0 LOCALE_PROVIDER icu "
                                "ICU_LOCALE 'tr-TR' LOCALE 'C.UTF-8'"))
    server.dispose()
    store = AuthStore(postgres.url.rsplit("/", 1)[0] + "/turkish")
    store.add_user("ivan", "ivan's long password", "viewer")
    assert store.user_spellings("IVAN") == ["ivan"]
    with pytest.raises(Conflict, match="user 'ivan' exists already"):
        store.add_user("Ivan", "the other Ivan's password", "viewer")
    store.close()


def test_a_failed_login_looks_its_name_up_once(tmp_path):
    """Its counting key and its log row each looked the name up (store.user_spellings: a query of
    users by lower(name)); one lookup serves both, at a wrong password and past the limit alike."""
    from sqlalchemy import event

    db = site_users(tmp_path)
    stranger = client_of(db, client_limit=100, user_limit=1)
    lookups = []
    event.listen(stranger.app.state.access.store.engine, "before_cursor_execute",
                 lambda conn, cursor, statement, *rest: lookups.append(statement) if "lower(" in statement else None)
    for name, status in (("ana", 401), ("a password typed as a name", 401), ("ana", 429)):
        lookups.clear()
        assert stranger.post("/login", json={"username": name, "password": "a guess"}, headers=CSRF).status_code == status
        assert len(lookups) == 1, (name, lookups)
    rows = AuthStore(db).access_log(limit=10)
    assert [(row["action"], row["target"]) for row in rows] == [
        ("login_limited", "ana"), ("login_failed", "(unknown name)"), ("login_failed", "ana")]


def test_the_access_log_of_a_user_named_in_another_case_is_theirs(tmp_path):
    """`?user=Ana` answered no rows for `ana`'s, names being one whatever their case (a login as
    `Ana` is hers); a token's or a command's user is matched as written."""
    db = site_users(tmp_path)
    store = AuthStore(db)
    store.log("logout", "ana", "192.0.2.7", now=NOW)
    store.log("token_added", "cli:ana", "local", "cron (read)", now=NOW + 1)
    admin = logged_in(db, BOSS)
    for asked, users in (("ANA", ["ana"]), ("ana", ["ana"]), ("CLI:ana", []), ("cli:ana", ["cli:ana"])):
        entries = admin.get("/v1/access-log", params={"user": asked}).json()["entries"]
        assert [e["user"] for e in entries] == users, (asked, entries)


def test_the_access_log_of_a_removed_user_stays_theirs_beside_a_new_user_in_another_case(tmp_path):
    """`bob` removed and `Bob` added since (the name is free again): `?user=bob`, the removed user's
    name exactly as logged, answered Bob's rows alone and none of bob's, the name read as Bob's.
    The exact name's rows are kept, with those of the user it means now (each row names its user)."""
    db = site_users(tmp_path)
    store = AuthStore(db)
    store.add_user("bob", "bob's long password", "viewer")
    store.log("logout", "bob", "192.0.2.7", now=NOW)
    store.remove_user("bob")
    store.add_user("Bob", "the new Bob's password", "viewer")
    store.log("logout", "Bob", "192.0.2.8", now=NOW + 1)
    admin = logged_in(db, BOSS)
    for asked, users in (("bob", ["Bob", "bob"]), ("Bob", ["Bob"]), ("BOB", ["Bob"])):
        entries = admin.get("/v1/access-log", params={"user": asked}).json()["entries"]
        assert [e["user"] for e in entries] == users, (asked, entries)


def test_a_date_alone_is_the_site_s_day(tmp_path):
    """An admin in Berlin asking for yesterday's rows (since=YESTERDAY&until=TODAY) had UTC's day,
    01:00 or 02:00 to 01:00 or 02:00 here: the row at 00:30 was missing, the one at 00:30 today there."""
    berlin = ZoneInfo("Europe/Berlin")
    today = datetime.now(berlin).date()
    yesterday = today - timedelta(days=1)
    db = site_users(tmp_path)
    store = AuthStore(db)
    for day, target in ((yesterday, "yesterday 00:30"), (today, "today 00:30")):
        store.log("login_failed", None, "192.0.2.7", target,
                  now=datetime(day.year, day.month, day.day, 0, 30, tzinfo=berlin).timestamp())
    store.close()
    (tmp_path / "site.yaml").write_text("cameras:\n  door: {source: 'rtsp://127.0.0.1:1/x'}\ntimezone: Europe/Berlin\n"
                                        "storage: {database: site.db, privacy: true}\n")
    config = load_site_config(tmp_path / "site.yaml", environ={})
    detector = Detector.load(config=WEIGHTS / "centerface.json")  # never called
    app = create_app(detector, ServeSettings(auth=AuthSettings(database=db, open_without_users=False)),
                     site=Site(config, detector))
    admin = TestClient(app, base_url="http://maskwatch.lan")  # no lifespan: no camera started
    assert admin.post("/login", json={"username": BOSS[0], "password": BOSS[1]}, headers=CSRF).status_code == 200
    rows = admin.get("/v1/access-log", params={"action": "login_failed", "since": f"{yesterday}", "until": f"{today}"})
    assert [e["target"] for e in rows.json()["entries"]] == ["yesterday 00:30"], rows.text

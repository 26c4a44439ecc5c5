"""A camera renamed in the site's file (door -> entrance): the viewers and read tokens limited to its
old id (security/missing_cameras.py) are said by `run --check` with the command that fixes each,
marked by `users list --config` and `tokens list --config`, and named to the Users dialog by GET
/v1/users' `in_file`; on a real SQLite database. The dialog's marks in Chromium: tests/test_dashboard.py."""

from __future__ import annotations

import shlex

import pytest
from typer.testing import CliRunner

from tests.postgres import postgres  # noqa: F401  (fixture)

from maskwatch.cli import app
from maskwatch.security.store import AuthStore

PASSWORD = "a long enough password"


@pytest.fixture
def renamed(tmp_path):
    return renamed_site(tmp_path, str(tmp_path / "site.db"))


def renamed_site(tmp_path, db: str):
    """site.yaml whose `door` became `entrance` (till kept, yard switched off); its database `db` holding
    an admin, a viewer of every camera, a viewer of door and till, a viewer of yard, a read token
    of door (boss's) and a site token of every camera."""
    site = tmp_path / "site.yaml"
    site.write_text("cameras:\n  entrance: {source: 'rtsp://127.0.0.1:1/a'}\n  till: {source: 'rtsp://127.0.0.1:1/b'}\n"
                    f"  yard: {{source: 'rtsp://127.0.0.1:1/c', enabled: false}}\nstorage: {{database: '{db}'}}\n")
    store = AuthStore(db)
    store.add_user("boss", PASSWORD, "admin")
    store.add_user("ana", PASSWORD, "viewer")
    store.add_user("door-staff", PASSWORD, "viewer", ["door", "till"])
    store.add_user("gardener", PASSWORD, "viewer", ["yard"])
    store.add_token("lobby", "read", owner="boss", cameras=["door"])
    store.add_token("prometheus", "read")
    store.close()
    return site


def run(*args: str):
    ran = CliRunner().invoke(app, list(args), catch_exceptions=False)
    return ran.exit_code, ran.output


def test_run_check_names_each_viewer_and_token_of_a_renamed_camera_with_its_fix(renamed):
    """`run --check` said the site was fine, and the guard's dashboard and the lobby screen lost the
    entrance without a word; now each is said, with a command that, its NEW_ID filled in, fixes it."""
    code, said = run("run", "--config", str(renamed), "--check")
    assert code == 0, said
    warned = [line.strip() for line in said.splitlines() if "no longer has" in line]
    assert warned == [
        f"warning: viewer door-staff is limited to door, which {renamed} no longer has (renamed or removed): they see "
        "its history, not the camera it became; give them its id (NEW_ID): maskwatch users edit door-staff "
        f"--camera till --camera NEW_ID --config {renamed}",
        f"warning: token lobby is limited to door, which {renamed} no longer has (renamed or removed): it reads its "
        "history, not the camera it became; a token's cameras are set when it is made: make another, put it where "
        "this one is used, then revoke this one: maskwatch tokens add NEW_NAME --camera NEW_ID --owner boss "
        f"--config {renamed}; maskwatch tokens revoke lobby --config {renamed}"], said
    fix = warned[0].split(": maskwatch ")[-1].replace("NEW_ID", "entrance")
    assert run(*shlex.split(fix))[0] == 0
    assert [line for line in run("run", "--config", str(renamed), "--check")[1].splitlines() if "door-staff" in line] == []


def test_users_and_tokens_lists_mark_the_cameras_the_file_no_longer_has(renamed):
    """`users list --config` and `tokens list --config` showed `cameras=door,till` as any other list;
    now a last column names the cameras gone from the file (yard, switched off, is still in it)."""
    marks = {line.split("\t")[0]: line.split("\t")[6:] for line in run("users", "list", "--config", str(renamed))[1].splitlines()}
    assert marks == {"ana": [], "boss": [], "door-staff": [f"not in {renamed}: door"], "gardener": []}, marks
    tokens = {line.split("\t")[0]: line.split("\t")[7:] for line in run("tokens", "list", "--config", str(renamed))[1].splitlines()}
    assert tokens == {"lobby": [f"not in {renamed}: door"], "prometheus": []}, tokens
    database = str(renamed.parent / "site.db")  # without the file nothing to compare: nothing marked
    assert all(len(line.split("\t")) == 6 for line in run("users", "list", "--database", database)[1].splitlines())


def test_a_database_server_is_read_by_probe_not_by_plain_check_postgresql(tmp_path, postgres):  # noqa: F811
    """On PostgreSQL the same words, read by `--probe` (which logs in to the database anyway); plain
    `--check` connects to nothing, as before."""
    site = renamed_site(tmp_path, postgres.new_database("renamed"))
    assert "no longer has" not in run("run", "--config", str(site), "--check")[1]
    probed = run("run", "--config", str(site), "--probe")[1]
    assert [line.split(" is limited")[0].strip() for line in probed.splitlines() if "no longer has" in line] == [
        "warning: viewer door-staff", "warning: token lobby"], probed


def test_check_reads_a_database_from_before_token_lists_without_upgrading_it(renamed):
    """A database of auth schema 6 (its tokens read every camera): its viewers are said, and
    `run --check` leaves it as it was (the store's opening would have upgraded it)."""
    from sqlalchemy import create_engine, inspect, text

    engine = create_engine(f"sqlite:///{renamed.parent / 'site.db'}")
    with engine.begin() as connection:
        connection.execute(text("ALTER TABLE api_tokens DROP COLUMN cameras"))
        connection.execute(text("DELETE FROM auth_schema_version WHERE version >= 7"))
    code, said = run("run", "--config", str(renamed), "--check")
    assert code == 0 and [line.split(" is limited")[0].strip() for line in said.splitlines()
                          if "no longer has" in line] == ["warning: viewer door-staff"], said
    with engine.connect() as connection:
        assert "cameras" not in {c["name"] for c in inspect(connection).get_columns("api_tokens")}
    engine.dispose()


def test_the_sites_start_says_a_viewer_of_a_camera_the_file_no_longer_has(tmp_path):
    """`maskwatch run` started with nothing said of the viewer whose `door` had become `entrance`;
    its start lines now say it, as `run --check` does (a real process on loopback, a dead camera)."""
    from tests.conftest import VIEWER
    from tests.test_site import SiteProcess

    site = SiteProcess(tmp_path, "  entrance: {source: 'rtsp://127.0.0.1:1/a'}\n", viewer_cameras=["door"])
    try:
        started = (tmp_path / "run.log").read_text()
    finally:
        site.stop()
    assert (f"  warning: viewer {VIEWER[0]} is limited to door, which {site.config} no longer has (renamed or "
            "removed)") in started, started


def test_a_database_server_that_never_answers_is_given_up_not_waited_on_forever():
    """`run --probe` (and the start) read the viewers' lists before the probe: a database port that
    takes the connection and never answers (a stuck server, a proxy with no server behind it) held
    `run --probe` forever before its table, where the probe itself gives up in 5 s; now the lists'
    read gives up as the probe does, and the warning names the database's problem."""
    import socket
    import threading

    from sqlalchemy.exc import SQLAlchemyError

    from maskwatch.security.missing_cameras import stored_lists

    pytest.importorskip("psycopg", reason="the postgres extra (its driver) is not installed")
    with socket.create_server(("127.0.0.1", 0)) as listener:
        held = []
        threading.Thread(target=lambda: held.append(listener.accept()), daemon=True).start()
        outcome = []

        def read() -> None:
            try:
                outcome.append(stored_lists(f"postgresql://maskwatch:secret@127.0.0.1:{listener.getsockname()[1]}/site"))
            except SQLAlchemyError as err:
                outcome.append(err)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(60)  # a guard against the hang, not a timing: the read gives up after its connect_timeout
        for connection, _ in held:
            connection.close()
    assert not reader.is_alive(), "the lists' read still waits on a server that never answers"
    assert len(outcome) == 1 and isinstance(outcome[0], SQLAlchemyError), outcome


def test_a_token_s_fix_keeps_its_expiry_and_an_expired_token_is_not_said(renamed):
    """The fix for a token of `door` made its successor with no --expires: a token meant to stop
    working in 30 days, replaced as told, never expired. Now the command carries the days it had
    left; and one already expired (refused anyway) is not offered a successor."""
    import time

    from sqlalchemy import create_engine, text

    store = AuthStore(str(renamed.parent / "site.db"))
    store.add_token("wall", "read", owner="boss", cameras=["door"], expires=time.time() + 30 * 86400 - 60)
    store.add_token("old-wall", "read", cameras=["door"], expires=time.time() + 86400)
    store.close()
    engine = create_engine(f"sqlite:///{renamed.parent / 'site.db'}")
    with engine.begin() as connection:  # expired an hour ago
        connection.execute(text("UPDATE api_tokens SET expires = :then WHERE name = 'old-wall'"), {"then": time.time() - 3600})
    engine.dispose()
    said = run("run", "--config", str(renamed), "--check")[1]
    warned = {line.split(" is limited")[0].split()[-1]: line for line in said.splitlines() if "no longer has" in line}
    assert sorted(warned) == ["door-staff", "lobby", "wall"], said
    assert ("maskwatch tokens add NEW_NAME --camera NEW_ID --owner boss --expires 30 "
            f"--config {renamed}; maskwatch tokens revoke wall") in warned["wall"], warned["wall"]
    assert "--expires" not in warned["lobby"]
    fix = warned["wall"].split(": maskwatch ", 1)[1].split("; maskwatch ")[0].replace("NEW_ID", "entrance")
    assert run(*shlex.split(fix))[0] == 0  # the command as said runs


def test_a_fix_keeps_the_old_id_whose_history_is_stored(renamed):
    """The fix replaced `door` with the new id: the guard, told "they see its history, not the camera
    it became; give them its id", lost the entrance's history from before the rename (kept under
    `door`). Where the database holds door's history the command keeps it beside NEW_ID, and runs."""
    import numpy as np

    from maskwatch.site.events import EventStore
    from tests.test_events import person

    store = EventStore(str(renamed.parent / "site.db"))
    store.record("door", None, person(1, (0.9, 0.05, 0.05)), np.zeros((8, 8, 3), np.uint8))
    store.close()
    said = run("run", "--config", str(renamed), "--check")[1]
    warned = [line.strip() for line in said.splitlines() if "no longer has" in line]
    assert warned[0].endswith(f"maskwatch users edit door-staff --camera door --camera till --camera NEW_ID --config {renamed}"), said
    assert f"maskwatch tokens add NEW_NAME --camera door --camera NEW_ID --owner boss --config {renamed}" in warned[1], said
    fix = warned[0].split(": maskwatch ")[-1].replace("NEW_ID", "entrance")
    assert run(*shlex.split(fix))[0] == 0
    users = {user["name"]: user["cameras"] for user in AuthStore(str(renamed.parent / "site.db")).users()}
    assert users["door-staff"] == ["door", "till", "entrance"], users

"""The users' database's tables and the migrations that bring an older file to them (store.py reads and writes them)."""

from __future__ import annotations

import time

from sqlalchemy import Column, Float, Integer, MetaData, String, Table, delete, insert, inspect, select, text, update
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import GenericFunction


class name_key(GenericFunction):
    """A name as compared whatever its case (a name taken, a name meant, old failed logins' names):
    its ASCII letters lowered and nothing else, in every database, as user and token names are
    ASCII (USER_NAME, TOKEN_NAME). SQLite's lower() folds ASCII alone; PostgreSQL's follows the
    database's locale: the Kelvin sign became a k and 'İ' an i (under a Turkish one, 'I' a dotless
    'ı'), so '\u212aim' was kim's on PostgreSQL and no one's on SQLite."""

    type = String()
    name = "lower"
    inherit_cache = True


@compiles(name_key, "postgresql")
def _name_key_on_postgresql(element, compiler, **kw) -> str:
    """lower() under the "C" collation, which folds the ASCII letters alone whatever the database's locale."""
    return f'lower(CAST({compiler.process(element.clauses, **kw)} AS TEXT) COLLATE "C")'


metadata = MetaData()
auth_schema_version = Table("auth_schema_version", metadata, Column("version", Integer, nullable=False))
users = Table(
    "users", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("password_hash", String(255), nullable=False),
    Column("role", String(16), nullable=False),
    Column("cameras", String(2000), nullable=True),  # comma-separated camera ids; NULL: every camera
    Column("created", Float, nullable=False),
    # Two-step login (two_step.py): the TOTP secret (NULL: off), one made on the dashboard and not
    # yet confirmed by a code, and the last time step accepted (a code is good once).
    Column("totp_secret", String(64), nullable=True),
    Column("totp_pending", String(64), nullable=True),
    Column("totp_step", Integer, nullable=True),
    sqlite_autoincrement=True,  # a removed user's id is not given to the next one (in databases made from now on)
)
sessions = Table(
    "sessions", metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", Integer, nullable=False, index=True),
    Column("created", Float, nullable=False),
    Column("last_seen", Float, nullable=False),
)
api_tokens = Table(
    "api_tokens", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("scope", String(8), nullable=False),
    Column("created", Float, nullable=False),
    Column("last_used", Float, nullable=True),
    # users.id of the admin who made it (on the dashboard, or `tokens add --owner`): revoked when
    # they are removed or made a viewer. NULL: a site token (`tokens add` on the server), nobody's.
    Column("owner", Integer, nullable=True),
    # When it stops working (Unix seconds; `tokens add --expires DAYS`); NULL: never.
    Column("expires", Float, nullable=True),
    # A read token's cameras, comma-separated as users.cameras (`tokens add --camera`); NULL: every camera.
    Column("cameras", String(2000), nullable=True),
)
login_failures = Table(
    "login_failures", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", String(200), nullable=False, index=True),  # "client:ADDRESS" (IPv6: its /64), "user:NAME", "unknown:SHA256" or "secret:NAME"
    Column("at", Float, nullable=False, index=True),
)
# The window_minutes (in seconds) of each process that counts failed logins here, and when it last
# said so: a failure row goes once no process's window reaches it (store.drop_failures). A table of
# its own, made at any open: an older maskwatch leaves it alone, as auth_chores.
failure_windows = Table(
    "failure_windows", metadata,
    Column("seconds", Float, primary_key=True),  # not "window": a keyword of SQL
    Column("seen", Float, nullable=False),
)
# Two-step login's one-time recovery codes (two_step.recovery_hash: never the codes), each row
# deleted as its code is used; all of a user's go when two-step login is turned off.
recovery_codes = Table(
    "recovery_codes", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, nullable=False, index=True),
    Column("code_hash", String(64), nullable=False),
)
# What the site says once a day whichever of its processes says it (AuthStore.claim_daily): the
# tokens ending soon (token_expiry). A table of its own, made at any open, as failure_windows.
daily_notices = Table(
    "daily_notices", metadata,
    Column("notice", String(64), primary_key=True),
    Column("said", Float, nullable=False),
)
access_log = Table(
    "access_log", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False, index=True),
    Column("user", String(64), nullable=True),  # a user name, "token:NAME", or None (nobody logged in)
    Column("client", String(64), nullable=True),
    Column("action", String(32), nullable=False),  # login, login_failed, logout, camera_frame, snapshot, report, ...
    Column("target", String(255), nullable=True),
)
# One-time clean-ups of the data (CHORES), each listed here once done. Not schema versions: a
# data change an older maskwatch reads as it is needs none, and a version would make it refuse
# the database; an older maskwatch leaves this table alone.
auth_chores = Table(
    "auth_chores", metadata,
    Column("chore", String(64), primary_key=True),
    Column("done", Float, nullable=False),
)

# A failed login's name that is no user's, as the access log keeps it (AccessControl.tried): users
# type their password or a recovery code into the name field. No user's name can be this
# (USER_NAME: no space or parenthesis).
UNKNOWN_NAME = "(unknown name)"
FAILED_LOGINS = ("login_failed", "login_limited")  # the actions whose target is the name tried


def _create_v1(connection) -> None:
    metadata.create_all(connection, tables=[users, sessions, api_tokens, login_failures, access_log])


def _orphan_sessions_v2(connection) -> None:
    """Version 2: sessions of removed users go. A login racing `users remove` could leave one, and
    SQLite gave a removed user's id to the next user (made before sqlite_autoincrement): the old
    cookie then opened the new user's account. start_session now starts none for a removed user."""
    connection.execute(delete(sessions).where(sessions.c.user_id.not_in(select(users.c.id))))


def _token_owner_v3(connection) -> None:
    """Version 3: a token's owner, the admin who made it (api_tokens.owner). Tokens made before
    are site tokens (NULL): nobody's, revoked by hand as before. A database made at version 1
    from today's tables has the column already."""
    if "owner" not in {c["name"] for c in inspect(connection).get_columns("api_tokens")}:
        connection.execute(text("ALTER TABLE api_tokens ADD COLUMN owner INTEGER"))


TWO_STEP_COLUMNS = {"totp_secret": "VARCHAR(64)", "totp_pending": "VARCHAR(64)", "totp_step": "INTEGER"}


def _two_step_v4(connection) -> None:
    """Version 4: two-step login's columns (users.totp_*), NULL for everyone: off until each user
    turns it on. As in version 3, a database made from today's tables has them already."""
    have = {c["name"] for c in inspect(connection).get_columns("users")}
    for column, kind in TWO_STEP_COLUMNS.items():
        if column not in have:
            connection.execute(text(f"ALTER TABLE users ADD COLUMN {column} {kind}"))


def _recovery_codes_v5(connection) -> None:
    """Version 5: two-step login's recovery codes (their own table). Users who have it on already
    have none until they make a set (their dialog says "No recovery codes left")."""
    metadata.create_all(connection, tables=[recovery_codes])


def _token_expiry_v6(connection) -> None:
    """Version 6: a token's expiry (api_tokens.expires). Tokens made before never expire (NULL):
    the scripts that use them keep working. As in version 3, a database made from today's tables
    has the column already."""
    if "expires" not in {c["name"] for c in inspect(connection).get_columns("api_tokens")}:
        connection.execute(text("ALTER TABLE api_tokens ADD COLUMN expires FLOAT"))


def _token_cameras_v7(connection) -> None:
    """Version 7: a read token's cameras (api_tokens.cameras), as a viewer's. Tokens made before
    read every camera (NULL), as they did. As in version 3, a database made from today's tables
    has the column already."""
    if "cameras" not in {c["name"] for c in inspect(connection).get_columns("api_tokens")}:
        connection.execute(text("ALTER TABLE api_tokens ADD COLUMN cameras VARCHAR(2000)"))


MIGRATIONS = [_create_v1, _orphan_sessions_v2, _token_owner_v3, _two_step_v4, _recovery_codes_v5, _token_expiry_v6,
              _token_cameras_v7]


def _unknown_names(connection) -> None:
    """Failed logins logged before their names were kept only where they are a user's: the target
    of a login_failed or login_limited row that is no current user's name (whatever its case)
    becomes UNKNOWN_NAME, as it would be logged now (it was often a password, in clear, shown to
    admins). Once only (auth_chores): run at every open, it would also blank the name of a user
    removed since, kept rightly when it was logged."""
    connection.execute(update(access_log).where(
        access_log.c.action.in_(FAILED_LOGINS), access_log.c.target.is_not(None), access_log.c.target != UNKNOWN_NAME,
        name_key(access_log.c.target).not_in(select(name_key(users.c.name)))).values(target=UNKNOWN_NAME))


CHORES = {"unknown_names": _unknown_names}


def run_chores(connection) -> list[str]:
    """The CHORES not done yet in this database, done and listed, in the caller's transaction (the
    migrations', held by hold_database); their names. Makes the tables no version lists too."""
    metadata.create_all(connection, tables=[auth_chores, failure_windows, daily_notices])
    done = set(connection.execute(select(auth_chores.c.chore)).scalars())
    todo = [name for name in CHORES if name not in done]
    for name in todo:
        CHORES[name](connection)
        connection.execute(insert(auth_chores).values(chore=name, done=time.time()))
    return todo

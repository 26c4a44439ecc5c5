"""Users, sessions, API tokens, failed logins and the access log, in the site's own database.

The same data layer as the events (site/database.py: SQLAlchemy, SQLite with WAL or PostgreSQL),
so every `serve --workers` process and every Ray Serve replica reads the same sessions: logging
out, changing a password or removing a user ends that user's sessions everywhere at once.

Secrets are never stored: passwords as Argon2id hashes (passwords.py), session and API tokens as
SHA-256 of 256 random bits (a fast hash is enough for a secret nobody chose). The one exception is
a two-step login's TOTP secret (two_step.py): the server must compute the codes from it, so it is
kept as it is, like the database's other contents; it never leaves the store but once, at enrolment.
Recovery codes are kept as HMACs keyed with that secret (two_step.recovery_hash).

The tables and their migrations are schema.py's; the rules on names, roles and cameras user_rules.py's.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
import time

from sqlalchemy import delete, false, func, insert, literal, or_, select, tuple_, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from maskwatch.security.passwords import SAME_PASSWORD, check_strength, hash_password, needs_rehash, verify_password
from maskwatch.security.schema import (MIGRATIONS, access_log, api_tokens, auth_schema_version, daily_notices,
                                       failure_windows, login_failures, name_key, recovery_codes, run_chores, sessions,
                                       users)
from maskwatch.security.user_rules import (CLI_EDIT, NO_CAMERA, UNCHANGED, access_problem, cameras_text,
                                           changed_meanwhile, name_problem, new_user_problem, no_such,
                                           token_access_problem)
from maskwatch.runtime import ProblemLog
from maskwatch.site.database import (AUTH_MIGRATION_LOCK, LOGIN_ATTEMPT_LOCK, USERS_LOCK, apply_migrations,
                                       database_engine, database_url, driver_reason, hold_database,
                                       open_database, said_migrated, stored_number)

log = logging.getLogger(__name__)

TOKEN_PREFIX = "mw_"
# A renewal of the recovery codes refused: another made a set after this one's check read the codes.
RENEWED_MEANWHILE = "a new set of recovery codes was made meanwhile: use that one, or make another"


class NoSuch(ValueError):
    """No user or token of that name (the API's 404)."""


class Conflict(ValueError):
    """A name taken, or the last admin (the API's 409)."""


TOUCH_EVERY = 60.0  # seconds: a session's or token's last use is written at most this often


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


# A token limited to some cameras is kept under another hash than token_hash: a maskwatch of auth
# schema 6 or older still running on the database (not stopped for the upgrade, or one of two
# instances on PostgreSQL) looks tokens up by token_hash alone and knows no camera list, so it
# answered such a token as one of every camera; it now finds none there (401), and only releases
# that enforce the list accept it.
LIMITED_TOKEN = b"maskwatch token limited to cameras\0"


def limited_token_hash(token: str) -> str:
    return hashlib.sha256(LIMITED_TOKEN + token.encode("utf-8", "surrogatepass")).hexdigest()


def _camera_list(stored: str | None) -> list[str] | None:
    """A viewer's or token's cameras as users.cameras and api_tokens.cameras keep them (cameras_text); None: every camera."""
    return [c for c in stored.split(",") if c] if stored is not None else None


def _user_row(row) -> dict:
    return {"id": row.id, "name": row.name, "role": row.role, "cameras": _camera_list(row.cameras),
            "created": row.created, "two_step": row.totp_secret is not None}


def _users_with_codes_left():
    """The users' rows with `recovery_left`, the count of their unused recovery codes."""
    left = (select(func.count()).select_from(recovery_codes).where(recovery_codes.c.user_id == users.c.id)
            .scalar_subquery().label("recovery_left"))
    return select(users, left)


def _user_view(row) -> dict:
    """A user as every answer gives one (GET, POST and PATCH /v1/users, `users list`, /v1/me):
    `recovery_codes_left` None where two-step login is off. POST gave no `recovery_codes_left`."""
    return _user_row(row) | {"recovery_codes_left": row.recovery_left if row.totp_secret is not None else None}


def _check_acting(connection, acting: tuple[str, str] | None) -> int | None:
    """The acting admin's id; Conflict unless the admin making a change (`acting`: their name
    and the password hash just checked) is still an admin with that password, read in the
    caller's transaction under USERS_LOCK: a session checked before its admin was removed, demoted
    or given a new password (another admin's change in flight) added a user or a token after all."""
    if acting is None:
        return None
    name, checked_hash = acting
    row = connection.execute(select(users.c.id).where(_named(name), users.c.role == "admin",
                                                      users.c.password_hash == checked_hash)).first()
    if row is None:
        raise Conflict(f"{name!r} was removed, or their role or password changed, while this change was "
                       "checked: nothing changed")
    return row.id


def _askable(name: str) -> bool:
    """Whether the database can be asked about `name`: not where it holds a NUL, which PostgreSQL
    refuses in text (a DataError: the answer was a 503, the database "away"), nor half a surrogate
    pair, which no driver encodes. No user's or token's name holds either (USER_NAME, TOKEN_NAME)."""
    return "\x00" not in name and not any("\ud800" <= c <= "\udfff" for c in name)


def _named(name: str, column=users.c.name):
    """The rows whose `column` is `name`, none for a name no row has (_askable): the one condition
    of every lookup by name, whoever asks (login, the dashboard, `maskwatch users`, a Python caller)."""
    return column == name if _askable(name) else false()


def _any_case(name: str, column=users.c.name):
    """The rows whose `column` is `name` whatever its case, both sides lowered by the database as
    ASCII alone (schema.name_key): the one comparison of a name taken (add_user, add_token) and of
    a name meant (_spellings)."""
    return name_key(column) == name_key(name) if _askable(name) else false()


def _spellings(connection, name: str, column=users.c.name) -> list[str]:
    """The stored names (of `column`: users' or tokens') `name` means, found whatever its case as a
    name taken is (add_user, add_token): [the name] where one is exactly it, else every one
    differing from it in case alone, sorted. A database from before names were one whatever their
    case may hold `alice` beside `Alice`: the exact one is then meant, and a third spelling
    (`ALICE`) means both, which is not guessed."""
    found = connection.execute(select(column).where(_any_case(name, column)).order_by(column)).scalars().all()
    return [name] if name in found else list(found)


def _one_of(spellings: list[str], name: str, kind: str = "user") -> str:
    """The one stored name of `spellings` (_spellings); NoSuch for none, or for several, naming them."""
    if not spellings:
        raise NoSuch(no_such(name, kind))
    if len(spellings) > 1:
        raise NoSuch(f"no {kind} {name!r}; {', '.join(repr(s) for s in spellings)} differ from it in case alone "
                     "(made before names were one whatever their case): name one as it is stored")
    return spellings[0]


def _revoke_owned(connection, user_id: int) -> list[str]:
    """The tokens `user_id` owns deleted, in the caller's transaction (their removal or demotion,
    under USERS_LOCK): their names. An admin who left kept the tokens they made working."""
    names = connection.execute(select(api_tokens.c.name).where(api_tokens.c.owner == user_id)
                               .order_by(api_tokens.c.name)).scalars().all()
    if names:
        connection.execute(delete(api_tokens).where(api_tokens.c.owner == user_id))
    return list(names)


def _two_step_off(connection, which) -> bool:
    """Two-step login off (its secret, a pending one, the last step and the recovery codes gone)
    for the user `which` picks, in the caller's transaction; whether it was on."""
    if connection.execute(update(users).where(which, users.c.totp_secret.is_not(None))
                          .values(totp_secret=None, totp_pending=None, totp_step=None)).rowcount != 1:
        return False
    connection.execute(delete(recovery_codes).where(recovery_codes.c.user_id.in_(select(users.c.id).where(which))))
    return True


def _set_recovery(connection, user_id: int, hashes) -> None:
    """The user's recovery codes replaced by `hashes`, in the caller's transaction."""
    connection.execute(delete(recovery_codes).where(recovery_codes.c.user_id == user_id))
    if hashes:
        connection.execute(insert(recovery_codes), [{"user_id": user_id, "code_hash": h} for h in hashes])


def _recovery_of(connection, row) -> list[str]:
    """The hashes of the recovery codes of the user `row` (None: no such user, still one query)."""
    return list(connection.execute(select(recovery_codes.c.code_hash).where(
        recovery_codes.c.user_id == (row.id if row is not None else -1))).scalars())


def _set_made_since(connection, user_id: int, seen: list[str]) -> bool:
    """Whether the user has a recovery code not among `seen` (the hashes a check read): a set made since."""
    return connection.execute(select(recovery_codes.c.id).where(
        recovery_codes.c.user_id == user_id, recovery_codes.c.code_hash.not_in(list(seen)))).first() is not None


def _new_session(connection, user_id: int, now: float) -> str:
    """A session for the browser that made a change which ended the user's others; its token."""
    token = secrets.token_urlsafe(32)
    connection.execute(insert(sessions).values(token_hash=token_hash(token), user_id=user_id,
                                               created=now, last_seen=now))
    return token


def _same_two_step(secret: str | None):
    """The condition that a user's two-step secret is still `secret` (None: still off), as a
    password check read it: what the check let through (the password alone, or with a code of
    that secret) starts no session once two-step login was turned on or off meanwhile."""
    return users.c.totp_secret.is_(None) if secret is None else users.c.totp_secret == secret


def _replace_password(connection, name: str, hashed: str, checked_hash: str | None = None,
                      acting: tuple[str, str] | None = None, also=()) -> int | None:
    """`name`'s password hash replaced by `hashed` and every session of theirs ended, in the
    caller's transaction; their id, or None (nothing changed) for no such user or, with
    `checked_hash`, a hash that is no longer it (or a condition of `also` no longer true). It
    first holds what remove_user holds: a removal ends the sessions and then deletes the user, a
    change writes the user and then ends the sessions; at once on PostgreSQL each waited for the
    other's rows, and the deadlock failed one of them (the removal, or the change as a 503)."""
    hold_database(connection, USERS_LOCK)
    _check_acting(connection, acting)
    user_id = connection.execute(select(users.c.id).where(_named(name))).scalar()
    still = ([] if checked_hash is None else [users.c.password_hash == checked_hash]) + list(also)
    if user_id is None or connection.execute(
            update(users).where(users.c.id == user_id, *still).values(password_hash=hashed)).rowcount != 1:
        return None
    connection.execute(delete(sessions).where(sessions.c.user_id == user_id))
    return user_id


def log_row(action: str, user: str | None, client: str | None, target: str | None, now: float):
    """The INSERT of one access-log line: written by AuthStore.log, or in the transaction of the
    change it records (an erasure: EventStore.erase), where the line must not be lost."""
    return insert(access_log).values(at=now, user=user, client=client, action=action,
                                     target=None if target is None else target[:255])


class AuthStore:
    """Reads and writes who may log in, and who did what. Safe to share between threads."""

    def __init__(self, database: str, retention_days: float = 30.0, connect_timeout: int | None = None) -> None:
        """`connect_timeout`: seconds a database server has to answer (database_engine; None: for ever)."""
        if retention_days <= 0:
            raise ValueError(f"retention_days must be positive, got {retention_days}")
        self.url = database_url(database)
        self.retention_days = retention_days
        self.engine = database_engine(self.url, connect_timeout)
        self._write_lock = threading.Lock()
        self._kept: dict[tuple, float] = {}  # keep(): the last try of each housekeeping write
        self._kept_lock = threading.Lock()  # keep(): its check and mark of a key, one step
        self._failed_at = float("-inf")  # keep(): when one last failed
        self._housekeeping = ProblemLog(log, "the users database cannot be written (last uses, access log); "
                                             "requests are answered meanwhile, unlogged",
                                        "the users database is written again (last uses, access log)")
        open_database(self.url, self.migrate)

    def migrate(self) -> int:
        with self._write_lock, self.engine.begin() as connection:
            hold_database(connection, AUTH_MIGRATION_LOCK)
            before = apply_migrations(connection, self.url, "auth schema", auth_schema_version, MIGRATIONS)
            run_chores(connection)
        said_migrated(self.url, "auth schema", before, len(MIGRATIONS))
        return len(MIGRATIONS)

    def close(self) -> None:
        self.engine.dispose()

    # Users

    def add_user(self, name: str, password: str, role: str, cameras: list[str] | None = None,
                 acting: tuple[str, str] | None = None) -> dict:
        """A new user; ValueError names a bad name, role or password, or a name already taken.
        `acting`: the dashboard's admin, still one (_check_acting) when it is written."""
        if (problem := new_user_problem(name, role, cameras)) is not None:
            raise ValueError(problem)
        check_strength(password, name)
        hashed = hash_password(password)
        with self._write_lock, self.engine.begin() as connection:
            hold_database(connection, USERS_LOCK)  # another process's `users add Bob` between the check and the write
            _check_acting(connection, acting)
            taken = connection.execute(select(users.c.name).where(_any_case(name))).scalar()
            if taken is not None:  # Bob and bob would be two accounts one person mistakes for each other
                raise Conflict(f"user {taken!r} exists already (maskwatch users passwd changes a password)")
            connection.execute(insert(users).values(name=name, password_hash=hashed, role=role,
                                                    cameras=cameras_text(cameras), created=time.time()))
        return self.user(name)

    def user(self, name: str) -> dict | None:
        """The user as users() lists them, or None."""
        with self.engine.connect() as connection:
            row = connection.execute(_users_with_codes_left().where(_named(name))).first()
        return _user_view(row) if row is not None else None

    def user_spellings(self, name: str) -> list[str]:
        """The stored user names `name` means whatever its case (_spellings): one for a user's name
        in any case, none for no user's, several where an old database holds `alice` and `Alice` and
        `name` is neither. A login (AccessControl.tried) logs and counts a failure by it. Both sides
        lowered by the database, as the one-time clean-up of old rows lowers them
        (schema._unknown_names): Python's lower() made the Kelvin sign 'K' a k, so 'Kim' typed with
        it, no user's name, was logged as typed."""
        with self.engine.connect() as connection:
            return _spellings(connection, name)

    def stored_user_name(self, name: str) -> str:
        """The user's name as stored, `name` in any case: `users remove ALICE` said "no user" while
        `users list` showed `alice`. NoSuch for no user's name, and for one that several stored
        from before the case rule match in case alone (which one is meant is not guessed)."""
        return _one_of(self.user_spellings(name), name)

    def users(self) -> list[dict]:
        """Every user, with `recovery_codes_left` (their unused recovery codes; None where two-step
        login is off): `users list` and the Users dialog say it, as the user's own dialog does."""
        with self.engine.connect() as connection:
            return [_user_view(row) for row in connection.execute(_users_with_codes_left().order_by(users.c.name))]

    def user_count(self) -> int:
        with self.engine.connect() as connection:
            return connection.execute(select(func.count()).select_from(users)).scalar() or 0

    def remove_user(self, name: str, leave_an_admin: bool = False,
                    acting: tuple[str, str] | None = None) -> list[str]:
        """Delete the user, end every session of theirs and revoke the tokens they own, in one
        transaction; the names of those tokens. The last admin stays while other users do; with
        `leave_an_admin` (the dashboard) also when alone: an admin removing themselves left a site
        nobody could log in to, and one beyond loopback refusing everyone."""
        with self._write_lock, self.engine.begin() as connection:
            hold_database(connection, USERS_LOCK)  # two processes removing the last two admins at once
            _check_acting(connection, acting)
            row = connection.execute(select(users.c.id, users.c.role).where(_named(name))).first()
            if row is None:
                raise NoSuch(no_such(name))
            admins = connection.execute(select(func.count()).select_from(users).where(users.c.role == "admin")).scalar()
            others = connection.execute(select(func.count()).select_from(users).where(users.c.id != row.id)).scalar()
            if row.role == "admin" and admins == 1 and (others or leave_an_admin):  # nobody left to run the site
                raise Conflict(f"{name!r} is the last admin: add another admin first (maskwatch users add NAME "
                                 "--role admin)")
            connection.execute(delete(sessions).where(sessions.c.user_id == row.id))
            connection.execute(delete(recovery_codes).where(recovery_codes.c.user_id == row.id))
            revoked = _revoke_owned(connection, row.id)
            connection.execute(delete(users).where(users.c.id == row.id))
        return revoked

    def edit_user(self, name: str, role: str | None = None, cameras=UNCHANGED,
                  acting: tuple[str, str] | None = None, expected: dict | None = None,
                  names: tuple[str, str, str] = CLI_EDIT) -> tuple[dict, list[str]]:
        """A user's new role and/or cameras (`cameras` a viewer's list, None for every camera,
        UNCHANGED to keep them); the user as now, and the names of the tokens they owned, revoked
        in the same transaction when an admin is made a viewer. An admin's cameras go (they see
        every camera). With `expected` (role and cameras as the caller read them), Conflict where
        they differ now: checked in the write's transaction, another admin's change is never
        silently undone.
        Their sessions are kept: each request reads the role and cameras from this table
        (session_user), so the change holds from their next request. NoSuch, Conflict for the last
        admin made a viewer (whatever other users: nobody would be left to run the site), or
        ValueError for a bad role or a camera list (said in the asker's `names`: CLI_EDIT, API_EDIT)
        given to an admin. Under USERS_LOCK, as
        remove_user: two admins making each other viewers at once leave one admin."""
        with self._write_lock, self.engine.begin() as connection:
            hold_database(connection, USERS_LOCK)
            _check_acting(connection, acting)
            row = connection.execute(select(users).where(_named(name))).first()
            if row is None:
                raise NoSuch(no_such(name))
            before = _user_row(row)
            if (problem := changed_meanwhile(before, expected)) is not None:
                raise Conflict(problem)
            role = before["role"] if role is None else role
            if cameras is UNCHANGED:  # made an admin: every camera; else as they were
                cameras = None if role == "admin" else before["cameras"]
            elif cameras is not None and not any(c.strip() for c in cameras):
                raise ValueError(NO_CAMERA.format(*names[1:]))
            if (problem := access_problem(role, cameras, names[1])) is not None:
                raise ValueError(problem)
            if before["role"] == "admin" and role != "admin":
                admins = connection.execute(select(func.count()).select_from(users)
                                            .where(users.c.role == "admin")).scalar()
                if admins == 1:
                    raise Conflict(f"{name!r} is the last admin: add another admin first (maskwatch users add NAME "
                                   "--role admin)")
            connection.execute(update(users).where(users.c.id == row.id)
                               .values(role=role, cameras=cameras_text(cameras)))
            revoked = _revoke_owned(connection, row.id) if before["role"] == "admin" and role != "admin" else []
        return self.user(name), revoked

    def set_password(self, name: str, password: str, acting: tuple[str, str] | None = None) -> None:
        """A new password; every session of the user ends (log in again with the new one). The
        current one is refused, checked against its hash: it ended the sessions and changed
        nothing, where `users passwd` said it changed (POST /password refuses it too)."""
        check_strength(password, name)
        with self.engine.connect() as connection:
            stored = connection.execute(select(users.c.password_hash).where(_named(name))).scalar()
        if verify_password(password, stored):
            raise ValueError(SAME_PASSWORD)
        hashed = hash_password(password)
        with self._write_lock, self.engine.begin() as connection:
            if _replace_password(connection, name, hashed, acting=acting) is None:
                raise NoSuch(no_such(name))

    def change_own_password(self, name: str, checked_hash: str, password: str, totp_secret: str | None = None,
                            now: float | None = None) -> str | None:
        """A user's own change (POST /password), once their current password was checked: the new
        hash, every session of theirs ended, and a new session for the browser that asked, in one
        transaction; its token. None, nothing changed, when the password is no longer
        `checked_hash` (an admin's `users passwd`, or a removal, while the current one was hashed),
        or the two-step secret no longer `totp_secret` (turned on meanwhile: its ending of every
        session was undone by the new one, and the password changed by a session it ended)."""
        check_strength(password, name)
        hashed = hash_password(password)
        now = time.time() if now is None else now
        with self._write_lock, self.engine.begin() as connection:
            user_id = _replace_password(connection, name, hashed, checked_hash, also=[_same_two_step(totp_secret)])
            if user_id is None:
                return None
            return _new_session(connection, user_id, now)

    def check_login(self, name: str, password: str) -> dict | None:
        """The user when name and password match; None otherwise, after the same hashing work.
        Its "password_hash" is the hash checked: start_session starts a session only while it is
        still the user's."""
        with self.engine.connect() as connection:
            row = connection.execute(select(users).where(_named(name))).first()
            # Read for every name, before the password is checked: a wrong recovery code is then
            # told from none without a write (a DELETE run only after a right password told it).
            recovery = _recovery_of(connection, row)
        if not verify_password(password, row.password_hash if row is not None else None):
            return None
        # The two-step secret and recovery codes' hashes for AccessControl to check the code with,
        # read with the password (no second read: a right password costs no more time than a wrong
        # one); never answered.
        user = _user_row(row) | {"password_hash": row.password_hash, "totp_secret": row.totp_secret,
                                 "totp_step": row.totp_step, "recovery_hashes": recovery}
        if row.totp_secret is None:  # the password is the whole login; else once the code is right too
            user["password_hash"] = self.rehashed(row.id, password, row.password_hash)
        return user

    def rehashed(self, user_id: int, password: str, checked: str) -> str:
        """The user's hash now: `checked` (`password` just verified against it) hashed again where
        the parameters were raised since it was made. For a user with two-step login, only once
        their code is right too (AccessControl._check_password): the second Argon2 hash of a right
        password told a guesser holding no code, by the answer's time, that it was right."""
        if not needs_rehash(checked):
            return checked
        rehashed = hash_password(password)
        with self._write_lock, self.engine.begin() as connection:
            if connection.execute(update(users).where(users.c.id == user_id, users.c.password_hash == checked)
                                  .values(password_hash=rehashed)).rowcount:
                return rehashed
        return checked

    # Two-step login

    def use_step(self, user_id: int, step: int) -> bool:
        """Whether `step` is now the user's last accepted time step: False when it, or a later one,
        was accepted already (the same code sent twice, at once to two workers too)."""
        with self._write_lock, self.engine.begin() as connection:
            return connection.execute(
                update(users).where(users.c.id == user_id, (users.c.totp_step.is_(None)) | (users.c.totp_step < step))
                .values(totp_step=step)).rowcount == 1

    def two_step(self, name: str) -> dict | None:
        """The user's id and two-step columns (secret, pending, step) and their recovery codes'
        hashes (`recovery`: renew_recovery's `seen`); None for no such user."""
        with self.engine.connect() as connection:
            row = connection.execute(select(users.c.id, users.c.totp_secret, users.c.totp_pending, users.c.totp_step)
                                     .where(_named(name))).first()
            recovery = _recovery_of(connection, row)
        return None if row is None else {"id": row.id, "secret": row.totp_secret, "pending": row.totp_pending,
                                         "step": row.totp_step, "recovery": recovery}

    def set_pending(self, name: str, secret: str) -> bool:
        """A secret made on the dashboard, kept until a code from it confirms it (turn_on), also
        while two-step login is on (a new phone: the current secret works until then); False for
        no such user."""
        with self._write_lock, self.engine.begin() as connection:
            return connection.execute(update(users).where(_named(name))
                                      .values(totp_pending=secret)).rowcount == 1

    def turn_on(self, name: str, secret: str, step: int, checked_hash: str | None = None,
                now: float | None = None, recovery: list[str] = (), replacing: str | None = None) -> str | None:
        """Two-step login on with `secret`, its first code's `step` used, its `recovery` codes'
        hashes stored, and every session of the
        user ended, as a password change does: a session started with a stolen password alone is
        worth nothing after (`users 2fa --on` kept them). With `checked_hash` (the dashboard: the
        password just checked, `secret` the pending one) a new session starts for the browser that
        asked, its token returned; without (`users 2fa --on`), "". With `replacing` (a new phone:
        the secret whose code was just checked) it is on with that secret now and `secret` takes
        its place. None, nothing changed, when it is on already (with another secret than
        `replacing`), the user is gone, or the password or the pending secret changed meanwhile."""
        now = time.time() if now is None else now
        still = [] if checked_hash is None else [users.c.password_hash == checked_hash, users.c.totp_pending == secret]
        with self._write_lock, self.engine.begin() as connection:
            hold_database(connection, USERS_LOCK)  # as _replace_password: a removal's rows in the same order
            user_id = connection.execute(select(users.c.id).where(_named(name))).scalar()
            if user_id is None or connection.execute(
                    update(users).where(users.c.id == user_id, _same_two_step(replacing), *still)
                    .values(totp_secret=secret, totp_pending=None, totp_step=step)).rowcount != 1:
                return None
            _set_recovery(connection, user_id, recovery)
            connection.execute(delete(sessions).where(sessions.c.user_id == user_id))
            return "" if checked_hash is None else _new_session(connection, user_id, now)

    def turn_off(self, name: str, now: float | None = None) -> str | None:
        """Two-step login off by the user (any pending secret and the recovery codes gone), and
        every other session of theirs ended, as turning it on does: a session started with the
        second factor must not outlive it (only the admin's turning off ended them). A new session
        for the browser that asked: its token; None when it was not on."""
        now = time.time() if now is None else now
        with self._write_lock, self.engine.begin() as connection:
            hold_database(connection, USERS_LOCK)  # as turn_off_for
            user_id = connection.execute(select(users.c.id).where(_named(name))).scalar()
            if user_id is None or not _two_step_off(connection, users.c.id == user_id):
                return None
            connection.execute(delete(sessions).where(sessions.c.user_id == user_id))
            return _new_session(connection, user_id, now)

    def use_recovery(self, user_id: int, code_hash: str, seen: list[str] | None = None,
                     secret: str | None = None) -> bool:
        """Whether `code_hash` was one of the user's recovery codes, deleted now: one conditional
        write, so a code sent to two workers at once is taken by one of them. With `seen` and
        `secret` (the hashes and secret the caller's check read, the code among them): Conflict
        RENEWED_MEANWHILE where the code is gone because another set was made since under the same
        secret (another tab's renewal), not because another login used it. Asked only once the
        password and code were right, so it tells nothing to whoever lacks either."""
        with self._write_lock, self.engine.begin() as connection:
            if connection.execute(delete(recovery_codes).where(
                    recovery_codes.c.user_id == user_id, recovery_codes.c.code_hash == code_hash)).rowcount >= 1:
                return True
            if seen is not None and connection.execute(select(users.c.id).where(
                    users.c.id == user_id, users.c.totp_secret == secret)).first() is not None \
                    and _set_made_since(connection, user_id, seen):
                raise Conflict(RENEWED_MEANWHILE)
            return False

    def recovery_left(self, name: str) -> int:
        """How many unused recovery codes the user has."""
        with self.engine.connect() as connection:
            return connection.execute(select(func.count()).select_from(recovery_codes)
                                      .join(users, users.c.id == recovery_codes.c.user_id)
                                      .where(_named(name))).scalar() or 0

    def renew_recovery(self, name: str, secret: str, hashes: list[str], seen: list[str]) -> None:
        """A new set of recovery codes in place of the old (all of them, used or not), while the
        user's codes are still among `seen` (the hashes their check read; fewer where codes were
        used since). Conflict, nothing changed, when another set was made meanwhile (two tabs, or
        the dashboard and `users 2fa --recovery-codes`: both answered a set and only the later
        was kept, the other's codes never worked), or when the two-step secret is no longer
        `secret` (turned off, or on again with another app: the codes are keyed with it)."""
        with self._write_lock, self.engine.begin() as connection:
            hold_database(connection, USERS_LOCK)
            user_id = connection.execute(select(users.c.id).where(_named(name),
                                                                  users.c.totp_secret == secret)).scalar()
            if user_id is None:
                raise Conflict("two-step login was turned off or on again meanwhile; nothing changed")
            if _set_made_since(connection, user_id, seen):
                raise Conflict(RENEWED_MEANWHILE)
            _set_recovery(connection, user_id, hashes)

    def turn_off_for(self, name: str, acting: tuple[str, str] | None = None) -> None:
        """Two-step login off for a user who lost their phone, by an admin (`acting`: the
        dashboard's, checked as it writes) or `users 2fa --off` on the server, and every session
        of the user ended in the same transaction: a session started by whoever holds the phone
        (and the password) must not outlive the factor it was checked with; a login in flight
        with a code then starts none either (start_session). NoSuch, or Conflict when it is not on."""
        with self._write_lock, self.engine.begin() as connection:
            hold_database(connection, USERS_LOCK)  # as _replace_password: a removal's rows in the same order
            _check_acting(connection, acting)
            user_id = connection.execute(select(users.c.id).where(_named(name))).scalar()
            if user_id is None:
                raise NoSuch(no_such(name))
            if not _two_step_off(connection, users.c.id == user_id):
                raise Conflict(f"two-step login is not on for {name}")
            connection.execute(delete(sessions).where(sessions.c.user_id == user_id))

    # Sessions

    def start_session(self, user_id: int, password_hash: str, totp_secret: str | None = None,
                      now: float | None = None) -> str | None:
        """A new session's token (for the cookie; only its hash is kept), or None when the user is
        gone or their password is no longer `password_hash` (the one checked at login), or their
        two-step secret no longer `totp_secret` (None: off, as the login read it): one statement,
        so that a password changed or a user removed while the login was hashing (80-150 ms)
        leaves no session behind (3 of 37 such logins outlived `users passwd`), nor does a login
        checked without a code while two-step login was turned on (enrolment ends every session:
        one started after it with the password alone kept a stolen password's way in)."""
        now = time.time() if now is None else now
        token = secrets.token_urlsafe(32)
        # FOR SHARE (PostgreSQL; SQLite has one writer anyway): a password change in flight is
        # waited for, and its new hash then matches no more. rowcount kept: SQLAlchemy gives -1 for
        # an INSERT ... SELECT on PostgreSQL otherwise, which read as "started".
        still = (select(literal(token_hash(token)), users.c.id, literal(now), literal(now))
                 .where(users.c.id == user_id, users.c.password_hash == password_hash, _same_two_step(totp_secret))
                 .with_for_update(read=True))
        with self._write_lock, self.engine.begin() as connection:
            started = connection.execute(insert(sessions).from_select(
                ["token_hash", "user_id", "created", "last_seen"], still).execution_options(preserve_rowcount=True)).rowcount
        return token if started == 1 else None

    def session_user(self, token: str, idle: float, absolute: float, now: float | None = None) -> dict | None:
        """The user of a live session; None for an unknown, idle (> `idle` s) or old (> `absolute` s) one."""
        now = time.time() if now is None else now
        key = token_hash(token)
        query = (select(sessions.c.created, sessions.c.last_seen, users)
                 .join(users, users.c.id == sessions.c.user_id).where(sessions.c.token_hash == key))
        with self.engine.connect() as connection:
            row = connection.execute(query).first()
        if row is None:
            return None
        if now - row.last_seen > idle or now - row.created > absolute:
            self.end_session(token)
            return None
        last_seen = row.last_seen
        if now - row.last_seen > TOUCH_EVERY and self.keep(
                update(sessions).where(sessions.c.token_hash == key).values(last_seen=now), ("session", key), now):
            last_seen = now  # written: else the database still ends it at its last use written + idle
        # "ends": when it ends unused (time.time()), for whoever keeps it in memory (AccessControl._let_in)
        return {**_user_row(row), "ends": min(last_seen + idle, row.created + absolute)}

    def session_times(self, token: str) -> tuple[float, float] | None:
        """When a session started and was last used (written at most TOUCH_EVERY apart); None for none."""
        query = select(sessions.c.created, sessions.c.last_seen).where(sessions.c.token_hash == token_hash(token))
        with self.engine.connect() as connection:
            row = connection.execute(query).first()
        return None if row is None else (row.created, row.last_seen)

    def end_session(self, token: str) -> None:
        with self._write_lock, self.engine.begin() as connection:
            connection.execute(delete(sessions).where(sessions.c.token_hash == token_hash(token)))

    def session_count(self, name: str | None = None) -> int:
        query = select(func.count()).select_from(sessions)
        if name is not None:
            query = query.join(users, users.c.id == sessions.c.user_id).where(_named(name))
        with self.engine.connect() as connection:
            return connection.execute(query).scalar() or 0

    # API tokens

    def add_token(self, name: str, scope: str, acting: tuple[str, str] | None = None,
                  owner: str | None = None, expires: float | None = None, cameras: list[str] | None = None,
                  cameras_name: str = CLI_EDIT[1]) -> str:
        """A new API token: returned once, stored only as its hash. Its owner is the acting admin
        (the dashboard's), else the admin named `owner` (`tokens add --owner`), else nobody: a
        site token. `expires`: when it stops working (Unix seconds), None: never. `cameras`: a
        read token's, as a viewer's (None: every camera). NoSuch for no user `owner`, ValueError
        for a viewer, a bad scope or camera list (said as the asker calls it: `cameras_name`)."""
        if (problem := name_problem(name, "token")) is not None:
            raise ValueError(problem)
        if (problem := token_access_problem(scope, cameras, cameras_name)) is not None:
            raise ValueError(problem)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self._write_lock, self.engine.begin() as connection:
            hold_database(connection, USERS_LOCK)  # the acting admin's row; two processes adding one name
            owner_id = _check_acting(connection, acting)
            if owner is not None and owner_id is None:  # in any case, as `users remove` takes a name
                if not (spellings := _spellings(connection, owner)):
                    raise NoSuch(f"no user {owner!r} to own the token (an admin, as `users list` shows them)")
                owner = _one_of(spellings, owner)
                row = connection.execute(select(users.c.id, users.c.role).where(_named(owner))).first()
                if row.role != "admin":
                    raise ValueError(f"{owner!r} is a viewer: a token's owner is an admin (their tokens go "
                                     "when they stop being one)")
                owner_id = row.id
            # `wall` and `WALL` were two tokens: `tokens revoke wall` after a leak left the other working.
            taken = connection.execute(select(api_tokens.c.name).where(_any_case(name, api_tokens.c.name))).scalar()
            if taken is not None:
                raise Conflict(f"a token named {taken!r} exists already (revoke it first)")
            key = token_hash(token) if cameras is None else limited_token_hash(token)
            connection.execute(insert(api_tokens).values(name=name, token_hash=key, scope=scope,
                                                         created=time.time(), owner=owner_id, expires=expires,
                                                         cameras=cameras_text(cameras)))
        return token

    def tokens(self) -> list[dict]:
        """Each token's name, scope, cameras (None: every camera), created, last used, expiry
        (None: never) and owner (the admin's name; None: a site token)."""
        query = (select(api_tokens.c.name, api_tokens.c.scope, api_tokens.c.cameras, api_tokens.c.created,
                        api_tokens.c.last_used, api_tokens.c.expires, users.c.name.label("owner"))
                 .outerjoin(users, users.c.id == api_tokens.c.owner))
        with self.engine.connect() as connection:
            return [dict(row._mapping) | {"cameras": _camera_list(row.cameras)}
                    for row in connection.execute(query.order_by(api_tokens.c.name))]

    def tokens_of(self, owner: str) -> list[str]:
        """The names of the tokens `owner` made (what their removal or demotion would revoke)."""
        return [token["name"] for token in self.tokens() if token["owner"] == owner]

    def revoke_token(self, name: str) -> str:
        """The token `name` deleted, found whatever its case as a name taken is (add_token): `tokens
        revoke WALL` for `wall` said "no token" and left it working. Its name as stored. A database
        from before that rule may hold `wall` beside `WALL`: the exact name first, and NoSuch for a
        name that matches several in case alone (which one is meant is not guessed)."""
        with self._write_lock, self.engine.begin() as connection:
            found = _spellings(connection, name, api_tokens.c.name)
            if not found:
                raise NoSuch(no_such(name, "token"))
            if len(found) > 1:
                raise NoSuch(f"no token {name!r}; {', '.join(repr(stored) for stored in found)} differ from it "
                             "in case alone: revoke each by its own name")
            connection.execute(delete(api_tokens).where(api_tokens.c.name == found[0]))
        return found[0]

    def token(self, token: str, now: float | None = None) -> dict | None:
        """{"name", "scope", "cameras", "expires"} of a live API token (cameras None: every camera); None for
        an unknown or revoked one; {"name", "expired": True} for one past its expiry (refused as a
        revoked one, but logged by name)."""
        now = time.time() if now is None else now
        keys = (token_hash(token), limited_token_hash(token))  # every camera's, or a list's (LIMITED_TOKEN)
        with self.engine.connect() as connection:
            row = connection.execute(select(api_tokens).where(api_tokens.c.token_hash.in_(keys))).first()
        if row is None:
            return None
        if row.expires is not None and now >= row.expires:
            return {"name": row.name, "expired": True}
        if row.last_used is None or now - row.last_used > TOUCH_EVERY:
            self.keep(update(api_tokens).where(api_tokens.c.id == row.id).values(last_used=now), ("token", row.id), now)
        return {"name": row.name, "scope": row.scope, "cameras": _camera_list(row.cameras), "expires": row.expires}

    def keep(self, statement, key: tuple | None, now: float) -> bool:
        """A write the request does not depend on (a session's or token's last use, an access-log
        line): on a full disk or a locked database it is logged once and the request is answered
        (every request with a token or session answered 503: the dashboard and metrics blind
        during the outage). A `key`'s write is tried once per TOUCH_EVERY at most, and none for
        TOUCH_EVERY after one failed (each request would have waited out a locked database's 30 s):
        access-log lines are then lost, which the log says once.
        Requests call it from many threads at once: a key's check and mark are one step under a
        lock (two requests of one session both passed the check and wrote its last use twice; the
        trim of `_kept` past 10,000 keys, iterating the dict while another thread added to it, could
        raise "dictionary changed size during iteration" into the request). Nothing but the dict is
        done under it: the write itself is not. Not tested: no interleaving of two threads inside
        it can be forced without a hook in its dict. True when this call wrote it."""
        if now - self._failed_at < TOUCH_EVERY:
            return False
        if key is not None:
            with self._kept_lock:
                if now - self._kept.get(key, -TOUCH_EVERY - 1) <= TOUCH_EVERY:
                    return False
                if len(self._kept) > 10_000:
                    self._kept = {k: t for k, t in self._kept.items() if now - t <= TOUCH_EVERY}
                self._kept[key] = now
        try:
            with self._write_lock, self.engine.begin() as connection:
                connection.execute(statement)
            self._housekeeping.ok()
            return True
        except SQLAlchemyError as err:
            self._failed_at = now
            self._housekeeping.failed(driver_reason(err))
            return False

    # Failed logins

    def reserve_attempt(self, limits: dict[str, int], window: float,
                        now: float | None = None) -> tuple[list[int] | None, float | None]:
        """A login attempt counted as a failure of each key before its password is checked, in
        one transaction that holds the database: every process and replica sees it at once (each
        counted the attempts it was checking in its own memory, so N workers let N times the
        guesses through in parallel). (the rows' ids, None), which release_attempt() deletes when
        the password was right; or (None, the oldest failure's time) for a key at its limit,
        nothing written. Failures stamped over a window ahead of the clock are not counted: made
        on a clock set ahead (a week, by hand or an RTC's garbage) and then set back by NTP, they
        locked the name out for that week."""
        now = time.time() if now is None else now

        def at_limit(connection) -> float | None:
            for key, limit in limits.items():
                count, oldest = connection.execute(
                    select(func.count(), func.min(login_failures.c.at))
                    .where(login_failures.c.key == key, login_failures.c.at > now - window,
                           login_failures.c.at <= now + window)).one()
                if count >= limit:
                    return oldest if oldest is not None else now
            return None

        # A client at its limit is answered from a plain read: holding the database for each of its
        # refused guesses held up the cameras' event writes in the same file (p99 10 -> 637 ms).
        with self.engine.connect() as connection:
            if (oldest := at_limit(connection)) is not None:
                return None, oldest
        with self._write_lock, self.engine.begin() as connection:
            hold_database(connection, LOGIN_ATTEMPT_LOCK)
            if (oldest := at_limit(connection)) is not None:  # again, held: another process's attempt
                return None, oldest
            ids = [connection.execute(insert(login_failures).values(key=key, at=now)).inserted_primary_key[0]
                   for key in limits]
        return ids, None

    def release_attempt(self, ids: list[int]) -> None:
        """The attempt's rows of reserve_attempt() deleted: the password was right."""
        with self._write_lock, self.engine.begin() as connection:
            connection.execute(delete(login_failures).where(login_failures.c.id.in_(ids)))

    def clear_failures(self, key: str) -> None:
        with self._write_lock, self.engine.begin() as connection:
            connection.execute(delete(login_failures).where(login_failures.c.key == key))

    def drop_failures(self, window: float, now: float | None = None) -> float:
        """Failure rows no limit counts any more deleted: older than the longest `window` (seconds)
        any process said it uses within a day, this one's first (failure_windows). Every limit
        (per client, per name, "secret:") reads back one window; kept a day, they held unsalted
        digests of names typed (often passwords) 96 times longer than any limit needed them. A
        process with a longer window beside a shorter one keeps the rows for it. Rows stamped over that
        ahead of the clock (a clock set back since) go too. The age kept."""
        now = time.time() if now is None else now
        with self._write_lock, self.engine.begin() as connection:
            hold_database(connection, LOGIN_ATTEMPT_LOCK)  # two processes saying the same window at once
            if not connection.execute(update(failure_windows).where(failure_windows.c.seconds == window)
                                      .values(seen=now)).rowcount:
                connection.execute(insert(failure_windows).values(seconds=window, seen=now))
            connection.execute(delete(failure_windows).where(failure_windows.c.seen < now - 86400))
            kept = max(window, connection.execute(select(func.max(failure_windows.c.seconds))).scalar() or 0)
            connection.execute(delete(login_failures).where(
                (login_failures.c.at < now - kept) | (login_failures.c.at > now + kept)))
        return kept

    # What the site says once a day

    def claim_daily(self, notice: str, every: float, now: float | None = None) -> bool:
        """Whether this process is the one to say `notice` now: True once per `every` seconds for
        the whole database, whichever of its processes (`run`, `serve --workers`, Ray replicas,
        on other machines too with PostgreSQL) asks first; each said it on its own, N times.
        Read first, so that the once-a-minute ask of each process writes nothing until it is due;
        then one conditional UPDATE (or the first INSERT), which one process alone can win. A time
        said over `every` ahead of the clock (a clock set back since) is due again, as is one that is
        no number (a text SQLite kept from a hand's UPDATE: compared with the clock, a TypeError
        failed every sweep); the conditional UPDATE writes over it as it was read."""
        now = time.time() if now is None else now
        row = daily_notices.c.notice == notice
        with self.engine.connect() as connection:
            said = connection.execute(select(daily_notices.c.said).where(row)).scalar()
        if stored_number(said) and now - every < said <= now + every:
            return False
        try:
            with self._write_lock, self.engine.begin() as connection:
                if said is not None:  # still `said`: no other process claimed it since it was read
                    return connection.execute(update(daily_notices).where(row, daily_notices.c.said == said)
                                              .values(said=now)).rowcount == 1
                connection.execute(insert(daily_notices).values(notice=notice, said=now))
                return True
        except IntegrityError:  # another process's first INSERT came first: it says it
            return False

    # Access log

    def log(self, action: str, user: str | None, client: str | None, target: str | None = None,
            now: float | None = None) -> None:
        """One access-log line (best effort: see keep())."""
        now = time.time() if now is None else now
        self.keep(log_row(action, user, client, target, now), None, now)

    def access_log(self, user: str | tuple[str, ...] | None = None, action: str | None = None,
                   since: float | None = None, limit: int = 100, before: tuple[float, int] | None = None,
                   until: float | None = None) -> list[dict]:
        """Newest first (time, then id), from `since` and before `until`; before: a cursor (at, id),
        the rows after it in that order, as the events page (rows logged meanwhile neither shift
        nor repeat a page). `user`: a name, or several (the rows of any of them)."""
        query = select(access_log).order_by(access_log.c.at.desc(), access_log.c.id.desc()).limit(limit)
        if before is not None:
            query = query.where(tuple_(access_log.c.at, access_log.c.id) < tuple_(*before))
        if until is not None:
            query = query.where(access_log.c.at < until)
        if user is not None:
            query = query.where(or_(*(_named(name, access_log.c.user) for name in
                                      ((user,) if isinstance(user, str) else user))))
        if action is not None:
            query = query.where(access_log.c.action == action)
        if since is not None:
            query = query.where(access_log.c.at >= since)
        with self.engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(query)]

    def enforce_retention(self, session_limit: float, now: float | None = None, idle: float | None = None) -> int:
        """Drop access-log rows older than retention_days, sessions past `session_limit` seconds
        and, with `idle`, sessions unused for longer (session_user's rule: one left idle stayed in
        the table until presented again or past `session_limit`, days); failed logins:
        drop_failures. How many log rows went."""
        now = time.time() if now is None else now
        stale = sessions.c.created < now - session_limit
        if idle is not None:
            stale = or_(stale, sessions.c.last_seen < now - idle)
        with self._write_lock, self.engine.begin() as connection:
            gone = connection.execute(delete(access_log).where(access_log.c.at < now - self.retention_days * 86400))
            connection.execute(delete(sessions).where(stale))
        return gone.rowcount

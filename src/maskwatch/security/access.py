"""Deny by default: one app-wide dependency decides every request before its handler runs.

A route is public only where its OpenAPI entry says `x-maskwatch-access: public` (the health
check, the login page and POST /login); `admin` routes need the admin role; every other route
needs a logged-in user or an API token. Who asks is decided from credentials only, never from
the client's address (a reverse proxy on the same host makes every client look local).

The one exception is a server bound to loopback whose database has no user yet: it stays open
as before, for a single machine (`serve` and `run` refuse to bind beyond loopback without users).

What a route declares is route_access.py's, what is read off a request request_checks.py's, the
settings auth_settings.py's.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import string
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from fastapi import Request
from sqlalchemy.exc import SQLAlchemyError

from maskwatch.runtime import Periodic, ProblemLog
from maskwatch.security.auth_settings import AuthSettings
from maskwatch.security.passwords import SAME_PASSWORD, WeakPassword, check_strength, normalized
from maskwatch.security.request_checks import (AuthError, audit_target, camera_of,
                                               check_csrf, check_origin, client_address, guesser, is_loopback,
                                               root_of, secure_cookies, session_cookie, stale_root_cookie)
from maskwatch.security.route_access import ACCESS, AUDIT, READS_ONLY, SAME_SITE_ONLY
from maskwatch.security.schema import UNKNOWN_NAME
from maskwatch.security.store import AuthStore, Conflict
from maskwatch.security.token_expiry import DAILY_NOTICE, SAID_EVERY, say_ending_tokens
from maskwatch.security.user_words import required_words
from maskwatch.site.database_wait import DatabaseNotAnswering, DatabaseWait

log = logging.getLogger(__name__)

# UNKNOWN_NAME: a failed login's name that is no user's, as the access log and the server's log
# keep it (schema.py, whose one-time clean-up puts it in rows logged before).


def _strong_enough(new: str, name: str) -> None:
    """AuthError 400 for a new password the rules refuse (passwords.check_strength)."""
    try:
        check_strength(new, name)
    except WeakPassword as err:
        raise AuthError(400, str(err)) from None


def said_failed(name: str, client: str) -> None:
    """A failed login in the server's log too, one line each, for fail2ban and log alerts (the
    access log is in the database, where they cannot look). Each client's failures are bounded by
    the limits; the name as repr, so that a name holding a newline cannot forge a line, and
    UNKNOWN_NAME bare (no name is; a password typed as the name went to the journal in clear)."""
    log.warning("login failed for user %s from %s", name if name == UNKNOWN_NAME else repr(name[:64]), client)


SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)  # as schema.name_key folds names
# The page refreshes each camera's frame every few seconds: one access-log row per user, client,
# action and path per minute says who watched, without a database write per frame.
AUDIT_EVERY = 60.0
# Logins being checked at once, over all clients: each waits for one of the four Argon2 slots on a
# threadpool thread, which every request's access check needs too (20 per client address could
# hold all 40 threads and stall the whole service); past this, a login is told to come back.
MAX_LOGINS_AT_ONCE = 16
# POST /login's one refusal: which of the name, the password or the code was wrong is not said (a
# guesser who got the password right without the code must not learn it).
WRONG_LOGIN = "wrong user name, password or code"
# What a user whom server.require_two_step covers, without two-step login, may still ask: the page
# and its scripts, who they are, the two-step routes (to set it up; the others answer that it is
# not on, which is truer than "two-step login required"), and logging out.
TWO_STEP_SETUP = frozenset({"/", "/static/{asset}", "/v1/me", "/logout", "/two-step/secret", "/two-step",
                            "/two-step/recovery-codes", "/two-step/replace"})
TWO_STEP_REQUIRED = "two-step login required: set it up under Two-step login"
# How often failed-login rows past their window are deleted (a database write), by each server
# process on a thread of its own: each lives at most this long past window_minutes, asked or idle.
FAILURES_SWEPT_EVERY = 60.0
# How long a server's stop waits for a sweep under way: with the users database locked (another
# process's long write) it waited 10 s. Cutting it loses nothing: each of its deletes is one
# transaction, rolled back if cut, and the next sweep (any process's, at its start) deletes the same rows.
SWEEP_STOP_WAIT = 1.5
# While the users database does not answer (a server that hangs), a session or API token this
# process let in within this many seconds is let in again for reads (GET, HEAD) alone: the page, its
# files and the live view go on; a change waits for the database. A logout or revocation written
# just before the hang is thus honoured this late at most; one made during it cannot be written.
LET_IN_WHILE_HUNG = 600.0
# POST /two-step/secret per user per window_minutes: each overwrote the pending secret, unbounded.
SECRETS_PER_WINDOW = 10
# DELETE /two-step refused where the site requires it of the user: their own account would be the
# password alone until they set it up again, whoever logs in first with it setting up their phone.
TWO_STEP_KEPT = ("this site {required}: you cannot turn it off; for a new phone, use New phone under Two-step "
                 "login (POST /two-step/replace), or, with neither the phone nor a recovery code, an admin turns "
                 "yours off (Users, or `maskwatch users 2fa NAME --off` on the server) and you set it up again at "
                 "your next login")
# POST /two-step/replace's `new_code` not the pending secret's: a typo, a clock, or a later POST
# /two-step/secret in its place, by another tab or by a session of the user's left elsewhere (a
# lost phone's), which can go on replacing it until a password change ends it.
NOT_THE_NEW_CODE = ("the new code is not the new app's code for now: check the new phone's clock, and that its app "
                    "shows the code of the last new secret made (each New phone replaces the one before, in any tab "
                    "or session of yours; one you did not make means a session of yours is elsewhere: change your "
                    "password, which ends them all, then New phone again)")
# POST /two-step/replace whose check read a secret another New phone replaced since (a second tab,
# a double send): its code, right for the secret it read, was checked against the new one.
TWO_STEP_CHANGED = ("two-step login was changed meanwhile (moved to a new phone in another tab, or this sent twice): "
                    "reload to see it, or start again")
# POST /two-step/replace without two-step login on: nothing to move; it is set up instead.
NOT_ON_TO_REPLACE = ("two-step login is not on: set it up under Two-step login (POST /two-step/secret, then "
                     "POST /two-step)")
# POST /password of a user with two-step login on, without `code`: a stolen session and a password
# seen once must not be enough to take the account, as they are not to turn two-step login off.
CODE_TOO = ("two-step login is on: send the code your authenticator app shows now (or a recovery code) as "
            "`code` with your current password")
TOKEN_HAS_NO_LOGIN = ("an API token has no login: two-step login is a user's, set up logged in or with "
                      "`maskwatch users 2fa NAME --on`")


def reads_users(endpoint):
    """`endpoint` run as one read of the users database (AccessControl.reads): a server that hangs is a
    503 naming it within a few seconds, not a request (and a server thread) held as long as it hangs."""
    @functools.wraps(endpoint)
    def bounded(**values):
        return values["request"].app.state.access.reads.call(endpoint, **values)

    return bounded


class Tried(NamedTuple):
    """A name a password is checked for, looked up once (AccessControl.tried)."""

    name: str  # the stored user's name where the typed one is a user's in any case, else as typed
    logged: str  # as the access log and the server's log keep a failure of it
    key: str  # what its failed logins are counted under


@dataclass(frozen=True)
class Principal:
    """Who a request comes from."""

    name: str | None  # a user name, "token:NAME", or None when the server is open (no users)
    role: str  # admin | viewer
    via: str  # session | token | open
    cameras: tuple[str, ...] | None = None  # None: every camera
    scope: str = "full"  # an API token's: read (GET only) or full
    session: str | None = field(default=None, repr=False)  # the session token, to end it at logout
    two_step: bool | None = None  # a session's user: whether they have two-step login on
    # time.time() past which its session (idle, absolute) or token (expiry) is refused; None: never
    ends: float | None = field(default=None, repr=False, compare=False)

    def may_see(self, camera: str | None) -> bool:
        return camera is None or self.cameras is None or camera in self.cameras

    def visible(self, cameras):
        """The ids in `cameras` this principal may see, in order."""
        return [c for c in cameras if self.may_see(c)]


class AccessControl:
    """The app's gatekeeper: `authorize` is its global dependency, `login`/`logout` its session calls."""

    def __init__(self, settings: AuthSettings, store: AuthStore | None) -> None:
        self.settings, self.store = settings, store
        self.idle, self.absolute = settings.idle_minutes * 60, settings.absolute_hours * 3600
        self.window = settings.window_minutes * 60
        self._users_checked, self._has_users = 0.0, False
        self._swept = float("-inf")  # monotonic: a clock set back does not hold the sweep off
        self._sweeper: Periodic | None = None  # start(): _sweep once a minute, where there is a store
        self._started = False  # start() called and close() not yet: a store opened later starts the sweep
        self._audited: OrderedDict[tuple, float] = OrderedDict()  # _audit's key -> when last logged, oldest first
        self._audited_lock = threading.Lock()
        # Logins being checked now in this process (MAX_LOGINS_AT_ONCE); the rate limits are counted
        # in the database, over every process (store.reserve_attempt).
        self._in_flight = 0
        self._in_flight_lock = threading.Lock()
        self._open_lock = threading.Lock()  # a users file made after the start is opened once
        self.reads = DatabaseWait("the users database")  # requests' reads of it, a few seconds each at most
        self._let_in: OrderedDict[str, tuple[Principal, float]] = OrderedDict()  # credential's hash -> (who, when)
        self._let_in_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: AuthSettings) -> AccessControl:
        """The gatekeeper of these settings. A users file that does not exist yet is not made by
        serving: it is opened once `users add` has made it (has_users)."""
        control = cls(settings, None)
        if settings.database is not None and ("://" in settings.database or Path(settings.database).is_file()):
            control.store = AuthStore(settings.database, retention_days=settings.retention_days)
        return control

    def has_users(self) -> bool:
        """Whether any user exists (read again at most every 2 s: the first `users add` closes an
        open server within that, the users file made after the server started included)."""
        now = time.monotonic()
        if self.store is None:
            database = self.settings.database
            if database is None or now - self._users_checked <= 2.0:
                return False
            self._users_checked = now
            if not Path(database).is_file():
                return False
            with self._open_lock:  # two requests at once open it once
                if self.store is None:
                    self.store = AuthStore(database, retention_days=self.settings.retention_days)
                    if self._started:
                        self._start_sweep()
        if now - self._users_checked > 2.0 or not self._has_users:
            self._has_users, self._users_checked = self.store.user_count() > 0, now
        return self._has_users

    def start(self) -> None:
        """_sweep once at once and then every FAILURES_SWEPT_EVERY on a thread of this process (the
        app's lifespan): run from requests, an idle server kept failed logins, hashed names typed
        as passwords among them, until it was next asked something. Only where there is a users
        database: a server without one ran the thread for nothing; a users file made after the
        start starts it once a request has opened the file (has_users)."""
        with self._open_lock:
            self._started = True
            if self.store is not None:
                self._start_sweep()

    def _start_sweep(self) -> None:
        """The sweep's thread started (under _open_lock: once, whoever opens the store)."""
        problems = ProblemLog(log, "the users database's sweep (failed logins, access log, sessions) failed; "
                                   "tried again in a minute", "the users database is swept again")
        self._sweeper = Periodic(self._sweep, FAILURES_SWEPT_EVERY, "maskwatch-auth-sweep", problems, at_start=True,
                                 stop_wait=SWEEP_STOP_WAIT)
        self._sweeper.start()

    def close(self) -> None:
        with self._open_lock:  # a request opening the users file now starts no sweep after it
            self._started = False
        if self._sweeper is not None:
            self._sweeper.stop()
        if self.store is not None:
            self.store.close()

    # The global dependency

    def authorize(self, request: Request) -> None:
        """Runs before every route's handler (a plain def: FastAPI runs it in the threadpool)."""
        route = request.scope.get("route")
        extra = getattr(route, "openapi_extra", None) or {}
        access = extra.get(ACCESS, "user")
        request.state.principal = None
        if access == "public":
            return
        principal = self._identified(request)
        if principal.via == "session" and request.method not in SAFE_METHODS:
            check_csrf(request)
        elif principal.via in ("session", "open") and extra.get(SAME_SITE_ONLY):
            check_origin(request)  # a token is no browser's ambient credential: its scripts may link freely
        elif principal.via == "open" and request.method not in SAFE_METHODS:
            check_origin(request)  # a page elsewhere must not post to an open server; curl sends no Origin
        if principal.scope == "read" and request.method not in SAFE_METHODS and not extra.get(READS_ONLY):
            raise AuthError(403, "this API token is read-only")
        if self.two_step_missing(principal) and getattr(route, "path", None) not in TWO_STEP_SETUP:
            raise AuthError(403, TWO_STEP_REQUIRED)
        if access == "admin" and principal.role != "admin":
            raise AuthError(403, "this needs the admin role")
        if access == "all-cameras" and principal.cameras is not None:
            raise AuthError(403, "this covers every camera; you may see only some")
        camera = camera_of(request)
        if not principal.may_see(camera):
            raise AuthError(403, f"no access to camera {camera!r}")
        request.state.principal = principal
        if extra.get(AUDIT) and self.store is not None:
            # Written once the answer is known, for a 2xx only (audit_answered): a row was written
            # before the handler ran, so 300 requests for snapshots that do not exist left 300
            # "snapshot fetched" rows, one database write each.
            request.state.audit = (extra[AUDIT], principal.name, client_address(request), audit_target(request, extra))

    def sees_every_camera(self, request: Request) -> bool:
        """Whether a request to a public route comes from whom an ALL_CAMERAS route (/metrics)
        answers: /healthz tells them more than its status. A database away is a no: a load
        balancer's /healthz, which asks it nothing, must not read a users database blip as down."""
        try:
            principal = self.identify(request)
        except (AuthError, SQLAlchemyError):
            return False
        return principal.cameras is None and not self.two_step_missing(principal)

    def two_step_missing(self, principal: Principal) -> bool:
        """Whether a session's user must have two-step login (server.require_two_step) and has not."""
        return self.two_step_kept(principal) and not principal.two_step

    def _identified(self, request: Request) -> Principal:
        """identify, as one read of the users database (self.reads): DatabaseNotAnswering while it
        hangs, but for a read by a session or token let in within LET_IN_WHILE_HUNG (_let_in)."""
        key = self._credential_key(request)
        try:
            principal = self.reads.call(self.identify, request)
        except DatabaseNotAnswering:
            with self._let_in_lock:
                known = self._let_in.get(key) if key is not None and request.method in SAFE_METHODS else None
            if known is None or time.monotonic() - known[1] > LET_IN_WHILE_HUNG or (
                    known[0].ends is not None and time.time() >= known[0].ends):  # idle, too old, expired
                raise
            return known[0]
        except AuthError:
            # Refused by the database (revoked, ended, expired): never let in from memory again, as a
            # token revoked by `tokens revoke` in another process was, were the database to hang next.
            if key is not None:
                with self._let_in_lock:
                    self._let_in.pop(key, None)
            raise
        if key is not None and principal.via != "open":
            with self._let_in_lock:
                self._let_in[key] = (principal, time.monotonic())
                self._let_in.move_to_end(key)
                while len(self._let_in) > 10_000:  # the oldest go: they are asked of the database again
                    self._let_in.popitem(last=False)
        return principal

    @staticmethod
    def _credential_key(request: Request) -> str | None:
        """What _let_in keeps a request's credential under (identify's: the header, else the cookie)."""
        header = request.headers.get("authorization")
        credential = header if header is not None else request.cookies.get(session_cookie(request))
        return hashlib.sha256(credential.encode()).hexdigest() if credential else None

    def two_step_kept(self, principal: Principal) -> bool:
        """Whether server.require_two_step covers a session's user: they may not turn it off (TWO_STEP_KEPT)."""
        return principal.via == "session" and self.settings.two_step_required(principal.role)

    def audit_answered(self, request: Request, status: int) -> None:
        """The access-log row of an audited request that was answered with a 2xx."""
        audit = getattr(request.state, "audit", None)
        if audit is not None and 200 <= status < 300:
            self._audit(*audit)

    def _audit(self, action: str, user: str | None, client: str, path: str | None) -> None:
        """One row per user, client, action and path a minute at most."""
        if self._due((user, client, action, path)):
            try:
                self.reads.call(self.store.log, action, user, client, path)
            except DatabaseNotAnswering:  # the answer goes out; the row is lost (the log says the hang)
                pass

    def _due(self, key: tuple) -> bool:
        """Whether a row of `key` was not written in the last minute (it is then counted as written)."""
        now = time.monotonic()
        with self._audited_lock:
            if now - self._audited.get(key, -AUDIT_EVERY) < AUDIT_EVERY:
                return False
            self._audited[key] = now
            self._audited.move_to_end(key)
            while len(self._audited) > 10_000:  # the oldest go; the log itself is in the database
                self._audited.popitem(last=False)
        return True

    def tried(self, name: str) -> Tried:
        """`name` as its password is checked and its failed logins logged and counted, from one
        lookup (a failed login made two). A user's name in any case is that user's, as stored:
        `Ana` logs in as `ana` (names are one whatever their case, and a phone capitalises the
        first letter typed), and its failures are logged as `ana` and counted under `user:ana`
        whatever the spelling (counted per spelling, `ana`, `Ana`, `ANA`... each had the whole
        limit). A spelling two users stored from before that rule both match (`ALICE` for `alice`
        and `Alice`) is neither's: checked as typed, it matches no password, logged as typed.
        Any other is logged as UNKNOWN_NAME (it is often a password or a recovery code) and
        counted under `unknown:` and its SHA-256 (the table kept a password typed as the name in
        clear for a day; still counted per name, so an unknown name is limited as a user's is,
        telling nothing), its ASCII letters lowered as the store compares names (schema.name_key):
        counted per spelling, `ZED` to the limit and then `zed` was let through where `ANA` and then
        `ana` was refused, telling that ana is a user."""
        spellings = self.store.user_spellings(name)
        if len(spellings) == 1:
            name = spellings[0]
        if spellings:
            return Tried(name, name[:64], f"user:{name[:64]}")
        counted = name[:64].translate(ASCII_LOWER).encode()
        return Tried(name, UNKNOWN_NAME, "unknown:" + hashlib.sha256(counted).hexdigest())

    def identify(self, request: Request) -> Principal:
        """Who asks: a Bearer token, else a session cookie, else (open server only) anyone."""
        if self.store is None:
            self.has_users()  # opens a users file made since the start
        header = request.headers.get("authorization")
        if header is not None:
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise AuthError(401, "Authorization must be 'Bearer TOKEN'", {"WWW-Authenticate": "Bearer"})
            found = self.store.token(token.strip()) if self.store is not None else None
            if found is not None and found.get("expired"):  # refused as a revoked one; the log says why
                self._audit("token_expired", f"token:{found['name']}", client_address(request), None)
                found = None
            if found is None:
                raise AuthError(401, "unknown or revoked API token", {"WWW-Authenticate": "Bearer"})
            role = "admin" if found["scope"] == "full" else "viewer"
            cameras = tuple(found["cameras"]) if found["cameras"] is not None else None  # `tokens add --camera`
            return Principal(f"token:{found['name']}", role, "token", cameras, scope=found["scope"],
                             ends=found["expires"])
        cookie = request.cookies.get(session_cookie(request))
        if cookie and self.store is not None:
            user = self.store.session_user(cookie, self.idle, self.absolute)
            if user is not None:
                cameras = tuple(user["cameras"]) if user["cameras"] is not None and user["role"] != "admin" else None
                return Principal(user["name"], user["role"], "session", cameras, session=cookie,
                                 two_step=user["two_step"], ends=user["ends"])
        if self.settings.open_without_users and not self.has_users():
            if self.settings.open_to_loopback_hosts_only and not is_loopback(request.url.hostname):
                raise AuthError(401, f"this server has no users yet and answers only at http://127.0.0.1 or "
                                     f"localhost, not {request.url.hostname!r}; add a user (maskwatch users add)")
            return Principal(None, "admin", "open")
        raise AuthError(401, "log in first (POST /login) or send 'Authorization: Bearer TOKEN'",
                        {"WWW-Authenticate": "Bearer"})

    # Login and logout

    def login(self, request: Request, name: str, password: str, code: str = "") -> tuple[dict, str]:
        """The user and a new session token; AuthError 401 (the same for an unknown user, a wrong
        password and, for a user with two-step login on, a missing or wrong `code`), 403
        (cross-origin), 409 (a recovery code whose set was renewed meanwhile) or 429 with Retry-After."""
        check_csrf(request)
        if self.store is None and not self.has_users():  # a users file made since the start is opened
            raise AuthError(401, WRONG_LOGIN)
        client = client_address(request)
        # A name holding a NUL (PostgreSQL takes none in text) is no user's: the store asks the
        # database nothing of it (store._named), and it is counted and logged as UNKNOWN_NAME.
        tried = self.reads.call(self.tried, name)  # a hung database: a 503 saying so, never a 401
        user = self._check_password(client, tried, password, "logins", code)
        # None: a wrong password or code (the attempt's rows stay: they are its failure), or the
        # user removed, given a new password or two-step login while this login was being checked.
        token = None if user is None else self.store.start_session(user["id"], user.pop("password_hash"),
                                                                   user.pop("totp_secret"))
        if token is None:
            self.store.log("login_failed", None, client, tried.logged)
            said_failed(tried.logged, client)
            raise AuthError(401, WRONG_LOGIN)
        del user["recovery_hashes"]  # read for the code's check; never answered
        if old := request.cookies.get(session_cookie(request)):
            self.store.end_session(old)  # the session this browser had: it stayed valid until it expired
        if stale := stale_root_cookie(request):
            # Made at / before server.root_path was set: its Path=/ sends it to the host's other
            # applications, and its token logs in under the prefix's name too. Ended (routes.login drops it).
            self.store.end_session(stale)
        self.store.log("login", user["name"], client)
        return user, token

    def _check_password(self, client: str, tried: Tried, password: str, checks: str,
                        code: str | None = None, read: dict | None = None) -> dict | None:
        """The user (with the "password_hash", "totp_secret" and "recovery_hashes" checked, never
        answered) when `password` is the `tried` name's, else None with the attempt counted as a failure of the client and
        of the name; AuthError 429 past either limit, 503 past MAX_LOGINS_AT_ONCE, naming the
        caller's `checks` ("logins", "password checks": a password change was told of too many
        logins). A login and a password change
        (its current password) both come here, so neither guesses faster than the other allows.
        With `code` (a login, two-step login turned off), a user who has two-step login on needs
        it to be a fresh code of theirs too: a wrong or missing one is the same failure as a wrong
        password, counted as one, so the second factor is guessed no faster than the first.
        `read`: the two-step state (store.two_step) the caller read before (_changed_meanwhile)."""
        keys = [f"client:{guesser(client)}", tried.key]
        with self._in_flight_lock:
            if self._in_flight >= MAX_LOGINS_AT_ONCE:
                raise AuthError(503, f"too many {checks} at once; try again in a second", {"Retry-After": "1"})
            self._in_flight += 1
        try:
            # Counted in the database before the password is checked, so that guesses sent in
            # parallel, to any worker, count before any is checked (store.reserve_attempt).
            reserved, oldest = self.store.reserve_attempt(
                dict(zip(keys, (self.settings.client_limit, self.settings.user_limit))), self.window)
            if reserved is None:
                wait = max(1, math.ceil(oldest + self.window - time.time()))
                # Once a minute per client, whatever names it tries (a row per new name let one
                # address write 700 rows a second); the first name of the minute is kept.
                if self._due(("login_limited", client)):
                    self.store.log("login_limited", None, client, tried.logged)
                    log.warning("logins from %s refused for %d s: too many failed (the server's log says this "
                                "once a minute per client)", client, wait)
                raise AuthError(429, f"too many failed logins; try again in {wait} s", {"Retry-After": str(wait)})
            try:
                user = self.store.check_login(tried.name, password)
                if user is not None:
                    self._changed_meanwhile(user, code, read)
                    secret, last_step = user["totp_secret"], user.pop("totp_step")
                    recovery = user["recovery_hashes"]  # kept: a renewal is made on the set it read
                    if code is not None and secret is not None and not self._fresh_code(user, secret, code, last_step,
                                                                                        recovery, client):
                        user = None  # the rows stay, as for a wrong password
                    elif secret is not None:  # held back by check_login until the code was right too
                        user["password_hash"] = self.store.rehashed(user["id"], password, user["password_hash"])
            except Exception:  # the database away mid-check, or a 409: no failure of the guesser's (the
                try:           # right password was counted as one, five 503s locking its user out)
                    self.store.release_attempt(reserved)
                except SQLAlchemyError:
                    pass
                raise
            if user is None:  # the attempt's rows stay: they are its failure
                return None
        finally:
            with self._in_flight_lock:
                self._in_flight -= 1
        self.store.release_attempt(reserved)
        self.store.clear_failures(keys[1])
        return user

    @staticmethod
    def _changed_meanwhile(user: dict, code: str | None, read: dict | None) -> None:
        """AuthError 409 TWO_STEP_CHANGED where the user's secret is no longer the one the caller
        `read` (another New phone won the race: a second tab, a double send) and `code` is right
        for that one: checked against the new secret it was a failed login. A code wrong against
        the secret read goes on to the usual check, and is counted; the 409 tells only whoever
        sent the right password and a right code."""
        from maskwatch.security.two_step import matching_step, recovery_hash, recovery_matches

        if read is None or code is None or user["totp_secret"] == (old := read.get("secret")) or old is None:
            return
        hashed = recovery_hash(old, code)
        if matching_step(old, code, None) is not None or (hashed and recovery_matches(hashed, read["recovery"])):
            raise AuthError(409, TWO_STEP_CHANGED)

    def _fresh_code(self, user: dict, secret: str, code: str, last_step: int | None, recovery: list[str],
                    client: str) -> bool:
        """Whether `code` is the user's for now (two_step.DRIFT steps either side) and was not
        used before: its step is then the last one used (store.use_step, one write that a second
        login with the same code, sent at once, loses). Or one of their recovery codes (`recovery`:
        the hashes read with the password), used up now (store.use_recovery, alike) and logged:
        `recovery_used`. A wrong code of either kind writes nothing (a write only after a right
        password would tell, by the answer's time, that it was right). A right recovery code whose
        set another tab replaced since it was read: AuthError 409 RENEWED_MEANWHILE, not a failure
        (said only to whoever sent the right password and code: nothing told to a guesser)."""
        from maskwatch.security.two_step import matching_step, recovery_hash, recovery_matches

        if (step := matching_step(secret, code, last_step)) is not None:
            return self.store.use_step(user["id"], step)
        hashed = recovery_hash(secret, code)
        if hashed is None or not recovery_matches(hashed, recovery):
            return False
        try:
            if not self.store.use_recovery(user["id"], hashed, seen=recovery, secret=secret):
                return False
        except Conflict as err:
            raise AuthError(409, str(err)) from None
        self.store.log("recovery_used", user["name"], client, user["name"])
        return True

    def change_password(self, request: Request, principal: Principal, current: str, new: str, code: str = "") -> str:
        """A logged-in user's own new password (POST /password); the new session's token. `current`
        (and, for a user with two-step login on, `code`: the app's or a recovery code, as turning it
        off asks) is checked as a login checks it, under the same limits: a wrong one is a failed
        login of the user. Every session of the user ends, this one too: the browser gets a new one
        (a session id known before the change, planted or stolen, is worth nothing after it).
        AuthError 400 (a weak or unchanged new password), 403 (not a session, no code where two-step
        login is on, or a wrong current password or code), 409, 429."""
        self.own_account(principal, "an API token has no password: a user changes theirs logged in, an admin "
                                    "another's in the dashboard's Users or with `maskwatch users passwd NAME`",
                         "password to change")
        if principal.two_step and not code.strip():  # said before the password is checked: no guess counted
            raise AuthError(403, CODE_TOO)
        if principal.two_step:
            # A new password too short or the user's name, said before the checks: said after, it had
            # spent the code, a recovery code one of ten, for nothing. It tells nothing of the current
            # password (the rule reads the new one and the name alone), nor does the new one being the
            # current one as typed (two strings the caller sent; the stored one is checked below).
            _strong_enough(new, principal.name)
            if normalized(new) == normalized(current):  # "ü" typed on a Mac is Windows' "ü"
                raise AuthError(400, SAME_PASSWORD)
        # The current password first: a wrong one is the answer whatever the new one (the new one's
        # refusals, said first, answered a guess with "the new password is the current one").
        client = client_address(request)
        # code None where the session's user had it off: turned on meanwhile, the store's write is the 409
        user = self._check_password(client, self.tried(principal.name), current, "password checks",
                                    code if principal.two_step else None)
        if user is None:
            self.store.log("password_change_failed", principal.name, client)
            said_failed(principal.name, client)
            raise AuthError(403, "wrong current password or code" if principal.two_step else "wrong current password")
        _strong_enough(new, principal.name)
        if normalized(new) == normalized(current):
            raise AuthError(400, SAME_PASSWORD)
        token = self.store.change_own_password(principal.name, user["password_hash"], new, user["totp_secret"])
        if token is None:
            raise AuthError(409, "the password or two-step login was changed, or the user removed, while this "
                                 "change was checked; log in again")
        self.store.log("password_changed", principal.name, client)
        return token

    def own_account(self, principal: Principal, token_refusal: str = TOKEN_HAS_NO_LOGIN,
                    nothing: str = "login to secure") -> str:
        """The name of the user logged in to change their own account (their password, their
        two-step login); AuthError 403 for an API token (`token_refusal`) or an open server, which
        has no users yet and so no `nothing`."""
        if principal.via == "token":
            raise AuthError(403, token_refusal)
        if principal.via != "session" or self.store is None:
            raise AuthError(403, f"this server has no users yet, so no {nothing} "
                                 "(maskwatch users add NAME --role admin adds one)")
        return principal.name

    # Two-step login, the user's own (two_step_routes.py)

    def two_step_secret(self, principal: Principal) -> dict:
        """A new secret for the user's app, kept as pending until a code from it confirms it: the
        only answer that holds it. Also while two-step login is on, for a new phone
        (replace_two_step): the current secret stays the user's until then. AuthError 403, 429."""
        from maskwatch.security.two_step import enrolment_uri, new_secret, qr_svg

        name = self.own_account(principal)
        # Each is a database write and a QR code: counted per user as failed logins are, in the
        # same table and window but under a key of their own (a user who clicks "Set up" again is
        # not locked out of logging in).
        reserved, oldest = self.store.reserve_attempt({f"secret:{name}": SECRETS_PER_WINDOW}, self.window)
        if reserved is None:
            wait = max(1, math.ceil(oldest + self.window - time.time()))
            raise AuthError(429, f"too many new secrets ({SECRETS_PER_WINDOW} in {self.window / 60:g} minutes); "
                                 f"try again in {wait} s, or use the last one made", {"Retry-After": str(wait)})
        secret = new_secret()
        if not self.store.set_pending(name, secret):
            raise AuthError(409, "the user was removed meanwhile")
        uri = enrolment_uri(secret, name)
        return {"secret": secret, "uri": uri, "qr_svg": qr_svg(uri)}

    def turn_on_two_step(self, request: Request, principal: Principal, password: str,
                         code: str) -> tuple[str, list[str]]:
        """Two-step login on for the user, once their password (checked as a login, a wrong one a
        failed login) and a code of the pending secret are right; a new session's token, every
        other session of theirs ended, and their recovery codes (shown this once). AuthError 400 (a
        code that does not match: a typo, not a guess, the secret being the asker's own), 403, 409, 429."""
        from maskwatch.security.two_step import matching_step, new_recovery_codes, recovery_hashes

        name = self.own_account(principal)
        client = client_address(request)
        user = self._check_password(client, self.tried(name), password, "password checks")
        if user is None:
            self.store.log("totp_failed", name, client, "on")
            said_failed(name, client)
            raise AuthError(403, "wrong password")
        pending = (self.store.two_step(name) or {}).get("pending")
        if user["two_step"] or pending is None:
            raise AuthError(409, "two-step login is on already" if user["two_step"] else
                            "no new secret to confirm: start again (POST /two-step/secret)")
        if (step := matching_step(pending, code, None)) is None:
            raise AuthError(400, "the code is not the app's code for now: check the phone's clock, and that the "
                                 "app shows the code of this site's new entry")
        codes = new_recovery_codes()
        token = self.store.turn_on(name, pending, step, checked_hash=user["password_hash"],
                                   recovery=recovery_hashes(pending, codes))
        if token is None:
            raise AuthError(409, "the password or the secret changed, or the user was removed, while this was "
                                 "checked; start again")
        self.store.log("totp_on", name, client, name)
        return token, codes

    def replace_two_step(self, request: Request, principal: Principal, password: str, code: str,
                         new_code: str) -> tuple[str, list[str]]:
        """A new phone: the pending secret (POST /two-step/secret) in place of the current one, once
        `new_code` is its code for now (a typo: 400, checked first so that no current code or
        recovery code is spent on it) and the password and `code` (the current phone's, or a
        recovery code) are right, checked as a login checks them (a wrong one a failed login, the
        used code used up). Open to users whom server.require_two_step covers: it is never off.
        Every other session ends, as turning it on does; a new set of recovery codes (the old
        ones are keyed with the old secret): the new session's token and the codes. AuthError 400,
        403, 409 (not on, no new secret, or changed meanwhile), 429."""
        from maskwatch.security.two_step import matching_step, new_recovery_codes, recovery_hashes

        name = self.own_account(principal)
        state = self.store.two_step(name) or {}
        if state.get("secret") is None or state.get("pending") is None:
            raise AuthError(409, "no new secret to confirm: start again (POST /two-step/secret)" if state.get("secret")
                            else NOT_ON_TO_REPLACE)
        pending = state["pending"]
        if (step := matching_step(pending, new_code, None)) is None:
            raise AuthError(400, NOT_THE_NEW_CODE)
        _, client, user = self._own_with_code(request, principal, password, code, "new phone", state)
        codes = new_recovery_codes()
        token = None if user["totp_secret"] is None else self.store.turn_on(
            name, pending, step, checked_hash=user["password_hash"], recovery=recovery_hashes(pending, codes),
            replacing=user["totp_secret"])
        if token is None:
            raise AuthError(409, "two-step login, the password or the new secret changed, or the user was removed, "
                                 "while this was checked; start again")
        self.store.log("totp_replaced", name, client, name)
        return token, codes

    def turn_off_two_step(self, request: Request, principal: Principal, password: str, code: str) -> str:
        """Two-step login off for the user: their password and a fresh code (or a recovery code),
        checked as a login checks them (a wrong one is a failed login: a stolen session must not
        take the second factor off). Every other session of theirs ends; the new session's token.
        AuthError 403 (also where server.require_two_step covers the user: TWO_STEP_KEPT, said before
        the password is checked), 409 (it is not on), 429."""
        self.own_account(principal)
        if self.settings.two_step_required(principal.role):
            raise AuthError(403, TWO_STEP_KEPT.format(required=required_words(self.settings.require_two_step)))
        name, client, _ = self._own_with_code(request, principal, password, code, "off")
        if (token := self.store.turn_off(name)) is None:
            raise AuthError(409, "two-step login is not on")
        self.store.log("totp_off", name, client, name)
        return token

    def renew_recovery_codes(self, request: Request, principal: Principal, password: str, code: str) -> list[str]:
        """A new set of recovery codes for the user, the old set gone: their password and a code
        (or a recovery code), checked as for turning two-step login off. AuthError 403, 409 (it is
        not on, or was changed meanwhile: turned off or on again, or another set made), 429."""
        from maskwatch.security.two_step import new_recovery_codes, recovery_hashes

        name, client, user = self._own_with_code(request, principal, password, code, "recovery codes")
        if (secret := user["totp_secret"]) is None:
            raise AuthError(409, "two-step login is not on")
        codes = new_recovery_codes()
        try:  # on the set the check read: another tab's, made meanwhile and shown there, is kept
            self.store.renew_recovery(name, secret, recovery_hashes(secret, codes), user["recovery_hashes"])
        except Conflict as err:
            raise AuthError(409, str(err)) from None
        self.store.log("recovery_renewed", name, client, name)
        return codes

    def _own_with_code(self, request: Request, principal: Principal, password: str, code: str,
                       what: str, read: dict | None = None) -> tuple[str, str, dict]:
        """The user's name, client and checked user, once their password and code are right (a
        wrong one a failed login, the access log's `totp_failed` with `what` as its target).
        `read`: as _check_password's."""
        name = self.own_account(principal)
        client = client_address(request)
        if (user := self._check_password(client, self.tried(name), password, "password checks", code, read)) is None:
            self.store.log("totp_failed", name, client, what)
            said_failed(name, client)
            raise AuthError(403, "wrong password or code")
        return name, client, user

    def confirm_admin(self, request: Request, principal: Principal, password: str, change: str) -> tuple[str, str]:
        """The acting admin's own password, asked with each change to the users or tokens
        (admin_routes.py) so that a stolen or unattended session is not enough: checked as a login
        checks it, under the same limits; a wrong one is a failed login of the admin (the access
        log's `admin_password_failed`, its target the `change` refused, and the server's log line).
        (name, the hash checked), for the store to check again as it writes; AuthError 403, 429, 503."""
        client = client_address(request)
        user = self._check_password(client, self.tried(principal.name), password, "password checks")
        if user is None:
            self.store.log("admin_password_failed", principal.name, client, change)
            said_failed(principal.name, client)
            raise AuthError(403, "your password (admin_password) is wrong")
        return principal.name, user["password_hash"]

    def logout(self, request: Request, principal: Principal) -> None:
        with self._let_in_lock:  # not let in while the database hangs, logged out
            self._let_in.pop(self._credential_key(request), None)
        if principal.session is not None and self.store is not None:
            self.store.end_session(principal.session)
            self.store.log("logout", principal.name, client_address(request))

    def _sweep(self) -> None:
        """Failed logins past their window deleted (store.drop_failures), at most hourly the
        access log past its retention and stale sessions, and once a day for the whole site (the
        first sweep of any of its processes that finds the day's due: store.claim_daily) the API
        tokens that stop working within a week said (start() runs it where there is a store,
        has_users once a request opened a users file made since the start)."""
        self.store.drop_failures(self.window)
        if time.monotonic() - self._swept > 3600:
            self.store.enforce_retention(self.absolute, idle=self.idle)
            self._swept = time.monotonic()
        if self.store.claim_daily(DAILY_NOTICE, SAID_EVERY):
            say_ending_tokens(self.store.tokens())

    def cookie(self, request: Request, token: str | None) -> tuple[str, str, dict]:
        """Name, value and attributes of the session cookie for this request (token None: delete)."""
        secure = secure_cookies(request)
        # Under a proxy's prefix the cookie goes to this service's paths only, not the host's others.
        attributes = {"httponly": True, "samesite": "lax", "path": root_of(request) + "/", "secure": secure,
                      "max_age": int(self.absolute) if token is not None else 0}
        return session_cookie(request), token or "", attributes

"""`maskwatch users ...` and `maskwatch tokens ...`: who may log in, and which machines may ask.

Passwords come from a hidden prompt (typed twice), or from the first line of stdin when stdin is
not a terminal (`printf '%s\\n' "$PW" | maskwatch users add ana --role admin`): never from the
command line, where `ps` and the shell history would keep them, and never printed.
"""

from __future__ import annotations

import contextlib
import getpass
import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from maskwatch.atomic import unprinted
from maskwatch.security.auth_settings import MAX_TOKEN_DAYS

users_app = typer.Typer(help="Users who may log in (in the site's database).", no_args_is_help=True)
tokens_app = typer.Typer(help="API tokens for machines: Prometheus, scripts (in the site's database).",
                         no_args_is_help=True)

Config = Annotated[Optional[Path], typer.Option("--config", "-c", help="The site's YAML file: its storage.database.")]
UserName = Annotated[str, typer.Argument(help="The user's name, as `users list` shows it (any case).")]
DEFAULT_DATABASE = "maskwatch.db"
STORE_MODULES = ("sqlalchemy", "pwdlib", "yaml")  # what the users' store and the site's file need
# What a command setting a password needs besides: the common passwords' list (passwords.py), not
# among STORE_MODULES since importing it costs 0.1 s, which `users list` and `tokens` need not pay.
PASSWORD_MODULES = ("zxcvbn",)
# None where not given: `--config site.yaml --database maskwatch.db` is refused as both given.
Database = Annotated[Optional[str], typer.Option(
    help=f"SQLite file or SQLAlchemy URL (without --config; default {DEFAULT_DATABASE}, as `serve` reads).",
    show_default=False)]


def _fail(message: str, code: int = 1) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=code)


def open_store(config: Path | None, database: str | None, command: str = "users", create: bool = False):
    """The AuthStore of the site's database (`--config`) or of `database`. Only a command that adds
    (create) makes a new SQLite file: `users list --database typo.db` is an error, not an empty list."""
    return store_of(site_config(config, command), database, create)


def site_config(config: Path | None, command: str = "users"):
    """The site's config (None without one), once the serve extra is known to be there."""
    from maskwatch.extras import need

    # The serve extra's parts these commands import: checking all of it imported FastAPI, uvicorn
    # and apprise too, half a second of each `maskwatch users ...` start.
    need(command, "serve", STORE_MODULES)
    if config is None:
        return None
    from maskwatch.site.config import SiteConfigError, load_site_users_view

    try:
        return load_site_users_view(config)  # not the cameras' passwords
    except SiteConfigError as err:
        _fail(str(err).splitlines()[0])


def site_database(site, database: str | None) -> str:
    """The site's database where a config was read, else `database` (maskwatch.db where not
    given); both given is refused (the site's was used, the one named ignored in silence)."""
    if site is None:
        from maskwatch.site.database import url_problem

        if database and (problem := url_problem(database)):  # as a site's file refuses it: no traceback, no password
            _fail(f"--database: {problem}")
        return database or DEFAULT_DATABASE
    if database is not None:
        _fail("--config names the site's database (storage.database); give --config or --database, not both")
    return site.storage.database


def store_of(site, database: str | None, create: bool = False):
    """open_store for a config already read: the site's database, else `database`."""
    database = site_database(site, database)
    options = {"retention_days": site.storage.retention_days} if site is not None else {}
    if not create and "://" not in database and not Path(database).is_file():
        _fail(f"{database}: no such database (a wrong path? maskwatch users add, or tokens add without --owner, makes one)")
    return _store(database, **options)


def _store(database: str, **options):
    """The AuthStore of `database`, or exit 1 naming why not: a server that does not answer within
    COMMAND_CONNECT_TIMEOUT too (it held the command for ever)."""
    from maskwatch.security.store import AuthStore
    from maskwatch.site.database import COMMAND_CONNECT_TIMEOUT, DatabaseUnavailable

    try:
        return AuthStore(database, connect_timeout=COMMAND_CONNECT_TIMEOUT, **options)
    except DatabaseUnavailable as err:
        _fail(str(err))


def stored_history(site, cameras: list[str]) -> list[str]:
    """Those of `cameras` whose people or counts the site's database still holds."""
    from sqlalchemy.exc import SQLAlchemyError

    from maskwatch.site.database import COMMAND_CONNECT_TIMEOUT, DatabaseUnavailable, driver_reason
    from maskwatch.site.events import stored_among

    try:
        return stored_among(site.storage.database, cameras, COMMAND_CONNECT_TIMEOUT)
    except DatabaseUnavailable as err:  # a driver not installed: a traceback, where `users add` says it
        _fail(str(err))
    except SQLAlchemyError as err:
        _fail(f"the site's database: cannot read its stored cameras: {driver_reason(err)}")


def cli_user() -> str:
    """Who a command's access-log rows name: `cli:ACCOUNT`, the system account that ran it."""
    try:
        account = getpass.getuser()
    except (KeyError, OSError):  # a container's user with no name
        account = "unknown"
    return f"cli:{account}"[:64]


def stored_name(store, name: str) -> str:
    """The user's name as stored, `name` in any case (store.stored_user_name), or exit 1 saying why
    not: `users remove ALICE` said "no user 'ALICE'" while `users list` showed `alice`. What the
    command does, prints and logs is then the stored name's."""
    try:
        return store.stored_user_name(name)
    except ValueError as err:
        _fail(str(err))


def _logged(store, action: str, target: str) -> None:
    """The change as a row of the access log, as the dashboard's are (admin_routes.py): by
    `cli:ACCOUNT`, the system account that ran the command, from `local`."""
    store.log(action, cli_user(), "local", target)


def _logged_revoked(store, owner: str, why: str, tokens: list[str]) -> None:
    """A `token_revoked` row for each token revoked with its owner, as the dashboard writes them."""
    from maskwatch.security.user_words import revoked_target

    for token in tokens:
        _logged(store, "token_revoked", revoked_target(token, owner, why))


def read_password(confirm: bool = True) -> str:
    if not sys.stdin.isatty():
        raw = sys.stdin.buffer.readline()  # bytes: the locale's decoding failed with a traceback
        if not raw:
            _fail("no password on stdin (send it as one line, or run in a terminal to be asked)")
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            _fail("the password on stdin is not UTF-8 text")
        return line.rstrip("\r\n")
    return asked("Password", hide_input=True, confirmation_prompt=confirm)


def asked(question: str, **options) -> str:
    """typer.prompt, stopped as the other commands stop: Ctrl-C at a prompt said click's "Aborted."
    with exit code 1 (130 is Ctrl-C's), and nothing of whether the user had been changed."""
    try:
        return typer.prompt(question, **options)
    except typer.Abort as err:  # raised `from None`: what the terminal sent is its context
        if isinstance(err.__context__, EOFError):
            _fail("no answer at the prompt (end of input); no user or setting was changed")
        _fail("stopped by Ctrl-C at the prompt; no user or setting was changed", code=130)


@users_app.command("add")
def add_user(
    name: Annotated[str, typer.Argument(help="User name: A-Z, a-z, 0-9, _ . @ -, not starting with -")],
    role: Annotated[str, typer.Option(help="admin (everything, with users, tokens and the access log) or viewer (page, events, reports).")] = "viewer",
    camera: Annotated[Optional[list[str]], typer.Option(help="A viewer sees only these cameras (repeat the option); default: all.")] = None,
    config: Config = None,
    database: Database = None,
) -> None:
    """Add a user; the password is asked for (or read from stdin), never passed as an argument."""
    site = site_config(config)
    from maskwatch.extras import need
    from maskwatch.security.user_rules import CLI_EDIT, new_user_problem, viewer_cameras

    need("users", "serve", PASSWORD_MODULES)  # a traceback at the password's check without it
    if (problem := new_user_problem(name, role, camera)) is not None:  # said before the password is asked
        _fail(problem)
    site_database(site, database)  # a --database that is no URL, or beside --config: said before the rest
    try:
        camera = viewer_cameras(camera, list(site.cameras) if site is not None else None,
                                lambda unknown: stored_history(site, unknown), str(config), CLI_EDIT[1])
    except ValueError as err:
        _fail(str(err))
    password = read_password()
    from maskwatch.security.passwords import check_strength

    try:  # before the store: a password refused left a new, empty database behind
        check_strength(password, name)
    except ValueError as err:
        _fail(str(err))
    store = store_of(site, database, create=True)
    try:
        user = store.add_user(name, password, role, camera or None)
    except ValueError as err:
        _fail(str(err))
    from maskwatch.security.user_words import added_target

    _logged(store, "user_added", added_target(user))
    cameras = ", ".join(user["cameras"]) if user["cameras"] is not None else "all cameras"
    try:
        typer.echo(f"added {user['role']} {user['name']} ({cameras}) to {_shown_database(store.url)}"
                   + ("" if config is not None or database is not None else
                      " (no --config: a site's users are in its storage.database, added with --config site.yaml)"))
    except OSError as err:  # a stdout on a full disk: an error alone read as the user not added
        _fail(f"{unprinted(err)}; the user {name} was added all the same (`users list` shows them): "
              "do not add them again")


def _shown_database(url: str) -> str:
    """Where the users went, as a person finds it: an SQLite file's path (`users add` without
    --config wrote ./maskwatch.db, said as "sqlite database", and `run` beyond loopback still
    found no user in the site's own), a server's URL without its password."""
    from maskwatch.site.database import shown_database_url

    return url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else shown_database_url(url)


@users_app.command("list")
def list_users(config: Config = None, database: Database = None) -> None:
    """Users, their roles, cameras, open sessions and whether two-step login is on (with how many
    recovery codes are left: a user with none left has no way in without the phone)."""
    from maskwatch.security.user_words import codes_left_words
    from maskwatch.site.event_views import minute_utc

    site = site_config(config)
    store = store_of(site, database)
    for user in store.users():
        cameras = ",".join(user["cameras"]) if user["cameras"] is not None else "all"
        created = minute_utc(user["created"])  # UTC's date alone read as the admin's own: a day off east or west
        two_step = f"on ({codes_left_words(user['recovery_codes_left'])})" if user["two_step"] else "off"
        typer.echo(f"{user['name']}\t{user['role']}\tcameras={cameras}\tsessions={store.session_count(user['name'])}"
                   f"\ttwo-step={two_step}\tsince {created}{_missing_mark(site, config, user['cameras'])}")


def _missing_mark(site, config: Path | None, cameras: list[str] | None) -> str:
    """A last column naming the cameras of a viewer's or token's list that the site's file no longer
    has (renamed or removed: run --check says how to fix it); none without --config."""
    from maskwatch.security.missing_cameras import missing_cameras

    gone = missing_cameras(cameras, site.cameras) if site is not None else []
    return f"\tnot in {config}: {','.join(gone)}" if gone else ""


@users_app.command("remove")
def remove_user(name: UserName, config: Config = None, database: Database = None) -> None:
    """Remove a user; their sessions end at once, in every worker, and the API tokens they own are revoked."""
    store = open_store(config, database)
    name = stored_name(store, name)
    try:
        revoked = store.remove_user(name)
    except ValueError as err:
        _fail(str(err))
    _logged(store, "user_removed", name)
    _logged_revoked(store, name, "removed", revoked)
    from maskwatch.security.user_words import revoked_words

    typer.echo(f"removed {name}; their sessions ended{revoked_words(revoked)}")
    if store.user_count() == 0:  # the last one (allowed here): the site is open on loopback, shut beyond it
        typer.secho("warning: the database has no users now: a server on loopback lets in anyone on this machine, "
                    "one beyond it lets nobody log in and refuses to start; add an admin: maskwatch users add NAME "
                    f"--role admin{_where(config, database)}", fg=typer.colors.YELLOW, err=True)


def _where(config: Path | None, database: str | None) -> str:
    """The database a command named, as the advice's next command names it (` --config site.yaml`)."""
    return f" --config {config}" if config is not None else f" --database {database}" if database else ""


@users_app.command("edit")
def edit_user(
    name: UserName,
    role: Annotated[Optional[str], typer.Option(help="admin or viewer; default: as now.", show_default=False)] = None,
    camera: Annotated[Optional[list[str]], typer.Option(help="A viewer sees only these cameras (repeat the option), in place of their list.")] = None,
    all_cameras: Annotated[bool, typer.Option("--all-cameras", help="A viewer sees every camera.")] = False,
    config: Config = None,
    database: Database = None,
) -> None:
    """Change a user's role or a viewer's cameras; their password and sessions stay, the change
    holds from their next request. An admin made a viewer loses the API tokens they own."""
    site = site_config(config)
    from maskwatch.security.user_rules import CLI_EDIT, UNCHANGED, edit_problem, viewer_cameras
    from maskwatch.security.user_words import added_target, revoked_words

    if (problem := edit_problem(role, camera, all_cameras, CLI_EDIT)) is not None:  # an admin's own list: the store says
        _fail(problem)
    site_database(site, database)  # beside --config: said before the cameras' check of the site's
    cameras = None if all_cameras else UNCHANGED
    if camera is not None:
        try:
            cameras = viewer_cameras(camera, list(site.cameras) if site is not None else None,
                                     lambda unknown: stored_history(site, unknown), str(config), CLI_EDIT[1])
        except ValueError as err:
            _fail(str(err))
    store = store_of(site, database)
    name = stored_name(store, name)
    try:
        user, revoked = store.edit_user(name, role, cameras)
    except ValueError as err:
        _fail(str(err))
    _logged(store, "user_changed", added_target(user))
    _logged_revoked(store, name, "made a viewer", revoked)
    cameras = ", ".join(user["cameras"]) if user["cameras"] is not None else "all cameras"
    typer.echo(f"{user['name']} is now {user['role']} ({cameras}); from their next request{revoked_words(revoked)}")


@users_app.command("passwd")
def change_password(name: UserName, config: Config = None, database: Database = None) -> None:
    """Set a new password; every session of the user ends."""
    from maskwatch.extras import need

    need("users", "serve", PASSWORD_MODULES)  # a traceback at the password's check without it
    store = open_store(config, database)
    name = stored_name(store, name)  # said before the password is asked
    try:
        store.set_password(name, read_password())
    except ValueError as err:
        _fail(str(err))
    _logged(store, "password_set", name)
    typer.echo(f"password of {name} changed; their sessions ended")


def read_code() -> str:
    """A code from the app: asked in a terminal, else the next line of stdin."""
    if not sys.stdin.isatty():
        return sys.stdin.buffer.readline().decode("utf-8", "replace").strip()
    return asked("The 6-digit code the app shows now")


@users_app.command("2fa")
def two_step(
    name: UserName,
    on: Annotated[Optional[bool], typer.Option("--on/--off", help="--on: print a new secret for the user's authenticator app and turn two-step login on once a code from it is typed, then print their recovery codes; --off: turn it off and end their sessions (the way back for a lost phone).", show_default=False)] = None,
    recovery_codes: Annotated[bool, typer.Option("--recovery-codes", help="Print a new set of recovery codes for a user who has two-step login on; their old codes no longer work.")] = False,
    config: Config = None,
    database: Database = None,
) -> None:
    """Two-step login (authenticator-app codes, RFC 6238) on or off for a user, or their new recovery codes."""
    if (on is None) == (not recovery_codes):
        _fail("say --on, --off or --recovery-codes (one of them)")
    from maskwatch.extras import need
    from maskwatch.security.user_rules import no_such

    need("users 2fa", "serve", (*STORE_MODULES, "pyotp"))  # the codes: a traceback without it
    site = site_config(config)
    store = store_of(site, database)
    name = stored_name(store, name)
    found = store.two_step(name)
    if found is None:
        _fail(no_such(name))
    if recovery_codes:
        _renew_recovery(store, name, found)
        return
    if not on:  # the way back for a lost phone: their sessions end, as on the dashboard's Users
        try:
            store.turn_off_for(name)
        except ValueError as err:
            _fail(str(err))
        _logged(store, "totp_off", name)
        from maskwatch.security.user_words import two_step_off_words

        role = (store.user(name) or {}).get("role", "")
        typer.echo(two_step_off_words(name, site.require_two_step if site is not None else None, role,
                                      store.tokens_of(name)))
        return
    if found["secret"] is not None:
        # --off first left the account on the password alone until --on (for a user the site's
        # require_two_step covers, until their next login): the user's own New phone never does.
        _fail(f"two-step login is on already for {name}: for a new phone, {name} moves it on the dashboard "
              "(New phone under Two-step login, POST /two-step/replace: never off meanwhile); with neither "
              f"the phone nor a recovery code left, 2fa {name} --off, then --on for the new phone's app")
    from maskwatch.security.two_step import (enrolment_uri, matching_step, new_recovery_codes, new_secret,
                                             recovery_hashes)

    secret = new_secret()
    uri = enrolment_uri(secret, name)
    if sys.stdout.isatty():
        try:
            import segno

            segno.make(uri, error="m").terminal(compact=True)
        except ImportError:
            pass
    # stdout, once: the user's app needs it; it is not kept anywhere else until confirmed
    typer.echo(f"{uri}\nsecret: {secret}")
    typer.secho("add it to the authenticator app (scan the URI's QR code, or type the secret), then type "
                "the code it shows", err=True)
    if (step := matching_step(secret, read_code(), None)) is None:
        _fail("that is not the app's code for now (check the phone's clock); nothing changed: run --on again")
    codes = new_recovery_codes()
    if store.turn_on(name, secret, step, recovery=recovery_hashes(secret, codes)) is None:
        _fail(f"two-step login was turned on for {name} meanwhile, or the user removed; nothing changed")
    _logged(store, "totp_on", name)
    _said_recovery(store, name, secret, codes, f"two-step login on for {name}: their sessions ended; the code is "
                   "asked with the password from the next login", f"two-step login is on for {name} (the app's "
                   "codes work)")


def _said_recovery(store, name: str, secret: str, codes: list[str], headline: str, done: str) -> None:
    """`headline` and the recovery codes on stdout, once: only their hashes are kept. A stdout
    that cannot be written (a full disk) showed them to nobody, and codes kept unseen were a way
    in on paper no one had: they are dropped, and the error says what was `done` and what next."""
    from maskwatch.security.two_step import recovery_hashes

    try:
        typer.echo(f"{headline}\nrecovery codes (each logs in once in place of the app's code; shown this once, "
                   "keep them apart from the phone):\n" + "\n".join(codes))
    except OSError as err:
        with contextlib.suppress(ValueError):  # another set made meanwhile: that one was shown
            store.renew_recovery(name, secret, [], recovery_hashes(secret, codes))
        _fail(f"{unprinted(err)}; {done}, but the new recovery codes could not be shown, so none are kept: "
              f"run `maskwatch users 2fa {name} --recovery-codes` where they can be printed")


def _renew_recovery(store, name: str, found: dict) -> None:
    """`users 2fa NAME --recovery-codes`: a new set in place of the old (the one `found`, the
    store's two_step(), read: not one the dashboard made meanwhile), printed once."""
    from maskwatch.security.two_step import new_recovery_codes, recovery_hashes

    if (secret := found["secret"]) is None:
        _fail(f"two-step login is not on for {name}: recovery codes come with it (--on)")
    codes = new_recovery_codes()
    try:
        store.renew_recovery(name, secret, recovery_hashes(secret, codes), found["recovery"])
    except ValueError as err:
        _fail(str(err))
    _logged(store, "recovery_renewed", name)
    _said_recovery(store, name, secret, codes, f"new recovery codes for {name}; the old ones no longer work",
                   f"the old recovery codes of {name} no longer work")


@tokens_app.command("add")
def add_token(
    name: Annotated[str, typer.Argument(help="What uses it, e.g. prometheus")],
    scope: Annotated[str, typer.Option(help="read (GET only, as a viewer of every camera or of --camera's) or full (as an admin, but no changes to users or tokens).")] = "read",
    owner: Annotated[Optional[str], typer.Option(help="The admin it is made for: revoked when they are removed or made a viewer; default: a site token, nobody's.", show_default=False)] = None,
    expires: Annotated[Optional[int], typer.Option(min=1, max=MAX_TOKEN_DAYS, metavar="DAYS", help="Days until it stops working (refused as a revoked one, logged as token_expired); default: never, as before (docs/security.md says what to choose).", show_default=False)] = None,
    camera: Annotated[Optional[list[str]], typer.Option(help="A read token sees only these cameras, as a viewer of them (repeat the option); default: all.")] = None,
    config: Config = None,
    database: Database = None,
) -> None:
    """Create a token and print it once (only its hash is kept): send it as 'Authorization: Bearer TOKEN'."""
    site = site_config(config, "tokens")
    from maskwatch.security.user_rules import CLI_EDIT, SCOPES, name_problem, token_access_problem, viewer_cameras

    if scope not in SCOPES:  # said before a new database is made (typo.db)
        raise typer.BadParameter(f"must be one of {', '.join(SCOPES)}, got {scope!r}", param_hint="'--scope'")
    if (problem := name_problem(name, "token") or token_access_problem(scope, camera)) is not None:
        _fail(problem)
    site_database(site, database)  # --config with --database: said first, not after the cameras' check of the site's
    try:  # as `users add --camera`: the site's cameras, or one removed whose history is kept
        camera = viewer_cameras(camera, list(site.cameras) if site is not None else None,
                                lambda unknown: stored_history(site, unknown), str(config), CLI_EDIT[1])
    except ValueError as err:
        _fail(str(err))
    # An owner is a user of a database already there: with --owner a missing one is not made.
    store = store_of(site, database, create=owner is None)
    if owner is not None:  # as stored, for the words below (`--owner BOSS`: boss's); the store says why not
        with contextlib.suppress(ValueError):
            owner = store.stored_user_name(owner)
    try:
        token = store.add_token(name, scope, owner=owner, cameras=camera,
                                expires=None if expires is None else time.time() + expires * 86400)
    except ValueError as err:
        _fail(str(err))
    from maskwatch.security.user_words import added_target

    _logged(store, "token_added", added_target(token=(name, scope, expires), cameras=camera))
    whose = f"{owner}'s" if owner is not None else "a site token"
    seen = f"; {', '.join(camera)} only" if camera is not None else ""
    until = f"; expires in {expires} day{'s' * (expires != 1)}" if expires is not None else ""
    typer.secho(f"token {name} ({scope}{seen}; {whose}{until}); shown once, store it now:", err=True)
    try:
        typer.echo(token)
    except OSError as err:  # a stdout on a full disk: a token kept that nobody saw held its name for good
        store.revoke_token(name)
        _logged(store, "token_revoked", name)
        _fail(f"{unprinted(err)}; the token could not be shown, so it was revoked: run this again where "
              "it can be printed")


@tokens_app.command("list")
def list_tokens(config: Config = None, database: Database = None) -> None:
    """Tokens, their scopes, owners (the admin who made it; "(site)": nobody's, a name never holds
    brackets), when each was made and last used, when it expires (UTC; within 14 days how soon, as
    the dashboard marks it) and its cameras (last, so that a script reading the columns before
    finds them where they were): after a password may have been stolen, the tokens made since
    are the ones to revoke."""
    from maskwatch.security.token_expiry import expiry_words
    from maskwatch.site.event_views import minute_utc as utc

    site = site_config(config, "tokens")
    store = store_of(site, database)
    now = time.time()
    for token in store.tokens():
        used = utc(token["last_used"]) if token["last_used"] else "never"
        typer.echo(f"{token['name']}\t{token['scope']}\towner={token['owner'] or '(site)'}\tmade {utc(token['created'])}"
                   f"\tlast used {used}\t{expiry_words(token['expires'], now)}"
                   f"\tcameras={'all' if token['cameras'] is None else ','.join(token['cameras'])}"
                   f"{_missing_mark(site, config, token['cameras'])}")


@tokens_app.command("revoke")
def revoke_token(name: Annotated[str, typer.Argument(help="The token's name, as `tokens list` shows it (any case).")],
                 config: Config = None, database: Database = None) -> None:
    """Revoke a token (its name in any case): the next request with it gets 401."""
    store = open_store(config, database, "tokens")
    try:
        name = store.revoke_token(name)  # as stored: `revoke WALL` revoked `wall`
    except ValueError as err:
        _fail(str(err))
    _logged(store, "token_revoked", name)
    typer.echo(f"revoked {name}")
    # Names are one whatever their case since 2026-12-07; a database can hold `WALL` beside `wall`
    # from before, and revoking `wall` after a leak left `WALL` working with nothing said.
    for other in (token["name"] for token in store.tokens() if token["name"].lower() == name.lower()):
        where = _where(config, database)
        again = f"{where} -- {other}" if other.startswith("-") else f" {other}{where}"  # -x: a name older than the rule
        typer.secho(f"warning: token {other!r} still works: its name differs from {name!r} in case alone (two "
                    "tokens, made before names were one whatever their case); if it is the same, revoke it too: "
                    f"maskwatch tokens revoke{again}", fg=typer.colors.YELLOW, err=True)


def auth_for(host: str, database: str | None, trusted_proxies, retention_days: float = 30.0, idle_minutes: float = 60.0,
             absolute_hours: float = 12.0, tls: bool = False, where: str = "--database maskwatch.db",
             create: bool = False, tls_how: str = "--tls-cert/--tls-key", require_two_step: str = "none",
             cameras: bool = False):
    """AuthSettings for a server bound to `host`; exits with one line when binding beyond loopback
    with no user, saying what anyone who reaches the port would get. `tls_how`: how this command
    is given TLS, for the plain-http warning (`run` has no --tls-cert: its file's server.tls).
    `require_two_step`: the site's server.require_two_step. `cameras`: whether it serves cameras
    (run, serve --source), for what the refusal says is open."""
    from maskwatch.security.auth_settings import AuthSettings
    from maskwatch.security.request_checks import is_loopback
    from maskwatch.site.config import check_proxies

    from maskwatch.site.database import url_problem

    try:
        trusted_proxies = check_proxies(trusted_proxies or ())
    except ValueError as err:
        _fail(str(err))
    if database is not None and (problem := url_problem(database)):  # the driver's error showed the password
        _fail(f"--database: {problem}")

    if database is not None and "://" not in database:  # workers and Ray replicas may start elsewhere
        database = str(Path(database).resolve())
    users = 0  # `serve` with no users file: open on loopback until one is made, refused beyond it (below)
    if database is not None and (create or "://" in database or Path(database).is_file()):
        store = _store(database, retention_days=retention_days)
        users = store.user_count()
        store.close()
    local = is_loopback(host)
    if not local and users == 0:
        # Plain `serve` has no camera: it was said to show "the cameras" all the same.
        exposed = ("would see the cameras live, their events and snapshots" if cameras
                   else "could have photos analysed here (POST /v1/detect, the upload page) and read /metrics")
        _fail(f"refusing to serve on {host} with no users: anyone who reaches the port {exposed}; "
              f"add an admin first: maskwatch users add NAME --role admin {where}")
    if not local and not tls:
        typer.secho(f"warning: serving on {host} over plain http: passwords and session cookies cross the "
                    f"network in clear; use {tls_how} or a TLS reverse proxy (docs/security.md)",
                    fg=typer.colors.YELLOW, err=True)
    return AuthSettings(database=database, open_without_users=local, open_to_loopback_hosts_only=True,
                        trusted_proxies=trusted_proxies,
                        idle_minutes=idle_minutes, absolute_hours=absolute_hours, retention_days=retention_days,
                        require_two_step=require_two_step)

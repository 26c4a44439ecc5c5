"""Viewers and API tokens whose camera lists name cameras the site's file no longer has.

A camera renamed in the file (`door` to `entrance`) keeps its history under the old id, and a
viewer's or read token's list keeps the old id: the renamed camera vanished from the wall screen
and the guard's dashboard, and nothing told the admin. No list is changed by itself (which camera
a renamed one became is the admin's to say, and the old id's history stays readable to them):
`run --check` and the site's start say each one with the command that fixes it, `users list
--config` and `tokens list --config` mark them, and GET /v1/users gives the Users dialog the
file's ids (`in_file`) to mark them by.
"""

from __future__ import annotations

import math
import shlex
import time
from pathlib import Path

NEW_ID = "NEW_ID"  # in a fix's command: the camera's id in the file now, which only the admin knows


def missing_cameras(cameras: list[str] | None, in_file) -> list[str]:
    """Those of a viewer's or token's `cameras` (None: every camera) that are not `in_file`, the ids of the
    site's file (`enabled: false` ones too: they may come back)."""
    return [] if cameras is None else [camera for camera in cameras if camera not in in_file]


def stored_lists(database: str) -> tuple[list[dict], list[dict]]:
    """The users (name, role, cameras) and tokens (name, scope, owner, expires, cameras) of `database`, read
    without migrating it (`run --check` writes nothing): none where it or their tables are not there
    yet, nor a token's list before auth schema 7 (its tokens read every camera). DatabaseUnavailable
    where no installed driver opens it; SQLAlchemyError where it cannot be read, a server that does not
    answer within the probe's timeout included (without one, `run --probe` waited on it for ever)."""
    from sqlalchemy import inspect, select

    from maskwatch.security.schema import api_tokens, users
    from maskwatch.security.store import _camera_list
    from maskwatch.site.database import database_engine, database_url, read_only_engine
    from maskwatch.site.probe import NETWORK_TIMEOUT

    url = database_url(database)
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if not path.is_file():
            return [], []  # connecting would make the file
        # database_engine's connections turn the file to WAL: `run --probe` rewrote a legacy file's header
        engine = read_only_engine(path, NETWORK_TIMEOUT)
    else:
        engine = database_engine(url, connect_timeout=round(NETWORK_TIMEOUT))
    try:
        with engine.connect() as connection:
            tables = inspect(connection)
            if not tables.has_table("users"):
                return [], []
            found = [{"name": row.name, "role": row.role, "cameras": _camera_list(row.cameras)} for row in
                     connection.execute(select(users.c.name, users.c.role, users.c.cameras).order_by(users.c.name))]
            if not tables.has_table("api_tokens") or "cameras" not in {c["name"] for c in tables.get_columns("api_tokens")}:
                return found, []
            query = (select(api_tokens.c.name, api_tokens.c.scope, api_tokens.c.expires, api_tokens.c.cameras,
                            users.c.name.label("owner"))
                     .outerjoin(users, users.c.id == api_tokens.c.owner).order_by(api_tokens.c.name))
            return found, [dict(row._mapping) | {"cameras": _camera_list(row.cameras)}
                           for row in connection.execute(query)]
    finally:
        engine.dispose()


def _command(words: list[str], name: str, config: Path) -> str:
    """`maskwatch WORDS NAME --config FILE`, a name starting with - (older than the name rule) after `--`."""
    where = ["--config", str(config)]
    return shlex.join(["maskwatch", *words, *where, "--", name] if name.startswith("-")
                      else ["maskwatch", *words[:2], name, *words[2:], *where])


def missing_lines(users: list[dict], tokens: list[dict], in_file, config: Path, now: float | None = None,
                  with_history=()) -> list[str]:
    """One warning for each viewer and token whose list names a camera not `in_file` (the site's
    file, `config`), with the command that fixes it: an old id `with_history` (its people or counts
    still stored) stays in the list beside NEW_ID (the command dropped it: following it, the guard
    lost the renamed camera's history from before the rename); a token's successor expires when it would
    (its successor had none: a token meant to end in 30 days, replaced as told, never ended), and
    one already expired is left out (it is refused anyway)."""
    now = time.time() if now is None else now
    lines = []
    for user in users:
        if user["role"] != "viewer" or not (gone := missing_cameras(user["cameras"], in_file)):
            continue
        kept = [c for c in user["cameras"] if c not in gone or c in with_history]
        cameras = [word for camera in [*kept, NEW_ID] for word in ("--camera", camera)]
        lines.append(f"viewer {user['name']} is limited to {', '.join(gone)}, which {config} no longer has "
                     f"(renamed or removed): they see its history, not the camera it became; give them its "
                     f"id ({NEW_ID}): {_command(['users', 'edit', *cameras], user['name'], config)}")
    for token in tokens:
        expires = token.get("expires")
        if (expires is not None and expires <= now) or not (gone := missing_cameras(token["cameras"], in_file)):
            continue
        kept = [c for c in token["cameras"] if c not in gone or c in with_history]
        made_as = ["--owner", token["owner"]] if token["owner"] is not None else []
        if expires is not None:  # the days it has left, whole (tokens add --expires takes days)
            made_as += ["--expires", str(max(1, math.ceil((expires - now) / 86400)))]
        cameras = [word for camera in [*kept, NEW_ID] for word in ("--camera", camera)]
        lines.append(f"token {token['name']} is limited to {', '.join(gone)}, which {config} no longer has "
                     f"(renamed or removed): it reads its history, not the camera it became; a token's cameras are "
                     f"set when it is made: make another, put it where this one is used, then revoke this one: "
                     f"{_command(['tokens', 'add', *cameras, *made_as], 'NEW_NAME', config)}; "
                     f"{_command(['tokens', 'revoke'], token['name'], config)}")
    return lines

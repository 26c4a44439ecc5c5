"""`maskwatch events list|delete`: the stored people of one camera (or all) in view between two
times, for a request from someone filmed (GDPR's access and erasure). Listed as events.csv is;
deleted with their snapshot files, each erasure a row of the access log written with it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from maskwatch.cli.common import _fail, _print_data
from maskwatch.extras import need as _need

events_app = typer.Typer(help="A site's stored people between two times: list them, or delete them "
                              "(a request from someone filmed).", no_args_is_help=True)

Config = Annotated[Path, typer.Option("--config", "-c", help="The site's YAML file: its storage and timezone.")]
Camera = Annotated[Optional[str], typer.Option("--camera", help="Only this camera's people (a camera no longer "
                                               "running whose history is kept too); default: every camera.")]
Since = Annotated[str, typer.Option("--since", help="From this time: ISO 8601 (2026-12-01T14:00, on the site's "
                                    "clock where it names no zone) or Unix seconds.")]
Until = Annotated[str, typer.Option("--until", help="To this time (not included), as --since.")]


class Asked:
    """A request's camera and times, read and checked; the site's stores open."""

    def __init__(self, config: Path, camera: str | None, since: str, until: str) -> None:
        from maskwatch.cli.site import _site_config
        from maskwatch.security.commands import store_of
        from maskwatch.site.database import COMMAND_CONNECT_TIMEOUT, DatabaseUnavailable
        from maskwatch.site.events import EventStore
        from maskwatch.site.trend import parse_since

        site = _site_config(config)
        self.tz = site.tz()
        try:  # a time with no zone on the site's clock, as a date alone is in the API
            self.since = parse_since(since, "--since", self.tz, times=self.tz)
            self.until = parse_since(until, "--until", self.tz, times=self.tz)
        except ValueError as err:
            _fail(str(err))
        if self.since >= self.until:  # as read: two times in the hour the clocks skip are both its jump
            from maskwatch.site.event_views import wall_clock

            _fail(f"--since ({since}) must be before --until ({until}); on the site's clock they read "
                  f"{wall_clock(self.since, self.tz)} and {wall_clock(self.until, self.tz)} (a time the clocks "
                  "skip is their jump, one they go back over its first passing: an offset names the second)")
        database = site.storage.database
        if "://" not in database and not Path(database).is_file():
            _fail(f"{database}: no such database (storage.database; `maskwatch run` makes it)")
        self.auth = store_of(site, None)  # first: the access log's table, which an erasure writes into
        try:
            self.store = EventStore(database, site.storage.snapshots, privacy=site.storage.privacy,
                                    retention_days=site.storage.retention_days, connect_timeout=COMMAND_CONNECT_TIMEOUT)
        except DatabaseUnavailable as err:
            self.auth.close()
            _fail(str(err))
        configured = {*site.cameras, *site.disabled_cameras}
        if camera is not None and camera not in configured and not self.store.has_history(camera):
            known = sorted(configured | set(self.store.stored_cameras()))
            self.close()
            _fail(f"--camera {camera!r}: no such camera in {config} nor in the stored history; cameras: "
                  f"{', '.join(known)}")
        self.camera, self.clock = camera, site.clock() or "the machine's local time"
        self.folder = site.storage.snapshots  # where a subject access request's pictures are copied from

    def target(self) -> str:
        from maskwatch.site.event_views import asked_range

        return asked_range(self.camera, self.since, self.until, self.tz)

    def said(self) -> str:
        from maskwatch.site.event_views import wall_clock

        return (f"{'camera ' + repr(self.camera) if self.camera else 'every camera'}, in view from "
                f"{wall_clock(self.since, self.tz)} to {wall_clock(self.until, self.tz)} ({self.clock})")

    def listed(self) -> list[dict]:
        """The people asked for, as events.csv on stdout; logged as an export of the events."""
        from maskwatch.security.commands import _logged
        from maskwatch.site.event_views import events_csv

        found = self.store.in_view(self.since, self.until, self.camera)
        _logged(self.auth, "events_export", self.target())
        for chunk in events_csv(found, self.tz):
            _print_data(chunk, nl=False)
        return found

    def close(self) -> None:
        self.store.close()
        self.auth.close()


@events_app.command("list")
def list_events(config: Config, since: Since, until: Until, camera: Camera = None) -> None:
    """Print the people stored of a camera (or every camera) in view between two times, as
    events.csv: a subject access request's answer, with their snapshots' names."""
    _need("events list", "serve")
    asked = Asked(config, camera, since, until)
    try:
        found = asked.listed()
    finally:
        asked.close()
    snapshots = sum(bool(row["snapshot"]) for row in found)
    where = f" (files named as the snapshot column ends, in {asked.folder})" if snapshots else ""
    typer.echo(f"{len(found)} {'person' if len(found) == 1 else 'people'} of {asked.said()}; {snapshots} "
               f"snapshot{'s' * (snapshots != 1)}{where}", err=True)


@events_app.command("delete")
def delete_events(config: Config, since: Since, until: Until, camera: Camera = None,
                  yes: Annotated[bool, typer.Option("--yes", help="Delete them; without it, list what would go "
                                                    "and delete nothing.")] = False) -> None:
    """Delete the people stored of a camera (or every camera) in view between two times, with
    their snapshot files, while the site runs: a request to erase. Without --yes, print them as
    `events list` does and delete nothing. The access log records each erasure (who, the camera
    and times asked, how many), never what was deleted; the per-minute counts stay."""
    _need("events delete", "serve")
    from maskwatch.security.commands import cli_user
    from maskwatch.security.store import log_row
    from maskwatch.site.events import ErasureError

    asked = Asked(config, camera, since, until)
    try:
        if not yes:
            found = asked.listed()
            typer.echo(f"would delete {len(found)} {'person' if len(found) == 1 else 'people'} of {asked.said()}, "
                       f"and their snapshot files; nothing deleted: add --yes to delete them", err=True)
            return
        import time

        user, target = cli_user(), asked.target()
        try:
            erased, snapshots = asked.store.erase(asked.since, asked.until, asked.camera, audit=lambda people, files: (
                log_row("events_erased", user, "local", f"{target}: events {people}, snapshots {files}", time.time())))
        except ErasureError as err:
            _fail(str(err))
    finally:
        asked.close()
    typer.echo(f"deleted {erased} {'person' if erased == 1 else 'people'} of {asked.said()}, and {snapshots} "
               f"snapshot file{'s' * (snapshots != 1)}; the access log says so (events_erased, by {user})")

"""The commands of a site run from its YAML file: run (every camera, the API and the dashboard; --check,
--probe), report (its scheduled reports, report.csv), alerts test (its webhooks and notify services)
and backup (its database and snapshots), copy-database (into a new database: SQLite to PostgreSQL)."""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Annotated, Optional

import typer

from maskwatch import __version__  # in the start line: a log read weeks later says what ran
from maskwatch.cli.common import ClassifierFile, DetectorFile, Gate, _clock_said, _fail, _models, _print_data, _sigterm_as_ctrl_c
from maskwatch.cli.servers import (OPEN_REQUESTS_AT_STOP_S, _end_by_sigterm, _hangup_as_sigterm, _listen, _log_options,
                                   _say, _service_log, _tls_files)
from maskwatch.extras import need as _need

commands = typer.Typer()  # included straight under `maskwatch` by maskwatch.cli


def _demo_not_made(missing: tuple[Path, ...]) -> bool:
    """A missing source in a demo-output/clips/ folder that lacks the demo's clips: a mistyped
    name where `make demo` made them was told to run `make demo`."""
    from maskwatch.demo import clips_made

    return any(path.parent.parts[-2:] == ("demo-output", "clips") and not clips_made(path.parent)
               for path in missing)


@commands.command()
def run(
    config: Annotated[Path, typer.Option("--config", "-c", help="The site's YAML file: cameras, server, storage (--init writes an example).")],
    init: Annotated[bool, typer.Option("--init", help="Write a commented example site (three cameras, a webhook, MQTT) "
                                                      "to --config's path, where no file is yet, and stop.")] = False,
    unit: Annotated[bool, typer.Option("--unit", help="Print a systemd unit that runs this site at boot with this "
                                                      "install's maskwatch, and stop (sudo tee it to "
                                                      "maskwatch.service in /etc/systemd/system/).")] = False,
    check: Annotated[bool, typer.Option("--check", help="Validate the config, print the cameras, the alerts.notify services and the reports "
                                                        "(secrets left out), and stop.")] = False,
    probe: Annotated[bool, typer.Option("--probe", help="With --check (implied): also open each camera and read a frame, "
                                                        "log in to the database and the MQTT broker, and say per part "
                                                        "OK or what is wrong; exit code 1 if any part failed. Writes "
                                                        "and sends nothing.")] = False,
    ray_address: Annotated[str | None, typer.Option("--ray", help="Run the cameras on Ray actors: 'local' starts a cluster here, HOST:PORT or ray://HOST:PORT joins one.")] = None,
    cameras_per_actor: Annotated[int, typer.Option(help="With --ray: cameras sharing one actor (and its models).")] = 1,
    classifier: ClassifierFile = None,
    detector_file: DetectorFile = None,
    gate: Gate = True,
) -> None:
    """Run a whole site from one YAML file: every camera, the API and the dashboard."""
    if cameras_per_actor < 1:  # before --unit too: a unit passing it on failed at each start
        raise typer.BadParameter(f"must be at least 1, got {cameras_per_actor}", param_hint="'--cameras-per-actor'")
    if unit:  # no extra either: printed before the file it names is written
        _print_unit(config, _run_options(ray_address, cameras_per_actor, classifier, detector_file, gate),
                    other=[flag for flag, given in (("--init", init), ("--check", check), ("--probe", probe)) if given])
        return
    if init:  # before the extra: a file to edit needs none
        _write_example(config)
        return
    _need("run", "serve")
    _service_log()
    if ray_address is not None:
        _need("run --ray", "ray")
    from maskwatch.site.config import SiteConfigError, load_site_config
    from maskwatch.video.sources import redact_source

    try:
        site = load_site_config(config)
    except SiteConfigError as err:
        for line in str(err).splitlines():
            typer.secho(f"error: {line}", fg=typer.colors.RED, err=True)
        if _demo_not_made(err.missing_files):  # examples/demo-site.yaml run before `make demo`
            typer.echo("the demo site's clips are made by `make demo` (or: python -m maskwatch.demo "
                       "sample/face-mask-detection demo-output/clips)", err=True)
        elif not config.exists():
            typer.echo(f"maskwatch run --config {shlex.quote(str(config))} --init writes a commented example there", err=True)
        raise typer.Exit(code=1) from None
    _clock_named(site, config)
    # --check's lines are its answer: one it cannot print fails it (exit 1, naming standard output).
    # Before a start they are start lines, which a stdout on a full disk does not keep the site from.
    say = _print_data if check or probe else _say
    say(f"{config}: {len(site.cameras)} camera{'s' * (len(site.cameras) != 1)}")
    for camera_id, camera in site.cameras.items():
        zones = f", zones {', '.join(camera.zones)}" if camera.zones else ""
        substream = f" (analysing {redact_source(camera.detect_source)})" if camera.detect_source else ""
        motion = f"motion-gated, full check every {camera.motion.full_check:g} s" if camera.motion.enabled else "no gating"
        upscale = f" at {camera.upscale:g}x" if camera.upscale is not None else ""
        moving = ", moving camera" if camera.moving else ""
        say(f"  {camera_id} ({camera.name}): {redact_source(camera.source)}{substream}, {camera.fps:g} fps, "
                   f"detect every {camera.detect_every}{upscale}{moving}, {motion}{zones}")
    for group in site.shared_names():
        say(f"  warning: cameras {', '.join(group)} share the name {site.cameras[group[0]].name!r}: the dashboard, "
            "the report and Home Assistant show them alike; give each a name: of its own")
    if site.disabled_cameras:
        say(f"  disabled (enabled: false): {', '.join(site.disabled_cameras)}")
    for line in _missing_camera_lines(site, config, server_database=probe or not check):
        say(f"  warning: {line}")
    if site.alerts.notify:  # each URL as logs show it: its service's token, topic or password left out
        from maskwatch.site.notify import shown_notify_url

        say(f"  notify: {', '.join(shown_notify_url(url) for target in site.alerts.notify for url in target.urls)}")
    if site.reports:
        say(f"  reports (in {site.clock() or 'the local time, which has no IANA name'}):")
        for line in _report_lines(site):
            say(f"    {line}")
    if (check or probe) and not _loopback(site.server.host):  # --check passed a site its start then refused
        say(f"  server on {site.server.host}, beyond loopback: it starts only once its database has a user "
                   f"(maskwatch users add NAME --role admin --config {config}){'' if probe else '; --probe checks'}")
    classifier = classifier or (Path(site.models.classifier) if site.models.classifier else None)
    detector_file = detector_file or (Path(site.models.detector) if site.models.detector else None)
    if classifier or detector_file:  # which models the cameras get, shipped where none is named
        say(f"  models: classifier {classifier or 'shipped'}, detector {detector_file or 'shipped'}")
    models = _models(classifier, detector_file, gate, load_check=check or probe)  # --check: a file that is no model
    if probe:
        try:
            with _sigterm_as_ctrl_c():  # `run` has no such handler of its own until its server starts
                _print_probes(site, config)
        except KeyboardInterrupt:  # Typer ended it as exit 130 without a word
            _fail("probe stopped by Ctrl-C or SIGTERM; a probe writes and sends nothing", code=130)
    if check or probe:
        return
    import contextlib

    import uvicorn

    from maskwatch.scale.cluster import ClusterError, ray_cluster  # imports ray only when used
    from maskwatch.security.commands import auth_for
    from maskwatch.serving.app import ServeSettings, create_app
    from maskwatch.serving.http_limits import LimitedHttp
    from maskwatch.site.runner import Site

    server = site.server
    listening = _listen(server.host, server.port, "server.port in the config")
    tls = _tls_files(server.tls.cert, server.tls.key) if server.tls else {}
    auth = auth_for(server.host, site.storage.database, server.trusted_proxies, site.storage.retention_days,
                    server.session_idle_minutes, server.session_max_hours, tls=bool(tls), where=f"--config {config}", create=True,
                    tls_how="server: {tls: {cert, key}} in the site's file", require_two_step=server.require_two_step,
                    cameras=True)

    cluster = contextlib.nullcontext()
    if ray_address is not None:
        cluster = ray_cluster(ray_address)
    try:
        with cluster:
            try:
                from maskwatch.runtime import set_providers, single_threaded

                set_providers(site.runtime.providers)
                detector = models.load(threads=single_threaded())  # the cameras' threads are the parallelism
                if ray_address is None:
                    site_runner = Site(site, detector)
                else:
                    from maskwatch.scale.fleet import RaySite

                    site_runner = RaySite(site, detector, cameras_per_actor=cameras_per_actor, models=models)
            except (ImportError, ValueError, FileNotFoundError, RuntimeError) as err:
                _fail(str(err))
            host, port = site.server.host, site.server.port
            on = f" (cameras on Ray, {ray_address})" if ray_address else ""
            _say(f"maskwatch {__version__} site on http{'s' * bool(tls)}://{host}:{port}/ (API docs at /docs); events in "
                       f"{redact_source(site.storage.database)}{on}")
            _hangup_as_sigterm()
            served = uvicorn.Server(uvicorn.Config(create_app(detector, ServeSettings(auth=auth, root_path=server.root_path), site=site_runner),
                                                   host=host, port=port, **_log_options(),
                                                   proxy_headers=False, server_header=False, http=LimitedHttp, **tls,
                                                   timeout_graceful_shutdown=server.open_requests_at_stop_seconds or OPEN_REQUESTS_AT_STOP_S))
            # uvicorn raises the SIGTERM it stopped on again once stopped: with no handler of ours, that
            # ended the process inside this block, before the cluster's ray.shutdown (Ray's agents were
            # left running). It ends so below, once the block is left.
            with _sigterm_as_ctrl_c() as terminated:
                try:
                    served.run(sockets=[listening])  # the port held since the start (a second `run` stopped there)
                except KeyboardInterrupt:  # uvicorn raises the stop signal again after its clean stop (as uvicorn.run)
                    pass
            if not served.started:  # the site's start failed: said by uvicorn's log, as uvicorn.run exits
                raise typer.Exit(code=3)
    except ClusterError as err:
        _fail(str(err))
    if terminated:  # SIGHUP too, sent on as SIGTERM: ends by it (143), as uvicorn ends a plain `run`
        _end_by_sigterm()


def _missing_camera_lines(site, config: Path, server_database: bool) -> list[str]:
    """The viewers and tokens limited to cameras the file no longer has (renamed, removed), each with
    its fix: the renamed camera had vanished from their screens with nothing said. A database
    server is read by `--probe` and the start (plain `--check` connects to nothing), an SQLite file always."""
    from sqlalchemy.exc import SQLAlchemyError

    from maskwatch.security.missing_cameras import missing_cameras, missing_lines, stored_lists
    from maskwatch.site.database import DatabaseUnavailable, driver_reason
    from maskwatch.site.events import stored_among

    if "://" in site.storage.database and not server_database:
        return []
    try:
        users, tokens = stored_lists(site.storage.database)
    except DatabaseUnavailable as err:
        return [f"cannot read the viewers' and tokens' cameras: {err}"]
    except SQLAlchemyError as err:
        return [f"cannot read the viewers' and tokens' cameras: {driver_reason(err)}"]
    in_file = [*site.cameras, *site.disabled_cameras]
    gone = {camera for listed in [*users, *tokens] for camera in missing_cameras(listed["cameras"], in_file)}
    try:  # the old ids whose history is stored stay in a fix's list: `users edit` takes them, and drops the others
        with_history = stored_among(site.storage.database, sorted(gone)) if gone else []
    except (DatabaseUnavailable, SQLAlchemyError):
        with_history = []
    return missing_lines(users, tokens, in_file, config, with_history=with_history)


def _write_example(config: Path) -> None:
    """`run --init`: the commented example site that ships in the package, where a user of the
    wheel has no checkout's examples/ to copy it from. Never over a file that is there."""
    from importlib.resources import files

    from maskwatch.atomic import OutputError, unprinted, write_text

    if config.exists() or config.is_symlink():
        _fail(f"{config}: already there; --init writes only a new file")

    try:  # 0600 whatever the umask: the user types the cameras' passwords into it
        write_text(config, files("maskwatch").joinpath("examples", "site.yaml").read_text(encoding="utf-8"), mode=0o600)
    except (OSError, OutputError) as err:
        _fail(f"{config}: cannot write: {getattr(err, 'strerror', None) or err}")
    check = f"maskwatch run --config {shlex.quote(str(config))} --check"
    try:
        typer.echo(f"{config}: an example site of three cameras; set their sources, then: {check}")
    except OSError as err:  # a stdout on a full disk: a bare error read as the file not written
        _fail(f"{unprinted(err)}; {config} was written all the same: set its cameras' sources, then: {check}")


# What the unit hides from the service, and by which setting: a venv, site file or model there is
# "not found" at boot (PrivateTmp=yes gives the service an empty /tmp of its own).
HIDDEN_FROM_UNITS = {Path("/home"): "ProtectHome=yes", Path("/root"): "ProtectHome=yes",
                     Path("/run/user"): "ProtectHome=yes", Path("/tmp"): "PrivateTmp=yes",
                     Path("/var/tmp"): "PrivateTmp=yes"}


def _run_options(ray_address: str | None, cameras_per_actor: int, classifier: Path | None,
                 detector_file: Path | None, gate: bool) -> list[tuple[str, str | Path | None]]:
    """`run`'s options other than --config, as the unit's ExecStart is to pass them on: `--ray local
    --unit` printed a unit without Ray, and said nothing. A file's path is made absolute (the unit
    runs in /var/lib/maskwatch)."""
    options: list[tuple[str, str | Path | None]] = []
    if ray_address is not None:  # "" is read as local by run: "--ray " in ExecStart was --ray with no value
        options.append(("--ray", ray_address or "local"))
    if cameras_per_actor != 1:
        options.append(("--cameras-per-actor", str(cameras_per_actor)))
    for flag, path in (("--classifier", classifier), ("--detector", detector_file)):
        if path is not None:
            options.append((flag, path.absolute()))
    if not gate:
        options.append(("--no-gate", None))
    return options


def _print_unit(config: Path, options: list[tuple[str, str | Path | None]], other: list[str]) -> None:
    """`run --unit`: the systemd unit that ships in the package (a user of the wheel has no
    checkout's examples/ to copy it from), its ExecStart naming this install's maskwatch, the site
    file's absolute path and the run options given beside --unit, where the shipped one names
    /opt/maskwatch and /etc/maskwatch."""
    import sys
    from importlib.resources import files

    if other:  # each stops before a start: the unit is printed, or they run, not both
        _fail(f"--unit cannot go with {' and '.join(other)}: run {' and '.join(other)} on its own, then --unit")
    maskwatch = Path(sys.executable).with_name("maskwatch")  # the venv's script, beside its python
    if not maskwatch.is_file():
        _fail(f"{maskwatch}: no maskwatch script beside this Python; install maskwatch into the venv the unit is to run")
    config = config.absolute()
    for flag, value in options:  # --ray's address as the paths below: a pasted line break broke the unit
        if isinstance(value, str) and _control_character(value):
            _fail(f"{flag} {value!r}: a line break or other control character, which a unit's ExecStart cannot "
                  "hold (systemd refuses the unit: 'Unbalanced quoting'); give it without")
    for path in (maskwatch, config, *(value for _, value in options if isinstance(value, Path))):
        if _control_character(str(path)):  # a line break ended ExecStart mid-quote
            _fail(f"{str(path)!r}: a line break or other control character in the path, which a unit's "
                  "ExecStart cannot hold (systemd refuses the unit: 'Unbalanced quoting'); rename it")
        if any("\udc80" <= c <= "\udcff" for c in str(path)):  # bytes no UTF-8: a Latin-1 name, as Python keeps it
            shown = os.fsencode(path).decode("utf-8", "backslashreplace")
            _fail(f"{shown}: a name that is not UTF-8, which a unit's ExecStart cannot hold (systemd ignores it: "
                  "'String is not UTF-8 clean'); rename it")
        hidden = next((top for top in HIDDEN_FROM_UNITS if path.resolve().is_relative_to(top)), None)
        if hidden:
            _fail(f"{path}: under {hidden}, which the unit hides from the service ({HIDDEN_FROM_UNITS[hidden]}); "
                  "put the venv in /opt/maskwatch and the site file in /etc/maskwatch")
    words = [_systemd_word(str(maskwatch)), "run", "--config", _systemd_word(str(config))]
    for flag, value in options:
        words += [flag] if value is None else [flag, _systemd_word(str(value))]
    shipped = files("maskwatch").joinpath("examples", "maskwatch.service").read_text(encoding="utf-8")
    start = "ExecStart=/opt/maskwatch/bin/maskwatch run --config /etc/maskwatch/site.yaml\n"
    _print_data(shipped.replace(start, f"ExecStart={' '.join(words)}\n").rstrip("\n"))


def _control_character(word: str) -> bool:
    return any(ord(c) < 32 or ord(c) == 127 for c in word)


def _systemd_word(word: str) -> str:
    """One word of an ExecStart line as systemd reads it: % and $ doubled (its specifiers and
    variables), quoted where it holds a space or a quote or is empty, a lone ; escaped."""
    word = word.replace("%", "%%").replace("$", "$$")
    if word == ";":  # a lone ; ends a command line there
        return "\\;"
    if not word or any(c.isspace() or c in "\"'\\" for c in word):  # "": an empty word, not none
        return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return word


def _loopback(host: str) -> bool:
    from maskwatch.security.request_checks import is_loopback

    return is_loopback(host)


def _print_probes(site, config: Path) -> None:
    """`run --probe`: each part's result as a table, one row a part; exit code 1 if any failed."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from maskwatch.security.schema import MIGRATIONS, auth_schema_version, metadata
    from maskwatch.site.probe import StoreSchema, probe_site

    auth = StoreSchema("auth schema", auth_schema_version.name, len(MIGRATIONS), tuple(metadata.tables))
    probes = probe_site(site, needs_user=None if _loopback(site.server.host) else (site.server.host, str(config)),
                        schemas=(auth,))
    table = Table()
    for column in ("part", "result", "detail"):
        table.add_column(column, overflow="fold")
    results = {True: Text("OK", style="green"), False: Text("FAILED", style="red"), None: Text("not probed")}
    for probe in probes:  # as Text: a URL's [::1] or a password's [ is not read as markup
        table.add_row(Text(probe.part), results[probe.ok], Text(probe.detail))
    console = Console(highlight=False)
    if not console.is_terminal:  # a log, a pipe: each row on one line, not folded at rich's 80 columns
        console.width = 1000
    console.print(table)
    failed = [probe.part for probe in probes if probe.ok is False]
    if failed:
        typer.secho(f"error: {len(failed)} of {sum(p.ok is not None for p in probes)} parts probed failed: "
                    f"{', '.join(failed)}", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=1)


def _clock_named(site, config: Path) -> None:
    """Exit 1 where the site's clock would be UTC said nowhere: no `timezone` in the file and a TZ the
    C library reads as UTC (site/config/clock.py's unread_tz). `events delete --since '14:00'` erased
    the people of 14:00 UTC, the days of `report` and of `run` were UTC's. A TZ set but empty, UTC by
    POSIX and perhaps meant, is a warning (empty_tz): cli/common.py's _clock_said."""
    if site.timezone is None:
        _clock_said(str(config))


def _site_config(config: Path):
    """The site's validated YAML for a command that reads it (`report`, `alerts test`), or exit 1 with
    each of its problems on a line of its own, as `run --check` says them. Its cameras' video files
    need not exist: these commands read no video (`run` and `run --check` still need them)."""
    from maskwatch.site.config import SiteConfigError, load_site_config

    try:
        site = load_site_config(config, files=False)
    except SiteConfigError as err:
        for line in str(err).splitlines():
            typer.secho(f"error: {line}", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=1) from None
    _clock_named(site, config)
    return site


def _report_lines(site) -> list[str]:
    """Each of a site's reports as `run --check` and `report` list them, its URLs as logs show them."""
    from maskwatch.site.notify import shown_notify_url

    lines = []
    for index, entry in enumerate(site.reports):
        only = "".join(f", {what} {', '.join(names)}" for what, names in (("cameras", entry.cameras),
                                                                          ("zones", entry.zones)) if names)
        lines.append(f"{index}: {entry.schedule()}{only} to {', '.join(shown_notify_url(url) for url in entry.urls)}")
    return lines


def _print_report_csv(site, start: str | None, end: str | None) -> None:
    """report.csv of the site's database on stdout, as GET /v1/report.csv answers it (its days in the
    site's timezone), and the access-log row the API writes for it, by `cli:ACCOUNT`: a manager's
    spreadsheet or a cron job had it only through the API and a token."""
    from maskwatch.security.commands import _logged, store_of
    from maskwatch.site.database import COMMAND_CONNECT_TIMEOUT, DatabaseUnavailable
    from maskwatch.site.events import EventStore
    from maskwatch.site.report import report_csv, report_period

    tz = site.tz()
    try:
        period = report_period(start, end, tz, names=("--from", "--to"))
    except (ValueError, OverflowError) as err:
        _fail(str(err))
    database = site.storage.database
    if "://" not in database and not Path(database).is_file():  # a new empty file read as "nobody seen"
        _fail(f"{database}: no such database (storage.database; `maskwatch run` makes it)")
    try:
        store = EventStore(database, site.storage.snapshots, retention_days=site.storage.retention_days,
                           connect_timeout=COMMAND_CONNECT_TIMEOUT)
    except DatabaseUnavailable as err:
        _fail(str(err))
    try:
        text = report_csv(store, period, tz)
    finally:
        store.close()
    auth = store_of(site, None)
    try:
        _logged(auth, "report", f"report.csv?from={period.first}&to={period.last}")
    finally:
        auth.close()
    _print_data(text, nl=False)


@commands.command()
def report(
    config: Annotated[Path, typer.Option("--config", "-c", help="The site's YAML file: its `reports:`, its "
                                         "storage.database for --csv.")],
    send: Annotated[Optional[int], typer.Option("--send", help="Send report N (its number in `reports:`, from 0) "
                                                "now, once, and say whether each service took it.")] = None,
    csv: Annotated[bool, typer.Option("--csv", help="Print report.csv instead, as GET /v1/report.csv answers it: a "
                                      "row per day (the site's timezone), camera and zone; no `reports:` needed.")] = False,
    start: Annotated[Optional[str], typer.Option("--from", help="With --csv: the first day, YYYY-MM-DD "
                                                 "(default: 6 days before --to).", show_default=False)] = None,
    end: Annotated[Optional[str], typer.Option("--to", help="With --csv: the last day, YYYY-MM-DD (default: today "
                                               "in the site's timezone).", show_default=False)] = None,
) -> None:
    """Print a site's scheduled reports as they would read now (today so far; one with `covers:
    previous` yesterday; a weekly one the 7 days before today), or send one now to test its
    services; the schedule is left as it is. --csv prints report.csv for any days instead."""
    _need("report", "serve")
    import time
    from dataclasses import replace
    from datetime import datetime

    from maskwatch.site.database import COMMAND_CONNECT_TIMEOUT, DatabaseUnavailable
    from maskwatch.site.events import EventStore

    if csv and send is not None:
        _fail("--send sends a scheduled report, --csv prints report.csv: give one of them")
    if not csv and (start is not None or end is not None):
        _fail(f"{'--from' if start is not None else '--to'} is a day of --csv's report.csv: add --csv")
    site = _site_config(config)
    if csv:
        _print_report_csv(site, start, end)
        return
    if not site.reports:
        _fail(f"{config} has no `reports:` to print (see docs/site.md, Scheduled reports); --csv prints its report.csv")
    if send is not None and not 0 <= send < len(site.reports):
        _fail(f"--send is the number of a report in `reports:`, 0 to {len(site.reports) - 1}; got {send}")
    from maskwatch.site.notify import shown_notify_url
    from maskwatch.site.reports import Due, ReportSender, compose, reports_of

    try:
        store = EventStore(site.storage.database, site.storage.snapshots, retention_days=site.storage.retention_days,
                           connect_timeout=COMMAND_CONNECT_TIMEOUT)
    except DatabaseUnavailable as err:
        _fail(str(err))
    names = {camera_id: camera.name for camera_id, camera in site.cameras.items()}
    zones_of = {camera_id: list(camera.zones) for camera_id, camera in site.cameras.items()}
    now, tz = time.time(), site.tz()
    today = Due(datetime.fromtimestamp(now, tz).date(), now)
    try:
        reports = reports_of(site)
        messages = {r.index: compose(r, today, now, store, names, zones_of, tz, now) for r in reports
                    if send is None or r.index == send}
    finally:
        store.close()
    if send is None:
        for line, (index, message) in zip(_report_lines(site), messages.items()):
            typer.echo(f"report {line}\n{message.title}\n{message.body}")
            if message.document is not None:
                typer.echo(f"--- {message.document[0]}\n{message.document[1]}", nl=False)
            typer.echo("")
        return
    chosen = replace(reports[send], retries=0)  # one try each: a wrong token is said at once
    sender = ReportSender([chosen], names=names, tz=tz).start()
    sender.send(chosen, messages[send])
    sender.stop(timeout=chosen.timeout * len(chosen.urls) + 5)
    if sender.stats.sent != len(chosen.urls):
        _fail(f"{len(chosen.urls) - sender.stats.sent} of {len(chosen.urls)} services did not take it "
              f"(last: {sender.stats.last_error})")
    typer.echo(f"report {send} sent to {', '.join(shown_notify_url(url) for url in chosen.urls)}")


# `maskwatch alerts`: a group, included by maskwatch.cli after users and tokens.
alerts_app = typer.Typer(help="A site's alerts: send a test alert to its webhooks and notify services.",
                         no_args_is_help=True)


@alerts_app.command("test")
def alerts_test(
    config: Annotated[Path, typer.Option("--config", "-c", help="The site's YAML file with its `alerts:`.")],
    webhook: Annotated[Optional[int], typer.Option("--webhook", help="Only webhook N (its number in `alerts.webhooks`, "
                                                   "from 0).")] = None,
    notify: Annotated[Optional[int], typer.Option("--notify", help="Only notify entry N (its number in `alerts.notify`, "
                                                  "from 0), each of its URLs.")] = None,
) -> None:
    """Send a test alert now to each webhook and notify service (or the one chosen), one try each,
    and say per service whether it took it; exit code 1 if one did not. Filters, cooldowns and
    opening hours are bypassed; nothing is stored, and the site need not be running."""
    _need("alerts test", "serve")
    import socket

    site = _site_config(config)
    if not site.alerts.webhooks and not site.alerts.notify:
        _fail(f"{config} has no `alerts.webhooks` or `alerts.notify` to test (see docs/site.md, Alerts)")
    for option, chosen, entries, section in (("--webhook", webhook, site.alerts.webhooks, "alerts.webhooks"),
                                             ("--notify", notify, site.alerts.notify, "alerts.notify")):
        if chosen is not None and not entries:
            _fail(f"{option}: {config} has no `{section}`")
        if chosen is not None and not 0 <= chosen < len(entries):
            _fail(f"{option} is the number of an entry in `{section}`, 0 to {len(entries) - 1}; got {chosen}")
    from maskwatch.site.try_alerts import try_alerts

    site_name = f"{config.name} on {socket.gethostname()}"
    typer.echo(f"test alert from site {site_name}, one try each; filters, cooldowns and opening hours bypassed, "
               "nothing stored")
    try:
        tried = try_alerts(site, site_name, webhook=webhook, notify=notify)
    except KeyboardInterrupt:  # Typer ended it as exit 130 without a word
        _fail("stopped by Ctrl-C or SIGTERM before every service answered; those already sent to may have the test "
              "alert; nothing was stored", code=130)
    for one in tried:
        typer.echo(one.line())
    failed = sum(not one.ok for one in tried)
    if failed:
        _fail(f"{failed} of {len(tried)} services did not take the test alert")


@commands.command()
def backup(
    dest: Annotated[Path, typer.Argument(help="A new (or empty) folder for the copy.")],
    config: Annotated[Optional[Path], typer.Option("--config", "-c", help="The site's YAML file: its storage.")] = None,
    database: Annotated[Optional[str], typer.Option(help="SQLite file (without --config; default maskwatch.db).",
                                                    show_default=False)] = None,
) -> None:
    """A consistent copy of a running site's SQLite database and snapshots (copying the .db file
    alone can lose what its -wal file holds). PostgreSQL: pg_dump."""
    from maskwatch.security.commands import site_config, site_database

    site = site_config(config, "backup")
    database = site_database(site, database)
    snapshots = site.storage.snapshots if site is not None else None
    from maskwatch.site.backup import BackupError, backup_site

    try:
        copy, events, copied = backup_site(database, snapshots, dest)
    except BackupError as err:
        _fail(str(err))
    said = f"{copy}: {events} event{'s' * (events != 1)}"
    if (dest / "snapshots").is_dir():
        said += f"; {copied} snapshot{'s' * (copied != 1)} in {dest / 'snapshots'}"
    elif snapshots is not None:  # a site not run yet, or in privacy mode: no folder was there to copy
        said += f"; no snapshots (no folder {snapshots})"
    typer.echo(said)


@commands.command("copy-database")
def copy_database(
    target: Annotated[str, typer.Argument(help="The new, empty database: an SQLAlchemy URL "
                                               "(postgresql+psycopg://maskwatch@host/maskwatch, its password in "
                                               "PGPASSWORD) or an SQLite file not there yet.")],
    config: Annotated[Optional[Path], typer.Option("--config", "-c", help="The site's YAML file: its storage.database "
                                                                          "is the source.")] = None,
    database: Annotated[Optional[str], typer.Option(help="The source: SQLite file or SQLAlchemy URL (without --config; "
                                                         "default maskwatch.db).", show_default=False)] = None,
) -> None:
    """Copy a stopped site's database, every table and id, into a new, empty one: SQLite to
    PostgreSQL, or back. The source is left as it is; the snapshots are files, copied apart."""
    from maskwatch.security.commands import site_config, site_database

    site = site_config(config, "copy-database")
    source = site_database(site, database)
    from maskwatch.security.stores import copy_site_database
    from maskwatch.site.copy_database import CopyError
    from maskwatch.site.database import DatabaseUnavailable, shown_database_url
    from maskwatch.video.sources import redact_source

    try:
        copied, left_out = copy_site_database(source, target, said=lambda line: typer.echo(line, err=True))
    except (CopyError, DatabaseUnavailable) as err:
        _fail(str(err))
    except KeyboardInterrupt:  # Typer ended it as exit 130 without a word: was the target left half-made?
        _fail(f"interrupted (Ctrl-C or SIGTERM) before the copy was committed: nothing was kept in "
              f"{redact_source(target)}", code=130)
    for one in copied:
        next_id = f" (next id {one.next_id})" if one.next_id is not None else ""
        typer.echo(f"{one.table}: {one.rows} row{'s' * (one.rows != 1)}{next_id}")
    if left_out:
        typer.echo(f"left out, not maskwatch's: {', '.join(left_out)}")
    shown = shown_database_url(target) if "://" in target else target
    typer.echo(f"copied into {shown}, each table's rows counted there again: point the site's storage.database "
               "at it, and copy its storage.snapshots folder (files, not in the database)")

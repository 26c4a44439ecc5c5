"""`serve`: the HTTP API and the dashboard, in one process, in --workers processes, on Ray Serve, or
with one camera (--source) as a one-camera site."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Optional

import typer

from maskwatch import __version__  # in the start line: a log read weeks later says what ran
from maskwatch.cli.common import ClassifierFile, DetectorFile, Gate, _clock_said, _fail, _models, _sigterm_as_ctrl_c
from maskwatch.cli.servers import (OPEN_REQUESTS_AT_STOP_S, _cannot_listen, _end_by_sigterm, _flush_output,
                                   _hangup_as_sigterm, _log_options, _port_free, _say, _service_log, _sigterm_during,
                                   _tls_files)
from maskwatch.extras import need as _need

commands = typer.Typer()  # included straight under `maskwatch` by maskwatch.cli


@commands.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on, 1-65535.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
    source: Annotated[Optional[str], typer.Option(help="Watch this camera too, as a one-camera site (its events in --database): video file, rtsp/http URL or webcam:N.")] = None,
    max_upload_mb: Annotated[float, typer.Option(help="Largest upload accepted, in MiB (2**20 bytes).")] = 10.0,
    max_pixels: Annotated[int, typer.Option(help="Largest image accepted, in pixels.")] = 50_000_000,
    blur: Annotated[bool, typer.Option(help="Blur faces in every image served.")] = False,
    ray_replicas: Annotated[int | None, typer.Option(help="Serve through Ray Serve with this many replicas (instead of --workers).")] = None,
    ray_address: Annotated[str | None, typer.Option("--ray", help="A Ray cluster to join (HOST:PORT), to serve through Ray Serve (one replica unless --ray-replicas); default (or 'local'): start one here.")] = None,
    classifier: ClassifierFile = None,
    detector: DetectorFile = None,
    gate: Gate = True,
    database: Annotated[str, typer.Option(help="Users, sessions and tokens (maskwatch users add); while it has no user, loopback stays open and other addresses are refused.")] = "maskwatch.db",
    trusted_proxy: Annotated[Optional[list[str]], typer.Option(help="A reverse proxy's address whose X-Forwarded-For/-Proto are believed (repeat).")] = None,
    tls_cert: Annotated[Optional[Path], typer.Option(help="Serve HTTPS with this PEM certificate (with --tls-key).")] = None,
    tls_key: Annotated[Optional[Path], typer.Option(help="The certificate's PEM private key.")] = None,
    root_path: Annotated[str, typer.Option(help="The path prefix a reverse proxy serves this under, e.g. /maskwatch (it strips it before passing requests on).")] = "",
) -> None:
    """Serve the HTTP API (POST /v1/detect, /healthz, /metrics, /docs) and the dashboard at /."""
    import os

    _check_ranges(port, workers, max_upload_mb, max_pixels, ray_replicas)
    _need("serve", "serve")
    _service_log()
    if ray_replicas is not None or ray_address is not None:
        _need("serve --ray-replicas", "ray")
    if source and (workers > 1 or ray_replicas is not None or ray_address is not None):
        _fail("--source runs a one-camera site in one process: use it with --workers 1 and without --ray-replicas or --ray")
    if ray_replicas is not None and workers > 1:
        _fail(f"--ray-replicas replaces --workers: give one of them; got {ray_replicas} and {workers}")
    if source:  # its one-camera site has no `timezone`: TZ is its clock, as run's without one
        from maskwatch.site.config.clock import NO_SITE_FILE
        _clock_said("--source", NO_SITE_FILE)
    import uvicorn

    from maskwatch.security.commands import auth_for
    from maskwatch.serving.app import SETTINGS_ENV, ServeSettings
    from maskwatch.serving.http_limits import LimitedHttp
    from maskwatch.site.config.server import check_root_path
    _port_free(host, port, "--port")
    tls = _tls_files(tls_cert, tls_key)
    try:
        root_path = check_root_path(root_path, "--root-path")
    except ValueError as err:
        _fail(str(err))
    models = _models(classifier, detector, gate, load_check=True)
    camera_site = _one_camera_site(source, database, blur) if source else None  # checked before the database is made
    settings = ServeSettings(max_upload_bytes=int(max_upload_mb * 1024 * 1024), max_pixels=max_pixels, blur=blur,
                             models=models, auth=auth_for(host, database, trusted_proxy, tls=bool(tls),
                                                          where=f"--database {database}", create=bool(source),
                                                          cameras=bool(source)), root_path=root_path)
    if ray_replicas is not None or ray_address is not None:
        _serve_on_ray(settings, ray_replicas or 1, ray_address, host, port, tls)
        return
    if camera_site is not None:
        _serve_one_camera(camera_site, settings, host, port, tls)
        return
    os.environ[SETTINGS_ENV] = settings.to_json()
    with _shared_metrics(workers > 1) as metrics_dir:
        if metrics_dir:
            from maskwatch.serving.app import MULTIPROC_ENV, WORKER_PARENT_ENV
            # Each worker runs its own ONNX sessions; one thread each keeps them off each other's cores.
            os.environ["MASKWATCH_SINGLE_THREAD"] = "1"
            os.environ[MULTIPROC_ENV] = metrics_dir
            os.environ[WORKER_PARENT_ENV] = str(os.getpid())
        _say(f"maskwatch {__version__} serving on http{'s' * bool(tls)}://{host}:{port}/ (API docs at /docs)")
        if workers == 1:  # with workers, SIGHUP is uvicorn's: it restarts them (docs/deployment.md)
            _hangup_as_sigterm()
        terminated = _sigterm_during(lambda: uvicorn.run("maskwatch.serving.app:app_from_env", factory=True, host=host,
                                                          port=port, workers=workers, **_log_options(),
                                                          proxy_headers=False, server_header=False, http=LimitedHttp,
                                                          timeout_graceful_shutdown=OPEN_REQUESTS_AT_STOP_S, **tls))
    if terminated:  # --workers: it exited 0; now 143 as one process, once the metrics folder is gone
        _end_by_sigterm()


def _check_ranges(port: int, workers: int, max_upload_mb: float, max_pixels: int, ray_replicas: int | None) -> None:
    """A value out of its range is a usage error, as click's own (exit 2, the option as typed), said
    before any extra is needed: port 70000 printed "serving on" and died, a bound of 0 refused every upload."""
    import math

    for option, wrong, said in (("--port", not 1 <= port <= 65535, f"must be 1-65535, got {port}"),
                                ("--workers", workers < 1, f"must be at least 1, got {workers}"),
                                ("--max-upload-mb", not 0 < max_upload_mb < math.inf,  # inf: a traceback
                                 f"must be more than 0 and finite, got {max_upload_mb:g}"),
                                ("--max-pixels", max_pixels < 1, f"must be at least 1, got {max_pixels}"),
                                ("--ray-replicas", ray_replicas is not None and ray_replicas < 1,
                                 f"must be at least 1, got {ray_replicas}")):
        if wrong:  # `not 0 < ...`: nan too
            raise typer.BadParameter(said, param_hint=f"'{option}'")


@contextlib.contextmanager
def _shared_metrics(shared: bool) -> Iterator[str | None]:
    """A folder for the counters of several processes of this machine (prometheus_client's
    multiprocess mode: `--workers N`, the replicas of a local Ray cluster), summed at every scrape;
    None where there is nothing to share. Fresh at each start, so that a past run's counts are not
    summed in, and removed at exit; named with this process's id, so that one a server killed
    outright left is removed at the next start."""
    if not shared:
        yield None
        return
    import tempfile

    _remove_dead_servers_metrics(Path(tempfile.gettempdir()))
    try:
        yield tempfile.mkdtemp(prefix=_metrics_prefix())
    finally:
        _remove_own_metrics()


def _metrics_prefix() -> str:
    import os

    return f"maskwatch-metrics-{os.getpid()}-"


def _remove_own_metrics() -> None:
    """This process's metrics folders, found by name, not kept from mkdtemp: a stop signal
    (KeyboardInterrupt) may come once the folder is made, before mkdtemp has returned it."""
    import shutil
    import tempfile

    for folder in Path(tempfile.gettempdir()).glob(f"{_metrics_prefix()}*"):
        shutil.rmtree(folder, ignore_errors=True)


def _remove_dead_servers_metrics(folder: Path) -> None:
    """The metrics folders of `serve --workers` or `--ray-replicas` servers no longer running (killed
    outright, their cleanup never ran): maskwatch-metrics-PID-*, PID not alive."""
    import os
    import shutil

    for path in folder.glob("maskwatch-metrics-*-*"):
        pid = path.name.split("-")[2]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except PermissionError:  # another user's live process
            pass


def _one_camera_site(source: str, database: str, blur: bool):
    """`serve --source`'s site config, or a clear error naming what is wrong with the source."""
    from maskwatch.site.config import SiteConfigError, one_camera_site

    try:
        return one_camera_site(source, database, blur=blur)
    except SiteConfigError as err:
        _fail(str(err))


def _serve_one_camera(config, settings, host: str, port: int, tls: dict) -> None:
    """`serve --source`: the API with a site of one camera, run as `maskwatch run` runs a site."""
    import uvicorn

    from maskwatch.serving.app import create_app
    from maskwatch.serving.http_limits import LimitedHttp
    from maskwatch.site.runner import Site
    from maskwatch.video.sources import redact_source

    try:
        detector = settings.models.load()
        site = Site(config, detector)
    except (ImportError, ValueError, FileNotFoundError) as err:
        _fail(str(err))
    _say(f"maskwatch {__version__} serving on http{'s' * bool(tls)}://{host}:{port}/ (API docs at /docs); camera 'live': "
               f"{redact_source(config.cameras['live'].source)}, events in {redact_source(config.storage.database)}")
    _hangup_as_sigterm()
    uvicorn.run(create_app(detector, settings, site=site), host=host, port=port, **_log_options(),
                proxy_headers=False, server_header=False, http=LimitedHttp, timeout_graceful_shutdown=OPEN_REQUESTS_AT_STOP_S, **tls)


STOPPED_BEFORE_SERVING = "stopped by Ctrl-C or SIGTERM before serving"


def _serve_on_ray(settings, replicas: int, address: str | None, host: str, port: int, tls: dict | None = None) -> None:
    """`serve --ray-replicas`: the same app on Ray Serve until Ctrl-C or SIGTERM."""
    import os
    import signal
    import threading

    from maskwatch.scale.cluster import ClusterError, ray_cluster
    from maskwatch.scale.serving import AlreadyServed, ProxyPortError, StartStopped, proxy_environment, start_api

    os.environ.update(proxy_environment(settings))  # before the local cluster's processes start
    _hangup_as_sigterm()  # a closed terminal killed it outright, its metrics folder left
    # A local cluster's replicas are processes of this machine: their counters go to one folder, as
    # --workers' do, and every scrape sums them. A joined cluster's may be on other machines.
    local = address in (None, "local")
    received: list[int] = []  # the stop signals taken once serving
    try:
        # The replicas' warnings (a database away, a login refused) in this process's log, as
        # `maskwatch serve` writes them: in Serve's files alone, no operator saw them.
        # The folder goes once Serve is stopped (no replica writes into it) and before ray.shutdown,
        # which crashed (SIGSEGV) now and then after a stop signal to the process group, the folder left.
        # Until it serves, SIGTERM stops the start as Ctrl-C does (Serve shut down, the folder
        # removed): it killed the command outright once ray.init had returned, the folder left.
        with _sigterm_as_ctrl_c(), ray_cluster(address, log_to_driver=True), _shared_metrics(local) as metrics_dir:
            import ray

            database = settings.auth.database
            if database is not None and "://" not in database and sum(n["Alive"] for n in ray.nodes()) > 1:
                # A replica on another machine does not see the file: it ran with no users at all
                # (open to anyone on loopback, every login refused elsewhere).
                _fail(f"--database {database} is a file on this machine, and the Ray cluster has other "
                      "machines whose replicas cannot read it: give a PostgreSQL URL (postgresql://...)")
            # A joined cluster's Serve that ran before us keeps running, with its other applications.
            try:
                started_serve = start_api(settings, replicas, host, port, tls=tls,
                                          log_config=_log_options()["log_config"], metrics_dir=metrics_dir)
            except StartStopped:  # Serve's stop unfinished: ended here, without ray.shutdown beside it
                with contextlib.suppress(typer.Exit):
                    _fail(STOPPED_BEFORE_SERVING, code=130)
                _end_now([], code=130)
            stop = threading.Event()
            try:
                for signum in (signal.SIGINT, signal.SIGTERM):  # also where a shell started us ignoring SIGINT
                    signal.signal(signum, lambda got, _: (received.append(got), stop.set()))
                # Once they are set: from "serving on", a stop signal is a stop, not an interruption.
                _say(f"maskwatch {__version__} serving on http{'s' * bool(tls)}://{host}:{port}/ through Ray Serve, "
                     f"{replicas} replica{'s' * (replicas > 1)} (API docs at /docs); Ctrl-C stops")
                stop.wait()
            finally:
                _stop_api_bounded(started_serve, received)
    except KeyboardInterrupt:  # Serve shut down and the folder removed on the way here (start_api)
        _fail(STOPPED_BEFORE_SERVING, code=130)
    except (ClusterError, AlreadyServed) as err:  # refused before serving, as a port taken (docs/cli.md)
        _fail(str(err))
    except ProxyPortError:  # taken after _port_free's check, while the cluster started
        _cannot_listen(host, port, "--port", "Ray Serve's proxy could not bind it")
    # Serve's "Deploying application ... failed" (replicas that cannot start), its proxy not ready in
    # time, route "/" another application's
    except RuntimeError as err:
        _fail(f"Ray Serve could not start the API: {str(err).strip().splitlines()[0]}", code=3)  # as uvicorn, docs/cli.md
    if signal.SIGTERM in received:  # SIGHUP too, sent on as SIGTERM: it exited 0, where plain `serve` ends 143
        _end_by_sigterm()  # (docs/deployment.md); after Ctrl-C, 0 as there


# Seconds a `serve --ray-replicas` stop may take, from the signal to the process's end: Serve's stop
# (8 s at most), the metrics folder, then ray.shutdown, which hung now and then (2 in 27 stops of the
# process group) retrying a GCS that the signal had ended.
RAY_STOP_S = 20


def _stop_api_bounded(started_serve: bool, received: list[int]) -> None:
    """Serve stopped (stop_api), the rest of the stop bounded by RAY_STOP_S; where Serve's stop did
    not end (its GCS gone with the process group's signal), the process ends here, its metrics
    folder removed, without ray.shutdown, which crashed beside the stop still running (SIGSEGV, 1 in
    11 stops, the folder left) or hung: a local cluster's raylet and GCS end with this process (Ray
    starts them so), its workers with the raylet."""
    import threading

    from maskwatch.scale.serving import stop_api

    watchdog = threading.Timer(RAY_STOP_S, _stop_overdue, (received,))
    watchdog.daemon = True  # not waited for at a clean exit
    watchdog.start()
    if not stop_api(shutdown=started_serve):
        _end_now(received)


def _stop_overdue(received: list[int]) -> None:
    import logging

    logging.getLogger(__name__).warning("the stop has taken %d s: ending without waiting for Ray any longer", RAY_STOP_S)
    _end_now(received)


def _end_now(received: list[int], code: int = 0) -> None:
    """End the process where it stands, as its clean stop would (by SIGTERM after one, else
    `code`), without Python's exit, whose atexit runs ray.shutdown again."""
    import os
    import signal

    _remove_own_metrics()
    if signal.SIGTERM in received:
        _end_by_sigterm()
    _flush_output()
    os._exit(code)

"""The HTTP API on Ray Serve: `maskwatch serve --ray-replicas N`.

    with ray_cluster(address):
        started = start_api(ServeSettings(), replicas=2, host="127.0.0.1", port=8000)
        ...                       # Serve's proxy answers on host:port, replicas behind it
        stop_api(shutdown=started)  # a Serve that ran before keeps its other applications

The very FastAPI app `maskwatch serve` runs (serving.app.create_app), unchanged, through
serve.ingress: each replica builds it with its own models (one ONNX Runtime thread) when it
starts, so nothing but settings is shipped to it. `/metrics` sums every replica's counters where
they share a folder (metrics_dir: a local cluster's replicas, as `--workers` do), else counts per
replica, as replicas may run on other machines; a camera (`--source`, a one-camera site) needs a
single process.
"""

from __future__ import annotations

import re

from maskwatch.runtime import single_threaded
from maskwatch.scale.cluster import cpus_each
from maskwatch.serving.app import MULTIPROC_ENV, ServeSettings

APP_NAME = "maskwatch"


# Serve's own INFO lines (a replica started, a line per request), in a format of their own, in the
# operator's log once replicas' output reaches it: its warnings stay.
SERVE_LOGGING = {"log_level": "WARNING", "enable_access_log": False}


def api_deployment(settings: ServeSettings, replicas: int, log_config: dict | None = None,
                   metrics_dir: str | None = None):
    """A Serve deployment of the maskwatch app with `replicas` replicas (an Application, bound).
    log_config: logging.config.dictConfig's, applied in each replica (maskwatch's own log lines
    there, a refused upload or a failed login, written to its stderr as `maskwatch serve` writes them).
    metrics_dir: a folder every replica can write (all on this machine), where they keep their
    counters and every scrape sums them; None: each replica answers with its own."""
    from ray import serve

    if replicas < 1:
        raise ValueError(f"replicas must be at least 1, got {replicas}")

    def build_app():
        # Runs in each replica as it starts: the models load there, never travel.
        from maskwatch.serving.app import create_app

        import logging

        if log_config is not None:
            import logging.config

            logging.config.dictConfig(log_config)
        try:
            models = settings.models.load(threads=single_threaded())
        except Exception as err:  # one line that says why: Serve's own says only "failed", its traceback is cut
            logging.getLogger(__name__).error("this replica cannot start: %s", err)
            raise
        return create_app(models, settings)

    ingress = serve.ingress(build_app)()
    options = {"num_cpus": cpus_each(replicas)}
    if metrics_dir:
        # In the environment Ray starts the replica's process with: prometheus_client picks its
        # mode once, when first imported, and a replica may import it before build_app runs.
        options["runtime_env"] = {"env_vars": {MULTIPROC_ENV: metrics_dir}}
    deployment = serve.deployment(ingress, name=APP_NAME, num_replicas=replicas, ray_actor_options=options,
                                  logging_config=SERVE_LOGGING)
    return deployment.bind()


# A log record's first line, in maskwatch's format or Serve's, at WARNING or above.
_WARNING_LINE = re.compile(r"(?:\S+ ){0,2}(?:WARNING|ERROR|CRITICAL) ")


def stream_warnings_only() -> None:
    """Of what the cluster's processes write (Ray streams it to this process with log_to_driver),
    only the first line of each warning or error is written here: a replica that could not start
    came as 340 lines of tracebacks, Serve's stop as a raylet's retry notice. The rest stays in
    the session folder's files. Ray's internals: left as they are where they have changed."""
    import functools

    try:
        from ray._private import worker
        dispatcher, write = worker.global_worker_stdstream_dispatcher, worker.print_to_stdstream
    except (ImportError, AttributeError):
        return
    if not any(name == "ray_print_logs" for name, _ in dispatcher.handlers):
        return  # Ray initialised without log_to_driver

    def warnings_only(data, **options):
        lines = [line for line in data.get("lines", ()) if _WARNING_LINE.match(line)]
        if lines:
            write({**data, "lines": lines}, **options)

    dispatcher.remove_handler("ray_print_logs")
    dispatcher.add_handler("ray_print_logs", functools.partial(
        warnings_only, ignore_prefix=worker._should_ignore_worker_log_prefix(worker.global_worker)))


def proxy_environment(settings: ServeSettings) -> dict[str, str]:
    """Environment for Serve's HTTP proxy, to be set before a local cluster starts (its processes
    inherit it; a remote cluster's nodes need it set there): the proxy is uvicorn with its
    defaults, which believe X-Forwarded-For and -Proto from loopback, so any local TLS or TCP
    terminator passed a client's own headers on (22 guessed logins from invented addresses went
    unlimited). It believes the configured trusted proxies only, as `maskwatch serve` does."""
    return {"FORWARDED_ALLOW_IPS": ",".join(settings.auth.trusted_proxies)}


class ProxyPortError(RuntimeError):
    """Serve's proxy cannot listen on host:port, taken: by a server started after `serve
    --ray-replicas` checked the port and before Serve's proxy bound it (the cluster's start, seconds).
    Serve's own error said neither the port nor why, only the proxy actor's name and a traceback."""


class AlreadyServed(RuntimeError):
    """A joined cluster's Serve runs our application already, another `serve --ray-replicas`'s: a
    second start took it over (its replicas replaced with this command's settings) and its stop
    deleted it from under the first."""


class StartStopped(KeyboardInterrupt):
    """A stop signal (Ctrl-C, SIGTERM) as the API started, whose Serve shutdown did not end (the
    process group's signal ended the GCS): it still runs in a thread of Ray's calls, beside which
    ray.shutdown crashed the process (SIGSEGV) or hung; the caller ends without it."""


def start_api(settings: ServeSettings, replicas: int, host: str = "127.0.0.1", port: int = 8000,
              tls: dict | None = None, log_config: dict | None = None, metrics_dir: str | None = None) -> bool:
    """Deploy the API and return once every replica is up; Serve's proxy listens on host:port
    (on the head node of a cluster). A start that fails shuts Serve down before the error goes on,
    or deletes our application alone where Serve ran before (see the return value).
    log_config, metrics_dir: the replicas' logging and shared counters (api_deployment); their stderr
    reaches this process's where Ray was initialised with log_to_driver. ProxyPortError where the
    proxy cannot listen on host:port; AlreadyServed where another command's API runs on a joined
    cluster's Serve, left untouched; RuntimeError, in a line, for any other failure of Serve's
    (its proxy not ready in time, route "/" another application's).
    Returns whether this call started Serve: False where a joined cluster's Serve ran already,
    perhaps with other applications, which stop_api(shutdown=False) then leaves running."""
    import logging

    from ray import serve
    from ray.exceptions import RayError
    from ray.serve.exceptions import RayServeException

    # Serve's INFO lines, in a format of their own, came at every start: one of them, "Connecting
    # to existing Serve app ... New http_options will not be applied", read as a problem. Its
    # warnings stay; what runs and where is the start line's to say.
    logging.getLogger("ray.serve").setLevel(logging.WARNING)
    stream_warnings_only()
    ran_before = serve_running()
    if ran_before and APP_NAME in serve.status().applications:
        # serve.run would redeploy it, with this command's settings, and this command's stop delete it.
        raise AlreadyServed(f"the API is already served on this Ray cluster by another `maskwatch serve` (Serve's "
                            f"application '{APP_NAME}'): stop that one first (if it was killed outright, remove what "
                            f"it left with ray.serve.delete('{APP_NAME}'))")
    # tls: uvicorn's ssl_certfile and ssl_keyfile, which Serve's HTTP options take under the same names.
    try:
        try:
            serve.start(http_options={"host": host, "port": port, **(tls or {})}, logging_config=SERVE_LOGGING)
            serve.run(api_deployment(settings, replicas, log_config, metrics_dir), name=APP_NAME, route_prefix="/")
        except TimeoutError as err:  # Serve's own words say neither where nor what to look at
            raise RuntimeError(f"its HTTP proxy was not ready in time ({err}): check the load of the head node "
                               "and the proxy's log there, logs/serve/proxy_*.log in Ray's session folder "
                               "(/tmp/ray/session_latest)") from err
        except (RuntimeError, RayServeException, RayError) as err:
            # A RayTaskError: the proxy's words in its remote traceback's text.
            if f"Failed to bind to address '{host}:{port}'" in str(err):
                raise ProxyPortError(f"Ray Serve's proxy cannot listen on {host}:{port}") from err
            if isinstance(err, (RayServeException, RayError)):
                # The controller's refusal (route "/" another application's) or a dead actor: not
                # RuntimeErrors, they went past the command as tracebacks.
                raise RuntimeError(_reason(err)) from err
            raise
    except BaseException as err:
        # A proxy that cannot start, replicas that cannot, or Ctrl-C: Serve's proxy must not keep the
        # port, and on a joined cluster its controller (a detached actor) outlived the command, so
        # that the next start took it over, with the old start's port. A Serve that ran before
        # keeps running, with its other applications.
        if isinstance(err, KeyboardInterrupt):
            # A stop (Ctrl-C, SIGTERM), perhaps to the process group, the local cluster ended with
            # it: bounded as the stop after the start is; serve.shutdown waited 30 s for the dead
            # controller (a stop took 40 s, past `docker stop`'s 10).
            if not stop_api(shutdown=not ran_before):
                raise StartStopped from err
        elif ran_before:
            serve.delete(APP_NAME)
        else:
            serve.shutdown()
        raise
    return not ran_before


def _reason(err: BaseException) -> str:
    """A Ray error's own words: a RayTaskError's first line names only the remote task and its pid,
    the error raised there (its cause) says what went wrong."""
    cause = getattr(err, "cause", None) or err
    return (str(cause).strip().splitlines() or [type(cause).__name__])[0]


def serve_running() -> bool:
    """Whether Serve runs on the cluster, its controller (a detached actor) up: on a joined cluster,
    started by someone else, and other applications may run there. Ray's internal names."""
    import ray
    from ray.serve._private.constants import SERVE_CONTROLLER_NAME, SERVE_NAMESPACE

    try:
        ray.get_actor(SERVE_CONTROLLER_NAME, namespace=SERVE_NAMESPACE)
    except ValueError:  # no such actor
        return False
    return True


def stop_api(shutdown: bool = True, wait_s: float = 8.0) -> bool:
    """Serve shut down (open requests answered first), or only our application deleted where
    shutdown is False (a Serve that ran before start_api: its other applications keep running);
    given up after wait_s, or at once when the cluster's GCS is gone: a local cluster's processes
    share the `serve` command's process group, so Ctrl-C, `timeout` or a service manager's stop
    end them with it, and serve.shutdown waited 30 s for the dead controller, other calls 60 s for
    the dead GCS (a stop took 40 s and more, past `docker stop`'s 10; then wait_s, 16 s in all
    with ray.shutdown's own waits). ray.shutdown, which follows, ends what is left of a local cluster.
    Returns whether Serve's stop ended: where it did not, it still runs in a thread of Ray's calls,
    and a ray.shutdown beside it crashed the process (SIGSEGV) or hung on the dead GCS."""
    import functools
    import threading
    import time

    import ray
    from ray import serve

    from maskwatch.scale.cluster import refuses_connections

    stop = serve.shutdown if shutdown else functools.partial(serve.delete, APP_NAME)
    stopping = threading.Thread(target=stop, name="serve-shutdown", daemon=True)
    stopping.start()
    gcs = ray.get_runtime_context().gcs_address
    deadline = time.monotonic() + wait_s
    while stopping.is_alive() and time.monotonic() < deadline:
        stopping.join(0.25)
        if stopping.is_alive() and refuses_connections(gcs):
            break  # the controller died with the GCS: nothing is left to answer serve.shutdown
    return not stopping.is_alive()

"""What the two long-running servers, `serve` and `run`, share: the port held from the start, TLS
files checked before anything starts, a timed log on stderr (uvicorn's lines too), SIGHUP taken as
SIGTERM, and how long a stop waits for open requests."""

from __future__ import annotations

from pathlib import Path

from maskwatch.cli.common import _fail

# Seconds a stopping server waits for requests still open (a stalled upload held the stop, and
# with it the storing of the people in view, for as long as its client liked).
OPEN_REQUESTS_AT_STOP_S = 5


def _say(line: str) -> None:
    """One of a server's start lines, on stdout. A stdout that cannot take it (a file on a full
    disk) loses it, said once in the log, and is sent to /dev/null from then on: the server goes
    on. It ended with `error: No space left on device`, written into that same full file."""
    import contextlib
    import logging
    import os
    import sys

    import typer

    try:
        typer.echo(line)
    except OSError as err:
        logging.getLogger(__name__).warning("standard output cannot be written (%s): the start lines are lost; "
                                            "the server goes on", err.strerror or err)
        with contextlib.suppress(OSError, ValueError):  # what it still holds is flushed there, not failed again
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)


def _hangup_as_sigterm() -> None:
    """SIGHUP (a closed terminal or SSH session) stops `run` and `serve` as SIGTERM does, cleanly:
    it killed them at once, the people in view unstored and MQTT left showing them."""
    import os
    import signal

    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, lambda *_: os.kill(os.getpid(), signal.SIGTERM))


def _end_by_sigterm() -> None:
    """End this process by SIGTERM's own action once a server stopped cleanly after one, as uvicorn
    ends `serve` and `run`: the shell says 143, and systemd counts a death by SIGTERM as a clean stop
    (exit(143) would be a failed unit: the package's maskwatch.service sets no SuccessExitStatus)."""
    import signal
    import threading

    _flush_output()  # the process ends without Python's exit, which flushes them
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    else:  # a watchdog's (serve --ray-replicas): signal.signal is the main thread's alone, the C API's is not
        import ctypes

        ctypes.pythonapi.PyOS_setsig.argtypes = (ctypes.c_int, ctypes.c_void_p)
        ctypes.pythonapi.PyOS_setsig.restype = ctypes.c_void_p
        ctypes.pythonapi.PyOS_setsig(signal.SIGTERM, None)  # SIG_DFL
    signal.raise_signal(signal.SIGTERM)


def _flush_output() -> None:
    """stdout and stderr flushed, before the process ends without Python's exit."""
    import contextlib
    import sys

    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()


def _sigterm_during(run) -> bool:
    """Call `run` (uvicorn with --workers); whether SIGTERM came meanwhile. uvicorn's supervisor
    takes it, stops its workers and returns, exit 0, where one process ends by it (143,
    docs/deployment.md): the caller ends so once it has cleaned up. Seen through the wakeup fd, which
    every signal with a Python handler writes its number to, whoever set that handler (the
    supervisor's own are not ours to wrap)."""
    import signal
    import socket

    reader, writer = socket.socketpair()
    with reader, writer:
        writer.setblocking(False)
        reader.setblocking(False)
        previous = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
        try:
            run()
        finally:
            signal.set_wakeup_fd(previous)
        try:
            seen = reader.recv(1 << 16)
        except BlockingIOError:  # no signal came
            seen = b""
    return signal.SIGTERM in seen


def _port_free(host: str, port: int, option: str) -> None:
    """Stop with one line when host:port cannot be listened on (taken, a name that is no address
    here), before any camera, database or model is started: uvicorn said "serving on" first, then
    an ERROR line, and exited 3. A probe, let go at once (`run` keeps its socket: _listen)."""
    _listen(host, port, option).close()


def _listen(host: str, port: int, option: str):
    """A socket listening on host:port, held from before the models load until the server takes
    it, or one line where it cannot be: a second `run` started beside the first passed a probe while
    the first loaded, ran its site against the same database, then failed to bind (exit 3)."""
    import socket

    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        sock.bind(address)
        sock.listen(2048)  # listening: another socket cannot bind it, even with SO_REUSEADDR
    except OSError as err:
        _cannot_listen(host, port, option, err.strerror or str(err))
    return sock


def _cannot_listen(host: str, port: int, option: str, why: str) -> None:
    """The one line that stops a server whose host:port is taken, whoever found it so (the check,
    or Ray Serve's proxy after it): exit code 1, a start refused before serving."""
    _fail(f"cannot listen on {host}:{port}: {why} (another server there? stop it, or choose another {option})")


def _tls_files(cert: Path | None, key: Path | None) -> dict:
    """uvicorn's ssl options for a certificate and key (both or neither), checked to be readable."""
    if (cert is None) != (key is None):
        _fail("TLS needs both a certificate and its key (--tls-cert and --tls-key, or server.tls.cert and .key)")
    if cert is None:
        return {}
    for path in (cert, key):
        if not Path(path).is_file():
            _fail(f"no such TLS file: {path}")
    import ssl

    def no_password() -> str:
        raise ValueError("the key is encrypted; give the server an unencrypted key (readable by it alone)")

    try:  # as uvicorn will load them, so that a bad pair ends here with one line, not a traceback
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(str(cert), str(key), password=no_password)
    except (ssl.SSLError, ValueError, OSError) as err:
        _fail(f"TLS certificate {cert} and key {key}: not a PEM certificate and its matching private key ({err})")
    return {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}


# A long-running server's warnings (a camera's outage, a broker away, an alert given up) on stderr
# with the time they happened, as a service's log is read days later. Given to uvicorn too, which
# applies it in each --workers process: its own lines ("Invalid HTTP request received") came
# untimed in its format, and a worker's maskwatch warnings bare, through logging's last resort.
LOG_CONFIG = {
    "version": 1, "disable_existing_loggers": False,
    "formatters": {"timed": {"()": "maskwatch.runtime.OffsetTimes", "format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"stderr": {"class": "maskwatch.runtime.CurrentStderr", "formatter": "timed"}},
    "root": {"level": "WARNING", "handlers": ["stderr"]},
    "loggers": {name: {"handlers": [], "propagate": True} for name in ("uvicorn", "uvicorn.error", "uvicorn.access")},
}
LOG_LEVEL_ENV = "MASKWATCH_LOG_LEVEL"  # INFO adds uvicorn's start lines and a line per request
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def _log_options() -> dict:
    """uvicorn's log_config and log_level: LOG_CONFIG at the level MASKWATCH_LOG_LEVEL names."""
    import os

    from maskwatch.runtime import STOP_LOGGER

    level = os.environ.get(LOG_LEVEL_ENV, "").strip().upper() or "WARNING"
    # A site's stop is said at INFO, shown at WARNING too (runtime.STOP_LOGGER); ERROR leaves it out.
    loggers = LOG_CONFIG["loggers"] | {STOP_LOGGER: {"level": "INFO" if level == "WARNING" else level}}
    return {"log_config": LOG_CONFIG | {"root": {"level": level, "handlers": ["stderr"]}, "loggers": loggers},
            "log_level": level.lower()}


def _service_log() -> None:
    import logging.config

    options = _log_options()
    if options["log_level"].upper() not in LOG_LEVELS:
        _fail(f"{LOG_LEVEL_ENV} must be one of {', '.join(LOG_LEVELS)}, got {options['log_level'].upper()}")
    logging.config.dictConfig(options["log_config"])

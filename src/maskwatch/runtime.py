"""ONNX Runtime sessions as maskwatch runs them: several networks in turn on a few cores, or on
an accelerator where the config names one and ONNX Runtime has it."""

from __future__ import annotations

import ipaddress
import logging
import numbers
import os
import sys
import threading
import time
from pathlib import Path

CPU = "CPUExecutionProvider"
# Tried in this order by default: a GPU (onnxruntime-gpu), an Intel CPU/iGPU (onnxruntime-openvino),
# then plain CPU. Providers this ONNX Runtime build lacks are skipped.
DEFAULT_PROVIDERS = ("CUDAExecutionProvider", "OpenVINOExecutionProvider", CPU)
PROVIDERS_ENV = "MASKWATCH_PROVIDERS"  # comma-separated, for processes that read no site config

_preferred: tuple[str, ...] | None = None


def check_providers(names: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """The names as given, if ONNX Runtime knows each (installed or not); a ValueError naming the others."""
    import onnxruntime as ort

    known = ort.get_all_providers()
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(f"unknown ONNX Runtime execution providers {unknown}; known: {', '.join(known)}")
    if not names:
        raise ValueError("providers: name at least one execution provider (CPUExecutionProvider always works)")
    return tuple(names)


def set_providers(names: list[str] | tuple[str, ...] | None) -> None:
    """Prefer these execution providers, in order, for the sessions made from now on (None: the default)."""
    global _preferred
    _preferred = None if names is None else check_providers(names)


def chosen_providers() -> list[str]:
    """The preferred providers this ONNX Runtime build has, in order, always ending with the CPU."""
    import onnxruntime as ort

    preferred = _preferred
    if preferred is None and os.environ.get(PROVIDERS_ENV):
        preferred = check_providers([p.strip() for p in os.environ[PROVIDERS_ENV].split(",") if p.strip()])
    available = set(ort.get_available_providers())
    chosen = [name for name in (preferred or DEFAULT_PROVIDERS) if name in available and name != CPU]
    return [*chosen, CPU]


def cpu_session(model: Path | str | bytes, threads: int = 0):
    """An InferenceSession on the chosen providers (chosen_providers(); plain CPU unless an
    accelerator is named and installed) whose idle CPU threads sleep instead of spinning; with
    `threads` set, in a SharedSession that lets no more calls run at once than the cores hold.

    maskwatch runs networks one after another (the face detector, the gate, the classifier).
    By default ONNX Runtime's threads spin for a while after each run, taking the cores from
    the next network: on 2 cores the gate and classifier together ran 1.48x faster than the
    classifier alone with spinning, and 2.11x without (BENCHMARKS.md, section 2).
    threads: intra-op threads (0: ONNX Runtime's default, one per core).
    """
    # ONNX Runtime's own words for these were a TypeError of its bindings ("2") or nothing (-1).
    if isinstance(threads, bool) or not isinstance(threads, numbers.Integral) or threads < 0:
        raise ValueError(f"threads is a whole number of 0 or more (0: one per core); got {threads!r}")
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads:
        options.intra_op_num_threads = threads
    try:
        session = ort.InferenceSession(model if isinstance(model, bytes) else str(model), options,
                                       providers=chosen_providers())
    except Exception as err:  # onnxruntime's own exception types (InvalidProtobuf, Fail, ...)
        if isinstance(err, (ValueError, MemoryError)):
            raise
        name = "the model given as bytes" if isinstance(model, bytes) else str(model)
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"{name}: not a model ONNX Runtime can load (corrupt, truncated or not ONNX): "
                         f"{reason}") from None
    if not threads:  # ONNX Runtime's own pool: `serve`'s requests, `detect`'s one loop (see SharedSession)
        return session
    return SharedSession(session, max(1, usable_cores() // threads))


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, which containers and taskset narrow)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class SharedSession:
    """A session with a fixed number of intra-op threads that many threads call (a site's
    cameras), at most `concurrent` (cores // intra-op threads) runs at a time. Sessions on ONNX
    Runtime's default pool are not wrapped: bounding `serve`'s requests so kept its throughput
    but raised its p99 latency by a fifth (docs/bench-capacity.md, "Memory").

    ONNX Runtime's CPU arena keeps for good the memory of the most runs ever in flight together,
    and more runs than cores only take turns on them. Eight threads detecting at once on one
    session held 776 MB resident, two at once 394 MB, in the same wall time on 2 cores; a 30-minute
    soak of 8 cameras stepped up by 170 MB the first time the cameras' detections coincided
    (BENCHMARKS.md, section 13). Everything but run() is the session's own.
    """

    def __init__(self, session, concurrent: int) -> None:
        self.session, self.concurrent = session, concurrent
        self._slots = threading.BoundedSemaphore(concurrent)

    def run(self, output_names, input_feed, run_options=None):
        with self._slots:
            return self.session.run(output_names, input_feed, run_options)

    def __getattr__(self, name: str):
        if name == "session":  # not set yet (a copy being made): not the wrapped session's
            raise AttributeError(name)
        return getattr(self.session, name)


def single_threaded() -> int:
    """Make this process's networks and OpenCV run each call on one core, where the parallelism
    comes from elsewhere: a site's cameras each analyse on their own thread, Ray gives each actor
    a CPU share (and ONNX Runtime ignores OMP_NUM_THREADS). A second intra-op thread took a
    640x480 detection from 50 to 87 CPU ms for the same wall time on 2 cores (BENCHMARKS.md,
    section 13). Returns the ONNX Runtime intra-op thread count to use (1)."""
    import cv2

    cv2.setNumThreads(1)
    return 1


def session_providers(detector) -> dict:
    """The providers a loaded Detector's networks run on (for /healthz): {"detector": [...], "classifier": [...]}."""
    out = {}
    for name, part in (("detector", getattr(detector, "finder", None)), ("classifier", getattr(detector, "classifier", None))):
        session = getattr(part, "session", None)
        out[name] = session.get_providers() if session is not None else []  # [] : not ONNX Runtime (res10: OpenCV)
    return out


# glibc's malloc settings for a long-running site process: two arenas (not one per camera thread)
# and a fixed 32 MiB mmap threshold, with free arena memory handed back once a minute
# (trim_free_memory, called by the site and its Ray actors). With glibc's defaults, resident
# memory of a 30-minute soak of 8 cameras stepped up by 40-70 MB after 12-15 minutes (glibc raises
# its threshold after each large free, so frames and crops come to live in arenas that never
# shrink). A 128 KiB threshold kept it flat too (bab6d0b to efaf898), but then every frame and
# network input was a fresh mmap, its pages faulted in anew: 4-10 % more CPU on a quiet camera
# (docs/bench-capacity.md). glibc reads these at process start only.
STEADY_MALLOC = {"MALLOC_ARENA_MAX": "2", "MALLOC_MMAP_THRESHOLD_": str(32 * 1024 * 1024)}
TRIM_EVERY = 60.0  # seconds between trim_free_memory() calls of a long-running process


def trim_free_memory() -> None:
    """Hand the free memory inside glibc's arenas back to the system (malloc_trim); elsewhere nothing."""
    import ctypes
    import ctypes.util
    import platform

    if platform.libc_ver()[0] != "glibc":
        return
    ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)


class PeriodicTrim:
    """trim_free_memory() at most once every `every` seconds, for a loop that runs more often."""

    def __init__(self, every: float = TRIM_EVERY) -> None:
        self.every, self._last = every, time.monotonic()

    def maybe(self) -> bool:
        if time.monotonic() - self._last < self.every:
            return False
        self._last = time.monotonic()
        trim_free_memory()
        return True


def steady_malloc_env(env: dict | None = None) -> dict:
    """`env` (default: this process's) with STEADY_MALLOC added where not set already."""
    env = dict(os.environ if env is None else env)
    for key, value in STEADY_MALLOC.items():
        env.setdefault(key, value)
    return env


def restart_with_steady_malloc() -> None:
    """Run this command again, at once, in a process started with STEADY_MALLOC (unless this one
    was): the `maskwatch` command does this for `run` and `serve`. Elsewhere it returns."""
    import platform
    import sys

    if platform.libc_ver()[0] != "glibc" or all(key in os.environ for key in STEADY_MALLOC):
        return
    os.execve(sys.executable, list(sys.orig_argv), steady_malloc_env())


# A site's stop (site/runner.py: what it still stores, then that it ended) is no problem: INFO, on
# this logger, which the service's log shows at its default level (WARNING) too (cli/servers.py),
# so that a log without the last line still tells a stop cut short. It was WARNING: each clean stop
# read as two warnings, where a WARNING is kept for what went wrong.
STOP_LOGGER = "maskwatch.site.stop"


class OffsetTimes(logging.Formatter):
    """A log line's time with the machine's UTC offset, "2026-10-25 02:30:05,297+02:00" (ISO 8601,
    its decimal comma as before): in the hour the clocks go back, 02:30:05 was written twice an hour
    apart, and on a machine whose TZ is not the site's `timezone` its lines read as the site's clock."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        from datetime import datetime

        moment = datetime.fromtimestamp(record.created).astimezone()  # fromtimestamp sets the repeated hour's fold
        offset = moment.strftime("%z")
        return f"{moment:%Y-%m-%d %H:%M:%S},{int(record.msecs):03d}{offset[:3]}:{offset[3:5]}"


class CurrentStderr(logging.StreamHandler):
    """A log handler writing to sys.stderr as it is at each line, not as it was when the logging
    was set up: a stderr replaced since (a test runner's, a notebook's) had been closed, and every
    later line was a "Logging error" traceback instead.

    A line that failed (a log file on a full disk) may be half written: the next line written
    starts on a new line. The first line after the disk had room again was glued to the end of
    the cut one, where a reader matching from a line's start (fail2ban, grep '^') missed it."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)
        self.cut = False

    def emit(self, record: logging.LogRecord) -> None:
        line = None
        try:
            line = self.format(record) + self.terminator
            self.stream.write("\n" + line if self.cut else line)
            self.flush()
            self.cut = False
        except RecursionError:  # as logging's own emit
            raise
        except Exception:  # noqa: BLE001 - logging's way: said by handleError, never raised
            # A line that did not format ("%d" given text) wrote nothing: no blank line after it.
            self.cut = self.cut or line is not None
            self.handleError(record)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


class HeldBackLog:
    """A warning that can come with every request (the database away while each open dashboard
    polls every few seconds, a line each): said at most once per `every` seconds, with how many
    like it were held back since the last one."""

    def __init__(self, logger, every: float = 60.0) -> None:
        self.logger, self.every = logger, every
        self._said_at, self._held = float("-inf"), 0
        self._lock = threading.Lock()

    def warning(self, message: str, *args) -> None:
        with self._lock:
            now = time.monotonic()
            if now - self._said_at < self.every:
                self._held += 1
                return
            held, self._held, self._said_at = self._held, 0, now
        if held:
            message += f" ({held} more like it since the last such line)"
        self.logger.warning(message, *args)


class ProblemLog:
    """The last problem of a task that repeats (a camera's frames, a poller's messages, a periodic
    check): logged when it is new, not at every retry, and forgotten after a success, so that its
    return is said again. `recovered`, if given, is logged at that success: without it a log that
    said "database is locked" never said whether it ended."""

    def __init__(self, logger, what: str, recovered: str | None = None) -> None:
        self.logger, self.what, self.recovered = logger, what, recovered
        self.last: str | None = None

    def failed(self, problem: str) -> None:
        # Its first line: SQLAlchemy's errors go on with the SQL statement, three more log lines.
        problem = (problem.strip().splitlines() or [problem])[0]
        if problem != self.last:
            self.logger.warning("%s: %s", self.what, problem)
        self.last = problem

    def ok(self) -> None:
        if self.last is not None and self.recovered:
            self.logger.warning("%s", self.recovered)
        self.last = None


class Periodic:
    """`check()` on its own daemon thread every `every` seconds until stop(), a failure said by
    `problems` (once, until it clears) and tried again at the next turn: a database away a while
    must not end a site's periodic checks for good. at_start: the first check at once (the report
    missed while the site was down), else after the first wait. on_failure(err): what else a
    failure changes (the compliance stats' last result). stop_wait: how long stop() waits for a
    check under way, for one that loses nothing by being cut (the thread is a daemon)."""

    def __init__(self, check, every: float, name: str, problems: ProblemLog, at_start: bool = False,
                 on_failure=None, stop_wait: float = 10.0) -> None:
        self.check, self.every, self.problems = check, every, problems
        self.at_start, self.on_failure, self.stop_wait = at_start, on_failure, stop_wait
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(self.stop_wait)

    def _run(self) -> None:
        if not self.at_start and self._stop.wait(self.every):
            return
        while True:
            try:
                self.check()
                self.problems.ok()
            except Exception as err:  # noqa: BLE001  see above
                self.problems.failed(f"{type(err).__name__}: {err}")
                if self.on_failure is not None:
                    self.on_failure(err)
            if self._stop.wait(self.every):
                return


def is_loopback(host: str | None) -> bool:
    """127.0.0.0/8, ::1 or localhost (a name or an address, an IPv6 one in brackets or not):
    reachable from this machine only."""
    if host is None:
        return False
    host = host.strip("[]")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def boot_clock() -> float:
    """Seconds on a clock that is never set and, unlike time.monotonic(), runs while the machine
    sleeps (Linux's CLOCK_BOOTTIME; time.monotonic() elsewhere): a camera's last frame before a
    10-hour sleep, kept on time.monotonic(), was said 10 hours late once the machine woke, and a
    scheduled report due during a sleep was taken for one before a clock set forward: never sent."""
    return time.clock_gettime(time.CLOCK_BOOTTIME) if hasattr(time, "CLOCK_BOOTTIME") else time.monotonic()


class OnTheWall:
    """boot_clock() instants said on the wall clock as it reads now. Times kept as the wall clock
    read then stayed on the old clock once it was set (NTP after a boot with no real-time clock at
    1970 or the last shutdown): a camera down since the boot was "offline since 1970", one down
    before a step forward of 3 days "3 days" too long. The offset is taken again when the clock
    was set by more than a second (so two reads of a steady clock give the same times)."""

    def __init__(self) -> None:
        self._epoch = time.time() - boot_clock()  # the wall clock's reading less boot_clock()'s

    def __call__(self, instant: float) -> float:
        epoch = time.time() - boot_clock()
        if abs(epoch - self._epoch) > 1.0:
            self._epoch = epoch
        return self._epoch + instant

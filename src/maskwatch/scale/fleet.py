"""A site's cameras on Ray actors: `maskwatch run --config site.yaml --ray ADDRESS`.

    with ray_cluster(address):
        site = RaySite(load_site_config("site.yaml"), Detector.load()).start()
        ...                       # the API, the page, alerts and MQTT stay in this process
        site.stop()

Each actor runs a group of cameras with the same parts as `Site` (site.runner.camera_worker:
reader thread, frame loop, tracker, event sink) and writes their events and counts straight
into the site's database, so frames never leave the actor. The driver polls each actor about
once a second for its cameras' state and the events it stored (small dicts, for alerts and
MQTT); a camera's newest frame crosses only when the API asks for it, as one JPEG. An actor
that dies is restarted by Ray with its cameras (people in view at that moment are lost; every
event stored before is kept); one whose restart fails (Ray then gives it up for good) is made
anew by the driver, 1, 2, 4 ... 60 s apart.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field, fields
from functools import partial
from pathlib import Path
from typing import Callable

from maskwatch.detection.detector import Models
from maskwatch.faces import PERSON_LABELS
from maskwatch.runtime import (PROVIDERS_ENV, STEADY_MALLOC, OnTheWall, PeriodicTrim, ProblemLog, boot_clock,
                               single_threaded)
from maskwatch.scale.cluster import cpus_each
from maskwatch.site.config import CameraConfig, SiteConfig, StorageConfig, with_absolute_files
from maskwatch.site.database import database_url
from maskwatch.site.event_sink import Listeners
from maskwatch.site.event_writer import EventWriter
from maskwatch.site.events import EventStore
from maskwatch.site.pause import PauseWatch
from maskwatch.site.runner import Site, SiteCamera, camera_worker
from maskwatch.site.stalls import StallWatch
from maskwatch.video.cameras import stop_workers

log = logging.getLogger(__name__)

POLL_EVERY = 1.0  # seconds between the driver's polls of each actor
CALL_TIMEOUT = 10.0  # seconds an actor may take to answer a poll or a frame request
LISTENER_KINDS = tuple(f.name for f in fields(Listeners))  # what an actor posts for the driver to pass on
MAX_MESSAGES = 10_000  # events an actor keeps for the driver; the oldest go first if none polls


class _Relay(logging.Handler):
    """An actor's warnings (a camera's outage and its end, people not stored) posted for the
    driver, which logs them as its own: the actor's stderr is a file in Ray's session folder,
    and `run --ray` said nothing of a camera down. Its INFO lines too where the driver logs
    them (MASKWATCH_LOG_LEVEL=INFO: a camera's stream reopened within offline_after, which
    `run` says and `run --ray` did not); never DEBUG's, which would crowd its events out of the
    actor's MAX_MESSAGES."""

    def __init__(self, post: Callable[[str, dict], None], level: int = logging.WARNING) -> None:
        super().__init__(min(logging.WARNING, max(logging.INFO, level)))
        self.post = post

    def emit(self, record: logging.LogRecord) -> None:
        self.post("log", {"name": record.name, "levelno": record.levelno, "msg": record.getMessage(),
                          "created": record.created, "msecs": record.msecs})


class CameraGroup:
    """The Ray actor of some cameras: one detector (one ONNX Runtime thread) shared by their
    threads, one connection pool to the database; started in __init__, so a restart by Ray
    brings the cameras back by itself."""

    def __init__(self, cameras: dict[str, CameraConfig], storage: StorageConfig, models: Models = Models(),
                 log_level: int = logging.WARNING) -> None:
        """log_level: the driver's (its `maskwatch` logger's): the lines of that level up are relayed."""
        self.messages: deque[tuple[str, dict]] = deque(maxlen=MAX_MESSAGES)
        self._relay = _Relay(self._post, log_level)
        maskwatch_log = logging.getLogger("maskwatch")
        self._log_level = maskwatch_log.level  # restored at the stop (an actor run in the driver's process)
        if self._relay.level < maskwatch_log.getEffectiveLevel():
            maskwatch_log.setLevel(self._relay.level)
        maskwatch_log.addHandler(self._relay)
        detector = models.load(threads=single_threaded())
        self.store = EventStore(storage.database, storage.snapshots, privacy=storage.privacy,
                                retention_days=storage.retention_days)  # retention is the driver's job
        self.writer = EventWriter(self.store)  # its cameras' people, stored off their threads, as a site's
        self._trim = PeriodicTrim()
        self.workers, self.live = {}, {}
        for camera_id, camera in cameras.items():
            worker, live = camera_worker(camera_id, camera, detector, self.store, Listeners(
                **{kind: partial(self._post, kind) for kind in LISTENER_KINDS}), blur_live=storage.live_blurred,
                writer=self.writer)
            self.workers[camera_id], self.live[camera_id] = worker.start(), live
        # A camera stuck in one step (a PostgreSQL server that hung) said from here, as `run`
        # says its own (site/stalls.py): the actors' were never said. Pauses are the driver's to
        # say (offline_after inf: never here), once, not once more per actor.
        stalls = StallWatch(self.workers)
        self._stalls = PauseWatch(math.inf, each_look=lambda: (stalls.look(), self.writer.look())).start()

    def _post(self, kind: str, body: dict) -> None:
        self.messages.append((kind, body))

    def poll(self) -> tuple[list[tuple[str, dict]], dict[str, dict]]:
        """(messages since the last poll: (kind, body), kind a Listeners field; state per camera)."""
        taken = [self.messages.popleft() for _ in range(len(self.messages))]
        self._trim.maybe()  # the actor's free memory back to the system once a minute (STEADY_MALLOC)
        return taken, {camera_id: worker.state() for camera_id, worker in self.workers.items()}

    def frame_jpeg(self, camera_id: str) -> bytes | None:
        return self.live[camera_id].jpeg()

    def stop(self) -> list[tuple[str, dict]]:
        """Stop every camera; people still in view are decided and stored. The last messages.
        All together, as a site's own cameras (stop_workers)."""
        self._stalls.stop()
        stop_workers(list(self.workers.values()))
        if lost := self.writer.close():  # for the driver's `stopped` line (its own writer stored nobody)
            self._post("unstored", {"people": lost})
        self.store.close()
        logging.getLogger("maskwatch").removeHandler(self._relay)
        logging.getLogger("maskwatch").setLevel(self._log_level)
        return self.poll()[0]

    def pid(self) -> int:
        import os

        return os.getpid()


on_the_wall = OnTheWall()  # the actors' away_since on the wall clock as it reads now


@dataclass
class RemoteGroup:
    """The driver's side of one actor: its handle and what its last poll said."""

    camera_ids: list[str]
    handle: object = None
    states: dict[str, dict] = field(default_factory=dict)
    error: str | None = None
    unanswered: object = None  # a poll the actor has not answered in time: its messages are asked for again
    restarts: int = 0  # new actors made in a row after one died for good (0 again once one answers)
    restart_at: float | None = None  # when the next one is made (monotonic seconds)
    emptied: bool = False  # its cameras' in-view counts were set to 0 since its last answer
    # boot_clock() since which it has not answered (from the site's start until its first answer):
    # its cameras count as down since then, unless they were down before (said by on_the_wall)
    away_since: float | None = field(default_factory=boot_clock)


class RemoteWorker:
    """Stands in for a CameraWorker in the driver: the state from the group's last poll."""

    def __init__(self, group: RemoteGroup, camera_id: str) -> None:
        self.group, self.camera_id = group, camera_id

    def state(self) -> dict:
        """The last poll's state; while the actor starts, restarts or is away, the last figures
        known (counters do not drop to 0), not connected, with the reason."""
        state = self.group.states.get(self.camera_id)
        if state is not None and not self.group.error:
            return state
        known = state or {"last_frame_at": None, "offline_since": None, "frames": 0, "reconnects": 0, "analysed": 0,
                          "detected": None, "grey_frames": False, "people_waiting": 0, "people_dropped": 0}
        away = None if self.group.away_since is None else on_the_wall(self.group.away_since)
        return {**known, "connected": False, "offline_since": known["offline_since"] or away,
                "fps": 0.0, "analysis_error": None,
                "last_error": self.group.error or "camera actor starting"}


class RemoteLive:
    """Stands in for a LatestFrameSink in the driver: the newest frame, asked of the actor."""

    def __init__(self, group: RemoteGroup, camera_id: str) -> None:
        self.group, self.camera_id = group, camera_id

    def jpeg(self) -> bytes | None:
        import ray

        if self.group.handle is None:
            return None
        try:
            return ray.get(self.group.handle.frame_jpeg.remote(self.camera_id), timeout=CALL_TIMEOUT)
        except (ray.exceptions.RayError, TimeoutError):
            return None


class RaySite(Site):
    """A Site whose cameras run on Ray actors, `cameras_per_actor` to an actor; Ray must be
    initialised (scale.cluster.ray_cluster). Paths in the config (video files, an SQLite
    database, snapshots) are made absolute here: actors may run in other folders or machines,
    which must then see the same paths (and a database server, not SQLite, across machines)."""

    def __init__(self, config: SiteConfig, detector, cameras_per_actor: int = 1, models: Models = Models()) -> None:
        if cameras_per_actor < 1:
            raise ValueError(f"cameras per actor must be at least 1, got {cameras_per_actor}")
        self.cameras_per_actor = cameras_per_actor
        self.models = models  # each actor loads its own
        self.groups: list[RemoteGroup] = []
        self._polling = threading.Event()
        self._poller = threading.Thread(target=self._poll_forever, name="maskwatch-ray-poll", daemon=True)
        super().__init__(absolute_paths(config), detector)

    def _make_cameras(self, detector, listeners: Listeners) -> dict[str, SiteCamera]:
        self._listeners = listeners
        self._listener_problems = ProblemLog(log, "a camera actor's message")
        ids = list(self.config.cameras)
        self.groups = [RemoteGroup(ids[i:i + self.cameras_per_actor])
                       for i in range(0, len(ids), self.cameras_per_actor)]
        return {camera_id: SiteCamera(camera_id, self.config.cameras[camera_id], RemoteWorker(group, camera_id),
                                      RemoteLive(group, camera_id))
                for group in self.groups for camera_id in group.camera_ids}

    def _start_cameras(self) -> None:
        import ray

        # Every group fits at once, even with more groups than CPUs (a camera rarely needs a whole core).
        # The actor's process lives as long as its cameras: glibc's malloc settings of `maskwatch run`.
        # The site's execution providers reach the actors' ONNX Runtime as they do a process that
        # reads no config (they ran the default list, whatever runtime.providers said).
        providers = self.config.runtime.providers
        env = {**STEADY_MALLOC, **({PROVIDERS_ENV: ",".join(providers)} if providers else {})}
        self._actor = ray.remote(num_cpus=cpus_each(len(self.groups)), max_restarts=-1, max_task_retries=0,
                                 runtime_env={"env_vars": env})(CameraGroup)
        for group in self.groups:
            self._start_group(group)
        self._poller.start()

    def _start_group(self, group: RemoteGroup) -> None:
        group.handle = self._actor.remote({c: self.config.cameras[c] for c in group.camera_ids},
                                          self.config.storage, self.models,
                                          logging.getLogger("maskwatch").getEffectiveLevel())
        group.restart_at = None

    def _stop_cameras(self) -> None:
        import ray

        self._polling.set()
        if self._poller.is_alive():
            self._poller.join(timeout=CALL_TIMEOUT + POLL_EVERY)
        # A busy actor's last answer still carries its events.
        late = [group for group in self.groups if group.unanswered is not None and group.handle is not None]
        for group, (answer, _) in zip(late, answers([group.unanswered for group in late])):
            if answer is not None:
                self._dispatch(answer[0])
            group.unanswered = None
        stops = [(group, group.handle.stop.remote()) for group in self.groups if group.handle is not None]
        for group, stopped in stops:
            try:
                self._dispatch(ray.get(stopped, timeout=30))
            except (ray.exceptions.RayError, TimeoutError) as err:
                log.warning("cameras %s did not stop cleanly: %s", group.camera_ids, actor_problem(err))
            ray.kill(group.handle, no_restart=True)
            group.handle = None

    def _poll_forever(self) -> None:
        while not self._polling.wait(POLL_EVERY):
            self.poll()

    def poll(self) -> None:
        """Ask every actor at once for its news; an actor that does not answer (dead, restarting)
        shows its cameras as not connected, with the reason, until it does."""
        import ray

        for group in self.groups:
            if group.restart_at is not None and time.monotonic() >= group.restart_at:
                group.restarts += 1
                log.warning("cameras %s: a new camera actor (its last died for good: %s)", group.camera_ids,
                            group.error)
                self._start_group(group)
        calls = [(group, group.unanswered or group.handle.poll.remote()) for group in self.groups
                 if group.handle is not None and group.restart_at is None]
        for (group, call), (answer, err) in zip(calls, answers([call for _, call in calls])):
            if err is None:
                messages, states = answer
                group.states = carried_over(group.states, states, None if group.away_since is None
                                            else on_the_wall(group.away_since))
                group.error, group.unanswered, group.emptied, group.restarts = None, None, False, 0
                group.away_since = None
                self._dispatch(messages)
                continue
            if not group.emptied and not isinstance(err, TimeoutError):
                group.emptied = True
                # Its people in view went with it: MQTT's retained counts must not go on showing them.
                self._dispatch([("in_view", {"camera": camera_id, "counts": dict.fromkeys(PERSON_LABELS, 0)})
                                for camera_id in group.camera_ids])
            # A slow actor has taken its messages off its queue already: the same call is waited
            # on next time, so that they still come (a new call lost them). A dead one's are lost.
            group.unanswered = call if isinstance(err, TimeoutError) else None
            group.error = f"camera actor unavailable ({type(err).__name__}): {actor_problem(err)}"
            group.away_since = group.away_since or boot_clock()
            if isinstance(err, ray.exceptions.ActorDiedError):
                # Ray restarts a crashed actor, but not one whose restart failed (the database
                # away as it started): that one is dead for good, and its cameras with it.
                group.restart_at = time.monotonic() + min(60.0, 2.0 ** min(group.restarts, 6))

    def _dispatch(self, messages: list[tuple[str, dict]]) -> None:
        """Each message to its listener; one that fails (MQTT's count query with the database
        away) is logged once per new problem and costs only its own message, not the poller."""
        for kind, body in messages:
            if kind == "unstored":  # an actor's people that could not be stored at its stop
                self.unstored += body["people"]
                continue
            if kind == "log":  # an actor's warning, at the time it was made
                logger = logging.getLogger(body["name"])
                if logger.isEnabledFor(body["levelno"]):
                    logger.handle(logging.makeLogRecord({**body, "levelname": logging.getLevelName(body["levelno"])}))
                continue
            listener = getattr(self._listeners, kind)
            if listener is None:
                continue
            try:
                listener(body)  # (another kind's success does not make this kind's problem new again)
            except Exception as err:  # noqa: BLE001 - see above
                self._listener_problems.failed(f"{kind} listener: {type(err).__name__}: {err}")


def carried_over(before: dict[str, dict], now: dict[str, dict], away_since: float | None) -> dict[str, dict]:
    """An actor's new states, with what one restarted by Ray cannot know: its new readers start with
    no frame, down since their start. A camera still down keeps its last frame before, and since when
    it is down (its own outage, its actor's going away or the site's start, the earliest): the card
    said "not connected since the site started at 10:00" of a camera seen all morning."""
    merged = {}
    for camera_id, state in now.items():
        old = before.get(camera_id)
        if old is not None and state.get("last_frame_at") is None and not state.get("connected", True):
            down = [t for t in (old.get("offline_since"), away_since, state["offline_since"]) if t is not None]
            state = {**state, "last_frame_at": old.get("last_frame_at"), "offline_since": min(down)}
        merged[camera_id] = state
    return merged


ANSI = re.compile(r"\x1b\[[0-9;]*m")


def answers(calls: list) -> list[tuple[object, Exception | None]]:
    """(result, None) or (None, the error) for each Ray call, after one wait for them all, up to
    CALL_TIMEOUT: a wait per call, one after another, outlived the stop's join, and a call that
    has answered is read whatever the others do (a TimeoutError for one that has not yet)."""
    import ray

    if calls:
        ray.wait(calls, num_returns=len(calls), timeout=CALL_TIMEOUT)
    results = []
    for call in calls:
        try:
            results.append((ray.get(call, timeout=0), None))
        except (ray.exceptions.RayError, TimeoutError) as err:
            results.append((None, err))
    return results


def actor_problem(err: Exception) -> str:
    """What an actor's error says, readable: Ray's first line and, where they differ, the cause's
    last one (the colour codes out), at most 300 characters."""
    lines = [line.strip() for line in ANSI.sub("", str(err)).strip().splitlines() if line.strip()]
    if not lines:
        return type(err).__name__
    said = lines[0] if len(lines) == 1 else f"{lines[0][:120]} ... {lines[-1]}"
    return said[:300]


def absolute_paths(config: SiteConfig) -> SiteConfig:
    """The config with file sources and substreams, an SQLite database and the snapshots folder
    made absolute."""
    cameras = {camera_id: with_absolute_files(camera) for camera_id, camera in config.cameras.items()}
    storage = config.storage.model_copy(update={"database": database_url(config.storage.database),
                                                "snapshots": str(Path(config.storage.snapshots).resolve())})
    return config.model_copy(update={"cameras": cameras, "storage": storage})


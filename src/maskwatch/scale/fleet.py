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
event stored before is kept).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass, field, fields
from functools import partial
from pathlib import Path

from maskwatch.detection.detector import Models
from maskwatch.runtime import STEADY_MALLOC, PeriodicTrim, ProblemLog, single_threaded
from maskwatch.scale.cluster import cpus_each
from maskwatch.site.config import CameraConfig, SiteConfig, StorageConfig, with_absolute_files
from maskwatch.site.events import EventStore, Listeners, database_url
from maskwatch.site.runner import Site, SiteCamera, camera_worker

log = logging.getLogger(__name__)

POLL_EVERY = 1.0  # seconds between the driver's polls of each actor
CALL_TIMEOUT = 10.0  # seconds an actor may take to answer a poll or a frame request
LISTENER_KINDS = tuple(f.name for f in fields(Listeners))  # what an actor posts for the driver to pass on
MAX_MESSAGES = 10_000  # events an actor keeps for the driver; the oldest go first if none polls


class CameraGroup:
    """The Ray actor of some cameras: one detector (one ONNX Runtime thread) shared by their
    threads, one connection pool to the database; started in __init__, so a restart by Ray
    brings the cameras back by itself."""

    def __init__(self, cameras: dict[str, CameraConfig], storage: StorageConfig, models: Models = Models()) -> None:
        detector = models.load(threads=single_threaded())
        self.store = EventStore(storage.database, storage.snapshots, privacy=storage.privacy,
                                retention_days=storage.retention_days)  # retention is the driver's job
        self.messages: deque[tuple[str, dict]] = deque(maxlen=MAX_MESSAGES)
        self._trim = PeriodicTrim()
        self.workers, self.live = {}, {}
        for camera_id, camera in cameras.items():
            worker, live = camera_worker(camera_id, camera, detector, self.store, Listeners(
                **{kind: partial(self._post, kind) for kind in LISTENER_KINDS}), blur_live=storage.live_blurred)
            self.workers[camera_id], self.live[camera_id] = worker.start(), live

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
        """Stop every camera; people still in view are decided and stored. The last messages."""
        for worker in self.workers.values():
            worker.stop()
        self.store.close()
        return self.poll()[0]

    def pid(self) -> int:
        import os

        return os.getpid()


@dataclass
class RemoteGroup:
    """The driver's side of one actor: its handle and what its last poll said."""

    camera_ids: list[str]
    handle: object = None
    states: dict[str, dict] = field(default_factory=dict)
    error: str | None = None
    unanswered: object = None  # a poll the actor has not answered in time: its messages are asked for again


class RemoteWorker:
    """Stands in for a CameraWorker in the driver: the state from the group's last poll."""

    def __init__(self, group: RemoteGroup, camera_id: str) -> None:
        self.group, self.camera_id = group, camera_id

    def state(self) -> dict:
        state = self.group.states.get(self.camera_id)
        if state is None or self.group.error:
            return {"connected": False, "last_frame_at": None, "fps": 0.0, "frames": 0, "reconnects": 0,
                    "last_error": self.group.error or "camera actor starting", "analysed": 0,
                    "analysis_error": None}
        return state


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
        actor = ray.remote(num_cpus=cpus_each(len(self.groups)), max_restarts=-1, max_task_retries=0,
                           runtime_env={"env_vars": STEADY_MALLOC})(CameraGroup)
        for group in self.groups:
            group.handle = actor.remote({c: self.config.cameras[c] for c in group.camera_ids}, self.config.storage,
                                        self.models)
        self._poller.start()

    def _stop_cameras(self) -> None:
        import ray

        self._polling.set()
        if self._poller.is_alive():
            self._poller.join(timeout=CALL_TIMEOUT + POLL_EVERY)
        stops = [(group, group.handle.stop.remote()) for group in self.groups if group.handle is not None]
        for group, stopped in stops:
            try:
                self._dispatch(ray.get(stopped, timeout=30))
            except (ray.exceptions.RayError, TimeoutError) as err:
                log.warning("cameras %s did not stop cleanly: %s", group.camera_ids, err)
            ray.kill(group.handle, no_restart=True)
            group.handle = None

    def _poll_forever(self) -> None:
        while not self._polling.wait(POLL_EVERY):
            self.poll()

    def poll(self) -> None:
        """Ask every actor at once for its news; an actor that does not answer (dead, restarting)
        shows its cameras as not connected, with the reason, until it does."""
        import ray

        calls = [(group, group.unanswered or group.handle.poll.remote()) for group in self.groups
                 if group.handle is not None]
        for group, call in calls:
            try:
                messages, group.states = ray.get(call, timeout=CALL_TIMEOUT)
                group.error, group.unanswered = None, None
            except (ray.exceptions.RayError, TimeoutError) as err:
                # A slow actor has taken its messages off its queue already: the same call is waited
                # on next time, so that they still come (a new call lost them). A dead one's are lost.
                group.unanswered = call if isinstance(err, TimeoutError) else None
                reason = (str(err).strip().splitlines() or [""])[0][:200]
                group.error = f"camera actor unavailable ({type(err).__name__}): {reason}"
                continue
            self._dispatch(messages)

    def _dispatch(self, messages: list[tuple[str, dict]]) -> None:
        """Each message to its listener; one that fails (MQTT's count query with the database
        away) is logged once per new problem and costs only its own message, not the poller."""
        for kind, body in messages:
            listener = getattr(self._listeners, kind)
            if listener is None:
                continue
            try:
                listener(body)  # (another kind's success does not make this kind's problem new again)
            except Exception as err:  # noqa: BLE001 - see above
                self._listener_problems.failed(f"{kind} listener: {type(err).__name__}: {err}")


def absolute_paths(config: SiteConfig) -> SiteConfig:
    """The config with file sources and substreams, an SQLite database and the snapshots folder
    made absolute."""
    cameras = {camera_id: with_absolute_files(camera) for camera_id, camera in config.cameras.items()}
    storage = config.storage.model_copy(update={"database": database_url(config.storage.database),
                                                "snapshots": str(Path(config.storage.snapshots).resolve())})
    return config.model_copy(update={"cameras": cameras, "storage": storage})


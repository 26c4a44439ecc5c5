"""The site runner: every camera of a SiteConfig in its own worker, one event store, one detector.

    site = Site(load_site_config("site.yaml"), Detector.load()).start()
    site.cameras()            # state of each camera, for the API and the page
    site.stop()               # people still in view are decided and recorded

The models load once and are shared by the cameras' threads (ONNX Runtime sessions are
thread-safe); each camera reads, reconnects and analyses on its own threads.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError

from maskwatch.faces import PERSON_LABELS
from maskwatch.runtime import STOP_LOGGER, TRIM_EVERY, trim_free_memory
from maskwatch.site.alerts import WebhookNotifier, WebhookRule, stop_together
from maskwatch.site.compliance import ComplianceMonitor, ComplianceRule
from maskwatch.site.config import CameraConfig, SiteConfig
from maskwatch.site.database_wait import DatabaseNotAnswering, DatabaseWait
from maskwatch.site.event_sink import EventSink, Listeners
from maskwatch.site.event_writer import EventWriter
from maskwatch.site.event_views import minute_utc
from maskwatch.site.events import EventStore
from maskwatch.site.full_disk import FULL_SWEEP_EVERY, disk_is_full
from maskwatch.site.hours import OpeningHours
from maskwatch.site.pause import PauseWatch
from maskwatch.site.stalls import StallWatch
from maskwatch.site.trend import bucket_start
from maskwatch.site.unclean_end import RunMarker
from maskwatch.video.camera_motion import CameraMotion
from maskwatch.video.cameras import CameraReader, CameraWorker, stop_workers
from maskwatch.video.motion import MotionDetector
from maskwatch.video.process import FrameProcessor
from maskwatch.video.sinks import LatestFrameSink
from maskwatch.video.sources import redact_source
from maskwatch.video.tracker import FaceTracker

log = logging.getLogger(__name__)
stop_log = logging.getLogger(STOP_LOGGER)  # a clean stop's lines: INFO, shown at the default level

RETENTION_EVERY = 3600.0  # seconds between retention sweeps (one also runs at start)
CAMERA_UP_EVERY = 1.0  # seconds between looks at the cameras' state for MQTT's <camera>/available


@dataclass
class SiteCamera:
    """One camera at run time: its settings, its worker and its newest frame."""

    camera_id: str
    config: CameraConfig
    worker: CameraWorker
    live: LatestFrameSink


class Site:
    def __init__(self, config: SiteConfig, detector) -> None:
        self.config = config
        storage = config.storage
        self.store = EventStore(storage.database, storage.snapshots, privacy=storage.privacy,
                                retention_days=storage.retention_days)
        self.writer = EventWriter(self.store)  # the cameras' people, stored off their threads
        self.reads = DatabaseWait("the events database")  # the API's reads, a few seconds each at most
        self.marker = RunMarker(self.store.url)  # a run that ends unclean is said at the next start
        self.hours = {camera_id: OpeningHours.parse(camera.hours, config.tz())
                      for camera_id, camera in config.cameras.items()}
        self.alerts = WebhookNotifier([
            WebhookRule(hook.url, hook.secret, labels=tuple(hook.labels), cameras=tuple(hook.cameras),
                        zones=tuple(hook.zones), cooldown=hook.cooldown, retries=hook.retries,
                        timeout=hook.timeout)
            for hook in config.alerts.webhooks], root=config.server.root_path, hours=self.hours)
        self.notifications = None  # apprise is imported only by a site that sends messages
        if config.alerts.notify:
            from maskwatch.site.notify import Notifier, NotifyRule

            self.notifications = Notifier(
                [NotifyRule(url, snapshot=target.snapshot, labels=tuple(target.labels), cameras=tuple(target.cameras),
                            zones=tuple(target.zones), cooldown=target.cooldown, retries=target.retries,
                            timeout=target.timeout)
                 for target in config.alerts.notify for url in target.urls],  # a thread per URL: each service on its own
                names={camera_id: camera.name for camera_id, camera in config.cameras.items()}, tz=config.tz(),
                snapshot_of=self.store.snapshot_path, hours=self.hours)
        senders = [sender for sender in (self.alerts, self.notifications) if sender is not None and sender.rules]
        self.reports = None  # scheduled reports (reports.py), on their own thread and queues
        if config.reports:
            from maskwatch.site.reports import ReportScheduler, ReportSender, reports_of

            reports = reports_of(config)
            names = {camera_id: camera.name for camera_id, camera in config.cameras.items()}
            self.reports = ReportScheduler(
                reports, self.store, ReportSender(reports, names=names, tz=config.tz()), names=names,
                zones_of={camera_id: list(camera.zones) for camera_id, camera in config.cameras.items()},
                tz=config.tz())
        self.mqtt = None
        if config.mqtt is not None:
            from maskwatch.site.mqtt import MqttPublisher
            from maskwatch.site.mqtt_record import PublishedPrefix

            self.mqtt = MqttPublisher(config.mqtt, cameras=config.cameras,
                                      names={camera_id: camera.name for camera_id, camera in config.cameras.items()},
                                      counts_of=self.today_counts,
                                      record=PublishedPrefix(self.store.engine, self.store.url),
                                      root_path=config.server.root_path)
        self.compliance = ComplianceMonitor(
            self.store, [ComplianceRule(rule.below, rule.minutes, rule.camera, rule.zone, rule.min_people,
                                        rule.cooldown) for rule in config.alerts.compliance],
            zones_of={camera_id: list(camera.zones) for camera_id, camera in config.cameras.items()},
            send=_fan_out([*(sender.alert for sender in senders), *([self.mqtt.compliance_alert] if self.mqtt else [])]),
            hours=self.hours)
        self.stored, self._stored_lock = 0, threading.Lock()  # people stored since the start, said at the stop
        self.unstored = 0  # people the stop could not store: its writer's, and under run --ray the actors'
        on_event = [self._count_stored, *(sender.notify for sender in senders),
                    *([self.mqtt.event_recorded] if self.mqtt else [])]
        self.cameras_by_id: dict[str, SiteCamera] = self._make_cameras(detector, Listeners(
            event=_fan_out(on_event), start=self.mqtt.person_started if self.mqtt else None,
            update=self.mqtt.person_updated if self.mqtt else None, in_view=self.mqtt.in_view if self.mqtt else None))
        self._stop = threading.Event()
        self._day = None  # the site's day MQTT's counts were last sent for
        self._started = False
        self._retention = threading.Thread(target=self._sweep, name="maskwatch-retention", daemon=True)
        self._camera_watch = threading.Thread(target=self._watch_cameras, name="maskwatch-mqtt-cameras", daemon=True)
        stalls = StallWatch({camera_id: camera.worker for camera_id, camera in self.cameras_by_id.items()})
        self._pause_watch = PauseWatch(min((camera.offline_after or camera.stall_timeout
                                            for camera in config.cameras.values()), default=0.0),
                                       each_look=lambda: (stalls.look(), self.writer.look()))

    def _make_cameras(self, detector, listeners: Listeners) -> dict[str, SiteCamera]:
        """Each camera as threads of this process, sharing `detector` (scale/fleet.py places
        them on Ray actors instead)."""
        cameras = {}
        for camera_id, camera in self.config.cameras.items():
            worker, live = camera_worker(camera_id, camera, detector, self.store, listeners,
                                         blur_live=self.config.storage.live_blurred, writer=self.writer)
            cameras[camera_id] = SiteCamera(camera_id, camera, worker, live)
        return cameras

    def start(self) -> Site:
        """Start every part; if one fails, what was started is stopped before the error goes on."""
        self._started = True
        try:
            self.marker.start()
            if not self._clock_doubted():
                self._retain("at the start")
            self.alerts.start()
            if self.notifications is not None:
                self.notifications.start()
            if self.mqtt is not None:
                # Nobody in view yet: a site that died (SIGKILL, a power cut) left its last counts
                # retained, and came back online still showing them at a camera that is down.
                for camera_id in self.config.cameras:
                    self.mqtt.in_view({"camera": camera_id, "counts": dict.fromkeys(PERSON_LABELS, 0)})
                    self.mqtt.camera_up(camera_id, False)  # until its first frame
                self.mqtt.start()
                self._new_day()
            self._start_cameras()
            self._pause_watch.start()
            self._retention.start()
            if self.mqtt is not None:
                self._camera_watch.start()
            self.compliance.start()
            if self.reports is not None:
                self.reports.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop whatever runs (a part never started is passed over); safe to call twice."""
        if self._stop.is_set():
            return
        self._stop.set()
        if self._started:  # said: the stop takes seconds, and a second Ctrl-C meanwhile loses people
            cameras = len(self.cameras_by_id)
            stop_log.info("stopping: the people in view at %d camera%s are stored, then the alerts and MQTT "
                        "messages still queued are sent", cameras, "s" * (cameras != 1))
        self._pause_watch.stop()
        self._stop_cameras()
        self.unstored += self.writer.close()  # STOP_WAIT at most for a write: a hung server held the stop as long as it hung
        self.compliance.stop()
        if self.reports is not None:
            self.reports.stop()
        stop_together([sender for sender in (self.alerts, self.notifications, self.reports and self.reports.sender)
                       if sender is not None])
        if self._camera_watch.is_alive():
            self._camera_watch.join(10)
        if self.mqtt is not None:
            self.mqtt.stop()
        if self._retention.is_alive():
            self._retention.join(10)
        self.store.close()
        if self._started:  # the stop's end: a log without it was cut short (docker's 10 s, a SIGKILL)
            stop_log.info("stopped: %d %s stored since the start%s", self.stored, "person" if self.stored == 1 else "people",
                          f"; {self.unstored} could not be stored" if self.unstored else "")
            self.marker.end()

    def _count_stored(self, event: dict) -> None:
        with self._stored_lock:
            self.stored += 1

    def _start_cameras(self) -> None:
        for camera in self.cameras_by_id.values():
            camera.worker.start()

    def _stop_cameras(self) -> None:
        stop_workers([camera.worker for camera in self.cameras_by_id.values()])

    def _sweep(self) -> None:
        """Once a minute, free memory back to the system (STEADY_MALLOC); hourly, the retention."""
        swept = (time.monotonic(), time.time())
        while not self._stop.wait(TRIM_EVERY):
            trim_free_memory()
            self._new_day()
            if time.monotonic() - swept[0] >= RETENTION_EVERY:
                swept = self._hourly_retention(*swept)

    def _hourly_retention(self, steady: float, wall: float) -> tuple[float, float]:
        """The hourly retention, the last one's at time.monotonic() `steady` and time.time() `wall`;
        this one's. After a clock set forward by over an hour since, it waits one more hour where
        it would delete every stored row, as at the start: a date mistyped a year ahead (`date -s`)
        deleted the whole history at the next sweep."""
        now = (time.monotonic(), time.time())
        step = (now[1] - wall) - (now[0] - steady)
        if not (step > RETENTION_EVERY and self._clock_doubted(f"after the clock was set {step:+.0f} s")):
            self._retain("this hour")
        return now

    def _watch_cameras(self) -> None:
        """Each camera's `connected`, as /v1/cameras, the page and Prometheus have it (no frame for
        `offline_after` seconds, however the stream was lost), to MQTT's <camera>/available when it changes."""
        while not self._stop.wait(CAMERA_UP_EVERY):
            for camera_id, camera in self.cameras_by_id.items():
                self.mqtt.camera_up(camera_id, bool(camera.worker.state()["connected"]))

    def _retain(self, when: str) -> None:
        """Retention; a database away a while or a full disk skips it until the next hour (at the
        start it took the site down with a traceback, after it said it was serving)."""
        try:
            self.store.enforce_retention()
        except Exception as err:  # noqa: BLE001  see above
            full = (" (or, while the disk refuses writes, at the next write it refuses, at most every "
                    f"{FULL_SWEEP_EVERY / 60:g} minutes)")
            log.warning("retention skipped %s (%s: %s); tried again in an hour%s", when, type(err).__name__,
                        str(err).splitlines()[0] if str(err) else "", full if disk_is_full(err) else "")

    def _clock_doubted(self, when: str = "at the start") -> bool:
        """Whether the retention `when` waits for the hourly sweep: every stored row is older than
        the window by this clock. A clock set ahead at boot (an RTC's garbage, before NTP pulls it
        back) deleted the whole history at the start; a site truly off that long loses it an hour later."""
        try:
            newest = self.store.newest_row()
        except SQLAlchemyError:
            return False  # the retention's own try says the database away
        now, days = time.time(), self.store.retention_days
        if newest is None or newest >= now - days * 86400:
            return False
        log.warning("retention %s postponed to the next hourly sweep: every stored row is older than "
                    "retention_days (%g) by this clock, the newest from %s and the clock at %s; a clock set wrong "
                    "would delete them all", when, days, minute_utc(newest), minute_utc(now))
        return True

    def _new_day(self) -> None:
        """At the start and within a minute of the site's midnight, MQTT's retained counts of today
        for every camera (they kept yesterday's until the day's first person was stored)."""
        day = bucket_start(time.time(), "day", self.config.tz())
        if self.mqtt is None or day == self._day:
            return
        sent = [self.mqtt.publish_counts(camera_id) for camera_id in self.config.cameras]
        if all(sent):  # the database away a moment: tried again at the next sweep
            self._day = day

    def today_counts(self, camera: str) -> dict | None:
        """Today's people on `camera` (since midnight in the site's timezone, as the chart's and
        the report's days), in total and per voted label, from the database; None while it cannot
        be read (the cameras' own state is wanted most during an outage)."""
        try:
            return self.store.totals(camera, since=bucket_start(time.time(), "day", self.config.tz()).timestamp())
        except SQLAlchemyError:
            return None

    def retired_cameras(self) -> list[str]:
        """The cameras not running here (removed from the file, or `enabled: false`) whose people or
        counts the database still holds, until retention deletes them: their history is read as
        a running camera's is."""
        return [camera for camera in self.store.stored_cameras() if camera not in self.cameras_by_id]

    def cameras(self, only: list[str] | None = None) -> list[dict]:
        """Each camera (of `only`, when given): id, name, zones, stream state, and today's people
        (the site's day) from the database."""
        return [{"id": camera_id, "name": camera.config.name, "source": redact_source(camera.config.source),
                 "detect_source": redact_source(camera.config.detect_source) if camera.config.detect_source else None,
                 "zones": list(camera.config.zones), "fps_target": camera.config.fps, **camera.worker.state(),
                 "today": self._today_within_wait(camera_id)}
                for camera_id, camera in self.cameras_by_id.items() if only is None or camera_id in only]

    def _today_within_wait(self, camera: str) -> dict | None:
        """today_counts as the API reads it (self.reads): None also while the database does not answer."""
        try:
            return self.reads.call(self.today_counts, camera)
        except DatabaseNotAnswering:
            return None


def camera_worker(camera_id: str, camera: CameraConfig, detector, store: EventStore,
                  listeners: Listeners = Listeners(), blur_live: bool = True,
                  writer: EventWriter | None = None) -> tuple[CameraWorker, LatestFrameSink]:
    """One camera's reader, frame loop and sinks (its newest frame; its events into `store`, by
    the site's `writer`, or one of its own), not started yet: the same parts whether the camera
    runs in the site's process or an actor."""
    reader = CameraReader(camera.detect_source or camera.source, stall_timeout=camera.stall_timeout,
                          retry_max=camera.retry_max, name=camera_id, decode_on_request=True,
                          offline_after=camera.offline_after, poll_interval=1.0 / camera.fps)
    motion = camera.motion.settings()
    if camera.upscale is not None:
        detector = detector.rescaled(camera.upscale)
    processor = FrameProcessor(detector, FaceTracker(), camera.detect_every, camera.min_face,
                               motion=MotionDetector(motion) if motion is not None else None,
                               camera_motion=CameraMotion() if camera.moving else None)
    live = LatestFrameSink(blur=blur_live)
    events = EventSink(store, camera_id, camera.zones, listeners=listeners, writer=writer)
    return CameraWorker(camera_id, reader, processor, [live, events], fps=camera.fps), live


def _fan_out(listeners: list):
    """One callback calling each listener in turn (None when there are none)."""
    if not listeners:
        return None

    def call(value) -> None:
        for listener in listeners:
            listener(value)

    return call

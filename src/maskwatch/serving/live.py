"""The live view: a background thread that watches one source and keeps what the page shows."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import replace

import cv2

from maskwatch.render import FaceAnnotator
from maskwatch.video.process import FrameProcessor
from maskwatch.video.sources import read_frames
from maskwatch.video.tracker import FaceTracker, compliance


class LiveMonitor:
    """Reads `source` (video file, stream URL or webcam:N) through the detector and tracker.

    Keeps the latest annotated JPEG, the running counts of people (one vote per track) and a
    history of compliance per `bucket_seconds` over the last `history_minutes`. A video file
    is looped so a demo never runs dry; a dead stream is retried after a pause.
    """

    def __init__(self, source: str, detector, blur: bool = False, bucket_seconds: int = 10,
                 history_minutes: int = 10, loop: bool = True) -> None:
        self.source, self.detector, self.loop = source, detector, loop
        self.annotator = FaceAnnotator(blur=blur)
        self.bucket_seconds = bucket_seconds
        self.history: deque[dict] = deque(maxlen=history_minutes * 60 // bucket_seconds)
        self.lock = threading.Lock()
        self.jpeg: bytes | None = None
        self.frames = 0
        self.errors: deque[str] = deque(maxlen=20)
        self.tracker = FaceTracker()
        self.seen = compliance([])  # people whose track ended (the tracker forgets them once taken)
        self.processor = FrameProcessor(detector, self.tracker, detect_every=1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="maskwatch-live", daemon=True)

    def start(self) -> LiveMonitor:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        started = time.monotonic()
        while not self._stop.is_set():
            errors: list[str] = []
            for frame in read_frames(self.source, errors):
                if self._stop.is_set():
                    return
                # The tracker's clock is the monitor's, not the source's: a looped file restarts at 0.
                frame = replace(frame, timestamp=time.monotonic() - started)
                now = frame.timestamp
                with self.lock:
                    faces, _ = self.processor(frame)
                    self._record(now)
                    self.frames += 1
                ok, encoded = cv2.imencode(".jpg", self.annotator.annotate(frame.image, faces))
                if ok:
                    with self.lock:
                        self.jpeg = encoded.tobytes()
            self.errors.extend(errors)
            if not self.loop:
                return
            self._stop.wait(1.0)

    def _record(self, now: float) -> None:
        bucket = int(now // self.bucket_seconds) * self.bucket_seconds
        for key, n in compliance(self.tracker.take_finished()).items():
            self.seen[key] += n
        row = {"t": bucket, **compliance(self.tracker.in_view())}
        if self.history and self.history[-1]["t"] == bucket:
            self.history[-1] = row
        else:
            self.history.append(row)

    def stats(self) -> dict:
        with self.lock:
            in_view = compliance(self.tracker.people())
            seen = {key: self.seen[key] + in_view[key] for key in self.seen}
            return {"source": self.source, "frames": self.frames, "people_seen": seen["people"],
                    "compliant": seen["compliant"], "non_compliant": seen["non_compliant"],
                    "unassessable": seen["unassessable"],
                    "in_view": self.history[-1] if self.history else None,
                    "history": list(self.history), "errors": list(self.errors)}

    def latest_jpeg(self) -> bytes | None:
        with self.lock:
            return self.jpeg

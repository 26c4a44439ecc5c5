"""Cameras that never give up: each reads its stream in its own thread and reconnects forever.

A CameraReader owns one source. It keeps only the latest frame (a slow analysis never makes
a stream lag behind), reopens a stream that dropped or sent no frame within `stall_timeout`
seconds, waiting 1, 2, 4 ... up to `retry_max` seconds between tries, for as long as it runs,
and counts the camera as down once no frame came for `offline_after` seconds (stall_timeout
by default; longer for a mobile link that stalls). A video file is played at its own frame rate and looped, for demos.
A snapshot URL (an http(s):// one that answers each GET with one picture) is asked again every
`poll_interval` seconds, each picture a frame.
Each reader has its own thread and its own timeouts, so one broken camera never slows another.

With decode_on_request, the reader grabs every frame the stream sends (it must: H.264 frames
depend on the ones before) but converts one to a BGR image only when its consumer asked for
one with request(): a camera analysed at 2 FPS of a 25 fps stream converts 2 frames a second,
not 25 (OpenCV's FFmpeg backend decodes in grab() and scales and converts colours in retrieve()).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable, Iterator

import cv2
import numpy as np

from maskwatch.runtime import OnTheWall, ProblemLog, boot_clock
from maskwatch.video.loop import analyse, end_tracks, finish
from maskwatch.video.night import GreyWatch, grey_words
from maskwatch.video.rtsp_probe import stream_refusal
from maskwatch.video.snapshot_url import NoPicture, fetch_picture
from maskwatch.video.sources import (STREAM_PREFIXES, UNKNOWN_FPS, Frame, SourceError, deep_grey, header_frame_count,
                                     host_port, missing_video_file, most_bad_frames, plausible_fps, redact_source, shown_as,
                                     stream_address, unopened_file, unresolved_host)

log = logging.getLogger(__name__)

# FFmpeg's options for every capture (OpenCV reads them once per open): RTSP over TCP (a lost
# UDP packet is a broken frame; a closed TCP connection is a clear end), and a short probe so a
# low-FPS stream opens in under a second instead of waiting out the open timeout. Set the
# variable yourself to override.
FFMPEG_OPTIONS = "rtsp_transport;tcp|analyzeduration;1000000|probesize;100000"

# A camera's rate: the frames that arrived over the last RATE_WINDOW seconds, over their span or
# RATE_LEAST_SPAN seconds, whichever is longer. The frames FFmpeg holds while it opens a stream come
# at once: two of a 1 frame/s stream 1 ms apart read 1,000 frames/s until the next one.
RATE_WINDOW = 5.0
RATE_LEAST_SPAN = 1.0
# An open that took this share of its timeout (stall_timeout) or more ran out of time.
OPEN_SLOW_SHARE = 0.9


@dataclass(frozen=True)
class CameraState:
    """What the API and the page show about one camera (times are Unix seconds)."""

    connected: bool  # a frame came within offline_after: a link lost and reopened sooner is no outage
    last_frame_at: float | None
    fps: float  # frames received per second, over the last few seconds
    frames: int  # received since start
    reconnects: int  # tries to open it again: after a loss, and each failed one
    last_error: str | None
    # Since when it counts as down: its last frame's time and offline_after, or its start where
    # none came (the reader's own times, not a second clock); None while connected.
    offline_since: float | None = None

    def to_dict(self) -> dict:
        return {"connected": self.connected, "last_frame_at": self.last_frame_at, "offline_since": self.offline_since,
                "fps": round(self.fps, 2), "frames": self.frames, "reconnects": self.reconnects,
                "last_error": self.last_error}


def retry_delay(failures: int, first: float, most: float) -> float:
    """Seconds before the next try after `failures` in a row: first, twice that, ... up to most.
    The exponent is capped: at the 1,025th failure in a row (3-4 hours of outage at the defaults)
    2 ** 1024 overflowed a float and the reader thread died for good."""
    return min(most, first * 2.0 ** min(failures - 1, 30))


class CameraReader:
    """Reads `source` (stream URL, video file or webcam:N) in a thread, forever, until stopped.

    latest() -> (sequence number, BGR frame or None): the newest frame; the sequence number
    grows by one per frame converted, so a consumer can tell a new frame from one it has seen.
    decode_on_request: convert only the first frame grabbed after each request() (see above);
    otherwise every frame received is converted. `decoded` counts the frames converted.
    """

    def __init__(self, source: str, stall_timeout: float = 10.0, retry_max: float = 10.0,
                 retry_first: float = 1.0, name: str = "camera", decode_on_request: bool = False,
                 offline_after: float | None = None, poll_interval: float = 0.2) -> None:
        if stall_timeout <= 0 or retry_max <= 0 or retry_first <= 0 or poll_interval <= 0:
            raise ValueError("stall_timeout, retry_max, retry_first and poll_interval must be positive seconds")
        if offline_after is not None and offline_after < stall_timeout:
            raise ValueError(f"offline_after ({offline_after:g} s) must be at least stall_timeout ({stall_timeout:g} s)")
        self.source, self.name = source, name
        self.stall_timeout, self.retry_max, self.retry_first = stall_timeout, retry_max, retry_first
        # Seconds without a frame before the camera counts as down and its people as gone; a
        # silent stream is reopened after stall_timeout all the same (a bus's 4G link back with a
        # new address leaves the old connection dead, and OpenCV waits out its read timeouts).
        self._offline_after = offline_after or stall_timeout
        self.is_file = not source.startswith(STREAM_PREFIXES) and not source.startswith("webcam:")
        self.is_web = source.lower().startswith(("http://", "https://"))  # MJPEG, or a snapshot URL
        # A snapshot URL's GET gives one picture and ends: it was reopened as a dropped stream, a
        # second apart (retry_first) whatever the camera's fps, its reconnects counting each picture
        # and "stream ended or stalled" its last_error for good. Asked every poll_interval instead
        # (a site's camera: 1 / fps), as Home Assistant's generic camera asks its still image URL.
        self.poll_interval = poll_interval
        self.snapshot = False  # seen to answer its last GET with one picture
        self._lock = threading.Lock()
        self._frame: np.ndarray | None = None
        self._sequence = 0
        self._received = 0
        self.decoded = 0
        self.decode_on_request = decode_on_request
        self._wanted = threading.Event()
        self._last_frame_at: float | None = None  # monotonic, for the stall check
        self._last_frame_said: float | None = None  # boot_clock(), for state()'s last frame
        self._started_at: float | None = None  # boot_clock(), when start() ran: down since then until a first frame
        self._wall = OnTheWall()  # state()'s times on the wall clock as it reads now
        self._arrivals: deque[float] = deque(maxlen=50)
        self._reconnects = 0
        self._last_error: str | None = None
        self.stream_fps: float | None = None  # the frame rate the stream says it sends (None: none said)
        self._down = False  # said in the log to be without frames, not yet said to be back
        # Times it counted as down (no frame for offline_after), its start's wait for a first frame
        # included, and times frames came again after a loss (a drop, a stall): live_frames tells
        # `detect`'s outages from its drops by them, as CameraWorker does by its wait.
        self.outages = self.returns = 0
        self._lost: str | None = None  # why the stream was lost, while no frame came since
        # The camera's refusal (rtsp_probe), kept for the outage once told: each ask with a wrong
        # password is one more failed login, and cameras lock a user out after a few (Hikvision: 5-7).
        self._refusal: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"maskwatch-read-{name}", daemon=True)

    def start(self) -> CameraReader:
        self._started_at = boot_clock()
        self._thread.start()
        return self

    def stopping(self) -> None:
        """Tell the thread to end, without waiting for it (see CameraWorker.stopping)."""
        self._stop.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread.ident is not None:  # started (a site whose start failed stops it anyway)
            self._thread.join(timeout)

    def request(self) -> None:
        """Ask for the next frame grabbed to be converted (with decode_on_request; else a no-op)."""
        self._wanted.set()

    def latest(self) -> tuple[int, np.ndarray | None]:
        with self._lock:
            return self._sequence, self._frame

    def state(self) -> CameraState:
        now = time.monotonic()
        with self._lock:
            fresh = self._last_frame_at is not None and now - self._last_frame_at <= self.offline_after
            recent = [t for t in self._arrivals if now - t <= RATE_WINDOW]
            fps = (len(recent) - 1) / max(recent[-1] - recent[0], RATE_LEAST_SPAN) if len(recent) > 1 else 0.0
            connected = fresh and not self._stop.is_set()
            last_frame = None if self._last_frame_said is None else self._wall(self._last_frame_said)
            if connected:
                down_since = None
            elif last_frame is None:
                down_since = None if self._started_at is None else self._wall(self._started_at)
            else:  # (a reader stopped within offline_after of its last frame: down from now)
                down_since = min(last_frame + self.offline_after, self._wall(boot_clock()))
            return CameraState(connected=connected, last_frame_at=last_frame, offline_since=down_since,
                               fps=fps if fresh else 0.0, frames=self._received, reconnects=self._reconnects,
                               last_error=self._last_error)

    def wait_for_frame(self, after: int, timeout: float) -> int:
        """Block until a frame newer than sequence number `after` arrives (or timeout); the newest number."""
        deadline = time.monotonic() + timeout
        while not self._stop.is_set():
            sequence, _ = self.latest()
            if sequence > after or time.monotonic() >= deadline:
                return sequence
            self._stop.wait(min(0.05, max(0.0, deadline - time.monotonic())))
        return self.latest()[0]

    # The reading thread -------------------------------------------------------------------

    def _open(self) -> cv2.VideoCapture:
        os.environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS", FFMPEG_OPTIONS)
        if self.source.startswith("webcam:"):
            return cv2.VideoCapture(int(self.source[7:]))
        # Measured (benchmarks/stream_timeouts.py): OpenCV gives up on a stalled stream after about
        # three read timeouts, so a third of stall_timeout drops it after about stall_timeout.
        # One decoding thread: a site's cameras decode side by side, and FFmpeg's frame threads
        # (one per core by default) cost 0.985-1.085 CPU ms a 640x480 H.264 frame against
        # 1.133-1.187 with two (the quiet store's RTSP stream; BENCHMARKS.md, section 13).
        open_ms, read_ms = int(self.stall_timeout * 1000), max(1, int(self.stall_timeout * 1000 / 3))
        return cv2.VideoCapture(self.source, cv2.CAP_FFMPEG,
                                [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, open_ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, read_ms,
                                 cv2.CAP_PROP_N_THREADS, 1])

    def _unreachable(self) -> str | None:
        """Why a stream's host takes no connection (refused, no route, silent) or, for RTSP, does
        not answer an OPTIONS request, or None. Asked before OpenCV's open, which holds one lock
        for every capture of the process while it waits: a dead camera's open held up every
        other camera's (re)connect by up to `stall_timeout` on each retry."""
        address = stream_address(self.source)
        if address is None:
            return None
        where = host_port(address)
        try:
            with socket.create_connection(address, timeout=min(5.0, self.stall_timeout)) as connection:
                if self.source.lower().startswith("rtsp://"):  # a server that takes connections and says nothing
                    try:
                        connection.sendall(f"OPTIONS rtsp://{where}/ RTSP/1.0\r\nCSeq: 1\r\n"
                                           "User-Agent: maskwatch\r\n\r\n".encode())
                        answered = bool(connection.recv(1))
                    except ConnectionError as err:  # reached: "cannot reach" sent a wrong port's owner to the network
                        answered, why = False, f" ({err.strerror or err})"
                    else:
                        why = ""
                    if not answered:
                        return f"{where} closed the connection without an RTSP answer{why}: is it the camera's RTSP port?"
        except socket.gaierror:
            return None  # a name that does not resolve (or a URL read wrongly): FFmpeg's open is tried, then said (_run)
        except UnicodeError:  # cam..local, a label over 63 characters: the thread died, the camera with it
            return f"{where} is not a valid host name"
        except TimeoutError:
            return f"{where} does not answer"
        except OSError as err:
            return f"cannot reach {where} ({err.strerror or err})"
        return None

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            asked, capture, refused_now = time.monotonic(), None, False
            if self.snapshot:
                error = self._next_picture()
                if error is None:
                    failures = 0
                    self._stop.wait(max(0.0, asked + self.poll_interval - time.monotonic()))
                    continue
            else:
                error = self._unreachable()
                asked = time.monotonic()
                capture = self._open() if error is None else None
            try:
                if capture is None:
                    pass
                elif capture.isOpened():
                    frames = self._read_until_lost(capture)
                    got_frames = frames > 0
                    if got_frames:
                        failures = 0
                    if self.is_file and got_frames:
                        continue  # the end of a file: loop it at once
                    # A snapshot URL: one picture, then the end (or none, where FFmpeg is not told its
                    # length); its pictures are fetched from now on (_next_picture), not opened.
                    if self.is_web and (frames == 1 or not frames and self._next_picture() is None):
                        failures, self.snapshot, self.stream_fps = 0, True, None
                        self._stop.wait(max(0.0, asked + self.poll_interval - time.monotonic()))
                        continue
                    error = "stream ended or stalled" if got_frames else "opened but sent no frame"
                else:  # the camera's own refusal (a wrong path, user or password) where it gives one
                    slow = self._too_slow(time.monotonic() - asked)
                    if self._refusal is None:
                        self._refusal = stream_refusal(self.source, min(5.0, self.stall_timeout))
                        refused_now = self._refusal is not None
                    error = (self._refusal or missing_video_file(self.source) or unopened_file(self.source)
                             or unresolved_host(self.source) or slow or "cannot open")
            finally:
                if capture is not None:
                    capture.release()
            if self._stop.is_set():
                break
            failures += 1
            delay = retry_delay(failures, self.retry_first, self.retry_max)
            self._lost = self._lost or error
            self._say_down(error, refused_now)
            with self._lock:  # still connected, as state() says, until offline_after passes without a frame
                self._last_error = f"{error}; retrying in {delay:g} s"
                self._reconnects += 1
            self._wait(delay, error)

    @property
    def offline_after(self) -> float:
        """Seconds without a frame before the camera counts as down and its people as gone. A
        snapshot URL's next picture is asked poll_interval after the last was and may take
        stall_timeout to come whole: one asked less often than offline_after (fps: 0.1 with the
        default 10 s) counted as down, its people as gone, between any two pictures."""
        if self.snapshot:
            return max(self._offline_after, self.poll_interval + self.stall_timeout)
        return self._offline_after

    def _too_slow(self, took: float) -> str | None:
        """Why a stream whose host answered did not open, where its open used up OpenCV's open
        timeout (stall_timeout): an RTSP open takes four round trips and a second of frames, 5 s
        over a 4G link of 400 ms each way, and it said only `cannot open`, for ever. A camera that
        answers OPTIONS and hangs reads the same here: the two cannot be told apart by the clock."""
        if stream_address(self.source) is None or took < OPEN_SLOW_SHARE * self.stall_timeout:
            return None
        if self.is_web:  # an RTSP open's round trips said of it
            return (f"the camera took the connection and sent nothing within stall_timeout ({self.stall_timeout:g} s): "
                    "it may serve one viewer at a time (an ESP32-CAM's stream: is another app or browser watching "
                    "it?), hang, or be behind a slow link (a longer stall_timeout)")
        return (f"the stream did not open within stall_timeout ({self.stall_timeout:g} s), though its host answers: "
                "a slow link needs a longer stall_timeout (an RTSP open takes 4 round trips and a second of "
                "frames), or the camera hangs")

    def _offline(self) -> bool:
        """No frame for offline_after seconds, or none yet: the camera is down, as state() says."""
        return self._last_frame_at is None or time.monotonic() - self._last_frame_at >= self.offline_after

    def _say_down(self, error: str, refused_now: bool = False) -> None:
        """The log's line for an outage, once, when the camera counts as down (a link dropped and
        reopened within offline_after is no outage: a bus's 4G wrote two lines at every drop), and
        the camera's refusal (its 401) met in it."""
        if (self._down and not refused_now) or not self._offline():
            return
        log.warning("%s (%s): %s; %sretrying, at most %g s apart", self.name, redact_source(self.source),
                    error, "still " if self._down else "", self.retry_max)
        self.outages += not self._down
        self._down = True

    def _wait(self, delay: float, error: str) -> None:
        """The wait before the next try; an outage not said yet is said when offline_after passes
        within it, not at a later try (up to retry_max later)."""
        until = time.monotonic() + delay
        if not self._down and self._last_frame_at is not None:
            down_in = self._last_frame_at + self.offline_after - time.monotonic()
            if down_in < delay:
                if self._stop.wait(max(0.0, down_in)):
                    return
                self._say_down(error)
        self._stop.wait(max(0.0, until - time.monotonic()))

    def _next_picture(self) -> str | None:
        """Fetch a snapshot URL's next picture as the newest frame; None, or why none came. An
        answer that is no picture (a stream after all) sends the next try to OpenCV's open."""
        try:
            image = fetch_picture(self.source, self.stall_timeout)
        except NoPicture as err:
            if err.stream:
                self.snapshot = False
            return str(err)
        self._wanted.clear()
        self._arrived(image)
        return None

    def _reported_fps(self, capture: cv2.VideoCapture) -> float | None:
        """The frame rate the stream says it sends, or None. MJPEG over HTTP says none (its parts
        carry no times): FFmpeg's default of 25 was said by `run --probe` of a 10 fps ESP32-CAM."""
        if self.is_web and int(capture.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little") == b"MJPG":
            return None
        return plausible_fps(capture.get(cv2.CAP_PROP_FPS))

    def _read_until_lost(self, capture: cv2.VideoCapture) -> int:
        """Read frames until the stream fails or the reader stops; the frames that came."""
        shown = shown_as(self.source, capture) if self.is_file else None  # a mirrored file, as detect reads it
        deep = deep_grey(capture) if self.is_file else None  # a 16-bit grey file, as detect reads it
        self.stream_fps = self._reported_fps(capture)
        pace = 1.0 / (self.stream_fps or UNKNOWN_FPS) if self.is_file else 0.0
        frames = 0
        next_at = time.monotonic()
        # A file is read past a stretch of frames that do not decode (its start cut badly: the
        # camera showed its first frame, reopened at once, for ever), to its header's count.
        count = (header_frame_count(capture) or 0) if self.is_file else 0  # none where its rate is none, as detect's
        most_bad = most_bad_frames(self.stream_fps or UNKNOWN_FPS)
        position = bad = 0
        while not self._stop.is_set():
            position += 1
            if not capture.grab():
                bad += 1
                if not count or position >= count or bad > most_bad:
                    return frames
                continue
            bad = 0
            image = None
            if not self.decode_on_request or self._wanted.is_set():
                ok, image = capture.retrieve()
                if ok and deep is not None and image is not None:
                    image = deep(image)
                if not ok or image is None or image.ndim != 3:
                    return frames
                image = shown(image) if shown else image
                self._wanted.clear()
            frames += 1
            now = self._arrived(image)
            if pace:
                next_at = max(next_at + pace, now - pace)
                self._stop.wait(max(0.0, next_at - time.monotonic()))
        return frames

    def _arrived(self, image: np.ndarray | None) -> float:
        """A frame came (converted to `image`, or None where it was not asked for): the newest, and
        the end of an outage said; the time it came (time.monotonic)."""
        if self._lost is not None:
            if self._down:
                log.warning("%s (%s): frames again", self.name, redact_source(self.source))
            else:  # reopened before it counted as offline: shown with MASKWATCH_LOG_LEVEL=INFO
                log.info("%s (%s): frames again within offline_after (%g s) after: %s", self.name,
                         redact_source(self.source), self.offline_after, self._lost)
            self._down, self._lost, self._refusal = False, None, None
            self.returns += 1
        now = time.monotonic()
        with self._lock:
            if image is not None:
                self._frame = image
                self._sequence += 1
                self.decoded += 1
            self._received += 1
            self._last_frame_at, self._last_frame_said = now, boot_clock()
            self._arrivals.append(now)
            self._last_error = None
        return now


def stop_workers(workers: list[CameraWorker]) -> None:
    """Stop cameras together: every one told first, so that their waits (an open, a read
    timeout) run out at once; every camera's people in view stored next; the readers joined
    last (one stuck in OpenCV's open held the later cameras' people past docker stop's 10 s)."""
    for worker in workers:
        worker.stopping()
    for worker in workers:
        worker.hand_out()
    for worker in workers:
        worker.reader.stop()


def live_frames(source: str, errors: list[str] | None = None, name: str = "stream",
                stall_timeout: float = 10.0, retry_max: float = 10.0,
                on_lost: Callable[[], None] | None = None) -> Iterator[Frame]:
    """A stream's or webcam's frames for a loop that runs until stopped (`detect URL`), read by
    the CameraReader a site's cameras use: once the source has sent a frame, a lost stream is
    reopened forever; SourceError if no frame comes within `stall_timeout` seconds of the start
    (a wrong URL, a dead camera, a bad password).

    Only the newest frame is kept: when analysis is slower than the stream, frames are skipped,
    not queued. Timestamps are seconds since the start. A loss is treated as a site's camera
    treats it (CameraWorker), with its default offline_after, `stall_timeout`: a stream back
    within it keeps the people in view (the same person is one person; the tracker does not count
    them seen over the gap); once no frame came for that long, on_lost() is called, once, before
    the next frame (a loop ends its tracks there: nobody is carried over an outage). Each loss is
    noted in `errors`, saying which of the two it was.
    """
    errors = errors if errors is not None else []
    reader = CameraReader(source, stall_timeout=stall_timeout, retry_max=retry_max, name=name,
                          decode_on_request=True).start()
    started = time.monotonic()
    try:
        reader.request()
        seen = reader.wait_for_frame(0, timeout=stall_timeout)
        if seen == 0:
            why = reader.state().last_error or "cannot open"
            raise SourceError(f"{redact_source(source)}: no frame within {stall_timeout:g} s ({why.split(';')[0]})")
        index, returns, outages = 0, reader.returns, reader.outages
        while True:
            seen, image = reader.latest()
            yield Frame(index, time.monotonic() - started, image, f"{name}-{index:06d}")
            index += 1
            reader.request()
            gone = False  # the people in view ended for this loss
            # No frame within offline_after of asking (a site's camera's own wait), or the reader
            # counted the camera down while we were busy with the frame before: an outage.
            while reader.wait_for_frame(seen, timeout=reader.offline_after) == seen or (
                    reader.outages > outages and not gone):
                if not gone:
                    errors.append(f"{name}: stream lost after frame {index - 1}, no frame for "
                                  f"{reader.offline_after:g} s: the people in view counted as gone; reconnecting")
                    gone = True
                    if on_lost is not None:
                        on_lost()
            # (a frame the stream sent before it was lost may come first: counted as before the loss)
            if not gone and reader.returns > returns:
                errors.append(f"{name}: stream lost after frame {index - 1} and back within "
                              f"{reader.offline_after:g} s: the people in view kept")
            returns, outages = reader.returns, reader.outages
    finally:
        reader.stop()


class CameraWorker:
    """Analyses one camera's newest frames at up to `fps`, in its own thread, into its sinks.

    Frames are numbered by analysis (so detect_every counts analysed frames) and stamped with
    Unix time that advances steadily (so events carry real times; see _stamp). When no frame comes
    for the reader's offline_after, the tracks end: the people in view are decided and handed to
    the sinks, not carried over; a stream reopened sooner keeps them (the same people).
    Each frame runs the loop body every loop shares (video/loop.py): sinks with a
    write_people(tracks) method get each decided person once; sinks with a start_people(tracks)
    method hear first of each person as they come into view.
    """

    def __init__(self, camera_id: str, reader: CameraReader, processor, sinks: list, fps: float) -> None:
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.camera_id, self.reader, self.processor, self.sinks = camera_id, reader, processor, sinks
        self.interval = 1.0 / fps
        self.analysed = 0
        # (analysed, detected), replaced whole after each frame: state() read them one at a time
        # and could see a frame's detection before its count (detected 47, analysed 46)
        self._counts = (0, getattr(processor, "detections", None))
        self.problems = ProblemLog(log, f"camera {camera_id}: analysing a frame failed",
                                   f"camera {camera_id}: frames analysed again")
        # Frames are stamped in Unix seconds (events carry real times) that advance as the
        # monotonic clock does; see _stamp for a wall clock that is set.
        self._epoch = time.time() - time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"maskwatch-analyse-{camera_id}", daemon=True)
        self._handed_out = False
        self._grey = GreyWatch()  # whether the frames are grey, turned once they stay so (see _say_grey)
        self.busy_since: float | None = None  # time.monotonic() its step began, while one runs (site/stalls.py)

    def start(self) -> CameraWorker:
        self.reader.start()
        self._thread.start()
        return self

    def stopping(self) -> None:
        """Tell the threads to end, without waiting: a site says it to every camera before it
        waits for any (one at a time, eight mute cameras took 80 s to stop)."""
        self._stop.set()
        self.reader.stopping()

    def stop(self) -> None:
        """Stop reading and analysing; people still in view are decided and handed out."""
        self.stopping()
        self.hand_out()
        self.reader.stop()

    def hand_out(self) -> None:
        """After stopping(): the analysis ended and the people still in view decided and handed
        out, without waiting for the reader (one stuck in OpenCV's open held the hand-out, and a
        site's other cameras', past docker stop's 10 s). A sink failing then (a file sink's full disk)
        is logged, not raised: the site's other cameras stop too."""
        if self._thread.ident is None or self._handed_out:  # never started: nobody was seen
            return
        self._handed_out = True
        self._thread.join(timeout=10)
        try:
            # ended=False: the camera stopped, its view did not end as a clip's does (a stop just
            # after a stall or a start stored faces seen once, which the tracker counts as no one)
            finish(self.processor, self.sinks, ended=False)
        except Exception as err:  # noqa: BLE001 - see above
            # (an EventSink hands its people to the site's writer, which says what it could not store)
            log.error("camera %s: handing out the people in view at the stop failed: %s: %s",
                      self.camera_id, type(err).__name__, str(err).splitlines()[0] if str(err) else "")

    def state(self) -> dict:
        analysed, detected = self._counts
        # grey_frames: as the log's last turn said it (GreyWatch: a dusk flicker does not flip it)
        return {**self.reader.state().to_dict(), "analysed": analysed, "detected": detected,
                "analysis_error": self._storing_problem() or self.problems.last, "grey_frames": self._grey.grey,
                **self._storing()}

    def _storing(self) -> dict:
        """People waiting to be stored and dropped unstored (site/event_writer.py), 0 without an event sink."""
        counts = {"people_waiting": 0, "people_dropped": 0}
        for sink in self.sinks:
            if (storing := getattr(sink, "storing", None)) is not None:
                counts = {key: counts[key] + value for key, value in storing().items()}
        return counts

    def _storing_problem(self) -> str | None:
        """Why a sink holds people it could not store yet (the database away): said for as long
        as they wait, not only at the frame that failed (it read null between hand-outs)."""
        return next((problem for sink in self.sinks if (problem := getattr(sink, "store_problem", None))), None)

    def _run(self) -> None:
        seen = 0
        while not self._stop.is_set():
            started = time.monotonic()
            self.reader.request()
            sequence = self.reader.wait_for_frame(seen, timeout=self.reader.offline_after)
            if self._stop.is_set():
                break
            if sequence == seen:  # nothing new within offline_after: whoever was in view has left it
                self._guarded(end_tracks, self.processor, self.sinks)
                continue
            seen, image = self.reader.latest()
            frame = Frame(self.analysed, self._stamp(), image, f"{self.camera_id}-{self.analysed:06d}")
            self._guarded(analyse, self.processor, frame, self.sinks)
            self._say_grey(getattr(self.processor, "grey_reading", None), time.monotonic())
            self.analysed += 1
            self._counts = (self.analysed, getattr(self.processor, "detections", None))
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))

    def _say_grey(self, grey: bool | None, now: float) -> None:
        """Log when the analysed frames turn grey (an infrared camera at night) and colour again:
        the night model judges their faces, less sure than in colour, and nothing else said so. A turn is
        said once it has held for GREY_HOLD_S (a dusk flicker logged a line at every frame). Both turns
        are WARNINGs: at the default level an INFO `colour frames again` was never shown, and the log
        of a night camera said its frames turned grey each evening and never turned back."""
        if not self._grey.seen(grey, now):
            return
        if grey:
            log.warning("camera %s: grey frames (infrared): %s", self.camera_id, grey_words(self.processor))
        else:
            log.warning("camera %s: colour frames again", self.camera_id)

    def _stamp(self) -> float:
        """This frame's time: the wall clock, advancing as the monotonic clock does. A wall clock
        set by more than 2 s (NTP after a boot, a clock set back) is followed at once, the tracks
        ended first: the tracker counts seconds, and times from before the step and after it
        cannot be compared (set back, lost tracks lived on for as long as it went back; set
        forward, a person's stay grew by the step)."""
        wall, steady = time.time(), time.monotonic()
        if abs(wall - (self._epoch + steady)) > 2.0:
            self._guarded(end_tracks, self.processor, self.sinks)
            self._epoch = wall - steady
        return self._epoch + steady

    def _guarded(self, step, *args) -> None:
        """One step of the loop; an error is reported (state's analysis_error, the log once per new
        problem), never the end of the camera: one bad frame or sink must not stop it."""
        self.busy_since = time.monotonic()
        try:
            step(*args)
            self.problems.ok()  # (people waiting for the database are the site's writer's to say)
        except Exception as err:  # noqa: BLE001 - see above
            self.problems.failed(f"{type(err).__name__}: {err}")
        finally:
            self.busy_since = None

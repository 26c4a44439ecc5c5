"""Where a processed frame goes: a Sink takes each frame with its faces, and is closed once.

Sinks are small and independent (JSON lines, annotated media, a callback, later an events
store or the live view), so a loop writes every frame to a list of them and knows none.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import IO, Callable, Protocol

import cv2
import numpy as np

from maskwatch.atomic import OutputError, default_mode, naming, write_bytes, write_text
from maskwatch.faces import COMPLIANT, PERSON_LABELS, UNASSESSABLE, Face, frame_record
from maskwatch.render import FaceAnnotator, blur_boxes
from maskwatch.video.night import mostly_grey
from maskwatch.video.sources import Frame, SourceInfo
from maskwatch.video.tracker import Track


class Sink(Protocol):
    def write(self, frame: Frame, faces: list[Face], detected: bool) -> None:
        """One processed frame: its faces, and whether the detector ran on it (or the tracker carried them)."""

    def close(self) -> None:
        """Finish what was written (also after Ctrl-C)."""


def frame_line(frame: Frame, faces: list[Face], detected: bool = True) -> dict:
    """The JSON line of one image or frame (faces.frame_record, placed in its source)."""
    height, width = frame.image.shape[:2]
    return frame_record(faces, width, height, frame=frame.index, name=frame.name, time=frame.timestamp,
                        detected=detected)


class JsonLinesSink:
    """One JSON line per frame (frame_line) into an open text file, flushed at once (`tail -f`
    follows a run, a killed one keeps its lines); LineEcho hands each one on."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.record: dict | None = None  # the last line written (LineEcho prints it)

    def write(self, frame: Frame, faces: list[Face], detected: bool) -> None:
        record = frame_line(frame, faces, detected)
        self.stream.write(json.dumps(record) + "\n")
        self.stream.flush()  # a whole line at a time: a killed run's file ends at a frame's line
        self.record = record

    def close(self) -> None:
        self.stream.flush()


class LineEcho:
    """on_line(record) for each line a JsonLinesSink wrote, as a sink of its own after it: placed
    behind run_frames' counter, a failing echo (`detect --json | head -1`: a closed pipe) leaves the
    written line counted (detect said 'stopped after 1 frame' of a file of 2 lines)."""

    def __init__(self, lines: JsonLinesSink, on_line: Callable[[dict], None]) -> None:
        self.lines, self.on_line = lines, on_line

    def write(self, frame: Frame, faces: list[Face], detected: bool) -> None:
        self.on_line(self.lines.record)

    def close(self) -> None:
        pass


class LinesFile:
    """A text file written in place a whole line at a time, unbuffered: a killed run's file ends
    at a line's end, and a line a full disk cut short is taken back out (a reader of the file
    failed on its half line).

    keep: go on after the first `keep` bytes of the file there (`detect --resume`: its whole
    lines), cutting what follows (a line a kill cut short); None: start it empty.
    """

    def __init__(self, path: Path, keep: int | None = None) -> None:
        self.path = Path(path)
        self.file = open(path, "wb" if keep is None else "r+b", buffering=0)
        if keep is not None:
            if os.fstat(self.file.fileno()).st_size != keep:  # cut only where there is a cut-short line to cut
                self.file.truncate(keep)
            self.file.seek(keep)
        self.end = keep or 0

    def write(self, text: str) -> None:
        data = memoryview(text.encode("utf-8"))
        try:
            with naming(self.path):
                while data:
                    data = data[self.file.write(data):]  # an unbuffered write may be short
        except OSError:
            with contextlib.suppress(OSError):  # not every file can be cut (a device)
                self.file.truncate(self.end)
            raise
        self.end = self.file.tell()

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> LinesFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def compliance(people: list[Track]) -> dict:
    """Decided people (their decision is one of the classes), how many wear a mask properly and
    how many do not; unassessable people are counted apart, outside every ratio."""
    decisions = [t.decision for t in people]
    unassessable = decisions.count(UNASSESSABLE)
    compliant = decisions.count(COMPLIANT)
    decided = len(decisions) - unassessable
    return {"people": decided, "compliant": compliant, "non_compliant": decided - compliant,
            "unassessable": unassessable}


def per_minute_counts(people: list[Track]) -> list[dict]:
    """For each minute of the recording, the people seen in it, compliant or not (or unassessable)."""
    if not people:
        return []
    last = int(max(t.last_seen for t in people) // 60)
    # Each person put in the minutes they span (every minute against every person took minutes of
    # CPU at the end of a `detect` of a stream left running for weeks).
    by_minute: list[list[Track]] = [[] for _ in range(last + 1)]
    for t in people:
        for minute in range(max(0, int(t.first_seen // 60)), int(t.last_seen // 60) + 1):
            by_minute[minute].append(t)
    rows = []
    for minute, present in enumerate(by_minute):
        rows.append({"minute": minute, **compliance(present),
                     "per_class": {c: sum(t.decision == c for t in present) for c in PERSON_LABELS}})
    return rows


# How often summary.json is rewritten while people are decided: a run killed outright (kill -9,
# a reboot) a day into a stream lost every person's label, the file being written only at the end.
SUMMARY_EVERY_S = 60.0


# Tracks on grey frames that never became people (a false face, one too brief) are let go once there
# are more than this many and each has been out of view this many frames: a stream of days kept them all.
GREY_TRACKS_KEPT = 1000


class SummarySink:
    """summary.json of a video, stream or webcam: one label per person and per-minute counts.

    It hears of each person once, when their vote is final (write_people), and writes the file
    when the run ends (close), and before, every `every` seconds at most (longer past a thousand
    people) as people are decided,
    with "running": true (the people then still in view not in it), keeping each decided
    person's track until the end: a `detect` of a stream that runs for days grows by one track
    per person, a site uses events instead.
    `status` is read at each writing: its frames, interrupted, failed and errors go into the file too.
    Each person says whether they were seen on grey (infrared) frames more often than not, as a
    site's events do (`infrared`; the totals count them): a night camera's recording said only how
    many frames were grey, not which people the night model judged.
    """

    def __init__(self, path: Path, source: str, status, every: float = SUMMARY_EVERY_S, clock=time.monotonic) -> None:
        self.path, self.source, self.status = Path(path), source, status
        self.every, self.clock = every, clock
        self.saved = clock()
        self.people: list = []
        self.infrared: set[int] = set()  # track ids of the people decided, seen mostly on grey frames
        self.grey_frames: dict[int, list[int]] = {}  # track id -> [grey detected frames, index of the last]
        self.summary: dict = {}

    def write(self, frame: Frame, faces: list[Face], detected: bool) -> None:
        if not (detected and frame.grey):
            return
        for face in faces:
            if face.track_id is not None and not face.missed:
                counted = self.grey_frames.setdefault(face.track_id, [0, 0])
                counted[0], counted[1] = counted[0] + 1, frame.index
        if len(self.grey_frames) > GREY_TRACKS_KEPT:  # tracks that never became people, long gone
            for track_id in [t for t, (_, last) in self.grey_frames.items() if frame.index - last > GREY_TRACKS_KEPT]:
                del self.grey_frames[track_id]

    def write_people(self, people: list) -> None:
        for track in people:
            grey = self.grey_frames.pop(track.track_id, [0, 0])[0]
            if mostly_grey(grey, track.detections):
                self.infrared.add(track.track_id)
        self.people.extend(people)
        # A minute per thousand people once there are more: each writing holds them all (a stream
        # of weeks would rewrite tens of MB a minute).
        if self.clock() - self.saved >= self.every * max(1.0, len(self.people) / 1000):
            self._save(running=True)

    def close(self) -> None:
        self._save(running=False)

    def _save(self, running: bool) -> None:
        people = sorted(self.people, key=lambda t: t.track_id)
        self.summary = {
            "source": self.source, "frames": self.status.frames, "running": running,
            "interrupted": self.status.interrupted, "failed": self.status.failed,
            "people": [{"track_id": t.track_id, "label": t.decision, "first_seen": round(t.first_seen, 2),
                        "last_seen": round(t.last_seen, 2), "frames": t.hits, "evidence_frames": t.evidence,
                        "probabilities": [round(p, 4) for p in t.evidence_probabilities],
                        "infrared": t.track_id in self.infrared} for t in people],
            "totals": {**compliance(people), "infrared": sum(t.track_id in self.infrared for t in people)},
            "per_minute": per_minute_counts(people),
            "errors": list(self.status.errors),
        }
        write_text(self.path, json.dumps(self.summary, indent=2))
        self.saved = self.clock()


class CallbackSink:
    """Calls on_frame(frame, faces) for each frame: a hook for callers and tests."""

    def __init__(self, on_frame: Callable[[Frame, list[Face]], None]) -> None:
        self.on_frame = on_frame

    def write(self, frame: Frame, faces: list[Face], detected: bool) -> None:
        self.on_frame(frame, faces)

    def close(self) -> None:
        pass


def media_path(out: Path, info: SourceInfo, name: str) -> Path:
    """Where the annotated copy of the frame `name` goes: OUT/<name>.jpg for a photo (a folder's
    frames are named after their files), OUT/<source's name>.mp4 for a video or stream."""
    return Path(out) / (f"{name}.jpg" if info.kind in ("image", "folder") else f"{info.name}.mp4")


def unshown_blurred(frame: Frame, annotator: FaceAnnotator) -> np.ndarray:
    """The frame's pixels, its unshown faces blurred too when the annotator blurs faces."""
    return blur_boxes(frame.image, frame.hidden) if annotator.blur and len(frame.hidden) else frame.image


# The longest a frame is held where the source gave none (a camera's outage, a still stretch of
# a variable-frame-rate clip): past it the gap is cut short, so an hour's outage is not an hour of
# one picture to encode.
LONGEST_HOLD_S = 10.0


def playable(video: Path) -> bool:
    """Whether OpenCV opens the video it wrote at `video`: its writer says nothing of a failed
    write, and a full disk left an MP4 without its index (unplayable) in the place of a good one."""
    finished = cv2.VideoCapture(str(video))
    try:
        return finished.isOpened()
    finally:
        finished.release()


class MediaSink:
    """Annotated outputs: one JPEG per image, or one MP4 per video, written under temp names.

    A video's frames are placed by their time, not their count: the MP4's frame k shows the
    latest frame at k / fps, so a variable-frame-rate clip plays at its own speed (counted frames
    at the container's rate played a minute of stills in seconds) and the JSON line of time t is
    the picture at t. A frame the file could not give is the one before, held; frames that fall
    in one slot keep the newest. A stream back at another resolution goes on at the video's first
    size, scaled (the JSON lines keep each frame's own). `written` lists the finished files once closed.
    """

    def __init__(self, out: Path, info: SourceInfo, blur: bool) -> None:
        self.out, self.info = Path(out), info
        self.annotator = FaceAnnotator(blur=blur)
        self.video = None
        self.video_tmp: Path | None = None
        self.written: list[Path] = []
        self._pending: tuple[int, np.ndarray] | None = None  # the newest slot and its picture, not yet written
        self._start: float | None = None  # the first frame's time
        self._cut = 0  # slots left out of gaps longer than LONGEST_HOLD_S
        self._size: tuple[int, int] | None = None  # the video's (width, height): its first frame's

    def write(self, frame: Frame, faces: list[Face], detected: bool = True) -> None:
        drawn = self.annotator.annotate(unshown_blurred(frame, self.annotator), faces)
        if self.info.kind in ("image", "folder"):
            ok, encoded = cv2.imencode(".jpg", drawn)
            if ok:
                target = media_path(self.out, self.info, frame.name)
                write_bytes(target, encoded.tobytes())
                self.written.append(target)
            return
        # The mp4 writer keeps even sides only (641x359 was cut to 640x358, the JSON's boxes on a
        # frame one pixel larger): a frame of odd side gets one row or column at its far edge.
        h, w = drawn.shape[:2]
        if h % 2 or w % 2:
            drawn = cv2.copyMakeBorder(drawn, 0, h % 2, 0, w % 2, cv2.BORDER_REPLICATE)
        if self.video is not None and (drawn.shape[1], drawn.shape[0]) != self._size:
            # A stream back at another resolution (a camera rebooted, its substream reconfigured):
            # the writer takes its first size only, and dropped every later frame, the video frozen
            drawn = cv2.resize(drawn, self._size, interpolation=cv2.INTER_AREA)
        if self.video is None:
            fd, tmp = tempfile.mkstemp(prefix=f".{self.info.name}.", suffix=".partial.mp4", dir=self.out)
            os.close(fd)
            os.chmod(tmp, default_mode(False))  # mkstemp's 0600 would stay on the video
            self.video_tmp = Path(tmp)
            video = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*"mp4v"), self.info.fps or 25.0,
                                    (drawn.shape[1], drawn.shape[0]))
            if not video.isOpened():  # nothing to move into place: a previous run's video stays
                video.release()
                self.video_tmp.unlink(missing_ok=True)
                raise OutputError(f"{self.out}: OpenCV cannot write an mp4 video here")
            self.video, self._size = video, (drawn.shape[1], drawn.shape[0])
        self._place(frame.timestamp, drawn)

    def _place(self, timestamp: float, drawn: np.ndarray) -> None:
        fps = self.info.fps or 25.0
        if self._start is None:
            self._start = timestamp
        slot = round((timestamp - self._start) * fps) - self._cut
        if self._pending is not None and slot > self._pending[0]:
            longest = max(1, round(LONGEST_HOLD_S * fps))
            if slot - self._pending[0] > longest:
                self._cut += slot - self._pending[0] - longest
                slot = self._pending[0] + longest
            for _ in range(slot - self._pending[0]):  # the pending picture, held until this one's slot
                self.video.write(self._pending[1])
        self._pending = (max(slot, self._pending[0]) if self._pending else slot, drawn)

    def close(self) -> None:
        """Finish the video and move it into place."""
        if self.video is not None:
            if self._pending is not None:
                self.video.write(self._pending[1])
                self._pending = None
            self.video.release()
            self.video = None
            target = media_path(self.out, self.info, self.info.name)
            if not playable(self.video_tmp):
                self.video_tmp.unlink(missing_ok=True)
                raise OutputError(f"{target}: the annotated video could not be finished (a full disk?); "
                                  "it was removed, unplayable")
            os.replace(self.video_tmp, target)
            self.written.append(target)


class LatestFrameSink:
    """Keeps a camera's newest frame and faces; draws and encodes it only when someone asks.

    Blurring (a site's privacy mode, blur_live), it keeps the newest frame the detector read: on
    one it did not (carried between detections, or let by the motion gate) a person who came into
    view since the last detection is in no box, and their face went out sharp.
    Thread-safe: the camera's worker writes, the HTTP threads read.
    """

    def __init__(self, blur: bool = True) -> None:
        import threading

        self.annotator = FaceAnnotator(blur=blur)
        self._lock = threading.Lock()
        self._latest: tuple[Frame, list[Face]] | None = None
        self._encoded: tuple[int, bytes] | None = None  # (frame index, JPEG) of the last request

    def write(self, frame: Frame, faces: list[Face], detected: bool) -> None:
        if self.annotator.blur and not detected:
            return
        with self._lock:
            self._latest = (frame, faces)

    def jpeg(self) -> bytes | None:
        """The newest frame, annotated, as JPEG bytes; None before the first frame."""
        with self._lock:
            latest, cached = self._latest, self._encoded
        if latest is None:
            return None
        frame, faces = latest
        if cached is not None and cached[0] == frame.index:
            return cached[1]
        ok, encoded = cv2.imencode(".jpg", self.annotator.annotate(unshown_blurred(frame, self.annotator), faces))
        if not ok:
            return None
        with self._lock:
            self._encoded = (frame.index, encoded.tobytes())
        return encoded.tobytes()

    def close(self) -> None:
        pass

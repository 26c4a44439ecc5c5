"""The sink a camera's worker writes to: each person decided there stored as an event, and told to listeners."""

from __future__ import annotations

import logging
from collections import Counter, deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, NamedTuple

import cv2
import numpy as np

from maskwatch.faces import CLASSES, PERSON_LABELS, UNASSESSABLE, Face
from maskwatch.render import FaceAnnotator, blur_boxes
from maskwatch.site.event_writer import UNSTORED_SNAPSHOTS, EventWriter, Person
from maskwatch.site.events import EventStore
from maskwatch.video.night import mostly_grey
from maskwatch.video.sources import Frame

if TYPE_CHECKING:  # annotations only: the tracker brings scipy.optimize (~0.35 s), which no command
    # that only reads or writes the store needs (`maskwatch users ...`, `serve`); cameras import it
    # with their tracker, before their first frame.
    from maskwatch.video.tracker import Track

log = logging.getLogger(__name__)

# How far a person's new running vote must lead the label last announced before listeners hear of
# the change (a share of the vote): a face between two labels sent 37 updates in 40 frames.
UPDATE_MARGIN = 0.1
# Seconds a person stays in the in-view counts after their face was last in a frame, while their
# track lives (the tracker's lost_after): a head turned away for 1.2 s took a count 1 -> 0 -> 1.
IN_VIEW_HOLD = 2.0


def zone_of(face_box, width: int, height: int, zones: dict[str, list]) -> str | None:
    """The first zone (in config order) holding the centre of `face_box`; None when none does."""
    x = (face_box[0] + face_box[2]) / 2 / width
    y = (face_box[1] + face_box[3]) / 2 / height
    for name, polygon in zones.items():
        if cv2.pointPolygonTest(np.asarray(polygon, np.float32).reshape(-1, 1, 2), (x, y), False) >= 0:
            return name
    return None


@dataclass(frozen=True)
class Listeners:
    """Who hears about a camera's people (alerts, MQTT, a Ray actor's mailbox). Each takes one
    dict and must not block: it runs on the camera's thread (`event` on the site's writer's)."""

    event: Callable[[dict], None] | None = None  # a person's event, once stored (event_writer's thread)
    start: Callable[[dict], None] | None = None  # a person coming into view
    update: Callable[[dict], None] | None = None  # a person in view whose running vote changed label
    in_view: Callable[[dict], None] | None = None  # {"camera", "counts"}: people in view per label, on change


def voted_class(face: Face) -> str | None:
    """A tracked face's running vote: its label, or, while the face is shown in doubt
    (`unassessable`, video.tracker), the class its vote's probabilities favour; None without one.
    A moment's doubt is not news to listeners: neither a change nor a person gone from view."""
    if face.label in CLASSES:
        return face.label
    return CLASSES[int(np.argmax(face.probabilities))] if face.probabilities and any(face.probabilities) else None


def leads(face: Face, vote: str, before: str | None) -> bool:
    """Whether a tracked face's running vote for `vote` leads `before` by UPDATE_MARGIN."""
    if before not in CLASSES or not face.probabilities:
        return True
    shares = dict(zip(CLASSES, face.probabilities))
    return shares[vote] - shares[before] >= UPDATE_MARGIN


class View(NamedTuple):
    """A person's largest face so far, kept as it was cut from the frame: blurred and drawn only
    when the person is stored (`render`). A growing face replaced its view on most detected
    frames, and each blur and drawing of a replaced view was work nobody read."""

    area: float
    crop: np.ndarray  # a copy of the frame around the face, sharp
    face: Face  # the face, in the crop's pixels
    others: np.ndarray  # N x 4 boxes of the other faces inside the crop, in its pixels: blurred too


class EventSink:
    """The sink a camera's worker writes to: remembers the largest view of each tracked face and
    hands each person the tracker decides to the site's `writer` (event_writer), which stores them
    off the camera's thread (Sink protocol plus write_people). Without one, the sink has a writer of
    its own, closed with it.

    recorded keeps the newest `keep_recorded` events as stored (the database keeps them all), so
    a site that runs for months holds a few, not every event since it started; recorded_total
    counts them all.
    """

    def __init__(self, store: EventStore, camera: str, zones: dict[str, list] | None = None,
                 margin: float = 1.0, forget_after: int = 100, listeners: Listeners = Listeners(),
                 keep_recorded: int = 100, writer: EventWriter | None = None) -> None:
        if keep_recorded < 0:
            raise ValueError(f"keep_recorded must be 0 or more, got {keep_recorded}")
        self.store, self.camera, self.zones, self.margin = store, camera, zones or {}, margin
        self.writer = writer if writer is not None else EventWriter(store)
        self._own_writer = writer is None
        self.listeners = listeners  # MQTT, alerts, a Ray actor's mailbox; none may block
        self.announced: dict[int, str | None] = {}  # track id of a person in view -> label last announced
        self.people: dict[int, Track] = {}  # track id of a person in view -> their track (its evidence)
        self.in_view: dict[str, int] | None = None
        self.forget_after = forget_after  # frames: a view of a track gone this long (never a person) is dropped
        self.last_frame: dict[int, int] = {}  # track id -> index of the frame it was last in
        self.annotator = FaceAnnotator(blur=True, show_counts=False)
        self.size: tuple[int, int] | None = None  # width, height of the camera's frames
        self.views: dict[int, View] = {}  # track id -> the largest view of their face, not yet rendered
        self.zone_frames: dict[int, Counter] = {}  # track id -> detected frames per zone: the person's zone
        self.grey_frames: dict[int, int] = {}  # track id -> of those, the grey (infrared) ones
        self.seen_at: dict[int, float] = {}  # track id of a person in view -> time their face was last shown
        self.recorded: deque[dict] = deque(maxlen=keep_recorded)
        self.recorded_total = 0

    @property
    def store_problem(self) -> str | None:
        """Why this camera's people wait unstored (its analysis_error), until they are all in."""
        return self.writer.problem_of(self.camera)

    def storing(self) -> dict:
        """This camera's people waiting for the writer now, and those it dropped since the start."""
        return {"people_waiting": self.writer.waiting(self.camera), "people_dropped": self.writer.dropped[self.camera]}

    def write(self, frame: Frame, faces: list[Face], detected: bool) -> None:
        height, width = frame.image.shape[:2]
        self.size = (width, height)
        for face in faces:
            if face.track_id in self.announced:
                self.seen_at[face.track_id] = frame.timestamp
        if not detected:
            # A carried frame repeats the votes, but may hold a person who just became one: with
            # motion gating, a person standing still is only carried until the next full check.
            self._announce_in_view(faces, frame.timestamp)
            return
        self._announce_changes(faces, frame.timestamp)
        for face in faces:
            if face.track_id is None or face.missed:  # a predicted box is no view of the face
                continue
            self.last_frame[face.track_id] = frame.index
            self.zone_frames.setdefault(face.track_id, Counter())[zone_of(face.box, width, height, self.zones)] += 1
            if frame.grey:
                self.grey_frames[face.track_id] = self.grey_frames.get(face.track_id, 0) + 1
            if self.store.privacy:
                continue
            best = self.views.get(face.track_id)
            if best is None or face.area > best.area:
                self.views[face.track_id] = self._view(frame.image, face, faces, frame.hidden)
        for track_id in [t for t, i in self.last_frame.items() if frame.index - i > self.forget_after]:
            self.views.pop(track_id, None)
            self.zone_frames.pop(track_id, None)
            self.grey_frames.pop(track_id, None)
            del self.last_frame[track_id]

    def _view(self, image: np.ndarray, face: Face, shown: list[Face] = (), hidden=()) -> View:
        """The face with a margin around it, copied (the frame is let go), with the boxes of any
        other face of the frame that the margin takes in, shown or `hidden` (boxes), to blur."""
        h, w = image.shape[:2]
        x0, y0, x1, y1 = face.box
        mx, my = face.width * self.margin, face.height * self.margin
        cx0, cy0 = max(0, int(x0 - mx)), max(0, int(y0 - my))
        cx1, cy1 = min(w, int(x1 + mx) + 1), min(h, int(y1 + my) + 1)
        offset = np.array([cx0, cy0, cx0, cy0], np.float64)
        others = np.array([*(f.box for f in shown if f is not face), *hidden], np.float64).reshape(-1, 4)
        moved = Face(box=tuple(float(v) for v in np.array(face.box) - offset), label=face.label,
                     probabilities=face.probabilities)
        return View(face.area, image[cy0:cy1, cx0:cx1].copy(), moved, others - offset)

    def render(self, view: View) -> np.ndarray:
        """A view's snapshot: the face blurred and boxed in its class colour, and any other face in
        it blurred too (a bystander kept sharp on disk would break the privacy statement)."""
        return self.annotator.annotate(blur_boxes(view.crop, view.others), [view.face])

    def jpeg(self, view: View) -> bytes | None:
        """A view's snapshot as the JPEG file stored, None where OpenCV cannot encode it (said): a
        person waits for the database with it. Waiting as drawn, a near face's crop at 1080p took
        about 3 MB (900 x 1080 x 3 bytes; its JPEG 0.1 to 0.3 MB), a whole 4K frame 25 MB, and a
        camera's 100 snapshots waiting up to a few GB."""
        try:
            ok, encoded = cv2.imencode(".jpg", self.render(view))
            if ok:
                return encoded.tobytes()
            why = "OpenCV made no JPEG of it"
        except cv2.error as err:
            why = str(err).strip().splitlines()[-1] if str(err).strip() else "cv2.error"
        log.error("camera %s: a person's snapshot cannot be encoded (%s): they are stored without it", self.camera, why)
        return None

    def _announce_changes(self, faces: list[Face], now: float | None = None) -> None:
        """Tell listeners of people whose running vote changed, and of new counts in view."""
        for face in faces:
            if face.track_id not in self.announced:
                continue
            before, vote = self.announced[face.track_id], voted_class(face)
            if vote is not None and vote != before and leads(face, vote, before):
                self.announced[face.track_id] = vote
                if self.listeners.update is not None:
                    zone = zone_of(face.box, *self.size, self.zones)
                    self.listeners.update({"camera": self.camera, "zone": zone, "track_id": face.track_id,
                                           "label": vote, "before": before})
        self._announce_in_view(faces, now)

    def _in_view_label(self, track_id: int, vote: str | None) -> str | None:
        """The label a person in view is counted under: their vote, or `unassessable` while their
        track holds too few frames of a large enough face to decide on (a far face was counted
        under its vote here and recorded `unassessable` at the end)."""
        track = self.people.get(track_id)
        if vote is not None and track is not None and track.evidence < track.min_evidence:
            return UNASSESSABLE
        return vote

    def _announce_in_view(self, faces: list[Face], now: float | None = None) -> None:
        """Tell listeners how many people are in view per label (their votes), when that changed:
        the people shown, and those shown within IN_VIEW_HOLD seconds of `now` whose track lives on
        (None: nobody is held, the view is empty)."""
        in_view = dict.fromkeys(PERSON_LABELS, 0)
        shown = set()
        for face in faces:  # by the label last announced, so that the counts flap no more than it
            if face.track_id in self.announced and (vote := self.announced[face.track_id] or voted_class(face)):
                in_view[self._in_view_label(face.track_id, vote)] += 1
                shown.add(face.track_id)
        if now is not None:
            for track_id, label in self.announced.items():
                if track_id not in shown and label in CLASSES and now - self.seen_at.get(track_id, -1e18) <= IN_VIEW_HOLD:
                    in_view[self._in_view_label(track_id, label)] += 1
        if in_view != self.in_view:
            self.in_view = in_view
            if self.listeners.in_view is not None:
                self.listeners.in_view({"camera": self.camera, "counts": in_view})

    def nobody_in_view(self) -> None:
        """The camera's tracks all ended (its stream lost, the site stopping): in-view counts go to 0,
        so that a building system does not go on seeing people at a dead camera."""
        self._announce_in_view([])

    def start_people(self, people: list[Track]) -> None:
        for track in people:
            self.announced[track.track_id] = track.label
            self.people[track.track_id] = track
            if self.listeners.start is None:
                continue
            zone = zone_of(track.box, *self.size, self.zones) if self.size else None
            self.listeners.start({"camera": self.camera, "zone": zone, "track_id": track.track_id,
                                  "label": track.label, "first_seen": track.first_seen})

    def write_people(self, people: list[Track]) -> None:
        """Hand each person to the writer, which stores them off this thread (event_writer: while
        the database refuses or hangs they wait there, and the camera analyses on). Only a camera's
        first UNSTORED_SNAPSHOTS people waiting keep their snapshot, as the JPEG to be stored."""
        waiting = self.writer.waiting(self.camera) if people else 0
        for track in people:
            view = self.views.pop(track.track_id, None)
            self.last_frame.pop(track.track_id, None)
            self.announced.pop(track.track_id, None)
            self.people.pop(track.track_id, None)
            self.seen_at.pop(track.track_id, None)
            # The zone their face was detected in most often (the first of them on a tie): the
            # last one was where they left the view, a door zone counting people going out.
            seen = self.zone_frames.pop(track.track_id, None)
            zone = seen.most_common(1)[0][0] if seen else zone_of(track.box, *self.size, self.zones) if self.size else None
            # Seen on grey frames more often than not: counted as infrared (judged by the night model)
            infrared = mostly_grey(self.grey_frames.pop(track.track_id, 0), sum(seen.values())) if seen else False
            snapshot = self.jpeg(view) if view is not None and waiting < UNSTORED_SNAPSHOTS else None
            self.writer.put(Person(self.camera, zone, track, snapshot, infrared, self._stored))
            waiting += 1

    def _stored(self, event: dict) -> None:
        """A person of this camera stored (on the writer's thread): kept in `recorded`, told to listeners."""
        self.recorded.append(event)
        self.recorded_total += 1
        if self.listeners.event is not None:
            self.listeners.event(event)

    def close(self) -> None:
        """The views let go; a writer of the sink's own closed (its people stored, or said lost).
        A site's writer is the site's to close, once every camera has handed out its people."""
        if self._own_writer:
            self.writer.close()
        self.views.clear()
        self.last_frame.clear()
        self.announced.clear()
        self.people.clear()
        self.zone_frames.clear()
        self.grey_frames.clear()
        self.seen_at.clear()

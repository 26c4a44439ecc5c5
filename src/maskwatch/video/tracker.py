"""A small IoU tracker: one id per person across frames, labels voted over the track.

A face's class flickers from frame to frame on tiny, blurry faces; averaging its class
probabilities over the whole track gives one stable label per person.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from maskwatch.detection.boxes import greedy_match
from maskwatch.faces import CLASSES, COMPLIANT, Face


@dataclass
class Track:
    track_id: int
    box: tuple[float, ...]
    first_seen: float
    last_seen: float
    hits: int = 0
    missed: int = 0
    score: float | None = None  # the detector's score at the last match, shown on carried frames
    probability_sum: np.ndarray = field(default_factory=lambda: np.zeros(len(CLASSES)))

    @property
    def probabilities(self) -> tuple[float, ...]:
        total = self.probability_sum.sum()
        return tuple(float(p) for p in (self.probability_sum / total if total else self.probability_sum))

    @property
    def label(self) -> str | None:
        return CLASSES[int(self.probability_sum.argmax())] if self.probability_sum.any() else None


class FaceTracker:
    """Assigns track ids to each frame's faces and returns them with voted labels.

    iou_threshold: least overlap with a track's last box to continue it.
    max_missed: frames a track survives without a match (people turn away briefly).
    min_hits: frames a track needs before it counts as a person (drops one-frame ghosts).
    """

    def __init__(self, iou_threshold: float = 0.3, max_missed: int = 15, min_hits: int = 3) -> None:
        self.iou_threshold, self.max_missed, self.min_hits = iou_threshold, max_missed, min_hits
        self.active: list[Track] = []
        self.finished: list[Track] = []
        self._next_id = 1
        self._handed_out = 0  # how many of `finished` take_finished() has returned already
        self._started: list[Track] = []  # tracks that just became people (reached min_hits)

    def update(self, faces: list[Face], timestamp: float) -> list[Face]:
        """Faces of one frame -> the same faces with track_id and the track's voted label."""
        boxes = np.array([f.box for f in faces]).reshape(-1, 4)
        track_boxes = np.array([t.box for t in self.active]).reshape(-1, 4)
        pairs = greedy_match(track_boxes, boxes, self.iou_threshold)
        assigned: dict[int, Track] = {}
        for t, f in pairs:
            assigned[f] = self.active[t]
        for i in range(len(faces)):
            if i not in assigned:
                track = Track(self._next_id, faces[i].box, first_seen=timestamp, last_seen=timestamp)
                self._next_id += 1
                self.active.append(track)
                assigned[i] = track
        seen = set()
        out = []
        for i, face in enumerate(faces):
            track = assigned[i]
            seen.add(track.track_id)
            track.box, track.last_seen, track.missed, track.score = face.box, timestamp, 0, face.score
            self._count_hit(track)
            if face.probabilities is not None:
                track.probability_sum += np.array(face.probabilities)
            out.append(replace(face, track_id=track.track_id, label=track.label or face.label,
                               probabilities=track.probabilities if track.label else face.probabilities))
        still = []
        for track in self.active:
            if track.track_id not in seen:
                track.missed += 1
            if track.missed > self.max_missed:
                self.finished.append(track)
            else:
                still.append(track)
        self.active = still
        return out

    def carry(self, timestamp: float) -> list[Face]:
        """The faces as last seen, carried over a frame on which detection was skipped.

        Each visible track counts the frame (hits, last_seen) as seen: with detection on every
        n-th frame, a person held for min_hits frames is still a person. Its vote is unchanged.
        """
        for track in self.active:
            if track.missed == 0:
                self._count_hit(track)
                track.last_seen = timestamp
        return self.current()

    def current(self) -> list[Face]:
        """The faces as last seen, for frames on which detection is skipped to save time."""
        return [Face(box=t.box, label=t.label, probabilities=t.probabilities if t.label else None,
                     score=t.score, track_id=t.track_id) for t in self.active if t.missed == 0]

    def _count_hit(self, track: Track) -> None:
        track.hits += 1
        if track.hits == self.min_hits:
            self._started.append(track)

    def take_started(self) -> list[Track]:
        """Tracks that became people (min_hits frames) since the last call: a person is in view."""
        started, self._started = self._started, []
        return started

    def take_finished(self) -> list[Track]:
        """Tracks that ended since the last call and were long enough to be a person.

        A finished track's vote no longer changes: it is what an event records, once.
        """
        new = self.finished[self._handed_out:]
        self._handed_out = len(self.finished)
        return [t for t in new if t.hits >= self.min_hits]

    def flush(self) -> list[Track]:
        """End every active track now (a stream stopped or reconnects) and return the new people."""
        self.finished.extend(self.active)
        self.active = []
        return self.take_finished()

    def people(self) -> list[Track]:
        """Every track long enough to be a person, finished or still active."""
        return sorted((t for t in self.finished + self.active if t.hits >= self.min_hits),
                      key=lambda t: t.track_id)


def compliance(people: list[Track]) -> dict:
    """How many of these people wear a mask properly (their voted label) and how many do not."""
    compliant = sum(t.label == COMPLIANT for t in people)
    return {"people": len(people), "compliant": compliant, "non_compliant": len(people) - compliant}


def per_minute_counts(people: list[Track]) -> list[dict]:
    """For each minute of the recording, the people seen in it, compliant or not."""
    if not people:
        return []
    last = int(max(t.last_seen for t in people) // 60)
    rows = []
    for minute in range(last + 1):
        present = [t for t in people if t.first_seen < (minute + 1) * 60 and t.last_seen >= minute * 60]
        rows.append({"minute": minute, **compliance(present),
                     "per_class": {c: sum(t.label == c for t in present) for c in CLASSES}})
    return rows

"""A ByteTrack-style face tracker: one id per person across frames, one decision per person.

Each track carries a constant-velocity Kalman filter on its box (centre, width, height and
their speeds), so that a face that moves between two detections (detection on every n-th
frame, a small face walking) is matched where it has gone, not where it was. Association
follows ByteTrack (Zhang et al., ECCV 2022): confident faces first, then faces the detector
was unsure of, which may only continue a track (an occluded or blurred face), never start
one; a track missing from a detection survives `lost_after` seconds (not frames: cameras
analyse at different rates) and is matched again where its motion has carried it, at the size
it had (ByteTrack's rule) when the detector was last sure of it: a face going behind something is
often scored unsure, and boxed narrower, as it goes. Boxes are compared by IoU with a buffer
around them (C-BIoU, Yang et al., WACV 2023): a small fast face and its next detection may not
overlap at all. Last, a lost track may take a sure face left over whose centre is within one
face width of where the track is predicted: a face that comes back from behind something rarely
overlaps its prediction.
A face is shown from its track's second detection on (ByteTrack shows activated tracks only;
at the tracker's first detection at once): a track seen once is as often a person's duplicate, where
their own track could not follow, or a detector's one-off, as a new person, and each would flash a
new id. A person missed at one detection after a sure match is shown at its predicted box until the
next detection (a random miss does not blink the face off; a face fading behind something is often
scored unsure first): shown only (Face.missed), never counted as seen, fed back as a detection
or kept as an event's view.

Why our own and not a library's: supervision's and roboflow `trackers`' ByteTrack (MIT and
Apache-2.0, numpy and scipy only) declare `opencv-python`, which overwrites the cv2 of
`opencv-python-headless` that maskwatch depends on; they install only with `--no-deps`, which
a user's `pip install maskwatch` cannot say. norfair pins numpy < 2. The algorithm is small,
and our boxes, labels and per-person vote need their own bookkeeping anyway.

The per-person decision: a person's label is the vote (mean class probabilities) over the
detected frames in which their face's short side is at least `min_face_px`, and only when
there are at least `min_evidence` such frames; otherwise the person is `unassessable`,
counted apart and never in a compliance rate (docs/tracking.md says why these numbers).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from maskwatch.geometry import iou_matrix
from maskwatch.faces import CLASSES, UNASSESSABLE, Face

from scipy.optimize import linear_sum_assignment

# The Kalman filter's noise, as DeepSORT and ByteTrack set it: standard deviations relative to
# the box's size, per step of REFERENCE_FPS (time between frames is measured, not assumed).
REFERENCE_FPS = 25.0
POSITION_STD = 1 / 20
VELOCITY_STD = 1 / 160
# The longest gap between two frames over which a track's motion is carried on, in seconds. Frames
# come at most a few seconds apart; a longer gap is a stalled stream (a bus's 4G link), which froze
# the view, not time its faces kept walking at their last speed: a person standing still, their box's
# jitter read as a speed of a fraction of a pixel a frame, was predicted a face or more away after a
# 10 s stall and counted twice (41 times in 50), after 30 s every time.
MOST_PREDICTED_GAP = 2.0
# A class probability this high is a sure answer (the gate's own bar, maskwatch.classifier.GateRule).
SURE = 0.90


def to_cxcywh(boxes: np.ndarray) -> np.ndarray:
    """N x 4 xyxy -> N x 4 (centre x, centre y, width, height)."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    return np.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2, b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], 1)


def to_xyxy(cxcywh: np.ndarray) -> np.ndarray:
    """N x 4 (centre x, centre y, width, height) -> N x 4 xyxy, sizes at least one pixel."""
    c = np.asarray(cxcywh, np.float64).reshape(-1, 4)
    w, h = np.maximum(c[:, 2], 1.0), np.maximum(c[:, 3], 1.0)
    return np.stack([c[:, 0] - w / 2, c[:, 1] - h / 2, c[:, 0] + w / 2, c[:, 1] + h / 2], 1)


def _scale(mean: np.ndarray) -> np.ndarray:
    """Per coordinate, the box size its noise is relative to: width for x and w, height for y and h."""
    w, h = np.maximum(np.abs(mean[:, 2]), 1.0), np.maximum(np.abs(mean[:, 3]), 1.0)  # no zero noise
    return np.stack([w, h, w, h], 1)


# The state of N tracks: mean N x 8 (cx, cy, w, h, then their speeds in px per reference step)
# and covariance N x 4 x 3. With a constant-velocity model, diagonal noise and H = [I 0], each
# coordinate is its own 2-state filter, so the 8 x 8 covariance is four 2 x 2 blocks, kept as
# (var position, cov position-speed, var speed): exact, and cheap for every track at once.

def kalman_start(measured: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = np.concatenate([measured, np.zeros_like(measured)], 1)
    size = _scale(mean)
    cov = np.stack([(2 * POSITION_STD * size) ** 2, np.zeros_like(size), (10 * VELOCITY_STD * size) ** 2], 2)
    return mean, cov


def kalman_predict(mean: np.ndarray, cov: np.ndarray, steps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Move N states `steps` reference steps ahead (N,), process noise growing with the time."""
    s = np.asarray(steps, np.float64)[:, None]
    size = _scale(mean)
    pos, vel = mean[:, :4], mean[:, 4:]
    pp, pv, vv = cov[..., 0], cov[..., 1], cov[..., 2]
    new_cov = np.stack([pp + 2 * s * pv + s * s * vv + (POSITION_STD * size) ** 2 * s,
                        pv + s * vv, vv + (VELOCITY_STD * size) ** 2 * s], 2)
    return np.concatenate([pos + vel * s, vel], 1), new_cov


def kalman_update(mean: np.ndarray, cov: np.ndarray, measured: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Correct N states with their measured boxes (N x 4 cxcywh)."""
    pp, pv, vv = cov[..., 0], cov[..., 1], cov[..., 2]
    gain_p = pp / (pp + (POSITION_STD * _scale(mean)) ** 2)
    gain_v = pv / (pp + (POSITION_STD * _scale(mean)) ** 2)
    residual = measured - mean[:, :4]
    new_mean = np.concatenate([mean[:, :4] + gain_p * residual, mean[:, 4:] + gain_v * residual], 1)
    return new_mean, np.stack([(1 - gain_p) * pp, (1 - gain_p) * pv, vv - gain_v * pv], 2)


def buffered_iou(a: np.ndarray, b: np.ndarray, buffer: float) -> np.ndarray:
    """IoU of N x 4 and M x 4 xyxy boxes, each grown by `buffer` times its size on every side."""
    def grow(boxes):
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        dw = (boxes[:, 2] - boxes[:, 0]) * buffer
        dh = (boxes[:, 3] - boxes[:, 1]) * buffer
        return boxes + np.stack([-dw, -dh, dw, dh], 1)
    return iou_matrix(grow(a), grow(b))


def match(scores: np.ndarray, least: float) -> list[tuple[int, int]]:
    """(row, column) pairs of an N x M similarity matrix, each used once, all scoring >= least:
    the assignment of highest total (Hungarian, scipy)."""
    if scores.size == 0:
        return []
    allowed = np.where(scores >= least, scores, 0.0)
    rows, cols = linear_sum_assignment(allowed, maximize=True)
    return [(int(r), int(c)) for r, c in zip(rows, cols) if scores[r, c] >= least]


def _shares(sums: np.ndarray) -> tuple[float, ...]:
    """Per-class sums as shares of their total (zeros where there is none)."""
    total = sums.sum()
    return tuple(float(p) for p in (sums / total if total else sums))


@dataclass(eq=False)
class Track:
    """One person (or a candidate): where they are, how they move, and what their face showed.

    box: the last detected box (xyxy, px). hits: frames counted as seen (detected or carried);
    detections: detected frames matched; missed: detections in a row without a match.
    label / probabilities: the running vote, weighted towards recent frames (what a frame shows:
    someone who puts a mask on is shown with it within a second).
    decision / probability: the person's label once the track holds enough evidence (frames
    of a face at least min_face_px on its short side), else `unassessable` (probability 0).
    """

    track_id: int
    box: tuple[float, ...]
    first_seen: float
    last_seen: float
    hits: int = 0
    missed: int = 0
    detections: int = 0
    score: float | None = None  # the detector's score at the last match, shown on carried frames
    sure_size: tuple[float, float] | None = None  # width and height at the last sure match (lost tracks take it)
    probability_sum: np.ndarray = field(default_factory=lambda: np.zeros(len(CLASSES)))
    last_probabilities: np.ndarray = field(default_factory=lambda: np.zeros(len(CLASSES)))  # at its last detection
    evidence_sum: np.ndarray = field(default_factory=lambda: np.zeros(len(CLASSES)))
    evidence: int = 0  # frames whose face was large enough to count towards the decision
    min_evidence: int = 3
    mean: np.ndarray | None = field(default=None, repr=False)  # Kalman state (8,), see kalman_start
    cov: np.ndarray | None = field(default=None, repr=False)  # (4, 3)
    state_time: float = 0.0  # the time the Kalman state is at
    started: bool = False  # take_started() has announced it

    @property
    def probabilities(self) -> tuple[float, ...]:
        return _shares(self.probability_sum)

    @property
    def label(self) -> str | None:
        return CLASSES[int(self.probability_sum.argmax())] if self.probability_sum.any() else None

    @property
    def in_doubt(self) -> bool:
        """The last detection was sure of a class the running vote does not show: the face may be
        changing (a mask going on) or a hand crossed it, and the next detection tells; until then
        neither label is shown as fact."""
        last = self.last_probabilities
        return bool(last.max() >= SURE and self.probability_sum.any()
                    and last.argmax() != self.probability_sum.argmax())

    @property
    def shown_label(self) -> str | None:
        """What a frame shows: the running vote's label, or `unassessable` while in doubt."""
        return UNASSESSABLE if self.in_doubt else self.label

    @property
    def decision(self) -> str:
        if self.evidence < self.min_evidence or not self.evidence_sum.any():
            return UNASSESSABLE
        return CLASSES[int(self.evidence_sum.argmax())]

    @property
    def probability(self) -> float:
        """The decided label's mean probability over the evidence frames (0 when unassessable)."""
        decision = self.decision
        if decision == UNASSESSABLE:
            return 0.0
        return float(self.evidence_sum[CLASSES.index(decision)] / self.evidence_sum.sum())

    @property
    def evidence_probabilities(self) -> tuple[float, ...]:
        """The mean class probabilities over the evidence frames, which the decision is the
        argmax of (zeros without evidence); `probabilities` is the running vote a frame shows."""
        return _shares(self.evidence_sum)

    def predicted_box(self) -> tuple[float, ...]:
        return tuple(float(v) for v in to_xyxy(self.mean[None, :4])[0]) if self.mean is not None else self.box

    def shown_face(self, missed: bool = False) -> Face:
        """The face as a frame shows it: at the predicted box, with the running vote."""
        return Face(box=self.predicted_box(), label=self.shown_label,
                    probabilities=self.probabilities if self.label else None,
                    score=self.score, track_id=self.track_id, missed=missed)


class FaceTracker:
    """Assigns track ids to each frame's faces and returns them with the track's running vote.

    match_iou: least buffered IoU between a track's predicted box and a confident face.
    low_match_iou: the same for a face under high_score (it may only continue a track).
    new_track_iou: the same for a track seen once so far (no speed known yet).
    buffer: each box grows by this share of its size on every side before IoU (C-BIoU).
    high_score / low_score: faces scoring at least high_score may start tracks; faces from
        low_score to high_score only continue one; faces under low_score are ignored. Faces
        without a score (annotations) count as confident. 0.4 is above the shipped detector's own
        cut-off (0.3): starting tracks from 0.3 split more people (docs/bench-tracking.md).
    lost_after: seconds a track survives without a match (a face turned away, a passer-by).
    tentative_misses: detections a track seen only once may miss before it is dropped as noise.
    min_hits: frames (detected or carried) a track needs, besides two detections, to be a person.
    min_face_px, min_evidence: the decision rule (see the module docstring).
    recover_distance: after every IoU pass, a track lost at the last detection may still take a
        sure face left over whose centre lies within this many of the face's widths of where the
        track is predicted (0: off).
    label_half_life: detections after which a frame's weight in the shown label (the running
        vote) has halved; two sure detections in a row (top probability >= SURE) of a class the
        vote does not show restart it from them: a mask put on is shown at once, one sure frame
        of the other class (a hand across the face) is not. At the first of them the face is shown
        `unassessable` (Track.in_doubt): neither label is shown as fact until the next detection
        tells. The person's decision weighs every frame of evidence alike.

    Memory stays flat in a process that never stops: a track ends `lost_after` seconds after
    its last match, ended people wait in `finished` until take_finished() hands them out (once),
    and ended tracks that never became people are dropped at once.
    """

    def __init__(self, match_iou: float = 0.2, low_match_iou: float = 0.4, new_track_iou: float = 0.3,
                 buffer: float = 0.3, high_score: float = 0.4, low_score: float = 0.2, lost_after: float = 2.0,
                 min_hits: int = 3, min_face_px: float = 20.0, min_evidence: int = 3,
                 tentative_misses: int = 1, label_half_life: float = 6.0, recover_distance: float = 1.0) -> None:
        if lost_after < 0:
            raise ValueError(f"lost_after must be 0 or more seconds, got {lost_after}")
        if not 0 <= low_score <= high_score:
            raise ValueError(f"need 0 <= low_score <= high_score, got {low_score} and {high_score}")
        if min_hits < 1 or min_evidence < 1:
            raise ValueError(f"min_hits and min_evidence must be at least 1, got {min_hits} and {min_evidence}")
        self.match_iou, self.low_match_iou, self.new_track_iou = match_iou, low_match_iou, new_track_iou
        self.buffer, self.high_score, self.low_score, self.lost_after = buffer, high_score, low_score, lost_after
        self.min_hits, self.min_face_px, self.min_evidence = min_hits, min_face_px, min_evidence
        self.tentative_misses = tentative_misses
        if recover_distance < 0:
            raise ValueError(f"recover_distance must be 0 or more face widths, got {recover_distance}")
        self.recover_distance = recover_distance
        if label_half_life <= 0:
            raise ValueError(f"label_half_life must be more than 0 detections, got {label_half_life}")
        self.vote_decay = 0.5 ** (1.0 / label_half_life)
        self.active: list[Track] = []  # tracks in view or lost for under lost_after seconds
        self.finished: list[Track] = []  # ended people not handed out yet
        self._next_id = 1
        self._started: list[Track] = []  # tracks that just became people
        self._first_detection: float | None = None  # the time of the first update: its faces are shown at once
        self._view = [0, 0]  # detections and frames since the first update: a clip too short for a person

    def is_person(self, track: Track) -> bool:
        return track.detections >= 2 and track.hits >= self.min_hits

    def _predict(self, timestamp: float) -> None:
        """Move every track's Kalman state to `timestamp`."""
        if not self.active:
            return
        mean = np.stack([t.mean for t in self.active])
        cov = np.stack([t.cov for t in self.active])
        # A lost track keeps its size, as in ByteTrack (STrack.predict): the width and height speeds
        # of its last frames (a face going behind something, a box jittering smaller) would shrink
        # its predicted box to nothing before the face comes back (docs/bench-tracking.md).
        lost = np.array([t.missed > 0 for t in self.active])
        mean[lost, 6:8] = 0.0
        gaps = np.clip(timestamp - np.array([t.state_time for t in self.active]), 0.0, MOST_PREDICTED_GAP)
        steps = gaps * REFERENCE_FPS
        mean, cov = kalman_predict(mean, cov, steps)
        for track, track_mean, track_cov in zip(self.active, mean, cov):
            track.mean, track.cov, track.state_time = track_mean, track_cov, timestamp

    def warp(self, affine: np.ndarray) -> None:
        """Move every track by the camera's own motion (a 2 x 3 similarity from the frame its
        state is in to the next one, as CameraMotion estimates it): where a hand-held camera
        turned, the faces went too. Speeds turn and scale with it; sizes scale."""
        if not self.active:
            return
        affine = np.asarray(affine, np.float64)
        linear, shift = affine[:, :2], affine[:, 2]
        scale = float(np.sqrt(abs(np.linalg.det(linear))))
        mean = np.stack([t.mean for t in self.active])
        mean[:, 0:2] = mean[:, 0:2] @ linear.T + shift
        mean[:, 4:6] = mean[:, 4:6] @ linear.T
        mean[:, [2, 3, 6, 7]] *= scale
        for track, track_mean in zip(self.active, mean):
            track.mean, track.cov = track_mean, track.cov * scale * scale
            if track.sure_size is not None:
                track.sure_size = (track.sure_size[0] * scale, track.sure_size[1] * scale)

    def rescale(self, sx: float, sy: float) -> None:
        """Move every track to frames `sx` times as wide and `sy` times as high: a camera whose
        stream came back at another resolution (rebooted, its substream reconfigured) shows the
        same view, and the people in it stay the same people (each counted twice before: the old
        tracks, at the old pixels, were lost and new ones started beside them)."""
        factor = np.array([sx, sy, sx, sy], np.float64)
        for track in self.active:
            track.mean = track.mean * np.concatenate([factor, factor])
            track.cov = track.cov * (factor ** 2)[:, None]
            track.box = tuple(float(v) for v in np.asarray(track.box, np.float64) * factor)
            if track.sure_size is not None:
                track.sure_size = (track.sure_size[0] * sx, track.sure_size[1] * sy)

    def _associate(self, tracks: list[Track], boxes: np.ndarray, faces: list[int], least: float,
                   matched: dict[int, Track]) -> list[Track]:
        """Match `tracks` to the faces indexed by `faces` (into `boxes`); record pairs in `matched`
        (face index -> track); the tracks left unmatched."""
        if not tracks or not faces:
            return tracks
        predicted = to_xyxy(np.stack([t.mean[:4] for t in tracks]))
        pairs = match(buffered_iou(predicted, boxes[faces], self.buffer), least)
        for r, c in pairs:
            matched[faces[c]] = tracks[r]
        taken = {r for r, _ in pairs}
        return [t for i, t in enumerate(tracks) if i not in taken]

    def _recover(self, tracks: list[Track], boxes: np.ndarray, faces: list[int], matched: dict[int, Track]) -> None:
        """Lost `tracks` take sure faces left over whose centre is within recover_distance face
        widths of where the track is predicted, one to one (least total distance): a face back from
        a second behind something has no box overlap left to match it by (docs/bench-tracking.md)."""
        if not tracks or not faces or not self.recover_distance:
            return
        predicted = np.stack([t.mean[:2] for t in tracks])
        found = to_cxcywh(boxes[faces])
        distance = np.linalg.norm(predicted[:, None, :] - found[None, :, :2], axis=2) / np.maximum(found[None, :, 2], 1.0)
        for r, c in match(1.0 - distance / self.recover_distance, 1e-9):
            matched[faces[c]] = tracks[r]

    def update(self, faces: list[Face], timestamp: float) -> list[Face]:
        """Faces of one detected frame -> the faces that are tracked, with track_id and the
        track's running vote, and people missed at this detection only (Face.missed). A face under
        high_score that continues no track, and one whose track is not shown yet, are left out."""
        if self._first_detection is None:
            self._first_detection = timestamp
        self._view[0] += 1
        self._view[1] += 1
        self._predict(timestamp)
        boxes = np.array([f.box for f in faces], np.float64).reshape(-1, 4)
        scores = [1.0 if f.score is None else f.score for f in faces]
        high = [i for i, s in enumerate(scores) if s >= self.high_score]
        low = [i for i, s in enumerate(scores) if self.low_score <= s < self.high_score]
        confirmed = [t for t in self.active if t.detections >= 2]
        tentative = [t for t in self.active if t.detections < 2]
        matched: dict[int, Track] = {}
        left = self._associate(confirmed, boxes, high, self.match_iou, matched)
        # Only tracks seen at the last detection may take an unsure face (ByteTrack's second pass).
        self._associate([t for t in left if t.missed == 0], boxes, low, self.low_match_iou, matched)
        high_left = [i for i in high if i not in matched]
        unmatched_tentative = self._associate(tentative, boxes, high_left, self.new_track_iou, matched)
        self._recover([t for t in left if t.missed > 0], boxes, [i for i in high_left if i not in matched], matched)
        # Seen once, then not at the next `tentative_misses` detections: noise, not a person.
        dropped = {id(t) for t in unmatched_tentative if t.missed + 1 > self.tentative_misses}
        for i in high:
            if i not in matched:
                matched[i] = self._new_track(boxes[i], timestamp)
        rows = sorted(matched)
        out, seen = [], set()
        if rows:
            tracks = [matched[i] for i in rows]
            mean, cov = kalman_update(np.stack([t.mean for t in tracks]), np.stack([t.cov for t in tracks]),
                                      to_cxcywh(boxes[rows]))
            # Every matched face's class probabilities at once (zeros for a face not classified:
            # a still frame the motion gate kept from the detector, which leaves the track's vote,
            # doubt and last detection as they were).
            probs = np.array([faces[i].probabilities or (0.0,) * len(CLASSES) for i in rows], np.float64)
            classified = probs.any(1)
            large = np.minimum(boxes[rows, 2] - boxes[rows, 0], boxes[rows, 3] - boxes[rows, 1]) >= self.min_face_px
            large &= classified
            votes = np.stack([t.probability_sum for t in tracks])
            votes[classified] = votes[classified] * self.vote_decay + probs[classified]
            # Two sure detections in a row of a class the vote does not show: the face has changed
            # (a mask put on or taken off); the vote restarts from them.
            before = np.stack([t.last_probabilities for t in tracks])
            label, sure = probs.argmax(1), probs.max(1) >= SURE
            turned = sure & (before.max(1) >= SURE) & (before.argmax(1) == label) & (votes.argmax(1) != label)
            votes[turned] = before[turned] * self.vote_decay + probs[turned]
            evidence = np.stack([t.evidence_sum for t in tracks]) + probs * large[:, None]
            last = np.where(classified[:, None], probs, before)
            totals = votes.sum(1, keepdims=True)
            shares = np.divide(votes, totals, out=np.zeros_like(votes), where=totals > 0).tolist()
            winners = votes.argmax(1)
            # Track.shown_label for all at once: in doubt, a sure last detection the vote does not show.
            shown = np.array(CLASSES, object)[winners]
            shown[(last.max(1) >= SURE) & (last.argmax(1) != winners)] = UNASSESSABLE
            voted = (totals[:, 0] > 0).tolist()
            for j, (i, track) in enumerate(zip(rows, tracks)):
                face = faces[i]
                seen.add(id(track))
                track.mean, track.cov = mean[j], cov[j]
                track.probability_sum, track.evidence_sum = votes[j], evidence[j]
                track.last_probabilities = last[j]
                track.evidence += int(large[j])
                track.box, track.last_seen, track.missed, track.score = face.box, timestamp, 0, face.score
                if scores[i] >= self.high_score:
                    track.sure_size = (face.box[2] - face.box[0], face.box[3] - face.box[1])
                track.detections += 1
                self._count_hit(track)
                if not self._shown(track):
                    continue
                out.append(Face(box=face.box, label=shown[j] if voted[j] else face.label,
                                probabilities=tuple(shares[j]) if voted[j] else face.probabilities,
                                score=face.score, track_id=track.track_id))
        still = []
        for track in self.active:
            if id(track) in dropped:
                continue
            if id(track) not in seen:
                track.missed += 1
                if track.missed == 1 and track.sure_size is not None:  # lost: back to its last sure size
                    track.mean = np.concatenate([track.mean[:2], track.sure_size, track.mean[4:]])
                if timestamp - track.last_seen > self.lost_after:
                    self._end(track)
                    continue
            still.append(track)
        self.active = still
        return out + self._coasting()

    def _new_track(self, box: np.ndarray, timestamp: float) -> Track:
        mean, cov = kalman_start(to_cxcywh(box))
        track = Track(self._next_id, tuple(float(v) for v in box), first_seen=timestamp, last_seen=timestamp,
                      min_evidence=self.min_evidence, mean=mean[0], cov=cov[0], state_time=timestamp)
        self._next_id += 1
        self.active.append(track)
        return track

    def _end(self, track: Track) -> None:
        if self.is_person(track):
            self.finished.append(track)

    def carry(self, timestamp: float) -> list[Face]:
        """The tracked faces moved to where their motion puts them, on a frame on which detection
        was skipped (a skipped frame is just an earlier timestamp for the next update).

        Each visible track counts the frame (hits, last_seen) as seen: with detection on every
        n-th frame, a person held for min_hits frames is still a person. Its vote is unchanged.
        Not after a gap over MOST_PREDICTED_GAP (a stalled stream): the people in view before it
        were counted seen at its end, those who left meanwhile too (their last_seen, and their
        event's minute, up to a camera's offline_after late). They are shown, not counted seen,
        on it (their people in view stay, as through the stall); the next detection says who is there.
        """
        stalled = any(timestamp - t.state_time > MOST_PREDICTED_GAP for t in self.active)
        self._predict(timestamp)
        self._view[1] += 1
        for track in self.active:
            if track.missed == 0 and not stalled:
                self._count_hit(track)
                track.last_seen = timestamp
        return [t.shown_face() for t in self.active if t.missed == 0 and self._shown(t)] + self._coasting()

    def _shown(self, track: Track) -> bool:
        """Whether a frame shows this track's face: from its second detection, or at once at the first."""
        return track.detections >= 2 or track.first_seen == self._first_detection

    def _coasting(self) -> list[Face]:
        """People missed at the last detection only, whose match before it was sure, at their
        predicted box (Face.missed): a face missed once at random is shown through the gap."""
        return [t.shown_face(missed=True) for t in self.active if t.missed == 1 and self.is_person(t)
                and (t.score is None or t.score >= self.high_score)]

    def current(self) -> list[Face]:
        """The faces in view as the tracker predicts them now (boxes from the motion model), tracks
        seen once included: what the motion gate feeds back stands for everything the detector found."""
        return [t.shown_face() for t in self.active if t.missed == 0]

    def _count_hit(self, track: Track) -> None:
        track.hits += 1
        if not track.started and self.is_person(track):
            track.started = True
            self._started.append(track)

    def in_view(self) -> list[Track]:
        """The people in view now (tracks that are people and were matched at the last detection)."""
        return [t for t in self.active if t.missed == 0 and self.is_person(t)]

    def take_started(self) -> list[Track]:
        """Tracks that became people since the last call: a person is in view."""
        started, self._started = self._started, []
        return started

    def take_finished(self) -> list[Track]:
        """People whose track ended since the last call, each handed out once and then forgotten.

        A finished track's vote no longer changes: it is what an event records, once.
        """
        finished, self.finished = self.finished, []
        return finished

    def flush(self, ended: bool = False) -> list[Track]:
        """End every active track now (a stream stopped or reconnects) and return the new people.

        ended: the clip itself has ended. If it was too short for anyone to become a person (under
        two detections or `min_hits` frames), the faces shown at its last detection are people all
        the same (their decision by the evidence rule, so mostly `unassessable`): a one-frame clip
        drew faces and counted nobody. A longer clip's people are left as they are.
        """
        short = ended and (self._view[0] < 2 or self._view[1] < self.min_hits)
        for track in self.active:
            if short and track.missed == 0 and self._shown(track):
                self.finished.append(track)
            else:
                self._end(track)
        self.active = []
        self._first_detection = None  # the view that comes back is shown as a new one
        self._view = [0, 0]
        return self.take_finished()

    def people(self) -> list[Track]:
        """Every person not handed out by take_finished() yet, ended or still active, by id."""
        return sorted(self.finished + [t for t in self.active if self.is_person(t)], key=lambda t: t.track_id)


"""FrameProcessor: one frame in, its faces out (detect every n-th frame, track, vote).

The one place where the detector, the tracker and the per-person vote meet, so that
`maskwatch detect`, the site's cameras and any other loop share the same behaviour:

    processor = FrameProcessor(detector, FaceTracker(), detect_every=2)
    for frame in frames:
        faces, detected = processor(frame)
"""

from __future__ import annotations

import inspect

from maskwatch.faces import Face
from maskwatch.video.sources import Frame
from maskwatch.video.tracker import FaceTracker, Track


class FrameProcessor:
    """Faces of each frame, with track ids and voted labels when a tracker is given.

    detector: anything with detect(image BGR uint8) -> list[Face].
    tracker: None for unrelated images (photos, folders): every frame is detected on its own.
    detect_every: with a tracker, run the detector on every n-th frame only (by frame index)
        and carry the tracked faces over the frames between; their `detected` is False.
    min_face: faces whose box's short side is under this many pixels are dropped before
        tracking (a camera's far background, where the classifier guesses).
    """

    def __init__(self, detector, tracker: FaceTracker | None = None, detect_every: int = 1,
                 min_face: float = 0.0) -> None:
        if detect_every < 1:
            raise ValueError(f"detect_every must be at least 1, got {detect_every}")
        if min_face < 0:
            raise ValueError(f"min_face must be 0 or more pixels, got {min_face}")
        self.detector, self.tracker, self.detect_every, self.min_face = detector, tracker, detect_every, min_face
        # With a tracker, ask the detector for its unsure faces too (down to the tracker's low_score):
        # they may continue a track through a blurred or half-hidden frame, never start one.
        self._detect_options = {}
        low_score = getattr(tracker, "low_score", None)
        if low_score is not None and "min_score" in inspect.signature(detector.detect).parameters:
            self._detect_options = {"min_score": low_score}

    def _detect(self, image) -> list[Face]:
        faces = self.detector.detect(image, **self._detect_options)
        if self.min_face:
            faces = [f for f in faces if min(f.width, f.height) >= self.min_face]
        return faces

    def __call__(self, frame: Frame) -> tuple[list[Face], bool]:
        """(faces, detected): detected is False when the faces were carried over by the tracker."""
        if self.tracker is None:
            return self._detect(frame.image), True
        if frame.index % self.detect_every:
            return self.tracker.carry(frame.timestamp), False
        return self.tracker.update(self._detect(frame.image), frame.timestamp), True

    def people(self) -> list[Track]:
        """The people decided so far (tracks long enough to vote on), finished or active."""
        return self.tracker.people() if self.tracker is not None else []

    def take_started_people(self) -> list[Track]:
        """People who came into view since the last call (their track just got long enough)."""
        return self.tracker.take_started() if self.tracker is not None else []

    def take_finished_people(self) -> list[Track]:
        """People whose track ended since the last call: their vote is final (one event each)."""
        if self.tracker is None:
            return []
        return self.tracker.take_finished()

"""FrameProcessor: one frame in, its faces out (detect every n-th frame, track, vote).

The one place where the detector, the tracker and the per-person vote meet, so that
`maskwatch detect`, the site's cameras and any other loop share the same behaviour:

    processor = FrameProcessor(detector, FaceTracker(), detect_every=2)
    for frame in frames:
        faces, detected = processor(frame)
"""

from __future__ import annotations

import inspect
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from maskwatch.data.images import check_bgr
from maskwatch.faces import Face
from maskwatch.video.camera_motion import CameraMotion
from maskwatch.video.motion import MotionDetector
from maskwatch.data.grey import grey_reading
from maskwatch.video.sources import Frame
from maskwatch.video.tracker import FaceTracker, Track, to_xyxy

if TYPE_CHECKING:  # for the annotation only: the frame loop loads no detector module itself
    from maskwatch.detection.detector import FaceFinder


class FrameProcessor:
    """Faces of each frame, with track ids and voted labels when a tracker is given.

    detector: a Detector, or anything with detect(image BGR uint8) -> list[Face] (a FaceFinder).
    tracker: None for unrelated images (photos, folders): every frame is detected on its own.
    detect_every: with a tracker, run the detector on every n-th frame only (by frame index)
        and carry the tracked faces over the frames between; their `detected` is False.
    min_face: faces whose box's short side is under this many pixels are dropped before
        tracking (a camera's far background, where the classifier guesses).
    motion: with a tracker, a MotionDetector that gates the detector: a frame due for detection
        reaches it only when something moved since the last detection (or the whole view changed
        and the motion detector recalibrated), while a track in view is too short to be a person
        (as without gating, only the detector confirms a face), or when `motion.settings.full_check`
        seconds passed without a detection while anyone is tracked (a person standing still), or
        `empty_check` seconds while nobody is. Otherwise the faces of the last detection stand
        for this frame's: tracks in view carry on, lost ones count a miss.
    camera_motion: with a tracker, a CameraMotion for a camera that moves (a hand-held video):
        on every frame the tracks are first moved by how the whole view moved since the last, so
        that both the faces carried over and the predictions matched at detection follow it.

    detections counts the frames that reached the detector, gated those the motion gate spared,
    grey_detections those of them that were grey (an infrared camera's: see video/night.py), grey
    says whether the last of them was, and grey_reading the same, None where it could not tell (too
    dark or flat, no face to tell by: a camera's grey-or-colour turn waits for a frame that tells).
    """

    def __init__(self, detector: FaceFinder, tracker: FaceTracker | None = None, detect_every: int = 1,
                 min_face: float = 0.0, motion: MotionDetector | None = None,
                 camera_motion: CameraMotion | None = None) -> None:
        if detect_every < 1:
            raise ValueError(f"detect_every must be at least 1, got {detect_every}")
        if min_face < 0:
            raise ValueError(f"min_face must be 0 or more pixels, got {min_face}")
        self.detector, self.tracker, self.detect_every, self.min_face = detector, tracker, detect_every, min_face
        self.motion = motion if tracker is not None else None
        self.camera_motion = camera_motion if tracker is not None else None
        self.detections = 0
        self.gated = 0
        self.grey_detections, self.grey = 0, False
        self.grey_reading: bool | None = None
        self._found: list[Face] = []  # every face of the last detection, shown or not
        self._unsure = np.zeros((0, 4))  # the last detection's candidates under its cut-off (BLUR_FLOOR on)
        self._moved = False  # motion seen since the last detection
        self._last_detection: float | None = None  # timestamp of the last frame that reached the detector
        self._size: tuple[int, int] | None = None  # (width, height) of the last frame
        # With a tracker, ask the detector for its unsure faces too (down to the tracker's low_score):
        # they may continue a track through a blurred or half-hidden frame, never start one.
        self._detect_options = {}
        low_score = getattr(tracker, "low_score", None)
        detect = getattr(detector, "detect", None)  # None until a site's worker is given its detector
        if low_score is not None and detect is not None and "min_score" in inspect.signature(detect).parameters:
            self._detect_options = {"min_score": low_score}
        # The shipped detector also says its candidates under the cut-off (blurred, never shown);
        # a detector without them (tests' fakes) has none.
        self._with_unsure = hasattr(detector, "detect_and_unsure")

    def _detect(self, image) -> list[Face]:
        self.detections += 1
        if self._with_unsure:
            faces, self._unsure = self.detector.detect_and_unsure(image, **self._detect_options)
        else:
            faces = self.detector.detect(image, **self._detect_options)
        self.grey_reading = grey_reading(image, [f.box for f in faces])  # a colour face in a grey view: colour
        self.grey = bool(self.grey_reading)
        self.grey_detections += self.grey
        self._found = faces
        if self.min_face:
            faces = [f for f in faces if min(f.width, f.height) >= self.min_face]
        return faces

    def hidden_boxes(self) -> np.ndarray:
        """Boxes (N x 4 xyxy) of faces in view that the frame may not show, for blurring: the
        last detection's candidates under its cut-off, every face it found and every track's
        predicted box (shown ones among them: blurring twice is harmless, leaving one sharp is
        not). Bare boxes, built at once: this runs on every frame, whether or not a sink blurs."""
        if self.tracker is None:
            return self._unsure
        found = np.array([f.box for f in self._found], np.float64).reshape(-1, 4)
        predicted = to_xyxy([t.mean[:4] for t in self.tracker.active])  # every track has its Kalman state
        return np.concatenate([self._unsure, found, predicted])

    def __call__(self, frame: Frame) -> tuple[list[Face], bool]:
        """(faces, detected): detected is False when the faces were carried over by the tracker.

        A frame the detector cannot read (grey, BGRA, 16-bit) is refused here, in check_bgr's one
        line with the fix, before the motion gate or the camera's motion read it: an H x W x 1 frame
        was OpenCV's channel error from inside them. maskwatch's readers give BGR frames, of a
        greyscale video too (OpenCV converts)."""
        if not all(hasattr(frame, name) for name in ("index", "timestamp", "image")):  # a bare image failed on `index`
            hint = "; one image alone: detector.detect(image)" if isinstance(frame, np.ndarray) else ""
            raise TypeError(f"FrameProcessor takes a maskwatch.video.sources.Frame(index, timestamp, image, name), "
                            f"got {type(frame).__name__}{hint}")
        check_bgr(frame.image, f"frame {getattr(frame, 'name', frame.index)!r}")
        if self.tracker is None:
            return self._detect(frame.image), True
        size = (frame.image.shape[1], frame.image.shape[0])
        if self._size is not None and size != self._size:
            self._resized(size[0] / self._size[0], size[1] / self._size[1])
        self._size = size
        if self.camera_motion is not None:  # before anything is predicted or matched on this frame
            if self.tracker.active:
                self.tracker.warp(self.camera_motion.estimate(frame.image))
            else:  # nobody to move: only keep the frame the next estimate starts from
                self.camera_motion.remember(frame.image)
        if self.motion is not None and (self.motion.detect(frame.image) or self.motion.recalibrated):
            self._moved = True  # a global change (lights, a cut) is checked once too: anything may have changed
        if frame.index % self.detect_every:
            return self.tracker.carry(frame.timestamp), False
        if self.motion is not None and not self._due(frame.timestamp):
            # Nothing moved: the detector would find the faces it found last time. They go through
            # the tracker as such (without probabilities: the votes stay as they are), so a track
            # already lost keeps counting misses and ends as it would have with the detector.
            self.gated += 1
            still = [replace(face, probabilities=None) for face in self.tracker.current()]
            return self.tracker.update(still, frame.timestamp), False
        self._moved, self._last_detection = False, frame.timestamp
        return self.tracker.update(self._detect(frame.image), frame.timestamp), True

    def _resized(self, sx: float, sy: float) -> None:
        """The stream came back at another resolution: the tracks and the last detection's boxes
        follow it (the same view, the same people), and the next frame due is detected afresh."""
        self.tracker.rescale(sx, sy)
        factor = np.array([sx, sy, sx, sy])
        self._found = [replace(face, box=tuple(float(v) for v in np.asarray(face.box) * factor)) for face in self._found]
        self._unsure = self._unsure * factor
        self._moved = True

    def _due(self, timestamp: float) -> bool:
        """Whether the motion gate lets this frame through to the detector."""
        if self._moved or self._last_detection is None:
            return True
        if any(t.missed == 0 and not self.tracker.is_person(t) for t in self.tracker.active):
            return True  # a face is not a person until the detector itself has seen it again
        settings = self.motion.settings
        period = settings.full_check if self.tracker.active else settings.empty_check
        return timestamp - self._last_detection >= period

    def take_started_people(self) -> list[Track]:
        """People who came into view since the last call (their track just got long enough)."""
        return self.tracker.take_started() if self.tracker is not None else []

    def take_finished_people(self) -> list[Track]:
        """People whose track ended since the last call: their vote is final (one event each)."""
        if self.tracker is None:
            return []
        return self.tracker.take_finished()

    def flush_people(self, ended: bool = False) -> list[Track]:
        """End every track now (the stream stopped or was lost; `ended`: the clip ended, see
        FaceTracker.flush): the people among them, decided.
        The view that comes back may be another, so its first frame is detected and the motion
        gate starts afresh (an empty view is otherwise checked only every `empty_check`)."""
        self._last_detection, self._moved = None, False
        if self.motion is not None:
            self.motion.average = None
        if self.camera_motion is not None:
            self.camera_motion.reset()
        return self.tracker.flush(ended) if self.tracker is not None else []

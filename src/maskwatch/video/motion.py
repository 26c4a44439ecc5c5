"""Motion gating: run the face detector only when something in the camera's view moves.

A store's cameras mostly watch empty aisles. MotionDetector compares a small grey copy of each
analysed frame (`height` pixels high, blurred) with a running average of the frames before
(cv2.accumulateWeighted), thresholds the difference, dilates it and keeps the contours larger
than `contour_area` pixels of that small frame, outside the masked polygons (a clock, a TV).
When most of the frame changes at once (lights switching on, the camera's exposure jumping),
that is no moving region: the average is reset to the new frame (recalibration) and
`recalibrated` is set, so that the caller can check the new view once (FrameProcessor does). The idea and the defaults follow Frigate's ImprovedMotionDetector.

    motion = MotionDetector(MotionSettings())
    boxes = motion.detect(bgr_frame)   # moving regions, in the frame's pixels (empty: still)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np


@dataclass(frozen=True)
class MotionSettings:
    """What a camera's `motion:` section sets (site/config/cameras.py validates it).

    threshold: least change of a pixel's brightness (0-255) from its running average that counts.
    contour_area: least area of a moving region, in pixels of the small grey frame (`height` high).
    height: the small frame's height in pixels (its width keeps the aspect ratio).
    alpha: weight of each new frame in the running average (higher forgets faster).
    recalibrate: share of the frame that moving at once means a global change, not a person.
    masks: polygons in 0-1 of width and height whose pixels never count as motion.
    full_check: seconds after which the detector runs on a still frame anyway while anyone is
        tracked, so a person who stands still is not lost.
    empty_check: the same for a view where nobody is tracked: nobody walks in without moving, so
        this check only catches what the motion detector missed, and can be rare.
    """

    threshold: int = 25
    contour_area: float = 10.0
    height: int = 100
    alpha: float = 0.2
    recalibrate: float = 0.7
    masks: tuple[tuple[tuple[float, float], ...], ...] = field(default_factory=tuple)
    full_check: float = 5.0
    empty_check: float = 30.0


class MotionDetector:
    """Moving regions of a camera's frames, against a running average of the frames before."""

    def __init__(self, settings: MotionSettings = MotionSettings()) -> None:
        if not 0 < settings.threshold < 256:
            raise ValueError(f"threshold must be 1-255, got {settings.threshold}")
        if not 0 < settings.alpha <= 1:
            raise ValueError(f"alpha must be in (0, 1], got {settings.alpha}")
        if not 0 < settings.recalibrate <= 1:
            raise ValueError(f"recalibrate must be in (0, 1], got {settings.recalibrate}")
        if settings.height < 8:
            raise ValueError(f"height must be at least 8 pixels, got {settings.height}")
        self.settings = settings
        self.average: np.ndarray | None = None  # float32, the small frame's running average
        self.recalibrations = 0
        self.recalibrated = False  # whether the last frame recalibrated the average
        self._keep: np.ndarray | None = None  # uint8 0/255: 0 where a mask hides motion
        self._size: tuple[int, int] | None = None  # (width, height) of the frames seen

    def small(self, image: np.ndarray) -> np.ndarray:
        """The frame as the detector compares it: grey, `height` high, blurred (float32)."""
        h, w = image.shape[:2]
        height = self.settings.height
        width = max(8, round(w * height / h))
        grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
        grey = cv2.resize(grey, (width, height), interpolation=cv2.INTER_AREA)
        return cv2.GaussianBlur(grey, (3, 3), 0).astype(np.float32)

    def detect(self, image: np.ndarray) -> list[tuple[int, int, int, int]]:
        """Boxes (x0, y0, x1, y1, frame pixels) of the regions that moved; [] for a still frame.

        The first frame, and a frame after a change of resolution, set the average and are still.
        """
        h, w = image.shape[:2]
        small = self.small(image)
        self.recalibrated = False
        if self.average is None or self._size != (w, h):
            self._size = (w, h)
            self._keep = self._mask(small.shape[1], small.shape[0])
            self.average = small.copy()
            return []
        delta = cv2.absdiff(small, self.average)
        cv2.accumulateWeighted(small, self.average, self.settings.alpha)
        moving = (delta >= self.settings.threshold).astype(np.uint8) * 255
        if self._keep is not None:
            moving &= self._keep
        moving = cv2.dilate(moving, None, iterations=2)
        if cv2.countNonZero(moving) > self.settings.recalibrate * moving.size:
            self.average = small.copy()  # a global change (lights, exposure): start again from here
            self.recalibrations += 1
            self.recalibrated = True
            return []
        contours, _ = cv2.findContours(moving, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        sx, sy = w / small.shape[1], h / small.shape[0]
        boxes = []
        for contour in contours:
            if cv2.contourArea(contour) < self.settings.contour_area:
                continue
            x, y, bw, bh = cv2.boundingRect(contour)
            boxes.append((int(x * sx), int(y * sy), min(w, int(np.ceil((x + bw) * sx))),
                          min(h, int(np.ceil((y + bh) * sy)))))
        return boxes

    def _mask(self, width: int, height: int) -> np.ndarray | None:
        if not self.settings.masks:
            return None
        keep = np.full((height, width), 255, np.uint8)
        for polygon in self.settings.masks:
            points = np.array([[x * width, y * height] for x, y in polygon], np.float32).round().astype(np.int32)
            cv2.fillPoly(keep, [points], 0)
        return keep

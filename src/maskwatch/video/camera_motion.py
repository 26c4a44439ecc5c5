"""Camera motion: how the whole view moved between two frames of a hand-held video.

A fixed camera's faces move by themselves; a hand-held phone's also move with the camera, by a few
pixels a frame, shaking, which no constant-velocity model predicts, and a small face that
moves its own width between detections no longer overlaps its track. Following BoT-SORT
(Aharon et al., 2022, camera motion compensation), CameraMotion tracks corner features from one
frame to the next (OpenCV's pyramidal Lucas-Kanade on a small grey copy) and fits a rotation,
scale and shift to them with RANSAC, so that moving people, while a minority of the corners, do
not count; FaceTracker.warp moves its tracks by it. Where the people hold most of the corners (a
plain wall behind them), their motion is taken for the camera's: an option for moving cameras,
not a default (docs/bench-tracking.md, "A moving camera").

    camera = CameraMotion()
    affine = camera.estimate(bgr_frame)   # 2 x 3, from the previous call's frame to this one
"""

from __future__ import annotations

import cv2
import numpy as np

IDENTITY = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


class CameraMotion:
    """The view's motion from the previous call's frame to this one, as a 2 x 3 affine (a
    similarity: rotation, one scale, shift) in the frame's pixels; the identity when it cannot be
    told (the first frame, a changed frame size, too few corners followed, a cut).

    width: the grey copy's width in pixels (the estimate is scaled back to the frame's).
    corners: how many corners to follow; min_inliers: fewest that must agree.
    """

    def __init__(self, width: int = 480, corners: int = 200, min_inliers: int = 12) -> None:
        if width < 32 or corners < 4 or min_inliers < 3:
            raise ValueError(f"need width >= 32, corners >= 4, min_inliers >= 3; got {width}, {corners}, {min_inliers}")
        self.width, self.corners, self.min_inliers = width, corners, min_inliers
        self._previous: np.ndarray | None = None
        self._shape: tuple[int, ...] | None = None

    def estimate(self, image: np.ndarray) -> np.ndarray:
        previous, small, scale = self._advance(image)
        if previous is None:
            return IDENTITY.copy()
        points = cv2.goodFeaturesToTrack(previous, self.corners, 0.01, 8)
        if points is None or len(points) < self.min_inliers:
            return IDENTITY.copy()
        moved, status, _ = cv2.calcOpticalFlowPyrLK(previous, small, points, None)
        followed = status.ravel() == 1
        if followed.sum() < self.min_inliers:
            return IDENTITY.copy()
        affine, inliers = cv2.estimateAffinePartial2D(points[followed], moved[followed], method=cv2.RANSAC,
                                                      ransacReprojThreshold=1.0)
        if affine is None or inliers is None or inliers.sum() < self.min_inliers:
            return IDENTITY.copy()
        affine[:, 2] /= scale  # the shift back in the frame's pixels; rotation and scale are unitless
        return affine

    def remember(self, image: np.ndarray) -> None:
        """Keep `image` as the frame the next estimate starts from, measuring nothing: while no
        track is there to move, following the corners would be work for nobody."""
        self._advance(image)

    def _advance(self, image: np.ndarray) -> tuple[np.ndarray | None, np.ndarray, float]:
        """The previous frame's grey copy (None if none, or of another size), this frame's, and its
        scale; this frame becomes the previous one."""
        small, scale = self._grey(image)
        previous = self._previous if self._shape == image.shape[:2] else None
        self._previous, self._shape = small, image.shape[:2]
        return previous, small, scale

    def _grey(self, image: np.ndarray) -> tuple[np.ndarray, float]:
        grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
        scale = min(1.0, self.width / grey.shape[1])
        if scale < 1.0:
            grey = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        return grey, scale

    def reset(self) -> None:
        """Forget the last frame (the stream was lost: the next view may be another)."""
        self._previous = self._shape = None

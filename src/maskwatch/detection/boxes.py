"""Mapping a detector's boxes onto an annotation convention (the IoU arithmetic is in geometry.py)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class BoxMapping:
    """Maps a detector's boxes onto an annotation convention (fitted on training photos).

    Centre shifts are fractions of the box's width/height; sizes are scaled.
    """

    dx: float = 0.0
    dy: float = 0.0
    sw: float = 1.0
    sh: float = 1.0

    def apply(self, boxes: np.ndarray) -> np.ndarray:
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        cx = (boxes[:, 0] + boxes[:, 2]) / 2 + self.dx * w
        cy = (boxes[:, 1] + boxes[:, 3]) / 2 + self.dy * h
        w, h = w * self.sw, h * self.sh
        return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)

    @classmethod
    def fit(cls, detected: np.ndarray, annotated: np.ndarray) -> BoxMapping:
        """Median offsets and scales of matched (detected, annotated) box pairs: robust to outliers."""
        d, a = np.asarray(detected, np.float64), np.asarray(annotated, np.float64)
        if len(d) == 0:
            return cls()
        dw, dh = d[:, 2] - d[:, 0], d[:, 3] - d[:, 1]
        aw, ah = a[:, 2] - a[:, 0], a[:, 3] - a[:, 1]
        dx = np.median(((a[:, 0] + a[:, 2]) - (d[:, 0] + d[:, 2])) / 2 / dw)
        dy = np.median(((a[:, 1] + a[:, 3]) - (d[:, 1] + d[:, 3])) / 2 / dh)
        return cls(dx=float(dx), dy=float(dy), sw=float(np.median(aw / dw)), sh=float(np.median(ah / dh)))

    def to_dict(self) -> dict:
        return asdict(self)

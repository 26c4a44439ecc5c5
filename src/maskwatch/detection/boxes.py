"""Box arithmetic on N x 4 xyxy arrays: IoU, matching, and mapping between box conventions."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of N x 4 and M x 4 xyxy boxes -> N x M."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def greedy_match(truth: np.ndarray, found: np.ndarray, min_iou: float) -> list[tuple[int, int]]:
    """Pairs (truth index, found index), best IoU first, each box used once, IoU >= min_iou."""
    ious = iou_matrix(truth, found)
    pairs = []
    if ious.size == 0:
        return pairs
    order = np.dstack(np.unravel_index(np.argsort(-ious, axis=None), ious.shape))[0]
    used_t, used_f = set(), set()
    for t, f in order:
        if ious[t, f] < min_iou:
            break
        if t not in used_t and f not in used_f:
            used_t.add(t)
            used_f.add(f)
            pairs.append((int(t), int(f)))
    return pairs


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

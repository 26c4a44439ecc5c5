"""Box arithmetic on N x 4 xyxy arrays: IoU and matching. Beside faces.py, below every layer
that needs it: the detector's evaluation, the tracker, the benchmarks."""

from __future__ import annotations

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

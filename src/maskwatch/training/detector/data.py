"""Training crops for the face detector: scale-augmented photos and CenterNet targets.

Every sample is one square crop of a training photo, rescaled so that one chosen face (the
anchor) has a size drawn from the whole range a camera gives: from 6-px faces in a crowd to a
face filling the crop. Masked and bare faces are both ordinary positives, boxed as this
dataset boxes them (mask and chin included), so the size and offset heads learn that
convention directly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from maskwatch.data.voc import VocAnnotation

STRIDE = 4


@dataclass(frozen=True)
class SamplerConfig:
    """crop: side of the square training crop, in pixels (a multiple of 32).
    small_faces: (min, max) anchor face size in pixels for crowd samples, drawn log-uniform.
    closeup_share: share of samples whose anchor is a large face scaled up to fill
    closeup_fill (fraction of the crop side). min_photo_fill: the scaled photo's long side is at
    least this fraction of the crop.
    """

    crop: int = 384
    small_faces: tuple[float, float] = (6.0, 96.0)
    closeup_share: float = 0.25
    closeup_fill: tuple[float, float] = (0.3, 0.9)
    closeup_min_face: float = 24.0
    min_photo_fill: float = 0.9


@dataclass(frozen=True)
class TrainingPhoto:
    image: np.ndarray   # H x W x 3 RGB uint8
    boxes: np.ndarray   # N x 4 xyxy pixels, float32


def load_training_photos(data_dir: Path, annotations: list[VocAnnotation]) -> list[TrainingPhoto]:
    """The photos (as RGB) and their annotated boxes, clipped to the image."""
    from maskwatch.data.photos import annotated_faces, read_photo

    photos = []
    for ann in annotations:
        faces = annotated_faces(ann)
        if not faces:
            continue
        boxes = np.array([f.box for f in faces], np.float32).reshape(-1, 4)
        image = cv2.cvtColor(read_photo(data_dir, ann), cv2.COLOR_BGR2RGB)
        photos.append(TrainingPhoto(image, boxes))
    return photos


class CropSampler:
    """Random training crops with their targets; deterministic for a given seed."""

    def __init__(self, photos: list[TrainingPhoto], config: SamplerConfig = SamplerConfig(), seed: int = 0) -> None:
        if config.crop % 32:
            raise ValueError(f"crop must be a multiple of 32, got {config.crop}")
        self.photos, self.config = photos, config
        self.rng = np.random.default_rng(seed)
        # Close-ups are made from faces large enough not to be a blur when scaled up.
        self.large = [(p, i) for p, photo in enumerate(photos)
                      for i, side in enumerate(_short_sides(photo.boxes)) if side >= config.closeup_min_face]

    def sample(self) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """One crop (3 x S x S float32 RGB 0..255) and its targets (see `render_targets`)."""
        cfg, rng = self.config, self.rng
        if self.large and rng.random() < cfg.closeup_share:
            p, anchor = self.large[rng.integers(len(self.large))]
            photo = self.photos[p]
            target = rng.uniform(*cfg.closeup_fill) * cfg.crop
        else:
            photo = self.photos[rng.integers(len(self.photos))]
            anchor = int(rng.integers(len(photo.boxes)))
            lo, hi = cfg.small_faces
            target = math.exp(rng.uniform(math.log(lo), math.log(hi)))
        box = photo.boxes[anchor]
        scale = target / max(box[2] - box[0], box[3] - box[1], 1.0)
        # Keep the scaled photo at least as large as most of the crop: a small face in a vast
        # empty border teaches little. Small faces come from photos that hold small faces.
        scale = max(scale, cfg.min_photo_fill * cfg.crop / max(photo.image.shape[:2]))
        crop, boxes = self._crop(photo, box, scale)
        crop = _photometric(crop, rng)
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
            boxes = boxes.copy()
            boxes[:, [0, 2]] = cfg.crop - boxes[:, [2, 0]]
        return np.ascontiguousarray(crop.transpose(2, 0, 1), dtype=np.float32), render_targets(boxes, cfg.crop)

    def _crop(self, photo: TrainingPhoto, anchor: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
        """The photo scaled by `scale`, cut to a crop that holds the anchor face at a random place."""
        size, rng = self.config.crop, self.rng
        image = photo.image
        if scale < 1:  # shrink with area averaging first: warpAffine alone would alias
            new_w, new_h = max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale))
            sx, sy = new_w / image.shape[1], new_h / image.shape[0]
            image = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA)
            step = 1.0
        else:
            sx = sy = step = scale
        x0, y0, x1, y1 = anchor * np.array([sx, sy, sx, sy])
        left = _edge(rng, x0, x1, size, photo.image.shape[1] * sx)
        top = _edge(rng, y0, y1, size, photo.image.shape[0] * sy)
        fill = tuple(int(v) for v in rng.integers(0, 256, 3))
        warp = np.array([[step, 0, -left], [0, step, -top]], np.float32)
        crop = cv2.warpAffine(image, warp, (size, size), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=fill)
        boxes = photo.boxes * np.array([sx, sy, sx, sy], np.float32) - np.array([left, top, left, top], np.float32)
        return crop, boxes


def _edge(rng: np.random.Generator, start: float, end: float, size: int, extent: float) -> float:
    """A random crop edge keeping [start, end] inside the crop, and the crop inside the image where it fits."""
    lo, hi = min(end - size, start), max(end - size, start)
    inside = (max(lo, 0.0), min(hi, extent - size)) if extent >= size else (max(lo, extent - size), min(hi, 0.0))
    if inside[0] <= inside[1]:
        lo, hi = inside
    return float(rng.uniform(lo, hi))


def _short_sides(boxes: np.ndarray) -> np.ndarray:
    return np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])


def _photometric(crop: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Light, colour and sharpness changes a camera brings: contrast, brightness, grey, blur, noise."""
    out = crop.astype(np.float32)
    out = out * rng.uniform(0.7, 1.3) + rng.uniform(-30, 30)
    if rng.random() < 0.1:
        out[:] = out.mean(axis=2, keepdims=True)
    if rng.random() < 0.2:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.5, 1.5))
    if rng.random() < 0.2:
        out = out + rng.normal(0, rng.uniform(2, 8), out.shape).astype(np.float32)
    return np.clip(out, 0, 255)


def render_targets(boxes: np.ndarray, size: int, min_visible: float = 0.5) -> dict[str, np.ndarray]:
    """CenterNet targets at stride 4 for xyxy boxes in crop pixels.

    heatmap (1 x h x w): a Gaussian peak of 1 at each face centre; weight (1 x h x w): 0 over
    faces cut by the crop edge (under `min_visible` of the box inside), where the heatmap loss
    is ignored; size (2 x h x w): log(height / 4), log(width / 4); offset (2 x h x w): centre
    minus its cell, so that centre = (cell + offset + 0.5) * 4 as `decode` reads it;
    mask (1 x h x w): 1 at centre cells, where size and offset are learned.
    """
    h = w = size // STRIDE
    heatmap = np.zeros((1, h, w), np.float32)
    weight = np.ones((1, h, w), np.float32)
    sizes = np.zeros((2, h, w), np.float32)
    offsets = np.zeros((2, h, w), np.float32)
    mask = np.zeros((1, h, w), np.float32)
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    for x0, y0, x1, y1 in boxes[np.argsort(-areas)]:  # small faces last: they win a shared cell
        bw, bh = x1 - x0, y1 - y0
        if bw <= 0 or bh <= 0:
            continue
        cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, size), min(y1, size)
        visible = max(cx1 - cx0, 0) * max(cy1 - cy0, 0) / (bw * bh)
        if visible <= 0:
            continue
        cx, cy = (x0 + x1) / 2 / STRIDE, (y0 + y1) / 2 / STRIDE
        ix, iy = int(math.floor(cx)), int(math.floor(cy))
        if visible < min_visible or not (0 <= ix < w and 0 <= iy < h):
            weight[0, int(cy0 // STRIDE):int(math.ceil(cy1 / STRIDE)), int(cx0 // STRIDE):int(math.ceil(cx1 / STRIDE))] = 0
            continue
        _draw_gaussian(heatmap[0], ix, iy, _radius(bh / STRIDE, bw / STRIDE))
        sizes[:, iy, ix] = (math.log(bh / STRIDE), math.log(bw / STRIDE))
        offsets[:, iy, ix] = (cy - iy - 0.5, cx - ix - 0.5)
        mask[0, iy, ix] = 1
    return {"heatmap": heatmap, "weight": weight, "size": sizes, "offset": offsets, "mask": mask}


def _radius(height: float, width: float, min_overlap: float = 0.7) -> int:
    """CenterNet's Gaussian radius: the largest corner shift that keeps IoU >= min_overlap."""
    a1, b1, c1 = 1, height + width, width * height * (1 - min_overlap) / (1 + min_overlap)
    r1 = (b1 - math.sqrt(b1 ** 2 - 4 * a1 * c1)) / 2
    a2, b2, c2 = 4, 2 * (height + width), (1 - min_overlap) * width * height
    r2 = (b2 - math.sqrt(b2 ** 2 - 4 * a2 * c2)) / 2
    a3, b3, c3 = 4 * min_overlap, -2 * min_overlap * (height + width), (min_overlap - 1) * width * height
    r3 = (b3 + math.sqrt(b3 ** 2 - 4 * a3 * c3)) / 2
    return max(0, int(min(r1, r2, r3)))


def _draw_gaussian(heatmap: np.ndarray, x: int, y: int, radius: int) -> None:
    sigma = (2 * radius + 1) / 6
    ys, xs = np.ogrid[-radius:radius + 1, -radius:radius + 1]
    g = np.exp(-(xs * xs + ys * ys) / (2 * sigma * sigma))
    h, w = heatmap.shape
    left, right = min(x, radius), min(w - x, radius + 1)
    top, bottom = min(y, radius), min(h - y, radius + 1)
    region = heatmap[y - top:y + bottom, x - left:x + right]
    patch = g[radius - top:radius + bottom, radius - left:radius + right]
    np.maximum(region, patch, out=region)

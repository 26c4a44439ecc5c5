"""Scenes built from the bundled sample photos: the same view with its people and without them.

empty_view(photo) inpaints every annotated face (with a margin) so the photo shows the place
with nobody's face in it: a cut from it to the photo changes only where the people are, as when
people walk into a camera's view (a cut to another photo would change the whole frame).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from maskwatch.data.voc import load_voc_annotation

SAMPLE = Path(__file__).resolve().parents[1] / "sample" / "face-mask-detection"


def sample_photos(count: int | None = None, size: tuple[int, int] = (640, 480)) -> list[tuple[np.ndarray, int]]:
    """(photo resized to `size`, number of annotated faces) of the sample's photos, sorted by name."""
    out = []
    for xml in sorted((SAMPLE / "annotations").glob("*.xml"))[:count]:
        annotation = load_voc_annotation(xml)
        out.append((cv2.resize(cv2.imread(str(SAMPLE / "images" / annotation.filename)), size),
                    len(annotation.objects)))
    return out


def empty_view(photo_index: int, size: tuple[int, int] = (640, 480), margin: float = 0.6) -> np.ndarray:
    """Sample photo `photo_index` (sorted by name) at `size` with its faces inpainted away."""
    xml = sorted((SAMPLE / "annotations").glob("*.xml"))[photo_index]
    annotation = load_voc_annotation(xml)
    image = cv2.imread(str(SAMPLE / "images" / annotation.filename))
    mask = np.zeros(image.shape[:2], np.uint8)
    for obj in annotation.objects:
        x0, y0, x1, y1 = obj.box
        mx, my = (x1 - x0) * margin, (y1 - y0) * margin
        cv2.rectangle(mask, (int(x0 - mx), int(y0 - my)), (int(x1 + mx), int(y1 + my)), 255, -1)
    empty = cv2.inpaint(image, mask, 5, cv2.INPAINT_TELEA)
    return cv2.resize(empty, size)


def face_crop(photo_index: int, side: int = 160) -> np.ndarray:
    """The largest annotated face of a sample photo with its surroundings, `side` pixels square."""
    xml = sorted((SAMPLE / "annotations").glob("*.xml"))[photo_index]
    annotation = load_voc_annotation(xml)
    image = cv2.imread(str(SAMPLE / "images" / annotation.filename))
    x0, y0, x1, y1 = max((o.box for o in annotation.objects), key=lambda b: (b[2] - b[0]) * (b[3] - b[1]))
    cx, cy, half = (x0 + x1) / 2, (y0 + y1) / 2, max(x1 - x0, y1 - y0) * 1.2
    h, w = image.shape[:2]
    crop = image[max(0, int(cy - half)):min(h, int(cy + half)), max(0, int(cx - half)):min(w, int(cx + half))]
    return cv2.resize(crop, (side, side))

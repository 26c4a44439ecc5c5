"""Close-up photos made from the dataset: one face filling most of a square frame.

The dataset's faces are tiny; doorway cameras and phone photos give faces of hundreds of
pixels. A close-up is a square cut around one of the largest annotated faces, with the context
the photo has (and a grey border where it runs out), resized so the face's long side fills
`fill` of a `size`-pixel frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from maskwatch.data.images import read_image
from maskwatch.data.photos import annotated_faces
from maskwatch.data.voc import VocAnnotation
from maskwatch.faces import Face


@dataclass(frozen=True)
class CloseUp:
    image: np.ndarray  # size x size x 3 BGR uint8
    face: Face         # the annotated face, in the close-up's pixels, with its label
    source: str        # the photo it was cut from


def largest_faces(annotations: list[VocAnnotation], count: int, min_side: float = 40.0) -> list[tuple[VocAnnotation, Face]]:
    """The `count` largest annotated faces (short side at least `min_side` px), at most one per photo."""
    best = []
    for ann in annotations:
        faces = [f for f in annotated_faces(ann) if min(f.width, f.height) >= min_side]
        if faces:
            best.append((ann, max(faces, key=lambda f: min(f.width, f.height))))
    best.sort(key=lambda pair: -min(pair[1].width, pair[1].height))
    return best[:count]


def make_closeup(image: np.ndarray, face: Face, fill: float, size: int = 1024) -> tuple[np.ndarray, Face]:
    """Cut a square around `face` whose side is the face's long side / fill, and resize it to `size`
    px: a BGR image (HxWx3 uint8) in, a `size` x `size` BGR close-up out (grey where it leaves the
    image) and the face with its box in the close-up's pixels."""
    x0, y0, x1, y1 = face.box
    side = max(x1 - x0, y1 - y0) / fill
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    scale = size / side
    warp = np.array([[scale, 0, size / 2 - cx * scale], [0, scale, size / 2 - cy * scale]], np.float32)
    out = cv2.warpAffine(image, warp, (size, size), flags=cv2.INTER_CUBIC,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=(128, 128, 128))
    box = (x0 * scale + warp[0, 2], y0 * scale + warp[1, 2], x1 * scale + warp[0, 2], y1 * scale + warp[1, 2])
    return out, Face(box=box, label=face.label).clipped(size, size)


def closeup_set(data_dir: Path, annotations: list[VocAnnotation], count: int = 60, size: int = 1024,
                fill: tuple[float, float] = (0.5, 0.9), seed: int = 0) -> list[CloseUp]:
    """Close-ups of the largest faces of these photos, each filling a random share in `fill`."""
    rng = np.random.default_rng(seed)
    out = []
    for ann, face in largest_faces(annotations, count):
        image = read_image(Path(data_dir) / "images" / ann.filename)
        frame, moved = make_closeup(image, face, float(rng.uniform(*fill)), size)
        out.append(CloseUp(frame, moved, ann.filename))
    return out


def closeups_found(detector, closeups: list[CloseUp]) -> np.ndarray:
    """Per close-up: did `detector.detect` (default cut-off) find its face at IoU 0.5?"""
    from maskwatch.detection.bootstrap import face_recall

    return np.array([face_recall(np.array([c.face.box]),
                                 np.array([f.box for f in detector.detect(c.image)]).reshape(-1, 4))[0]
                     for c in closeups], bool)

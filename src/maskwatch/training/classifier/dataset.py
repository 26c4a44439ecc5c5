"""A prepared work folder loaded into memory: crops as one uint8 array, labels, photos."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from maskwatch.data.crops import CropSpec
from maskwatch.data.prepare import PrepareError, read_faces_csv
from maskwatch.faces import CLASSES


@dataclass(frozen=True)
class CropDataset:
    """images: N x H x W x C uint8 (BGR or grey, C=1); labels: N class indices;
    sides: N short sides of the faces' boxes in the photo, in pixels (for size-binned metrics);
    long_sides: N long sides (a gate answers faces up to a long side)."""

    work: Path
    spec: CropSpec
    images: np.ndarray
    labels: np.ndarray
    face_ids: list[str]
    photos: list[str]
    sides: np.ndarray
    long_sides: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def label_names(self) -> list[str]:
        return [CLASSES[i] for i in self.labels]


def load_crop_dataset(work: Path | str) -> CropDataset:
    work = Path(work)
    meta_path = work / "prepare.json"
    if not meta_path.is_file():
        raise PrepareError(f"{work}: not a prepared folder (no prepare.json); run `maskwatch prepare`")
    spec = CropSpec(**json.loads(meta_path.read_text())["crop"])
    rows = read_faces_csv(work / "faces.csv")
    flag = cv2.IMREAD_GRAYSCALE if spec.grey else cv2.IMREAD_COLOR
    images = np.empty((len(rows), spec.size, spec.size, spec.channels), dtype=np.uint8)
    for i, row in enumerate(rows):
        crop = cv2.imread(str(work / row["crop"]), flag)
        if crop is None or crop.shape[:2] != (spec.size, spec.size):
            raise PrepareError(f"{work / row['crop']}: missing or wrong-size crop; prepare again")
        images[i] = crop.reshape(spec.size, spec.size, spec.channels)
    return crop_dataset(work, spec, rows, images)


def grey_copy(data: CropDataset) -> CropDataset:
    """The same faces with each colour crop made grey (its luminance in all three channels), as an
    infrared camera's frame gives them: the night model trains and is scored on these."""
    if data.spec.channels != 3:
        raise ValueError(f"{data.work}: grey copies are made of colour crops; prepare with --colour")
    images = np.stack([cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
                       for image in data.images]) if len(data.images) else data.images
    return replace(data, images=images)


def crop_dataset(work: Path, spec: CropSpec, rows: list[dict], images: np.ndarray) -> CropDataset:
    """A CropDataset of faces.csv rows and their crops (N x S x S x C uint8), in row order."""
    labels = np.array([CLASSES.index(r["label"]) for r in rows], dtype=np.int64)
    wh = np.array([(float(r["xmax"]) - float(r["xmin"]), float(r["ymax"]) - float(r["ymin"])) for r in rows]).reshape(-1, 2)
    return CropDataset(work=work, spec=spec, images=images, labels=labels,
                       face_ids=[r["face_id"] for r in rows], photos=[r["image"] for r in rows],
                       sides=wh.min(axis=1), long_sides=wh.max(axis=1))

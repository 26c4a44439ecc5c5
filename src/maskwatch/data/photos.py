"""The dataset's photos on either side of the per-photo split, with their annotated faces.

Detector training, fitting and evaluation all read whole photos; they take the photos from
here so that the photos the classifier was validated on stay held out for the detector too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from maskwatch.data.prepare import annotation_files
from maskwatch.data.split import split_faces
from maskwatch.data.voc import AnnotationError, VocAnnotation, load_voc_annotation
from maskwatch.faces import Face


@dataclass(frozen=True)
class PhotoSplit:
    train: list[VocAnnotation]
    val: list[VocAnnotation]


def photo_split(data_dir: Path, seed: int = 0, val_fraction: float = 0.2) -> PhotoSplit:
    """The dataset's photos on either side of the per-photo face split used for training.

    Faces are listed in the same order as `maskwatch prepare` lists them, so for a dataset
    whose images all read, the split is the very one in a work folder's split.csv for the same
    seed (tested).
    """
    annotations = []
    for path in annotation_files(data_dir):
        try:
            ann = load_voc_annotation(path)
        except AnnotationError:  # prepare skips such a file too (listed in its skipped.csv)
            continue
        if ann.filename_problem is None:  # and such a photo
            annotations.append(ann)
    labels, photos = [], []
    for ann in annotations:
        for obj in ann.objects:
            if ann.object_problem(obj) is None:
                labels.append(obj.label)
                photos.append(ann.filename)
    is_val = split_faces(labels, photos, by="photo", val_fraction=val_fraction, seed=seed)
    val_photos = {p for p, v in zip(photos, is_val) if v}
    return PhotoSplit(train=[a for a in annotations if a.filename not in val_photos],
                      val=[a for a in annotations if a.filename in val_photos])


def annotated_faces(ann: VocAnnotation) -> list[Face]:
    return [obj.to_face().clipped(ann.width, ann.height) for obj in ann.objects
            if ann.object_problem(obj) is None]

"""The dataset's photos on either side of the per-photo split, with their annotated faces.

Detector training, fitting and evaluation all read whole photos; they take the photos from
here so that the photos the classifier was validated on stay held out for the detector too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from maskwatch.data.images import ImageError, read_image
from maskwatch.data.prepare import annotation_files
from maskwatch.data.split import split_faces
from maskwatch.data.voc import AnnotationError, VocAnnotation, label_problem, load_voc_annotation
from maskwatch.faces import Face


@dataclass(frozen=True)
class PhotoSplit:
    train: list[VocAnnotation]
    val: list[VocAnnotation]


def photo_split(data_dir: Path, seed: int = 0, val_fraction: float = 0.2) -> PhotoSplit:
    """The dataset's photos on either side of the per-photo face split used for training.

    Faces are listed in the same order as `maskwatch prepare` lists them, so for a dataset
    whose images all read, the split is the very one in a work folder's split.csv for the same
    seed (tested). ValueError as `annotated_photos` says.
    """
    annotations = annotated_photos(data_dir)
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


def annotated_photos(data_dir: Path) -> list[VocAnnotation]:
    """Every annotated photo of the dataset, in `prepare`'s order.

    ValueError where a photo could not teach or score a detector: `prepare` passes over a face it
    cannot use, but a whole photo with that face in it would teach the detector the face as
    background (and count finding it as a mistake), and a file that does not read would leave its
    photo out in silence. Said with how many and the first of them, to fix or remove.
    """
    annotations, unusable = usable_annotations(data_dir)
    problems = [f"{path}: {problem}" for path, problems in unusable for problem in problems]
    if problems:
        raise ValueError(f"{data_dir}: {len(problems)} annotations a detector cannot use (first: {problems[0]}); a "
                         "photo is used whole, so its faces must all be labelled right: fix them or remove them")
    return annotations


def usable_annotations(data_dir: Path) -> tuple[list[VocAnnotation], list[tuple[Path, list[str]]]]:
    """The annotated photos a detector can use whole, in `prepare`'s order, and each XML file it
    cannot with its problems (`evaluate-detection --all-photos` scores the first and lists the
    second: a user's own photos, no split to keep whole)."""
    annotations, unusable = [], []
    for path in annotation_files(data_dir):
        try:
            ann = load_voc_annotation(path)
        except AnnotationError as err:
            unusable.append((path, [err.problem]))
            continue
        problems = ([ann.filename_problem] if ann.filename_problem is not None else
                    [f"object {obj.index}: {why}" for obj in ann.objects if (why := label_problem(obj)) is not None])
        if problems:
            unusable.append((path, problems))
        else:
            annotations.append(ann)
    return annotations, unusable


def read_photo(data_dir: Path, ann: VocAnnotation) -> np.ndarray:
    """The annotation's photo (BGR); ImageError also when it is not the size its <size> says: a
    phone photo turned by its EXIF orientation, or one resized, would put every box elsewhere
    (`prepare` skipped such a photo; the detector commands trained and scored on it)."""
    path = Path(data_dir) / "images" / ann.filename
    image = read_image(path)
    if image.shape[:2] != (ann.height, ann.width):
        raise ImageError(f"{path}: its annotation's <size> says {ann.width}x{ann.height} but the photo reads as "
                         f"{image.shape[1]}x{image.shape[0]} (turned by its EXIF orientation, or resized?): its "
                         "boxes would be in the wrong place; fix the annotation or the photo")
    return image


def annotated_faces(ann: VocAnnotation) -> list[Face]:
    return [obj.to_face().clipped(ann.width, ann.height) for obj in ann.objects
            if ann.object_problem(obj) is None]

"""`maskwatch evaluate-detection`: COCO mAP and face recall on the held-out photos.

The held-out photos are the validation side of the per-photo split (seed 0) that the shipped
classifier and box mapping were fitted without.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from maskwatch.progress import progress_bar

from maskwatch.data.images import read_image
from maskwatch.data.prepare import annotation_files
from maskwatch.data.split import split_faces
from maskwatch.data.voc import VocAnnotation, load_voc_annotation
from maskwatch.detection.boxes import greedy_match
from maskwatch.faces import CLASSES, Face


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
    annotations = [load_voc_annotation(p) for p in annotation_files(data_dir)]
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


def evaluate_detection(data_dir: Path, detector, annotations: list[VocAnnotation],
                       progress: bool = True) -> dict:
    """COCO mAP@0.5 and mAP@0.5:0.95 per class (pycocotools) and face recall at IoU 0.5.

    Each detected face enters COCO once per class with score = detector score x class
    probability, as multi-label detectors are scored. Face recall counts annotated faces
    matched one-to-one by a detected face (class-agnostic) at IoU >= 0.5, over every candidate
    the detector keeps (as COCO recall is); `default_cutoff` gives recall and precision of
    what `detect` returns by default.
    """
    from pycocotools.coco import COCO

    images, gt, dets = [], [], []
    matched = matched_any = total = kept = 0
    for image_id, ann in enumerate(progress_bar(annotations, desc="detect", unit="photo", disable=not progress), 1):
        image = read_image(Path(data_dir) / "images" / ann.filename)
        images.append({"id": image_id, "width": ann.width, "height": ann.height, "file_name": ann.filename})
        truth = annotated_faces(ann)
        for face in truth:
            gt.append({"id": len(gt) + 1, "image_id": image_id, "category_id": CLASSES.index(face.label) + 1,
                       "bbox": _xywh(face.box), "area": face.area, "iscrowd": 0})
        candidates = detector.detect(image, min_score=0.0)  # every candidate, labelled
        for face in candidates:
            for c, p in enumerate(face.probabilities):
                dets.append({"image_id": image_id, "category_id": c + 1, "bbox": _xywh(face.box),
                             "score": face.score * p})
        truth_boxes = np.array([f.box for f in truth])
        matched_any += len(greedy_match(truth_boxes, np.array([f.box for f in candidates]), 0.5))
        shown = [f for f in candidates if f.score >= detector.config.min_score]
        kept += len(shown)
        total += len(truth)
        matched += len(greedy_match(truth_boxes, np.array([f.box for f in shown]), 0.5))
    coco_gt = COCO()
    coco_gt.dataset = {"images": images, "annotations": gt,
                       "categories": [{"id": i + 1, "name": c} for i, c in enumerate(CLASSES)]}
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(dets) if dets else None
    per_class = {}
    for i, c in enumerate(CLASSES):
        per_class[c] = _coco_ap(coco_gt, coco_dt, [i + 1]) | {
            "faces": sum(1 for a in gt if a["category_id"] == i + 1)}
    return {
        "photos": len(annotations), "faces": total,
        "face_recall_iou50": matched_any / total if total else 0.0,
        "candidates_threshold": detector.config.threshold,
        "default_cutoff": {"min_score": detector.config.min_score,
                           "recall_iou50": matched / total if total else 0.0,
                           "precision_iou50": matched / kept if kept else 0.0},
        "map50": float(np.mean([v["ap50"] for v in per_class.values()])),
        "map50_95": float(np.mean([v["ap50_95"] for v in per_class.values()])),
        "per_class": per_class,
        "detector": detector.config.to_dict(),
        "classifier": detector.classifier.info.get("model"),
    }


def _coco_ap(coco_gt, coco_dt, cat_ids: list[int]) -> dict:
    from pycocotools.cocoeval import COCOeval

    if coco_dt is None:
        return {"ap50": 0.0, "ap50_95": 0.0}
    with contextlib.redirect_stdout(io.StringIO()):
        ev = COCOeval(coco_gt, coco_dt, "bbox")
        ev.params.catIds = cat_ids
        # Some photos hold over 100 faces: let up to 300 detections per photo count.
        ev.params.maxDets = [1, 10, 300]
        ev.evaluate()
        ev.accumulate()
    # precision: IoU thresholds x recall points x classes x area ranges x maxDets; area "all",
    # maxDets 300. (summarize() would read maxDets=100 for AP@0.5:0.95, which is not in the list.)
    precision = ev.eval["precision"][:, :, :, 0, -1]
    return {"ap50_95": _mean_valid(precision), "ap50": _mean_valid(precision[0])}


def _mean_valid(values: np.ndarray) -> float:
    valid = values[values > -1]
    return float(valid.mean()) if valid.size else 0.0


def _xywh(box) -> list[float]:
    x0, y0, x1, y1 = box
    return [float(x0), float(y0), float(x1 - x0), float(y1 - y0)]

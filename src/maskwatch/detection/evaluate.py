"""`maskwatch evaluate-detection`: COCO mAP and face recall on the held-out photos.

The held-out photos are the validation side of the per-photo split (seed 0) that the shipped
classifier and box mapping were fitted without.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np

from maskwatch.data.images import ImageError
from maskwatch.data.photos import annotated_faces, read_photo
from maskwatch.data.voc import VocAnnotation
from maskwatch.detection.bootstrap import (average_precision, bootstrap_photos, face_recall, match_photo,
                                           percentile_interval)
from maskwatch.faces import CLASSES, SIZE_BIN_NAMES, Face, size_bin
from maskwatch.progress import progress_bar


def face_size_bin(face: Face) -> str:
    """The size bin of an annotated face."""
    return size_bin(min(face.width, face.height))


class NoPhotoRead(ValueError):
    """None of the photos to score read; `skipped` says why each did not."""

    def __init__(self, skipped: list[str]) -> None:
        self.skipped = skipped
        super().__init__(f"none of the {len(skipped)} photos read: nothing to score")


def evaluate_detection(data_dir: Path, detector, annotations: list[VocAnnotation],
                       progress: bool = True, resamples: int = 200, seed: int = 0) -> dict:
    """COCO mAP@0.5 and mAP@0.5:0.95 per class (pycocotools) and face recall at IoU 0.5.

    Each detected face enters COCO once per class with score = detector score x class
    probability, as multi-label detectors are scored. Face recall counts annotated faces
    matched one-to-one by a detected face (class-agnostic) at IoU >= 0.5, over every candidate
    the detector keeps (as COCO recall is); `default_cutoff` gives recall and precision of
    what `detect` returns by default, and `found_rate` the share of each true class and face
    size found at that cut-off. `intervals`: 95 % bootstrap intervals over photos.

    A photo that does not read (missing, corrupt, not the size its annotation says) is listed in
    `skipped` (its path and why) and counted nowhere, as `evaluate-photos` does; NoPhotoRead
    where none reads.
    """
    from pycocotools.coco import COCO

    images, gt, dets = [], [], []
    per_photo = []  # (truth faces, labelled candidates) of each photo
    skipped = []
    for ann in progress_bar(annotations, desc="detect", unit="photo", disable=not progress):
        try:
            image = read_photo(data_dir, ann)
        except ImageError as err:
            skipped.append(str(err))
            continue
        image_id = len(images) + 1
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
        per_photo.append((truth, candidates))
    if not images and skipped:
        raise NoPhotoRead(skipped)
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
    cutoff = detector.config.min_score
    recall_all = [face_recall(_boxes(t), _boxes(c)) for t, c in per_photo]
    recall_cut = [face_recall(_boxes(t), _boxes([f for f in c if f.score >= cutoff])) for t, c in per_photo]
    total = sum(len(t) for t, _ in per_photo)
    kept = sum(sum(f.score >= cutoff for f in c) for _, c in per_photo)
    matched = sum(int(r.sum()) for r in recall_cut)
    return {
        "photos": len(images), "faces": total, "skipped": skipped,
        "face_recall_iou50": float(sum(r.sum() for r in recall_all) / total) if total else 0.0,
        "candidates_threshold": detector.config.threshold,
        "default_cutoff": {"min_score": cutoff,
                           "recall_iou50": matched / total if total else 0.0,
                           "precision_iou50": matched / kept if kept else 0.0},
        # Classes with no annotated face in these photos have no AP: left out of the mean.
        "map50": float(np.mean([v["ap50"] for v in per_class.values() if v["faces"]] or [0.0])),
        "map50_95": float(np.mean([v["ap50_95"] for v in per_class.values() if v["faces"]] or [0.0])),
        "per_class": per_class,
        "found_rate": found_rates(per_photo, recall_cut),
        "intervals": _bootstrap(per_photo, recall_all, resamples, seed) if resamples else {},
        "detector": detector.config.to_dict(),
        "classifier": detector.classifier.model_info(),
        "gate": detector.classifier.gate_info(),
        "closeup": detector.classifier.closeup_info(),
        "night": detector.classifier.night_info(),
    }


def found_rates(per_photo, found) -> dict:
    """Share of annotated faces found, per true class and size bin: {class: {bin: {faces, found, rate}}}."""
    table = {c: {b: [0, 0] for b in SIZE_BIN_NAMES} for c in CLASSES}
    for (truth, _), hits in zip(per_photo, found):
        for face, hit in zip(truth, hits):
            cell = table[face.label][face_size_bin(face)]
            cell[0] += 1
            cell[1] += int(hit)
    return {c: {b: {"faces": n, "found": k, "rate": k / n if n else None} for b, (n, k) in bins.items()}
            for c, bins in table.items()}


def _bootstrap(per_photo, recall_all, resamples: int, seed: int) -> dict:
    """95 % intervals of mAP@0.5, mAP@0.5:0.95 and face recall, photos drawn with replacement."""
    matches = {c: [match_photo(_boxes([f for f in t if f.label == c]), _boxes(cands),
                               np.array([f.score * f.probabilities[i] for f in cands]))
                   for t, cands in per_photo] for i, c in enumerate(CLASSES)}
    found = np.array([r.sum() for r in recall_all], float)
    faces = np.array([len(r) for r in recall_all], float)
    map50, map50_95, recall = [], [], []
    for sample in bootstrap_photos(len(per_photo), resamples, seed):
        aps = np.array([average_precision([matches[c][i] for i in sample]) for c in CLASSES])
        map50.append(np.nanmean(aps[:, 0]))
        map50_95.append(np.nanmean(aps))
        recall.append(found[sample].sum() / max(faces[sample].sum(), 1))
    return {"resamples": resamples, "map50": percentile_interval(np.array(map50)),
            "map50_95": percentile_interval(np.array(map50_95)),
            "face_recall_iou50": percentile_interval(np.array(recall))}


def _boxes(faces) -> np.ndarray:
    return np.array([f.box for f in faces], float).reshape(-1, 4)


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

"""Fitting the detector's box mapping and score cut-off on training photos only."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from maskwatch.data.photos import annotated_faces, read_photo
from maskwatch.data.voc import VocAnnotation
from maskwatch.detection.boxes import BoxMapping
from maskwatch.geometry import greedy_match
from maskwatch.detection.detector import DetectorConfig, build_face_finder
from maskwatch.progress import progress_bar


def fit_detector_config(data_dir: Path, annotations: list[VocAnnotation], config: DetectorConfig,
                        progress: bool = True) -> tuple[DetectorConfig, dict]:
    """Fit box_mapping (median offsets of matched boxes) and min_score (best F1 at IoU 0.5).

    Only `annotations` are looked at: pass the training photos.
    """
    found, truth = _detect_all(data_dir, annotations, replace(config, box_mapping=BoxMapping()), progress)
    # Loose matching first: before mapping, boxes of another convention overlap less.
    pairs_d, pairs_t = [], []
    for (boxes, _), gt in zip(found, truth):
        for t, f in greedy_match(gt, boxes, 0.3):
            pairs_d.append(boxes[f])
            pairs_t.append(gt[t])
    mapping = BoxMapping.fit(np.array(pairs_d), np.array(pairs_t))
    f1, cutoff = _best_cutoff(found, truth, mapping, config)
    fitted = replace(config, box_mapping=mapping, min_score=cutoff)
    return fitted, {"photos": len(annotations), "matched_pairs": len(pairs_d), "train_f1_iou50": f1}


def fit_min_score(data_dir: Path, annotations: list[VocAnnotation], config: DetectorConfig,
                  progress: bool = True, threads: int = 0) -> tuple[DetectorConfig, dict]:
    """Fit only min_score (best F1 at IoU 0.5), keeping the config's box mapping.
    threads: the detector's intra-op threads (0: one per core)."""
    found, truth = _detect_all(data_dir, annotations, config, progress, threads)
    f1, cutoff = _best_cutoff(found, truth, config.box_mapping, config)
    return replace(config, min_score=cutoff), {"photos": len(annotations), "train_f1_iou50": f1}


def _detect_all(data_dir, annotations, config, progress, threads: int = 0):
    finder = build_face_finder(config, threads)
    found, truth = [], []
    for ann in progress_bar(annotations, desc="fit detector", unit="photo", disable=not progress):
        image = read_photo(data_dir, ann)
        faces = finder.detect(image)
        found.append((np.array([f.box for f in faces]).reshape(-1, 4), np.array([f.score for f in faces])))
        truth.append(np.array([f.box for f in annotated_faces(ann)]).reshape(-1, 4))
    return found, truth


def _best_cutoff(found, truth, mapping: BoxMapping, config: DetectorConfig) -> tuple[float, float]:
    best = (0.0, config.min_score)
    total = sum(len(gt) for gt in truth)
    for cutoff in np.arange(config.threshold, 0.9, 0.05):
        tp = kept = 0
        for (boxes, scores), gt in zip(found, truth):
            chosen = mapping.apply(boxes[scores >= cutoff])
            kept += len(chosen)
            tp += len(greedy_match(gt, chosen, 0.5))
        f1 = 2 * tp / (kept + total) if kept + total else 0.0
        if f1 > best[0]:
            best = (f1, float(round(cutoff, 2)))
    return best


def fit_coarse_score_power(closeups, config: DetectorConfig) -> tuple[float, dict]:
    """The power that lifts the coarse pass's scores so its best cut-off meets min_score.

    Large faces score lower than small ones; the coarse pass sees only large faces. Its best
    cut-off (F1 at IoU 0.5) is fitted on close-ups made from training photos, and scores s of
    that pass become s ** power, with cut-off ** power = min_score.
    """
    finder = build_face_finder(replace(config, coarse_score_power=1.0))
    found, truth = [], []
    for closeup in closeups:
        found.append(finder.coarse_pass(closeup.image))
        truth.append(np.array([closeup.face.box]))
    f1, cutoff = _best_cutoff(found, truth, BoxMapping(), replace(config, threshold=0.05))
    power = float(np.log(config.min_score) / np.log(cutoff)) if 0 < cutoff < 1 else 1.0
    return power, {"closeups": len(closeups), "coarse_cutoff": cutoff, "closeup_f1_iou50": f1}

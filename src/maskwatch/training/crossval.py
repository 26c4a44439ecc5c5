"""`maskwatch cv`: grouped (per-photo), class-stratified k-fold cross-validation."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from maskwatch.atomic import write_text
from maskwatch.data.split import grouped_folds
from maskwatch.faces import CLASSES
from maskwatch.training.calibration import expected_calibration_error, fit_temperature, softmax
from maskwatch.training.dataset import CropDataset
from maskwatch.training.evaluate import classification_metrics, format_recall_by_size, recall_by_size
from maskwatch.data.split import write_split_csv
from maskwatch.training.train import TrainConfig, fit, predict_logits, run_config, to_tensor, write_run


def cross_validate(data: CropDataset, cfg: TrainConfig, folds: int = 5, seed: int = 0,
                   progress: bool = True, save_dir: Path | None = None) -> dict:
    """Train cfg on k-1 folds, score the held-out fold, k times; summarise mean and spread.

    Calibration is cross-fitted: each fold's temperature is fitted on the other folds'
    held-out logits, so the ECE after scaling is measured on faces the fit never saw.
    With save_dir, each fold's model is kept as a run folder save_dir/fold-K (fold 1 is the
    same per-photo split that `maskwatch split --by photo` makes with this seed).
    """
    oof_logits = np.zeros((len(data), len(CLASSES)), dtype=np.float32)
    fold_of = np.full(len(data), -1)
    per_fold = []
    for k, (train_idx, val_idx) in enumerate(grouped_folds(data.label_names(), data.photos, folds, seed)):
        if progress:
            print(f"== fold {k + 1}/{folds}: {len(train_idx)} train, {len(val_idx)} held-out faces")
        trained = fit(data, train_idx, val_idx, cfg, progress=progress)
        if save_dir is not None:
            is_val = np.zeros(len(data), dtype=bool)
            is_val[val_idx] = True
            config = run_config(cfg, data.spec, work=data.work, fold=k + 1,
                                split={"by": "photo", "seed": seed, "fold": k + 1, "folds": folds,
                                       "train": len(train_idx), "val": len(val_idx)})
            write_run(Path(save_dir) / f"fold-{k + 1}", trained, config, data,
                      lambda path: write_split_csv(path, data.face_ids, is_val, by="photo", seed=seed))
        logits = predict_logits(trained.model, to_tensor(data.images[val_idx]))
        oof_logits[val_idx] = logits
        fold_of[val_idx] = k
        metrics = classification_metrics(data.labels[val_idx], logits.argmax(1))
        per_fold.append({"fold": k + 1, "train_seconds": round(trained.seconds, 1),
                         "accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"],
                         "recall": {c: metrics["per_class"][c]["recall"] for c in CLASSES},
                         "support": {c: metrics["per_class"][c]["support"] for c in CLASSES}})
    calibrated = np.zeros_like(oof_logits)
    temperatures = []
    for k in range(folds):
        held, others = fold_of == k, fold_of != k
        t = fit_temperature(oof_logits[others], data.labels[others])
        temperatures.append(t)
        calibrated[held] = softmax(oof_logits[held], t)
    return {
        "model": cfg.model, "train": cfg.__dict__, "crop": data.spec.to_dict(), "folds": folds,
        "seed": seed, "faces": len(data), "split": "per-photo, class-stratified (StratifiedGroupKFold)",
        "per_fold": per_fold,
        "summary": summarise(per_fold),
        # Pooled over the folds' held-out faces: the rare class has too few faces per fold and bin.
        "recall_by_size": recall_by_size(data.labels, oof_logits.argmax(1), data.sides),
        "calibration": {
            "ece_before": expected_calibration_error(softmax(oof_logits), data.labels),
            "ece_after": expected_calibration_error(calibrated, data.labels),
            "temperatures": temperatures,
        },
    }


def summarise(per_fold: list[dict]) -> dict:
    """Mean and standard deviation over folds of every headline metric."""
    def stat(values):
        return {"mean": float(np.mean(values)), "std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0}

    out = {key: stat([f[key] for f in per_fold]) for key in ("accuracy", "macro_f1", "train_seconds")}
    out["recall"] = {c: stat([f["recall"][c] for f in per_fold]) for c in CLASSES}
    return out


def format_summary(result: dict) -> str:
    s = result["summary"]
    lines = [f"{result['model']}: {result['folds']}-fold per-photo CV on {result['faces']} faces",
             f"  accuracy  {s['accuracy']['mean']:.4f} ± {s['accuracy']['std']:.4f}",
             f"  macro-F1  {s['macro_f1']['mean']:.4f} ± {s['macro_f1']['std']:.4f}"]
    for c in CLASSES:
        lines.append(f"  recall {c:<22} {s['recall'][c]['mean']:.4f} ± {s['recall'][c]['std']:.4f}")
    lines.append(f"  train time per fold {s['train_seconds']['mean']:.0f} s")
    cal = result["calibration"]
    lines.append(f"  ECE {cal['ece_before']:.4f} before, {cal['ece_after']:.4f} after temperature scaling")
    if "recall_by_size" in result:
        lines.append("  pooled over the held-out folds, " + format_recall_by_size(result["recall_by_size"]))
    return "\n".join(lines)


def run_cv(data: CropDataset, cfg: TrainConfig, out: Path, folds: int = 5, seed: int = 0,
           progress: bool = True, save_models: bool = False) -> dict:
    started = time.perf_counter()
    result = cross_validate(data, cfg, folds=folds, seed=seed, progress=progress,
                            save_dir=Path(out) if save_models else None)
    result["wall_seconds"] = round(time.perf_counter() - started, 1)
    write_text(Path(out) / "cv.json", json.dumps(result, indent=2))
    write_text(Path(out) / "cv.txt", format_summary(result) + "\n")
    return result

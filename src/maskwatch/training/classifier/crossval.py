"""`maskwatch cv`: grouped (per-photo), class-stratified k-fold cross-validation."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from maskwatch.atomic import atomic_path, write_text
from maskwatch.data.split import grouped_folds
from maskwatch.faces import CLASSES
from maskwatch.training.classifier.calibration import expected_calibration_error, fit_temperature, softmax
from maskwatch.training.classifier.dataset import CropDataset
from maskwatch.training.classifier.evaluate import classification_metrics, format_recall_by_size, recall_by_size
from maskwatch.data.split import write_split_csv

if TYPE_CHECKING:  # torch is imported where a fold trains: gate_cv scores saved logits without it
    from maskwatch.training.classifier.train import TrainConfig


def cross_validate(data: CropDataset, cfg: TrainConfig, folds: int = 5, seed: int = 0,
                   progress: bool = True, save_dir: Path | None = None, oof_path: Path | None = None,
                   device: str = "cpu") -> dict:
    """Train cfg on k-1 folds, score the held-out fold, k times; summarise mean and spread.

    Calibration is cross-fitted: each fold's temperature is fitted on the other folds'
    held-out logits, so the ECE after scaling is measured on faces the fit never saw.
    With save_dir, each fold's model is kept as a run folder save_dir/fold-K (fold 1 is the
    same per-photo split that `maskwatch split --by photo` makes with this seed). With oof_path,
    every face's held-out logits (plain and flip-averaged) are saved there as .npz.
    """
    results = []
    for k, (train_idx, val_idx) in enumerate(cv_folds(data, folds, seed)):
        if progress:
            print(f"== fold {k + 1}/{folds}: {len(train_idx)} train, {len(val_idx)} held-out faces")
        results.append(run_fold(data, cfg, train_idx, val_idx, fold=k + 1, folds=folds, seed=seed,
                                progress=progress, save_dir=save_dir, device=device))
    return assemble_cv(data, cfg, results, seed=seed, oof_path=oof_path)


def cv_folds(data: CropDataset, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The per-photo, class-stratified folds: (train rows, held-out rows) for each."""
    return list(grouped_folds(data.label_names(), data.photos, folds, seed))


def run_fold(data: CropDataset, cfg: TrainConfig, train_idx: np.ndarray, val_idx: np.ndarray, fold: int,
             folds: int, seed: int, progress: bool = True, save_dir: Path | None = None,
             device: str = "cpu") -> dict:
    """One fold: train on train_idx, keep the held-out rows' logits (plain and flip-averaged).

    Folds are independent, so they may run in separate processes (sweep.py) and be
    put together by assemble_cv.
    """
    from maskwatch.training.classifier.train import fit, predict_crops, run_config, write_run

    trained = fit(data, train_idx, val_idx, cfg, progress=progress, device=device)
    spec = data.spec
    if save_dir is not None:
        is_val = np.zeros(len(data), dtype=bool)
        is_val[val_idx] = True
        config = run_config(cfg, spec, work=data.work, fold=fold,
                            split={"by": "photo", "seed": seed, "fold": fold, "folds": folds,
                                   "train": len(train_idx), "val": len(val_idx)})
        write_run(Path(save_dir) / f"fold-{fold}", trained, config, data,
                  lambda path: write_split_csv(path, data.face_ids, is_val, by="photo", seed=seed))
    held_out = data.images[val_idx]
    return {"fold": fold, "val_idx": np.asarray(val_idx), "train_seconds": round(trained.seconds, 1),
            "logits": predict_crops(trained.model, held_out),
            "flip": predict_crops(trained.model, held_out, flip=True)}


def assemble_cv(data: CropDataset, cfg: TrainConfig, fold_results: list[dict], seed: int,
                oof_path: Path | None = None) -> dict:
    """The CV result (per fold, mean and spread, pooled recall by size, calibration) of run_fold's
    results, one per fold; with oof_path, every face's held-out logits are saved there as .npz."""
    oof_logits = np.zeros((len(data), len(CLASSES)), dtype=np.float32)
    oof_flip = np.zeros_like(oof_logits)
    fold_of = np.full(len(data), -1)
    per_fold = []
    for r in sorted(fold_results, key=lambda r: r["fold"]):
        val_idx = r["val_idx"]
        oof_logits[val_idx], oof_flip[val_idx], fold_of[val_idx] = r["logits"], r["flip"], r["fold"] - 1
        per_fold.append({"fold": r["fold"], "train_seconds": r["train_seconds"],
                         **fold_metrics(data.labels[val_idx], r["logits"])})
    if (fold_of < 0).any():
        raise ValueError(f"{int((fold_of < 0).sum())} faces are in no held-out fold; the folds are incomplete")
    result = {
        "model": cfg.model, "train": cfg.__dict__, "crop": data.spec.to_dict(),
        "folds": len(per_fold), "seed": seed, "faces": len(data),
        "split": "per-photo, class-stratified (StratifiedGroupKFold)",
        "per_fold": per_fold,
        "summary": summarise(per_fold),
        **pooled_metrics(data, oof_logits, fold_of),
    }
    # Flip test-time augmentation (the mean of a crop's and its mirror's logits), scored on
    # the same held-out folds so the two rows compare directly.
    flip_folds = [{"fold": f["fold"], "train_seconds": f["train_seconds"],
                   **fold_metrics(data.labels[fold_of == f["fold"] - 1], oof_flip[fold_of == f["fold"] - 1])}
                  for f in per_fold]
    result["flip_tta"] = {"per_fold": flip_folds, "summary": summarise(flip_folds),
                          **pooled_metrics(data, oof_flip, fold_of)}
    if oof_path is not None:
        # The held-out logits themselves, for trade-off curves without training again.
        with atomic_path(oof_path, suffix=".npz") as tmp:
            np.savez_compressed(tmp, logits=oof_logits, flip=oof_flip, labels=data.labels,
                                fold=fold_of, sides=data.sides)
    return result


def fold_metrics(labels: np.ndarray, logits: np.ndarray) -> dict:
    metrics = classification_metrics(labels, logits.argmax(1))
    return {"accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"],
            "recall": {c: metrics["per_class"][c]["recall"] for c in CLASSES},
            "support": {c: metrics["per_class"][c]["support"] for c in CLASSES}}


def pooled_metrics(data: CropDataset, oof_logits: np.ndarray, fold_of: np.ndarray) -> dict:
    """Recall by face size and calibration, pooled over all held-out folds.

    Calibration is cross-fitted: each fold's temperature is fitted on the other folds'
    held-out logits, so the ECE after scaling is measured on faces the fit never saw.
    """
    calibrated = np.zeros_like(oof_logits)
    temperatures = []
    for k in range(int(fold_of.max()) + 1):
        held, others = fold_of == k, fold_of != k
        t = fit_temperature(oof_logits[others], data.labels[others])
        temperatures.append(t)
        calibrated[held] = softmax(oof_logits[held], t)
    return {
        # Pooled: the rare class has too few faces per fold and size bin.
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
        values = [v for v in values if v is not None]  # a fold without the class has no recall for it
        if not values:
            return {"mean": None, "std": None}
        return {"mean": float(np.mean(values)), "std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0}

    out = {key: stat([f[key] for f in per_fold]) for key in ("accuracy", "macro_f1", "train_seconds")}
    out["recall"] = {c: stat([f["recall"][c] for f in per_fold]) for c in CLASSES}
    return out


def format_summary(result: dict) -> str:
    text = _format_block(result, f"{result['model']}: {result['folds']}-fold per-photo CV on {result['faces']} faces")
    if "flip_tta" in result:
        text += "\n" + _format_block(result["flip_tta"], "with flip test-time augmentation, same folds")
    return text


def _format_block(result: dict, title: str) -> str:
    summary = result["summary"]
    lines = [title,
             f"  accuracy  {summary['accuracy']['mean']:.4f} ± {summary['accuracy']['std']:.4f}",
             f"  macro-F1  {summary['macro_f1']['mean']:.4f} ± {summary['macro_f1']['std']:.4f}"]
    for name in CLASSES:
        recall = summary["recall"][name]
        lines.append(f"  recall {name:<22} " + ("- (no faces of it)" if recall["mean"] is None
                                                 else f"{recall['mean']:.4f} ± {recall['std']:.4f}"))
    lines.append(f"  train time per fold {summary['train_seconds']['mean']:.0f} s")
    cal = result["calibration"]
    lines.append(f"  ECE {cal['ece_before']:.4f} before, {cal['ece_after']:.4f} after temperature scaling")
    if "recall_by_size" in result:
        lines.append("  pooled over the held-out folds, " + format_recall_by_size(result["recall_by_size"]))
    return "\n".join(lines)


def run_cv(data: CropDataset, cfg: TrainConfig, out: Path, folds: int = 5, seed: int = 0,
           progress: bool = True, save_models: bool = False, device: str = "cpu") -> dict:
    started = time.perf_counter()
    result = cross_validate(data, cfg, folds=folds, seed=seed, progress=progress,
                            save_dir=Path(out) if save_models else None, oof_path=Path(out) / "oof-logits.npz",
                            device=device)
    result["wall_seconds"] = round(time.perf_counter() - started, 1)
    write_text(Path(out) / "cv.json", json.dumps(result, indent=2))
    write_text(Path(out) / "cv.txt", format_summary(result) + "\n")
    return result

"""`maskwatch evaluate`: score a run on its own validation faces."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from maskwatch.atomic import write_text
from maskwatch.data.crops import CropSpec
from maskwatch.data.split import read_split_csv
from maskwatch.faces import CLASSES, SIZE_BIN_NAMES, size_bin
from maskwatch.training.classifier.calibration import calibrate_on_validation
from maskwatch.training.classifier.dataset import grey_copy, load_crop_dataset


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """Accuracy, macro-F1, per-class precision/recall/F1/support and the confusion matrix.

    A class with no faces here has no recall or F1 (None), and macro-F1 is over the classes
    present: a dataset of two classes showed the third at recall 0.0 and macro-F1 capped at 2/3."""
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

    labels = list(range(len(CLASSES)))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0)
    present = [i for i in labels if support[i]]
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)),
        "per_class": {
            c: {"precision": float(precision[i]), "recall": float(recall[i]) if support[i] else None,
                "f1": float(f1[i]) if support[i] else None, "support": int(support[i])}
            for i, c in enumerate(CLASSES)
        },
        "confusion_matrix": {"labels": list(CLASSES),
                             "rows_true_cols_predicted": confusion_matrix(y_true, y_pred, labels=labels).tolist()},
    }


def recall_by_size(y_true: np.ndarray, y_pred: np.ndarray, sides: np.ndarray) -> dict:
    """Per true class and face-size bin: {class: {bin: {"faces": n, "recall": r or None}}}."""
    bins = np.array([size_bin(s) for s in sides])
    out = {}
    for i, c in enumerate(CLASSES):
        out[c] = {}
        for b in SIZE_BIN_NAMES:
            chosen = (y_true == i) & (bins == b)
            n = int(chosen.sum())
            out[c][b] = {"faces": n, "recall": float((y_pred[chosen] == i).mean()) if n else None}
    return out


def format_recall_by_size(table: dict) -> str:
    """The table as `maskwatch evaluate` and `maskwatch cv` print it."""
    lines = ["recall by true class and face size (short side, px):",
             f"  {'':<22}" + "".join(f"{b:>15}" for b in SIZE_BIN_NAMES)]
    for c, row in table.items():
        lines.append(f"  {c:<22}" + "".join(
            f"{'-':>15}" if v["recall"] is None else f"{v['recall']:>8.3f} ({v['faces']:>4})" for v in row.values()))
    return "\n".join(lines)


def evaluate_run(run: Path) -> dict:
    """Write run/metrics.json and run/confusion.png for the run's validation faces."""
    from maskwatch.training.classifier.plots import plot_confusion
    from maskwatch.training.classifier.train import load_model, predict_crops

    run = Path(run)
    model, config = load_model(run)
    data = load_crop_dataset(Path(config["work"]))
    if data.spec != CropSpec(**config["crop"]):  # the folder prepared again since: other crops
        raise ValueError(f"{config['work']} now holds {data.spec} crops, the run trained on "
                         f"{CropSpec(**config['crop'])}: prepare it as before, or train again")
    if config.get("train", {}).get("night"):  # a night model is scored, and its doubt chosen, on grey faces
        data = grey_copy(data)
    assignment, by, seed = read_split_csv(run / "split.csv")
    val_idx = np.array([i for i, f in enumerate(data.face_ids) if assignment.get(f) == "val"])
    if len(val_idx) == 0:
        raise ValueError(f"{run / 'split.csv'}: no validation faces to evaluate on")
    logits = predict_crops(model, data.images[val_idx])
    y_true = data.labels[val_idx]
    metrics = classification_metrics(y_true, logits.argmax(1))
    metrics["recall_by_size"] = recall_by_size(y_true, logits.argmax(1), data.sides[val_idx])
    metrics["calibration"] = calibrate_on_validation(logits, y_true, [data.photos[i] for i in val_idx])
    metrics["evaluated_on"] = "validation"
    metrics["split"] = {**config["split"], "by": by, "seed": seed,
                        "val_photos": len({data.photos[i] for i in val_idx})}
    metrics["model"] = config["model"]
    metrics["crop"] = config["crop"]
    write_text(run / "metrics.json", json.dumps(metrics, indent=2))
    matrix = np.array(metrics["confusion_matrix"]["rows_true_cols_predicted"])
    plot_confusion(matrix, list(CLASSES), run / "confusion.png",
                   title=f"{config['model']}, split by {by} (validation)")
    return metrics

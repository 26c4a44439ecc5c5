"""Knowledge distillation: a student learns the class probabilities of trained teacher models.

Why: an average of several 96 px models classifies better than any one of them, and a student at
a smaller input costs about half as much to serve. The teachers' probabilities are computed once,
before training, on the clean crops of the student's training faces (offline distillation).

A teacher must never have trained on a face the student is scored on: for cross-validation, a
teacher is a `maskwatch cv --save-models` folder, and fold K's student learns from its fold-K
model only, which was trained on the same training faces. Any teacher whose split put a held-out
face of the student in its training set is refused by name.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from maskwatch.data.crops import CropSpec
from maskwatch.data.split import read_split_csv
from maskwatch.training.calibration import softmax


def resolve_teachers(paths: Sequence[str | Path], fold: int | None) -> list[Path]:
    """Teacher run folders: a run folder as given, or a CV folder's fold-K run (with `fold`)."""
    runs = []
    for path in map(Path, paths):
        run = path if (path / "config.json").is_file() or fold is None else path / f"fold-{fold}"
        if not (run / "config.json").is_file():
            where = f"{path} has no fold-{fold} run" if run != path else f"{path} is not a run folder"
            raise FileNotFoundError(f"teacher: {where} (no config.json); use a run folder of "
                                    "`maskwatch train` or a `maskwatch cv --save-models` folder")
        runs.append(run)
    return runs


def teacher_probabilities(runs: Sequence[Path], face_ids: Sequence[str], held_out: Sequence[str],
                          temperature: float) -> np.ndarray:
    """The teachers' mean class probabilities at `temperature` for each of `face_ids`
    (N x classes), from flip-averaged logits on each teacher's own crops.

    held_out: the faces the student is scored on; a teacher that trained on any is refused.
    """
    from maskwatch.training.train import load_model, predict_crops

    if not runs:
        raise ValueError("distillation needs at least one teacher")
    total = None
    for run in runs:
        _check_unseen(run, held_out)
        model, config = load_model(run)
        images, long_sides = _teacher_crops(Path(config["work"]), tuple(face_ids), run)
        probs = softmax(predict_crops(model, images, long_sides, CropSpec(**config["crop"]), flip=True),
                        temperature)
        total = probs if total is None else total + probs
    return (total / len(runs)).astype(np.float32)


def distill_loss(student_logits: torch.Tensor, teacher_probs: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL(teacher || student) at `temperature`, times its square so that the gradient's scale
    does not depend on the temperature (Hinton et al., 2015)."""
    log_student = F.log_softmax(student_logits / temperature, dim=1)
    return F.kl_div(log_student, teacher_probs, reduction="batchmean") * temperature ** 2


def _check_unseen(run: Path, held_out: Sequence[str]) -> None:
    if not held_out:
        return
    split_csv = run / "split.csv"
    if not split_csv.is_file():
        raise FileNotFoundError(f"teacher {run}: no split.csv, so it cannot be shown that it never "
                                "trained on the held-out faces")
    assignment, _, _ = read_split_csv(split_csv)
    seen = [f for f in held_out if assignment.get(f) == "train"]
    if seen:
        raise ValueError(f"teacher {run} trained on {len(seen)} of the {len(held_out)} held-out faces "
                         f"(first: {seen[0]}); use teachers trained on the same training faces "
                         "(a `maskwatch cv --save-models` folder with the same folds and seed)")


@lru_cache(maxsize=4)
def _work_crops(work: Path):
    from maskwatch.training.dataset import load_crop_dataset

    data = load_crop_dataset(work)
    return data, {f: i for i, f in enumerate(data.face_ids)}


def _teacher_crops(work: Path, face_ids: tuple[str, ...], run: Path) -> tuple[np.ndarray, np.ndarray]:
    """The teacher's own crops (its work folder, its crop size) of `face_ids`, in that order."""
    if not (work / "prepare.json").is_file():
        raise FileNotFoundError(f"teacher {run}: its work folder {work} is gone; "
                                "prepare it again at the teacher's crop size")
    data, row_of = _work_crops(work)
    missing = [f for f in face_ids if f not in row_of]
    if missing:
        raise ValueError(f"teacher {run}: {len(missing)} faces are not in its work folder {work} "
                         f"(first: {missing[0]})")
    rows = np.array([row_of[f] for f in face_ids], dtype=int)
    return data.images[rows], data.long_sides[rows]

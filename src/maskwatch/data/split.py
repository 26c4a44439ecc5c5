"""Train/validation splits that keep every face of a photo on one side.

A random split of faces puts faces of the same photo (same light, same camera, often the
same people) on both sides, which flatters validation scores; `by="face"` is kept only to
measure that leak.
"""

from __future__ import annotations

import contextlib
import csv
import warnings
from pathlib import Path

import numpy as np

from maskwatch.atomic import atomic_path

SPLIT_MODES = ("photo", "face")


def split_faces(labels: list[str], photos: list[str], by: str = "photo", val_fraction: float = 0.2,
                seed: int = 0) -> np.ndarray:
    """Return a bool array, True for validation faces.

    by="photo": grouped by photo and stratified by class as far as grouping allows
    (StratifiedGroupKFold with k = 1/val_fraction folds, one fold held out: val_fraction must
    be 1/k, 0.5, 0.33, 0.25, 0.2 ...).
    by="face": the study's per-face stratified random split (leaks photos across sides).
    ValueError names what cannot be split: no faces, fewer photos than folds, a fraction not 1/k.
    """
    from sklearn.model_selection import StratifiedGroupKFold, train_test_split

    if by not in SPLIT_MODES:
        raise ValueError(f"by must be one of {SPLIT_MODES}, got {by!r}")
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be between 0 and 1, got {val_fraction}")
    n = len(labels)
    if n == 0:
        raise ValueError("no faces to split")
    is_val = np.zeros(n, dtype=bool)
    if by == "face":
        try:
            _, val_idx = train_test_split(np.arange(n), test_size=val_fraction, random_state=seed,
                                          stratify=_stratify_or_none(labels))
        except ValueError as err:  # too few faces for a stratified share
            raise ValueError(f"{n} faces cannot be split {val_fraction:g} for validation: {err}") from None
        is_val[val_idx] = True
        return is_val
    folds = max(2, round(1 / val_fraction))
    if abs(1 / folds - val_fraction) > 0.01:  # 0.4 would hold out a half, 0.3 a third
        raise ValueError(f"a per-photo split holds out one of k folds: val_fraction {val_fraction:g} is not 1/k; "
                         f"choose {1 / folds:.3g} or another of 0.5, 0.333, 0.25, 0.2 ...")
    if len(set(photos)) < folds:
        raise ValueError(f"a per-photo split of {val_fraction:g} needs at least {folds} photos, got {len(set(photos))}")
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    with _rare_classes_unsaid():
        _, val_idx = next(splitter.split(np.zeros(n), labels, groups=photos))
    is_val[val_idx] = True
    return is_val


def grouped_folds(labels: list[str], photos: list[str], folds: int, seed: int = 0):
    """Yield (train_idx, val_idx) for per-photo, class-stratified k-fold cross-validation."""
    from sklearn.model_selection import StratifiedGroupKFold

    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    with _rare_classes_unsaid():
        found = list(splitter.split(np.zeros(len(labels)), labels, groups=photos))
    yield from found


@contextlib.contextmanager
def _rare_classes_unsaid():
    """scikit-learn's "The least populated class in y has only 4 members, which is less than
    n_splits=5", with its file and line, printed by `prepare` on a site's 50 photos: a class too rare
    to stratify is split as grouping allows, and `train` says a side left without it in its words."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The least populated class in y", category=UserWarning)
        yield


def write_split_csv(path: Path, face_ids: list[str], is_val: np.ndarray, by: str, seed: int) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["face_id", "split", "by", "seed"])
        for face_id, val in zip(face_ids, is_val):
            writer.writerow([face_id, "val" if val else "train", by, seed])


def read_split_csv(path: Path) -> tuple[dict[str, str], str | None, int | None]:
    """face_id -> "train"/"val", plus how the split was made (by, seed; None in a file of one's
    own without them). Any other value is refused with its line: "test" or "Val" was read as
    training, the held-out faces trained on and the validation left empty."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: split file not found; run `maskwatch split` first")
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if not {"face_id", "split"} <= set(reader.fieldnames or ()):
            raise ValueError(f"{path}: a split file has the columns face_id and split (train or val); "
                             f"got {', '.join(reader.fieldnames or ['none'])}")
        rows = list(reader)
    if not rows:
        raise ValueError(f"{path}: split file is empty")
    for line, row in enumerate(rows, 2):
        if row["split"] not in ("train", "val"):
            raise ValueError(f"{path}, line {line}: split is train or val, got {row['split']!r}")
    try:
        seed = int(rows[0]["seed"]) if rows[0].get("seed") not in (None, "") else None
    except ValueError:
        raise ValueError(f"{path}: seed {rows[0]['seed']!r} is not a whole number") from None
    return {r["face_id"]: r["split"] for r in rows}, rows[0].get("by") or None, seed


def _stratify_or_none(labels: list[str]):
    # Stratifying needs at least two faces per class.
    counts = {label: labels.count(label) for label in set(labels)}
    return labels if min(counts.values()) >= 2 else None

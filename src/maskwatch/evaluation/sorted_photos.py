"""`maskwatch evaluate-photos`: how the models do on a site's own photos, sorted by a person into
one folder per true class: the least labelling a check can take (no box drawn, one folder per photo).

Each photo's main face is the one the detector scores highest, as the person sorting it meant
"who this photo is of"; its outcome is that face's label, `unassessable`, or `no face`.
`benchmarks/real_check.py photos` runs this same check on the project's real-photo set.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from maskwatch.data.images import ImageError, read_image
from maskwatch.faces import CLASSES, Face
from maskwatch.progress import progress_bar
from maskwatch.video.sources import IMAGE_SUFFIXES, UNREAD_PHOTO_SUFFIXES, UNREAD_PHOTOS, folder_files

UNASSESSABLE = "unassessable"
NO_FACE = "no face"
UNREADABLE = "unreadable"
OUTCOMES = (*CLASSES, UNASSESSABLE, NO_FACE)
# A HEIC photo (an iPhone's) is listed as unreadable with how to convert it, not passed over.
PHOTO_SUFFIXES = IMAGE_SUFFIXES | UNREAD_PHOTO_SUFFIXES


class SortedPhotosError(ValueError):
    """A folder not laid out as one folder of photos per true class."""


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float] | None:
    """Wilson score interval of k successes in n trials (None for none): unlike k/n +- 2 SE it
    stays inside 0-1 and is not zero wide at 30 of 30."""
    if n == 0:
        return None
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


@dataclass(frozen=True)
class PhotoOutcome:
    """One photo: its outcome (a class, `unassessable`, `no face`, or `unreadable`), its main face
    where there is one, and why it did not read where it did not."""

    photo: Path
    outcome: str
    face: Face | None = None
    error: str | None = None

    def as_dict(self, root: Path) -> dict:
        row = {"photo": self.photo.relative_to(root).as_posix(), "outcome": self.outcome}
        if self.face is not None:
            row |= {"box": [round(v) for v in self.face.box], "score": round(self.face.score, 3),
                    "probabilities": {c: round(p, 3) for c, p in zip(CLASSES, self.face.probabilities or ())}}
        if self.error is not None:
            row["error"] = self.error
        return row


@dataclass(frozen=True)
class ClassOutcomes:
    """The photos of one true class (one folder) and what their main faces were called."""

    label: str
    rows: tuple[PhotoOutcome, ...]

    @property
    def read(self) -> list[PhotoOutcome]:
        return [r for r in self.rows if r.outcome != UNREADABLE]

    @property
    def unreadable(self) -> list[PhotoOutcome]:
        return [r for r in self.rows if r.outcome == UNREADABLE]

    @property
    def photos(self) -> int:
        """Photos that read: unreadable ones count nowhere (not as `no face`)."""
        return len(self.read)

    @property
    def counts(self) -> dict[str, int]:
        counted = Counter(r.outcome for r in self.read)
        return {o: counted[o] for o in OUTCOMES}

    @property
    def right(self) -> int:
        return self.counts[self.label]

    @property
    def found(self) -> int:
        return self.photos - self.counts[NO_FACE]

    def summary(self) -> dict:
        n, counts = self.photos, self.counts
        return {"photos": n, "counts": counts,
                "shares": {o: k / n if n else None for o, k in counts.items()},
                "right": self.right, "right_share": self.right / n if n else None,
                "right_interval": wilson(self.right, n),
                "found": self.found, "found_share": self.found / n if n else None,
                "found_interval": wilson(self.found, n),
                "unreadable": len(self.unreadable)}


def class_folders(root: Path) -> dict[str, list[Path]]:
    """The photos of each class folder of `root`, in CLASSES order; SortedPhotosError where
    `root` is not a folder of class folders (another folder name, photos left in `root`)."""
    root = Path(root)
    if not root.is_dir():
        raise SortedPhotosError(f"{root}: {'a file, not a folder of class folders' if root.exists() else 'no such folder'}")
    valid = ", ".join(CLASSES)
    entries = list(root.iterdir())
    folders = {p.name: p for p in entries if p.is_dir() and not p.name.startswith(".")}
    # A class's name on a file or a link to nothing: its class was left out of the figures without a word.
    stray = sorted(p for p in entries if p.name in CLASSES and p.name not in folders)
    if stray:
        what = "a link to nothing" if stray[0].is_symlink() and not stray[0].exists() else "a file"
        raise SortedPhotosError(f"{stray[0]}: {what}, not a folder; put the photos of that class in a folder of its name")
    others = sorted(set(folders) - set(CLASSES))
    if others:
        raise SortedPhotosError(f"{root}: folder{'s' * (len(others) > 1)} {', '.join(others)} not named by a class; "
                                f"name each folder by the true class of its photos: {valid}")
    loose = folder_files(root, PHOTO_SUFFIXES)
    if loose or not folders:
        what = (f"{len(loose)} photo{'s' * (len(loose) > 1)} directly in it (first: {loose[0].name})" if loose
                else "no class folders in it")
        raise SortedPhotosError(f"{root}: {what}; sort the photos into folders named by their true class: "
                                + ", ".join(f"{root / c}/" for c in CLASSES))
    return {c: folder_files(folders[c], PHOTO_SUFFIXES) for c in CLASSES if c in folders}


def main_face_outcome(detector, path: Path) -> PhotoOutcome:
    """The photo read as `detect` reads it, and its highest-scoring face's label."""
    if path.suffix.lower() in UNREAD_PHOTO_SUFFIXES:
        return PhotoOutcome(path, UNREADABLE, error=f"{path}: {UNREAD_PHOTOS}")
    try:
        image = read_image(path)
    except ImageError as err:
        return PhotoOutcome(path, UNREADABLE, error=str(err))
    faces = detector.detect(image)
    if not faces:
        return PhotoOutcome(path, NO_FACE)
    main = max(faces, key=lambda f: f.score)
    return PhotoOutcome(path, main.label or UNASSESSABLE, face=main)


def evaluate_sorted_photos(detector, folders: dict[str, list[Path]], progress: bool = False) -> dict[str, ClassOutcomes]:
    """Each photo of `class_folders(root)` through `detector` (give it `Detector.for_photos()`,
    as `detect` reads a photo): {class: ClassOutcomes}."""
    photos = [(label, path) for label, paths in folders.items() for path in paths]
    rows: dict[str, list[PhotoOutcome]] = {label: [] for label in folders}
    for label, path in progress_bar(photos, desc="evaluate", unit="photo", disable=not progress):
        rows[label].append(main_face_outcome(detector, path))
    return {label: ClassOutcomes(label, tuple(r)) for label, r in rows.items()}


def report(results: dict[str, ClassOutcomes], root: Path) -> dict:
    """The figures and every photo's row, as `--out` writes them."""
    return {"root": str(root), "main_face": "the face the detector scores highest in each photo",
            "classes": {label: r.summary() | {"rows": [p.as_dict(root) for p in r.rows]}
                        for label, r in results.items()}}


def format_report(results: dict[str, ClassOutcomes]) -> str:
    """The confusion table (true class by outcome, each with its share) and the share right and
    found with their 95 % intervals, as `evaluate-photos` prints them."""
    width = max(len(c) for c in CLASSES) + 2
    cells = {o: max(len(o), 9) + 2 for o in OUTCOMES}  # "12 (0.80)" under each

    def share(k: int, n: int) -> str:
        return f"{k} ({k / n:.2f})" if n else "-"

    def with_interval(k: int, n: int) -> str:
        if not n:
            return f"{'-':<22}"
        lo, hi = wilson(k, n)
        return f"{k / n:.3f} [{lo:.3f}, {hi:.3f}]"

    lines = ["each photo's main face (the detector's top score) against the folder it was sorted into:",
             f"{'true class':<{width}}{'photos':>7}" + "".join(f"{o:>{cells[o]}}" for o in OUTCOMES)]
    for label, r in results.items():
        lines.append(f"{label:<{width}}{r.photos:>7}"
                     + "".join(f"{share(k, r.photos):>{cells[o]}}" for o, k in r.counts.items()))
    lines += ["", f"{'true class':<{width}}{'right [95 % interval]':<26}face found [95 % interval]"]
    for label, r in results.items():
        lines.append(f"{label:<{width}}{with_interval(r.right, r.photos):<26}{with_interval(r.found, r.photos)}".rstrip())
    return "\n".join(lines)

"""`maskwatch prepare`: VOC photos in, a CSV of faces and one crop per face out."""

from __future__ import annotations

import csv
import re
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import cv2

from maskwatch.atomic import atomic_dir
from maskwatch.data.crops import CropSpec, crop_face
from maskwatch.data.images import ImageError, read_image
from maskwatch.data.voc import AnnotationError, load_voc_annotation
from maskwatch.faces import CLASSES
from maskwatch.progress import progress_bar

FACE_COLUMNS = ["face_id", "image", "width", "height", "label", "xmin", "ymin", "xmax", "ymax",
                "clipped", "crop"]


class PrepareError(ValueError):
    """The dataset cannot be prepared at all (or, with strict=True, one input is bad)."""


@dataclass
class PrepareResult:
    out: Path
    faces: int
    per_class: dict[str, int]
    photos: int
    problems: list[tuple[str, str]] = field(default_factory=list)


def annotation_files(data_dir: Path) -> list[Path]:
    """The dataset's XML files in a stable order, or PrepareError saying what is missing."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise PrepareError(f"{data_dir}: dataset folder not found")
    ann_dir = data_dir / "annotations"
    # CVAT's "Pascal VOC 1.1" export holds Annotations/ and JPEGImages/: unzipped into the folder
    # `annotations` wrote, the corrections sat beside the uncorrected files, which were read instead.
    # On macOS's and Windows's disks (case-insensitive) an Annotations/ is the annotations/ read: one
    # folder, which the advice to remove it would have deleted.
    voc = {p.name.lower(): p.name for p in data_dir.iterdir() if p.is_dir() and p.name != p.name.lower()}
    if "annotations" in voc and ann_dir.is_dir() and not ann_dir.samefile(data_dir / voc["annotations"]):
        raise PrepareError(f"{data_dir}: {voc['annotations']}/ (a CVAT export's name) beside annotations/, which is "
                           f"the one read: put the XML files you mean in annotations/ and remove {voc['annotations']}/")
    if "annotations" in voc and not ann_dir.is_dir():
        raise PrepareError(f"{data_dir}: no annotations/ folder, and an {voc['annotations']}/ (a CVAT export's name): "
                           "rename it annotations/")
    if not ann_dir.is_dir():
        raise PrepareError(f"{data_dir}: expected an annotations/ folder of Pascal VOC XML files")
    if not (data_dir / "images").is_dir() and "jpegimages" in voc:
        raise PrepareError(f"{data_dir}: no images/ folder, and a {voc['jpegimages']}/ (a CVAT export's name): "
                           f"rename it images/")
    # Any case of the suffix: a.XML was passed over in silence.
    files = sorted((p for p in ann_dir.iterdir() if p.is_file() and p.suffix.lower() == ".xml"), key=_natural_key)
    if not files:
        raise PrepareError(f"{ann_dir}: no .xml annotation files found")
    # a.xml and a corrected a.XML beside it were both read: one photo twice, its faces under one id.
    stems: dict[str, Path] = {}
    for path in files:
        if (first := stems.setdefault(path.stem.casefold(), path)) != path:
            raise PrepareError(f"{first} and {path.name}: two annotations of one name (a face's id is its "
                               "annotation's name, and on macOS's or Windows's disk they are one file); keep one")
    return files


def prepare(data_dir: Path | Sequence[Path], out: Path, spec: CropSpec, strict: bool = False,
            progress: bool = True) -> PrepareResult:
    """Write out/faces.csv, out/crops/<label>/<face_id>.png, out/skipped.csv, out/prepare.json.

    data_dir: one dataset folder, or several (a site's own photos beside the Kaggle set), read in
    turn as one; two photos or annotations of one name in two of them are refused, since a face's
    id is its annotation's name and a photo's its file's (the split keeps one photo on one side).
    Bad inputs (malformed XML, missing or unreadable image, unknown label, box with no area
    inside the image) skip that photo or face and are listed in skipped.csv; with strict=True
    the first one raises PrepareError. The output folder appears only when complete.
    """
    folders = [Path(data_dir)] if isinstance(data_dir, (str, Path)) else [Path(d) for d in data_dir]
    if len({folder.resolve() for folder in folders}) < len(folders):  # every face twice, on both sides of the split
        raise PrepareError(f"{', '.join(map(str, folders))}: a dataset folder named twice; name each once")
    out = Path(out)
    files = [(folder, path) for folder in folders for path in annotation_files(folder)]
    _refuse_shared_names([(folder, path.stem, "annotations") for folder, path in files])
    problems: list[tuple[str, str]] = []

    def problem(where: str, what: str) -> None:
        if strict:
            raise PrepareError(f"{where}: {what}")
        problems.append((where, what))

    rows = []
    photos = 0
    named: dict[Path, set[str]] = {folder: set() for folder in folders}  # the images each folder's annotations name
    with atomic_dir(out, own="prepare.json") as tmp:
        for label in CLASSES:
            (tmp / "crops" / label).mkdir(parents=True)
        annotations = []
        for folder, xml_path in files:
            try:
                annotations.append((folder, xml_path, load_voc_annotation(xml_path)))
            except AnnotationError as err:
                problem(err.path, err.problem)
        _refuse_shared_names([(folder, ann.filename, "images") for folder, _, ann in annotations])
        for folder, xml_path, ann in progress_bar(annotations, desc="prepare", unit="photo", disable=not progress):
            image_path = folder / "images" / ann.filename
            named[folder].add(ann.filename)
            if ann.filename_problem is not None:
                problem(str(xml_path), ann.filename_problem)
                continue
            try:
                image = read_image(image_path)
            except ImageError as err:
                problem(str(xml_path), str(err))
                continue
            if image.shape[:2] != (ann.height, ann.width):
                problem(str(xml_path), f"<size> says {ann.width}x{ann.height} but {image_path} is "
                                       f"{image.shape[1]}x{image.shape[0]}")
                continue
            photos += 1
            stem = xml_path.stem
            for obj in ann.objects:
                face_id = f"{stem}-{obj.index:03d}"
                why = ann.object_problem(obj)
                if why is not None:
                    problem(f"{xml_path} object {obj.index}", why)
                    continue
                face = obj.to_face()
                clipped = face.clipped(ann.width, ann.height)
                crop = crop_face(image, clipped.box, spec)
                rel = Path("crops") / face.label / f"{face_id}.png"
                if not cv2.imwrite(str(tmp / rel), crop):
                    raise PrepareError(f"{tmp / rel}: could not write crop")
                rows.append({
                    "face_id": face_id, "image": ann.filename, "width": ann.width,
                    "height": ann.height, "label": face.label,
                    **dict(zip(("xmin", "ymin", "xmax", "ymax"), (_num(v) for v in clipped.box))),
                    "clipped": int(clipped.box != face.box), "crop": rel.as_posix(),
                })
        # What the dataset holds that no annotation uses: said, not left out in silence.
        read = {path for _, path in files}
        for folder in folders:
            for path in sorted((folder / "annotations").iterdir(), key=_natural_key):
                if path not in read and not path.name.startswith("."):
                    problem(str(path), "not an .xml annotation file: not read")
            images = folder / "images"
            for path in sorted(images.iterdir(), key=_natural_key) if images.is_dir() else ():
                if path.is_file() and not path.name.startswith(".") and path.name not in named[folder]:
                    problem(str(path), "no annotation names this image: not read")
        where = folders[0] if len(folders) == 1 else ", ".join(map(str, folders))
        if not rows:
            # The first problem named: skipped.csv, which lists them all, goes with the unfinished folder.
            first = f"; the first: {problems[0][0]}: {problems[0][1]}" if problems else ""
            raise PrepareError(f"{where}: no usable faces found ({len(problems)} problems{first})")
        write_faces_csv(tmp / "faces.csv", rows)
        with open(tmp / "skipped.csv", "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["where", "problem"])
            writer.writerows(problems)
        per_class = {c: sum(r["label"] == c for r in rows) for c in CLASSES}
        data = [str(folder.resolve()) for folder in folders]
        meta = {"data": data[0] if len(data) == 1 else data, "crop": spec.to_dict(), "photos": photos,
                "faces": len(rows), "per_class": per_class, "skipped": len(problems)}
        (tmp / "prepare.json").write_text(json.dumps(meta, indent=2))
    return PrepareResult(out=out, faces=len(rows), per_class=per_class, photos=photos,
                         problems=problems)


def _refuse_shared_names(names: list[tuple[Path, str, str]]) -> None:
    """PrepareError where two dataset folders hold one name (an annotation's stem, a photo's file
    name), in any case: their faces' ids, or their photos in the split, would be taken for one; and
    on a case-insensitive disk (macOS, Windows) `IMG_1` and `img_1` write one crop file, the second
    face's crop over the first's, and `render` finds the first folder's photo for both."""
    first: dict[str, tuple[Path, str]] = {}
    for folder, name, kind in names:
        other, other_name = first.setdefault(name.casefold(), (folder, name))
        if other != folder:
            suffix = ".xml" * (kind == "annotations")
            held = (f"both hold {kind}/{name}{suffix}" if other_name == name else
                    f"hold {kind}/{other_name}{suffix} and {kind}/{name}{suffix}, one name on a case-insensitive disk")
            raise PrepareError(f"{other} and {folder} {held}: "
                               "rename one of them (and its annotation's <filename>), or prepare them apart")


def dataset_folders(meta: dict) -> list[Path]:
    """The dataset folders a work folder was prepared from, as its prepare.json names them."""
    data = meta["data"]
    return [Path(d) for d in ([data] if isinstance(data, str) else data)]


def write_faces_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=FACE_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


# The columns read_faces_csv parses as numbers; every reader of faces.csv needs them.
NUMBER_COLUMNS = {"width", "height", "clipped", "xmin", "ymin", "xmax", "ymax"}


def read_faces_csv(path: Path, columns: tuple[str, ...] = ("face_id", "image", "label")) -> list[dict]:
    """faces.csv rows with numbers parsed; PrepareError if the file is missing or lacks the box
    columns or the other `columns` the caller reads."""
    path = Path(path)
    if not path.is_file():
        raise PrepareError(f"{path}: not found; run `maskwatch prepare` first")
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        missing = sorted((NUMBER_COLUMNS | set(columns)) - set(reader.fieldnames or ()))
        if missing:
            raise PrepareError(f"{path}: not a faces.csv of `maskwatch prepare` (no column {', '.join(missing)})")
        rows = list(reader)
    for line, row in enumerate(rows, start=2):
        try:
            for key in ("width", "height", "clipped"):
                row[key] = int(row[key])
            for key in ("xmin", "ymin", "xmax", "ymax"):
                row[key] = float(row[key])
        except (TypeError, ValueError):
            raise PrepareError(f"{path}, line {line}: {key} is not a number ({row[key]!r})") from None
    return rows


def _num(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


def _natural_key(path: Path) -> tuple:
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name))

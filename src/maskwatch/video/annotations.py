"""A `detect` run's faces as pre-annotations for a labelling tool: Pascal VOC or COCO.

The loop it starts: detect a site's photos, load the faces into CVAT, Label Studio, labelImg or
FiftyOne, correct them, train on the corrected set. Both formats get the photos themselves in
DIR/images/ (a labeller needs the pictures, not detect's annotated copies, and `prepare` reads
images/); VOC writes DIR/annotations/<name>.xml in the layout `prepare` and the detector
commands read, COCO writes DIR/annotations.json with each face's detector score.

Only the faces detect reported are written: those at or above its detector cut-off
(--min-score); fainter ones never reached detections.jsonl.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree as ET

from maskwatch.atomic import OutputError, atomic_dir, check_output_folder, naming
from maskwatch.data.images import ImageError, decode_image, to_8_bits
from maskwatch.faces import CLASSES, UNASSESSABLE
from maskwatch.video.sources import SourceError, describe_source, photo_files

FORMATS = ("voc", "coco")
COCO_FILE = "annotations.json"
# The label of a face whose class the classifier declined to give (see review_label).
REVIEW = UNASSESSABLE
CATEGORIES = (*CLASSES, REVIEW)


class AnnotationsError(ValueError):
    """A detect output that cannot be written as annotations, with the reason."""


def review_label(label: str | None) -> str:
    """The class a face is written with: its own, or `unassessable` for one the classifier was too
    unsure to answer (or never classified).

    Not its most probable class flagged <difficult>: that flag means "leave out of evaluation"
    to VOC, maskwatch's reader ignores it, and an unreviewed file would then train on guesses the
    model itself declined to stand by. As a label of its own, a labeller finds every such face
    under one label in any tool and gives it a class; one left unresolved is skipped by `prepare`
    (named in skipped.csv) and refused by the detector commands, never trained on as a class.
    """
    return label if label in CLASSES else REVIEW


@dataclass(frozen=True)
class Photo:
    """One photo of a detect run: the file detect read, its size then, and its faces' lines."""

    path: Path
    name: str  # detect's name for it (OUT/<name>.jpg), unique in the run
    width: int
    height: int
    faces: tuple[dict, ...]

    @property
    def file_name(self) -> str:
        """Its copy's name in DIR/images: the file's own, but where detect named it by its whole
        name (a.jpg beside a.png) that name and the suffix, "a.jpg.jpg", whose stem is its XML
        file's: labelImg and CVAT pair an image with the annotation of its stem, and found none."""
        return self.name + self.path.suffix


def read_detections(out: Path | str, photos: Path | str) -> tuple[list[Photo], int]:
    """The photos of the detect output folder `out`, found in `photos` (the image or folder detect
    read), and how many photos there have no line (unreadable then, or added since).

    detections.jsonl names each photo by its file's stem, not its path, so the photos are found
    again as detect named them (video.sources.photo_files). AnnotationsError where `out` is no
    photo run's output, or a photo it names is gone.
    """
    out, photos = Path(out), Path(photos)
    lines_path = out / "detections.jsonl"
    if not lines_path.is_file():
        raise AnnotationsError(f"{out}: no detections.jsonl here; name the --out folder of a `maskwatch detect` run")
    if (out / "summary.json").is_file():  # written by video, stream and webcam runs only
        raise AnnotationsError(f"{out}: the detections of a video, stream or webcam (summary.json); annotations are "
                               "written for photos only: save the frames to label as photos, and detect those")
    try:
        info = describe_source(str(photos))
    except SourceError as err:
        raise AnnotationsError(f"--photos: {err}") from None
    if info.kind not in ("image", "folder"):
        raise AnnotationsError(f"--photos {photos}: a {info.kind}; annotations are written for photos only")
    by_name = {name: path for path, name in photo_files(str(photos), info).items()}
    found: list[Photo] = []
    seen: set[str] = set()
    try:
        text = lines_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise AnnotationsError(f"{lines_path}: cannot be read ({getattr(err, 'strerror', None) or err})") from None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{lines_path}, line {number}"
        try:
            record = json.loads(line)
            name, width, height = str(record["name"]), int(record["width"]), int(record["height"])
            faces = tuple(record["faces"])
            if width < 1 or height < 1 or any(len([float(v) for v in face["box"]]) != 4 for face in faces):
                raise ValueError
        except (ValueError, KeyError, TypeError):
            raise AnnotationsError(f"{where}: not a line of `maskwatch detect`") from None
        if any("track_id" in face for face in faces):
            raise AnnotationsError(f"{where}: a video's tracked faces; annotations are written for photos only")
        if name in seen:
            raise AnnotationsError(f"{where}: photo {name!r} a second time; not the lines of one detect run")
        seen.add(name)
        if name not in by_name:
            raise AnnotationsError(f"{where}: photo {name!r} is not in {photos} (moved or deleted since, or not the "
                                   "photos this run read); nothing was written")
        found.append(Photo(by_name[name], name, width, height, faces))
    if not found:
        raise AnnotationsError(f"{lines_path}: holds no photo")
    return found, len(by_name) - len(found)


def _pixel_box(face: dict, width: int, height: int) -> tuple[float, float, float, float] | None:
    """The face's box clipped to the image (as `prepare` would clip it), or None if under a pixel
    of it is inside. Clipped here so that tools show it whole."""
    x0, y0, x1, y1 = (float(v) for v in face["box"])
    box = (min(max(x0, 0.0), width), min(max(y0, 0.0), height), min(max(x1, 0.0), width), min(max(y1, 0.0), height))
    if not all(map(math.isfinite, box)) or box[2] - box[0] < 1 or box[3] - box[1] < 1:
        return None
    return box


def voc_boxes(photo: Photo) -> list[tuple[str, tuple[int, int, int, int], bool]]:
    """(label, whole-pixel box, clipped) of each face as its VOC file holds it. Whole pixels as
    the Kaggle dataset's files have them: some VOC readers take int(text)."""
    boxes = []
    for face in photo.faces:
        box = _pixel_box(face, photo.width, photo.height)
        if box is None:
            continue
        whole = tuple(int(round(v)) for v in box)
        if whole[2] > whole[0] and whole[3] > whole[1]:
            boxes.append((review_label(face.get("label")), whole, box != tuple(face["box"])))
    return boxes


def voc_xml(photo: Photo, filename: str) -> bytes:
    """One photo's Pascal VOC annotation, as labelImg writes one (fields it and CVAT expect)."""
    root = ET.Element("annotation")
    ET.SubElement(root, "folder").text = "images"
    ET.SubElement(root, "filename").text = filename
    ET.SubElement(ET.SubElement(root, "source"), "database").text = "maskwatch detect"
    size = ET.SubElement(root, "size")
    for key, value in (("width", photo.width), ("height", photo.height), ("depth", 3)):
        ET.SubElement(size, key).text = str(value)
    ET.SubElement(root, "segmented").text = "0"
    for label, box, clipped in voc_boxes(photo):
        obj = ET.SubElement(root, "object")
        ET.SubElement(obj, "name").text = label
        ET.SubElement(obj, "pose").text = "Unspecified"
        ET.SubElement(obj, "truncated").text = str(int(clipped))
        ET.SubElement(obj, "difficult").text = "0"
        bndbox = ET.SubElement(obj, "bndbox")
        for key, value in zip(("xmin", "ymin", "xmax", "ymax"), box):
            ET.SubElement(bndbox, key).text = str(value)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=False) + b"\n"


def coco_document(photos: list[Photo]) -> dict:
    """A COCO detection file of the photos: bbox [x, y, width, height] in pixels (xmax exclusive,
    so width = xmax - xmin), a `score` per annotation as prediction files carry it, and every
    category present whether used or not (CVAT makes its labels from them)."""
    category = {name: i for i, name in enumerate(CATEGORIES, start=1)}
    images, annotations = [], []
    for image_id, photo in enumerate(photos, start=1):
        images.append({"id": image_id, "file_name": photo.file_name, "width": photo.width, "height": photo.height})
        for face in photo.faces:
            box = _pixel_box(face, photo.width, photo.height)
            if box is None:
                continue
            w, h = round(box[2] - box[0], 2), round(box[3] - box[1], 2)
            annotation = {"id": len(annotations) + 1, "image_id": image_id,
                          "category_id": category[review_label(face.get("label"))],
                          "bbox": [round(box[0], 2), round(box[1], 2), w, h], "area": round(w * h, 2), "iscrowd": 0}
            if face.get("score") is not None:
                annotation["score"] = face["score"]
            annotations.append(annotation)
    return {"info": {"description": "maskwatch detect: faces to review"}, "images": images,
            "annotations": annotations,
            "categories": [{"id": i, "name": name, "supercategory": "face"} for name, i in category.items()]}


def _copy_photo(photo: Photo, target: Path) -> None:
    """The photo's own bytes into `target`, after checking it is still the size detect read: a
    photo edited or replaced since would get boxes that are not its faces'. A photo its EXIF
    orientation turns (a phone's) is written turned, as detect read it and the boxes are: labelImg
    shows a file's pixels unturned, every box then elsewhere, and saved its <size> the other way
    round, which `prepare` and the detector commands refuse."""
    try:
        data = photo.path.read_bytes()
    except OSError as err:
        raise AnnotationsError(f"{photo.path}: cannot read file: {err.strerror or err}") from None
    try:
        image = decode_image(data, source=str(photo.path))
    except ImageError as err:
        raise AnnotationsError(str(err)) from None
    shape = image.shape
    if shape[:2] != (photo.height, photo.width):
        raise AnnotationsError(f"{photo.path}: {shape[1]}x{shape[0]}, but detect read it as {photo.width}x"
                               f"{photo.height} (edited or replaced since?): its boxes would not fit; detect it again")
    target.write_bytes(_unturned(data, image, target.suffix))


def _unturned(data: bytes, image, suffix: str) -> bytes:
    """`data`, or where its EXIF orientation turns or mirrors its pixels, `image` (those pixels as
    read, turned) encoded again in the same format (a JPEG at quality 95), without the tag."""
    import cv2
    import numpy as np

    raw = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH
                       | cv2.IMREAD_IGNORE_ORIENTATION)
    if raw is None or raw.shape[:2] == image.shape[:2] and np.array_equal(to_8_bits(raw), image):
        return data
    try:
        jpeg = suffix.lower() in (".jpg", ".jpeg")
        ok, encoded = cv2.imencode(suffix, image, [cv2.IMWRITE_JPEG_QUALITY, 95] if jpeg else [])
    except cv2.error:
        ok = False
    return encoded.tobytes() if ok else data  # a format OpenCV cannot write (GIF): as it was


@dataclass(frozen=True)
class Written:
    photos: int
    faces: int
    review: int  # faces written as `unassessable`, for a labeller to give a class
    unlisted: int  # photos of the source with no line in detections.jsonl: not written


def write_annotations(out: Path | str, photos: Path | str, fmt: str, target: Path | str) -> Written:
    """Write the detect output `out` (of the image or folder `photos`) as `fmt` ('voc' or 'coco')
    annotations into the new folder `target`, whole or not at all.

    An existing `target` that is not empty is refused (OutputError), even one written here before:
    a labelling tool saves its corrections into it (labelImg edits the XML files in place), and
    replacing them would lose a person's work.
    """
    if fmt not in FORMATS:
        raise AnnotationsError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    target = check_output_folder(target)
    if target.exists() and any(target.iterdir()):
        raise OutputError(f"{target}: already there; corrections a labelling tool saved in it would be lost: name a "
                          "new folder, or remove this one first (nothing was written)")
    found, unlisted = read_detections(out, photos)
    faces = review = 0
    # A write that fails (a full disk) names `target`, not its hidden temp folder, removed.
    with atomic_dir(target, own=COCO_FILE) as tmp, naming(target):  # `own` unused: target is new or empty
        (tmp / "images").mkdir()
        if fmt == "voc":
            (tmp / "annotations").mkdir()
        for photo in found:
            _copy_photo(photo, tmp / "images" / photo.file_name)
            if fmt == "voc":
                boxes = voc_boxes(photo)
                (tmp / "annotations" / f"{photo.name}.xml").write_bytes(voc_xml(photo, photo.file_name))
                faces += len(boxes)
                review += sum(label == REVIEW for label, _, _ in boxes)
        if fmt == "coco":
            document = coco_document(found)
            (tmp / COCO_FILE).write_text(json.dumps(document, indent=1), encoding="utf-8")
            faces = len(document["annotations"])
            review = sum(a["category_id"] == len(CATEGORIES) for a in document["annotations"])
    return Written(photos=len(found), faces=faces, review=review, unlisted=unlisted)

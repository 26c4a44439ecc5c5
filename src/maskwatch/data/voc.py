"""Pascal VOC annotations in: one XML file per photo, parsed safely.

Annotation files come from users, so they are parsed with defusedxml (no entity expansion,
no external entities). Every problem raises AnnotationError naming the file and the field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from maskwatch.faces import CLASSES, UNASSESSABLE, Face


class AnnotationError(ValueError):
    """An annotation file that cannot be used, with the file and the reason."""

    def __init__(self, path: Path | str, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


@dataclass(frozen=True)
class VocObject:
    """One <object> as written: its position in the file, its label and its box (unchecked)."""

    index: int
    label: str
    box: tuple[float, float, float, float]
    problem: str | None = None  # what made it unreadable (a missing <name>, a coordinate not a number)

    def to_face(self) -> Face:
        """The object as a Face (call object_problem first: Face refuses unknown labels)."""
        return Face(box=self.box, label=self.label)


def label_problem(obj: VocObject) -> str | None:
    """Why an object is no labelled face at all, whatever the image: it did not read, its label
    is not a class, its box has no area (the detector commands refuse a photo holding one)."""
    if obj.problem is not None:
        return obj.problem
    if obj.label not in CLASSES:
        return f"unknown label {obj.label!r}, expected one of {', '.join(CLASSES)}{_label_hint(obj.label)}"
    x0, y0, x1, y1 = obj.box
    if x1 <= x0 or y1 <= y0:
        return f"box {obj.box} has zero area"
    return None


def _label_hint(label: str) -> str:
    """What the label was most likely meant to be: a labelling tool keeps what a person typed
    (`Mask_weared_incorrect`, `with mask`), and `annotations` leaves `unassessable` to be decided."""
    import difflib

    if label == UNASSESSABLE:
        return " (left for a person to give a class: give it one)"
    typed = label.strip().lower().replace(" ", "_").replace("-", "_")
    close = [typed] if typed in CLASSES else difflib.get_close_matches(typed, CLASSES, n=1, cutoff=0.75)
    return f"; did you mean {close[0]!r}?" if close else ""


@dataclass(frozen=True)
class VocAnnotation:
    """One photo's annotation: its image file name, its size, and its objects."""

    path: Path
    filename: str
    width: int
    height: int
    objects: tuple[VocObject, ...]

    def object_problem(self, obj: VocObject) -> str | None:
        """Why an object cannot be used as a face of this photo, or None if it can.

        A box that only reaches outside the image is fine (it gets clipped); one with no area
        inside the image is not.
        """
        if (problem := label_problem(obj)) is not None:
            return problem
        x0, y0, x1, y1 = obj.box
        if min(x1, self.width) - max(x0, 0) <= 0 or min(y1, self.height) - max(y0, 0) <= 0:
            return f"box {obj.box} lies outside the {self.width}x{self.height} image"
        if min(x1, self.width) - max(x0, 0) < 1 or min(y1, self.height) - max(y0, 0) < 1:
            return f"box {obj.box} has under a pixel inside the {self.width}x{self.height} image"
        return None

    @property
    def filename_problem(self) -> str | None:
        """Why <filename> cannot name a photo of the dataset's images folder (it climbs out of it or
        is absolute), or None. Judged on the name, not the disk: an images folder of symlinks is fine."""
        name = Path(self.filename)
        if name.is_absolute() or ".." in name.parts:
            return f"<filename> {self.filename!r} leaves the images folder"
        return None


def load_voc_annotation(path: Path | str) -> VocAnnotation:
    """Parse one VOC XML file.

    Boxes are kept as written (xmin, ymin, xmax, ymax); this dataset's pixels are treated as
    0-based with xmax/ymax exclusive, so a box's width is xmax - xmin. Labels and boxes are not
    judged here (see VocAnnotation.object_problem), nor is an object that cannot be read (its
    `problem` says why): the caller decides whether a bad object skips that face or stops the
    run. A file that cannot be read at all raises AnnotationError.
    """
    path = Path(path)
    try:
        root = SafeET.parse(path).getroot()
    except DefusedXmlException as err:
        raise AnnotationError(path, f"unsafe XML refused ({type(err).__name__})") from err
    except SafeET.ParseError as err:
        raise AnnotationError(path, f"malformed XML: {err}") from err
    except (LookupError, ValueError) as err:  # an unknown or lying encoding declaration
        raise AnnotationError(path, f"malformed XML: {err}") from err
    except OSError as err:
        raise AnnotationError(path, f"cannot read file: {err.strerror or err}") from err
    if root.tag != "annotation":
        raise AnnotationError(path, f"root element must be <annotation>, got <{root.tag}>")

    filename = _text(path, root, "filename")
    width = _int(path, root, "size/width")
    height = _int(path, root, "size/height")
    if width <= 0 or height <= 0:
        raise AnnotationError(path, f"image size must be positive, got {width}x{height}")

    objects = []
    for index, node in enumerate(root.findall("object")):
        try:
            label = _text(path, node, "name")
            box = tuple(_float(path, node, f"bndbox/{k}") for k in ("xmin", "ymin", "xmax", "ymax"))
        except AnnotationError as err:  # one bad object is that face's problem, not the photo's
            objects.append(VocObject(index=index, label="", box=(0.0, 0.0, 0.0, 0.0), problem=err.problem))
            continue
        objects.append(VocObject(index=index, label=label, box=box))
    return VocAnnotation(path=path, filename=filename, width=width, height=height, objects=tuple(objects))


def _text(path: Path, node: Element, field: str) -> str:
    found = node.find(field)
    if found is None or found.text is None or not found.text.strip():
        raise AnnotationError(path, f"missing <{field}>")
    return found.text.strip()


def _float(path: Path, node: Element, field: str) -> float:
    text = _text(path, node, field)
    try:
        value = float(text)
    except ValueError:
        raise AnnotationError(path, f"<{field}> must be a number, got {text!r}") from None
    if not math.isfinite(value):  # nan would slip past every comparison, inf past int()
        raise AnnotationError(path, f"<{field}> must be a finite number, got {text!r}")
    return value


def _int(path: Path, node: Element, field: str) -> int:
    value = _float(path, node, field)
    if value != int(value):
        raise AnnotationError(path, f"<{field}> must be a whole number, got {value}")
    return int(value)

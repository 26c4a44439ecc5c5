"""The one data type for a face in a frame, shared by every part of maskwatch."""

from __future__ import annotations

import json
import math
import numbers
import operator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable

# Class order is part of every model's contract: index i of a probability vector is CLASSES[i].
CLASSES: tuple[str, ...] = ("with_mask", "without_mask", "mask_weared_incorrect")
COMPLIANT = "with_mask"
# A person (a track), unlike a face, may be left undecided: too few frames of a large enough face
# to trust a vote (video/tracker.py). Counted apart, never in a compliance rate.
UNASSESSABLE = "unassessable"
PERSON_LABELS: tuple[str, ...] = (*CLASSES, UNASSESSABLE)
# Face-size bins by the short side of the box, in pixels: (name, from, up to). Detection and
# classification metrics are both broken down by them: tiny faces behave differently.
SIZE_BINS: tuple[tuple[str, float, float], ...] = (
    ("<10", 0.0, 10.0), ("10-20", 10.0, 20.0), ("20-40", 20.0, 40.0), (">=40", 40.0, float("inf")))
SIZE_BIN_NAMES: tuple[str, ...] = tuple(name for name, _, _ in SIZE_BINS)


def size_bin(short_side: float) -> str:
    """The size bin of a face whose box's short side is `short_side` pixels."""
    return next(name for name, lo, hi in SIZE_BINS if lo <= short_side < hi)


@dataclass(frozen=True)
class Face:
    """One face: a box in pixels and what is known about it.

    box: (xmin, ymin, xmax, ymax) in pixels of the full image, xmax/ymax exclusive.
    label: one of CLASSES, `unassessable` (the classifier too unsure; on video also a face whose last
        sure detection contradicts its track's vote, video.tracker), or None when not classified yet.
    probabilities: per class, in CLASSES order, or None.
    score: the detector's confidence, or None for annotated faces.
    track_id: the tracker's id across video frames, or None.
    missed: the detector missed this tracked person on this frame; the box is where the track
        predicts them (shown through one missed detection, see video.tracker), not a detection.
    """

    box: tuple[float, float, float, float]
    label: str | None = None
    probabilities: tuple[float, ...] | None = None
    score: float | None = None
    track_id: int | None = None
    missed: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "box", _checked_box(self.box))
        if self.label is not None and self.label not in PERSON_LABELS:
            raise ValueError(f"label must be one of {PERSON_LABELS}, got {self.label!r}")
        if self.probabilities is not None:
            if len(self.probabilities) != len(CLASSES):
                raise ValueError(
                    f"probabilities must have {len(CLASSES)} values, got {len(self.probabilities)}"
                )
            object.__setattr__(self, "probabilities", tuple([_real(p, "probabilities") for p in self.probabilities]))
        if self.score is not None:
            object.__setattr__(self, "score", _real(self.score, "score"))
        if self.track_id is not None:
            if type(self.track_id) is not int and (isinstance(self.track_id, bool)
                                                   or not isinstance(self.track_id, numbers.Integral)):
                raise ValueError(f"track_id must be a whole number, got {self.track_id!r}")
            object.__setattr__(self, "track_id", int(self.track_id))
        if self.missed is not False:  # NumPy's bool kept as True or False; missed="no" was True
            if self.missed not in (True, False) or isinstance(self.missed, float):
                raise ValueError(f"missed must be True or False, got {self.missed!r}")
            object.__setattr__(self, "missed", bool(self.missed))

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    @property
    def area(self) -> float:
        return max(0.0, self.width) * max(0.0, self.height)

    def clipped(self, width: int, height: int) -> Face:
        """This face with its box clipped to an image of the given size."""
        x0, y0, x1, y1 = self.box
        box = (min(max(x0, 0), width), min(max(y0, 0), height),
               min(max(x1, 0), width), min(max(y1, 0), height))
        return replace(self, box=box)

    def with_prediction(self, label: str, probabilities: tuple[float, ...]) -> Face:
        return replace(self, label=label, probabilities=probabilities)

    def to_dict(self) -> dict:
        """A JSON-ready dict: one item of frame_record's "faces"."""
        out: dict = {"box": [round(v, 2) for v in self.box], "label": self.label}
        if self.probabilities is not None:
            out["probabilities"] = {c: round(p, 4) for c, p in zip(CLASSES, self.probabilities)}
        if self.score is not None:
            out["score"] = round(self.score, 4)
        if self.track_id is not None:
            out["track_id"] = self.track_id
        if self.missed:
            out["missed"] = True
        return out

    @classmethod
    def from_dict(cls, item: dict) -> Face:
        """The Face of one item of frame_record's "faces" (to_dict's inverse: equal to the face
        written, to its rounding: boxes to 0.01 px, probabilities and score to 4 places).
        ValueError saying what is wrong where the item is not one."""
        if not isinstance(item, dict):
            raise ValueError(f"a face is a JSON object, got {type(item).__name__}")
        if unknown := sorted(set(item) - FACE_KEYS):
            raise ValueError(f"a face has no {', '.join(map(repr, unknown))} (known: {', '.join(sorted(FACE_KEYS))})")
        box = item.get("box")
        if not isinstance(box, list) or len(box) != 4 or not all(_number(v) for v in box):
            raise ValueError(f"a face's box is 4 numbers (xmin, ymin, xmax, ymax), got {box!r}")
        probabilities = item.get("probabilities")
        if probabilities is not None:
            if not isinstance(probabilities, dict) or set(probabilities) != set(CLASSES) \
                    or not all(_number(p) for p in probabilities.values()):
                raise ValueError(f"a face's probabilities are a number per class of {', '.join(CLASSES)}, "
                                 f"got {probabilities!r}")
            probabilities = tuple(probabilities[c] for c in CLASSES)
        score, track_id, missed = item.get("score"), item.get("track_id"), item.get("missed", False)
        if score is not None and not _number(score):
            raise ValueError(f"a face's score is a number, got {score!r}")
        if track_id is not None and (not isinstance(track_id, int) or isinstance(track_id, bool)):
            raise ValueError(f"a face's track_id is a whole number, got {track_id!r}")
        if not isinstance(missed, bool):
            raise ValueError(f"a face's missed is true or false, got {missed!r}")
        return cls(box=tuple(box), label=item.get("label"), probabilities=probabilities, score=score,
                   track_id=track_id, missed=missed)


def _checked_box(box) -> tuple[float, float, float, float]:
    """`box` as 4 floats, or ValueError naming it: Face("1234") was the box (1, 2, 3, 4), and boxes
    with NaN or xmax < xmin were kept. A box of no width or height stays allowed: clipped() makes
    one of a box outside the frame, which the detectors then drop."""
    try:  # written out, no loop: as fast as the tuple(float(v) for v in box) it replaced
        x0, y0, x1, y1 = box
        if isinstance(box, bytes) or isinstance(x0, str) or isinstance(y0, str) or isinstance(x1, str) \
                or isinstance(y1, str):  # float("1") is 1.0
            raise TypeError
        values = x0, y0, x1, y1 = float(x0), float(y0), float(x1), float(y1)
    except (TypeError, ValueError):  # not 4 items, or an item that is no number
        values = None
    # NaN fails the comparisons too.
    if values is None or not (x0 <= x1 and y0 <= y1 and math.isfinite(x0 + y0 + x1 + y1)):
        raise ValueError(f"box must be 4 finite numbers (xmin, ymin, xmax, ymax) with xmin <= xmax and "
                         f"ymin <= ymax, got {box!r}")
    return values


def _real(value, name: str) -> float:
    """`value` as a float, or ValueError naming `name`: a NumPy score or track id (a detector of
    one's own) made to_dict's json.dumps fail, a "0.5" crashed to_dict, a NaN wrote JSON no parser
    but Python's reads."""
    if type(value) is float and value - value == 0:  # the common case first (not inf or NaN): Faces are many
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be finite numbers, got {value!r}" if name == "probabilities"
                         else f"{name} must be a finite number, got {value!r}")
    return float(value)


# The keys of Face.to_dict, all but box and label written only when set.
FACE_KEYS = frozenset({"box", "label", "probabilities", "score", "track_id", "missed"})


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def count_labels(faces: list[Face]) -> dict[str, int]:
    """Faces per label (the classes and `unassessable`), every label present (zero when absent)."""
    counts = {c: 0 for c in PERSON_LABELS}
    for face in faces:
        if face.label is not None:
            counts[face.label] += 1
    return counts


FRAME_SCHEMA_PATH = Path(__file__).parent / "schemas" / "frame.schema.json"


def frame_record(faces: Iterable[Face], width: int, height: int, *, frame: int | None = None,
                 name: str | None = None, time: float | None = None, detected: bool = True) -> dict:
    """The one JSON shape of a frame's faces and counts: `detect --json`, detections.jsonl and
    POST /v1/detect all build it here, and schemas/frame.schema.json describes it (tested).

    frame, name and time place a frame in its source, all three or none (files and streams; the HTTP
    API has none);
    detected is False for frames whose faces the tracker carried over without detecting.
    """
    faces = list(faces)  # once: a generator's faces were written and then counted as none
    # frame=0 alone wrote "name": null, which the schema and read_detections refuse; name alone was
    # left out, without a word.
    if (frame is None) != (name is None) or (frame is None) != (time is None) \
            or not (name is None or isinstance(name, str)):
        raise ValueError("frame, name and time place a frame in its source: give all three (a file's or a "
                         f"stream's; name a str) or none (a photo, as the HTTP API); got frame={frame!r}, "
                         f"name={name!r}, time={time!r}")
    record: dict = {}
    if frame is not None:
        # As plain ints and floats: a NumPy frame number or time (a loop of one's own) failed json.dumps.
        record |= {"frame": operator.index(frame), "name": name, "time": round(float(time), 3)}
    return record | {"width": int(width), "height": int(height), "detected": detected,
                     "faces": [f.to_dict() for f in faces], "counts": count_labels(faces)}


def frame_schema() -> dict:
    """The JSON Schema (2020-12) of frame_record's output."""
    return json.loads(FRAME_SCHEMA_PATH.read_text(encoding="utf-8"))

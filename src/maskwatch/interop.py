"""maskwatch's faces as supervision's `Detections` and back, so that its annotators, zones and
trackers work on maskwatch's output.

supervision is imported on first use, not with maskwatch: it is not a dependency. Since 0.30 it
needs no OpenCV of its own; earlier releases declare `opencv-python`, which replaces the `cv2` of
`opencv-python-headless` that maskwatch runs on, hence the floor in the install line below.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from maskwatch.faces import CLASSES, PERSON_LABELS, Face

if TYPE_CHECKING:
    import supervision

# Outside a checkout, and in one as the Makefile installs it (constraints.txt's release, without its
# PyAV, with the one dependency it imports that the venv lacks).
SUPERVISION, SUPERVISION_IN_CHECKOUT = "'supervision>=0.30'", "--no-deps supervision pydeprecate"
# class_id of each label: the model's class order, then `unassessable`. Stable: CLASSES' order is
# every model's contract. A face not classified yet has class_id -1.
CLASS_IDS: dict[str, int] = {label: i for i, label in enumerate(PERSON_LABELS)}
UNCLASSIFIED = -1
UNTRACKED = -1


def _supervision():
    try:
        import supervision
    except ImportError:
        from maskwatch.extras import package_line  # this interpreter's pip, not another environment's

        raise ImportError("maskwatch.interop needs supervision, which is not installed: "
                          f"{package_line(SUPERVISION, SUPERVISION_IN_CHECKOUT)}") from None
    return supervision


def to_detections(faces: list[Face]) -> supervision.Detections:
    """supervision `Detections` of `faces`, in their order.

    xyxy: the boxes in pixels; confidence: the detector's score (None when no face has one, NaN
    for a face without); class_id: CLASS_IDS[label] (-1 unclassified); tracker_id: the track id
    (None when no face has one, -1 for a face without); data: "class_name" (the label, which
    supervision's LabelAnnotator shows; None unclassified), "probabilities" (n x 3, CLASSES order,
    NaN where unknown) and "missed" (a tracked person the detector missed on this frame).
    """
    sv = _supervision()
    if isinstance(faces, Face):  # was "'Face' object is not iterable"
        raise TypeError("to_detections takes a list of maskwatch Faces, got one Face; for one: to_detections([face])")
    faces = list(faces)
    if odd := [f for f in faces if not isinstance(f, Face)]:  # was "'tuple' object has no attribute 'score'"
        raise TypeError(f"to_detections takes a list of maskwatch Faces, got a {type(odd[0]).__name__} among them; "
                        "for bare boxes: supervision.Detections(xyxy=np.array(boxes, dtype=float))")
    scores = [f.score for f in faces]
    tracks = [f.track_id for f in faces]
    return sv.Detections(
        xyxy=np.array([f.box for f in faces], dtype=np.float64).reshape(-1, 4),
        # None only where faces carry no score at all (annotations): an empty frame has an array, as
        # supervision's own Detections.empty()
        confidence=None if faces and all(s is None for s in scores)
        else np.array([math.nan if s is None else s for s in scores], dtype=np.float64),
        class_id=np.array([UNCLASSIFIED if f.label is None else CLASS_IDS[f.label] for f in faces], dtype=int),
        tracker_id=None if all(t is None for t in tracks)
        else np.array([UNTRACKED if t is None else t for t in tracks], dtype=int),
        data={"class_name": np.array([f.label for f in faces], dtype=object),
              "probabilities": np.array([f.probabilities or (math.nan,) * len(CLASSES) for f in faces],
                                        dtype=np.float64).reshape(-1, len(CLASSES)),
              "missed": np.array([f.missed for f in faces], dtype=bool)})


def from_detections(detections: supervision.Detections) -> list[Face]:
    """The faces of `detections` made by to_detections, after supervision's filters or trackers.

    The label comes from class_id, the track id from tracker_id (a supervision tracker's ids
    replace maskwatch's); probabilities and missed from data where present.
    """
    n = len(detections)
    class_ids = detections.class_id if detections.class_id is not None else np.full(n, UNCLASSIFIED)
    unknown = sorted({int(c) for c in class_ids} - set(CLASS_IDS.values()) - {UNCLASSIFIED})
    if unknown:
        raise ValueError(f"class_id {unknown[0]} is not a maskwatch label: class_id must be -1 (unclassified) or "
                         f"one of {CLASS_IDS}")
    probabilities = detections.data.get("probabilities")
    missed = detections.data.get("missed")
    faces = []
    for i in range(n):
        score = None if detections.confidence is None else float(detections.confidence[i])
        track = None if detections.tracker_id is None else int(detections.tracker_id[i])
        row = None if probabilities is None else tuple(float(p) for p in probabilities[i])
        faces.append(Face(
            box=tuple(detections.xyxy[i]),
            label=None if class_ids[i] == UNCLASSIFIED else PERSON_LABELS[int(class_ids[i])],
            probabilities=None if row is None or any(math.isnan(p) for p in row) else row,
            score=None if score is None or math.isnan(score) else score,
            track_id=None if track is None or track == UNTRACKED else track,
            missed=bool(missed[i]) if missed is not None else False))
    return faces

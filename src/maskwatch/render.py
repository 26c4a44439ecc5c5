"""Drawing faces on frames, and blurring them for privacy. Settings in __init__, data in annotate.

Labels never cover each other: layout_labels places each one next to its box where it overlaps
no other label and no counts banner. In a crowd where the full labels ("mask 0.93") do not all
fit, every face gets a compact number instead: its position in the frame's JSON `faces` list
(from 1), or its track id in video; box colours carry the class, and the banner, drawn in the
same colours, is their legend.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from maskwatch.data.images import check_bgr, eight_bits_fix
from maskwatch.faces import CLASSES, UNASSESSABLE, Face, count_labels

# BGR colours per class: green wears it, red wears none, orange wears it wrongly.
COLOURS = {"with_mask": (60, 180, 60), "without_mask": (40, 40, 220), "mask_weared_incorrect": (0, 150, 255),
           UNASSESSABLE: (150, 150, 150), None: (200, 200, 200)}
SHORT = {"with_mask": "mask", "without_mask": "no mask", "mask_weared_incorrect": "incorrect", UNASSESSABLE: "unsure",
         None: "face"}
FONT = cv2.FONT_HERSHEY_SIMPLEX
FULL_SCALE, COMPACT_SCALE, BANNER_SCALE = 0.4, 0.35, 0.5

Rect = tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels, x1/y1 exclusive


@dataclass(frozen=True)
class Label:
    """One drawn label: the face it names (index into faces), its text, where, and how big."""

    face: int
    text: str
    rect: Rect
    scale: float


@dataclass(frozen=True)
class Layout:
    """Every label of a frame and the counts banner; compact is True when labels are numbers."""

    labels: tuple[Label, ...]
    banner: tuple[Label, ...]
    compact: bool


@dataclass(frozen=True)
class FaceAnnotator:
    """Boxes and labels (and optionally blurred faces) on a copy of a BGR frame."""

    blur: bool = False
    show_counts: bool = True
    thickness: int = 2

    def annotate(self, frame: np.ndarray, faces: list[Face]) -> np.ndarray:
        """A new BGR frame (HxWx3 uint8, as `frame`) with the boxes, labels and counts drawn: COLOURS
        are BGR, so an RGB frame would show masked faces in the wrong colour."""
        if not isinstance(frame, np.ndarray):  # None (a failed cv2.imread) failed on `copy`, naming nothing
            check_bgr(frame, "frame")
        if frame.dtype != np.uint8:  # OpenCV's "(-215:Assertion failed) img.depth() == CV_8U in function 'putText'"
            raise ValueError(f"frame must be 8-bit (uint8, 0-255) to draw on, got {frame.dtype}; {eight_bits_fix(frame)}")
        faces = _faces(faces, "annotate(frame, faces)")
        out = blur_faces(frame, faces) if self.blur else frame.copy()
        for face in faces:
            x0, y0, x1, y1 = (round(v) for v in face.box)
            cv2.rectangle(out, (x0, y0), (x1, y1), COLOURS[face.label], self.thickness)
        layout = layout_labels(faces, out.shape[1], out.shape[0], show_counts=self.show_counts)
        for label in layout.labels:
            _draw(out, label, COLOURS[faces[label.face].label])
        for cls, part in zip((*CLASSES, UNASSESSABLE), layout.banner):
            _draw(out, part, COLOURS[cls])
        return out


def full_text(face: Face) -> str:
    text = SHORT[face.label]
    if face.probabilities is not None and face.label is not None:
        text += f" {max(face.probabilities):.2f}"
    if face.track_id is not None:
        text = f"#{face.track_id} {text}"
    return text


def compact_text(face: Face, index: int) -> str:
    return str(face.track_id if face.track_id is not None else index + 1)


def layout_labels(faces: list[Face], width: int, height: int, show_counts: bool = True) -> Layout:
    """Where every label goes, no two overlapping, inside the image, clear of the counts banner.

    Full labels when they all fit; otherwise compact numbers for every face. A number that still
    finds no free spot (a face hidden under others) is left out rather than drawn over another.
    """
    banner = _banner(faces, width, height) if show_counts else ()
    reserved = [part.rect for part in banner]
    boxes = [_int_box(f.box) for f in faces]
    full = _place([full_text(f) for f in faces], FULL_SCALE, boxes, width, height, reserved, near_only=True)
    if all(label is not None for label in full):
        return Layout(labels=tuple(full), banner=banner, compact=False)
    compact = _place([compact_text(f, i) for i, f in enumerate(faces)], COMPACT_SCALE, boxes, width, height,
                     reserved)
    return Layout(labels=tuple(label for label in compact if label is not None), banner=banner, compact=True)


def overlaps(a: Rect, b: Rect) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def label_size(text: str, scale: float) -> tuple[int, int]:
    (tw, th), base = cv2.getTextSize(text, FONT, scale, 1)
    return tw + 4, th + base + 3


def _place(texts: list[str], scale: float, boxes: list[Rect], width: int, height: int,
           reserved: list[Rect], near_only: bool = False) -> list[Label | None]:
    """Greedy, top to bottom: each label at the first free spot next to its box, preferring spots
    that cover no other face; None where no spot is free. near_only keeps full labels touching
    their box (a floating "no mask" could name either of two faces)."""
    taken = list(reserved)
    placed: list[Label | None] = [None] * len(texts)
    for i in sorted(range(len(texts)), key=lambda k: (boxes[k][1], boxes[k][0])):
        w, h = label_size(texts[i], scale)
        if w > width or h > height:
            continue
        spots = [_clamp(spot, w, h, width, height) for spot in _spots(boxes[i], w, h, near_only)]
        free = [r for r in spots if not any(overlaps(r, t) for t in taken)]
        clear = [r for r in free if not any(overlaps(r, b) for j, b in enumerate(boxes) if j != i)]
        if clear or free:
            rect = (clear or free)[0]
            placed[i] = Label(face=i, text=texts[i], rect=rect, scale=scale)
            taken.append(rect)
    return placed


def _spots(box: Rect, w: int, h: int, near_only: bool = False) -> list[tuple[int, int]]:
    """Top-left corners to try, nearest the box first: above, inside, below, beside, then further."""
    x0, y0, x1, y1 = box
    xs = [x0, x1 - w, (x0 + x1 - w) // 2]
    ys = [y0 - h, y0, y1, y1 - h]
    spots = [(x, y) for y in ys for x in xs]
    spots += [(x0 - w, y0), (x1, y0), (x0 - w, y1 - h), (x1, y1 - h)]
    if not near_only:
        spots += [(x, y) for k in (1, 2) for y in (y0 - h - k * h, y1 + k * h) for x in xs]
    return spots


def _clamp(spot: tuple[int, int], w: int, h: int, width: int, height: int) -> Rect:
    x = min(max(spot[0], 0), width - w)
    y = min(max(spot[1], 0), height - h)
    return (x, y, x + w, y + h)


def _banner(faces: list[Face], width: int, height: int) -> tuple[Label, ...]:
    """The counts, one part per class in its colour, in the image corner that hides the fewest faces."""
    counts = count_labels(faces)
    shown = CLASSES + ((UNASSESSABLE,) if counts[UNASSESSABLE] else ())
    texts = [f"{SHORT[c]}: {counts[c]}" for c in shown]
    sizes = [label_size(t, BANNER_SCALE) for t in texts]
    total_w, h = sum(w for w, _ in sizes) + 2 * (len(sizes) - 1), max(h for _, h in sizes)
    if total_w > width or h > height:
        return ()
    boxes = [_int_box(f.box) for f in faces]
    corners = [(2, 2), (2, height - h - 2), (width - total_w - 2, 2), (width - total_w - 2, height - h - 2)]

    def hidden(corner: tuple[int, int]) -> int:
        x, y = _clamp(corner, total_w, h, width, height)[:2]
        return sum(_area(_intersection((x, y, x + total_w, y + h), b)) for b in boxes)

    x, y = _clamp(min(corners, key=hidden), total_w, h, width, height)[:2]
    parts = []
    for text, (w, _) in zip(texts, sizes):
        parts.append(Label(face=-1, text=text, rect=(x, y, x + w, y + h), scale=BANNER_SCALE))
        x += w + 2
    return tuple(parts)


def _int_box(box) -> Rect:
    x0, y0, x1, y1 = (round(v) for v in box)
    return (x0, y0, x1, y1)


def _intersection(a: Rect, b: Rect) -> Rect:
    return (max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3]))


def _area(r: Rect) -> int:
    return max(0, r[2] - r[0]) * max(0, r[3] - r[1])


def _draw(img: np.ndarray, label: Label, colour) -> None:
    x0, y0, x1, y1 = label.rect
    (_, _), base = cv2.getTextSize(label.text, FONT, label.scale, 1)
    cv2.rectangle(img, (x0, y0), (x1 - 1, y1 - 1), colour, -1)
    cv2.putText(img, label.text, (x0 + 2, y1 - 2 - base), FONT, label.scale, (255, 255, 255), 1, cv2.LINE_AA)


def blur_faces(frame: np.ndarray, faces: list[Face]) -> np.ndarray:
    """A copy of the frame (HxWx3 uint8, any channel order; or grey, HxW or HxWx1) with every face box strongly blurred
    (unrecoverable at these sizes): the frame a user may share, never the one analysed."""
    if not isinstance(frame, np.ndarray):
        check_bgr(frame, "frame")
    return blur_boxes(frame, [face.box for face in _faces(faces, "blur_faces(frame, faces)")])


def _faces(faces, call: str) -> list[Face]:
    """`faces` as a list of Faces, or TypeError naming what else came: a bare box was "'tuple' object
    has no attribute 'box'", one Face "'Face' object is not iterable", and a generator was spent by
    the boxes before the labels were placed (a frame of boxes with no label)."""
    if isinstance(faces, Face):
        raise TypeError(f"{call} takes a list of maskwatch Faces, got one Face; for one: [face]")
    faces = list(faces)
    if odd := [f for f in faces if not isinstance(f, Face)]:
        raise TypeError(f"{call} takes a list of maskwatch Faces, got a {type(odd[0]).__name__} among them; "
                        "for bare boxes: maskwatch.render.blur_boxes(frame, boxes), or Face(box) each")
    return faces


# How far a blur reaches past a face's box, a share of its side each way: the boxes are as tight
# as the training annotations, so forehead, chin and ears fell outside them (of the bundled
# samples' blurred faces of 20 px or more, 9 % of each face's area stayed sharp on average, 21 % of
# the faces over 15 %; grown by 10 %, 0.8 %). Also the few pixels a face moves between detections.
BLUR_MARGIN = 0.2


def blur_boxes(frame: np.ndarray, boxes) -> np.ndarray:
    """blur_faces for bare xyxy boxes (N x 4 frame pixels, any iterable): those a frame does not show. Each box
    is grown by BLUR_MARGIN and taken out to whole pixels (floor, ceil), never in."""
    out = frame.copy()
    h, w = out.shape[:2]
    for box in boxes:
        x0, y0, x1, y1 = (float(v) for v in box)
        dx, dy = BLUR_MARGIN * (x1 - x0), BLUR_MARGIN * (y1 - y0)
        x0, y0 = (math.floor(min(max(v, 0), side)) for v, side in ((x0 - dx, w), (y0 - dy, h)))
        x1, y1 = (math.ceil(min(max(v, 0), side)) for v, side in ((x1 + dx, w), (y1 + dy, h)))
        if x1 - x0 < 1 or y1 - y0 < 1:
            continue
        out[y0:y1, x0:x1] = _blurred_region(out[y0:y1, x0:x1])
    return out


def _blurred_region(region: np.ndarray) -> np.ndarray:
    """A face's region (its grown box) blurred: shrunk to 1/8 (a plain blur of a large face can still
    leave features), blurred there, enlarged back to the region's size, and smoothed.

    Privacy: every step after the shrink reads only the shrunk copy `small` or what was made from it,
    never `region`, so the result holds no more of the face than that 1/8 copy, as before this
    Gaussian moved from the enlarged region onto `small`. It is the one the full-size region got
    (kernel half its longer side, OpenCV's sigma for that kernel) scaled to `small`: 64 times fewer
    pixels under an 8 times shorter kernel (it was 3.8 % of a demo site's CPU, docs/bench-capacity.md;
    one thread, a 400 px face 75 times faster, a 64 px one 8 times). Enlarging bilinearly leaves a
    crease every 8 px that the full-size Gaussian used to smooth (without it, 1.7 times the old
    Laplacian variance on the sample faces, median); the last, fixed 7 x 7 Gaussian smooths it at a
    cost that does not grow with k."""
    rh, rw = region.shape[:2]
    small = cv2.resize(region, (max(1, rw // 8), max(1, rh // 8)), interpolation=cv2.INTER_AREA)
    k = max(3, (max(rw, rh) // 2) | 1)
    sigma = 0.3 * ((k - 1) * 0.5 - 1) + 0.8  # what cv2.GaussianBlur takes for sigma 0 with kernel k
    sh, sw = small.shape[:2]
    small = cv2.GaussianBlur(small, (0, 0), sigmaX=sigma * sw / rw, sigmaY=sigma * sh / rh)
    smoothed = cv2.GaussianBlur(cv2.resize(small, (rw, rh), interpolation=cv2.INTER_LINEAR), (7, 7), 2)
    return smoothed.reshape(region.shape)  # OpenCV drops an H x W x 1 frame's channel axis

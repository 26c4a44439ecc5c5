"""Drawing faces on frames, and blurring them for privacy. Settings in __init__, data in annotate."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from maskwatch.faces import Face, count_labels

# BGR colours per class: green wears it, red wears none, orange wears it wrongly.
COLOURS = {"with_mask": (60, 180, 60), "without_mask": (40, 40, 220), "mask_weared_incorrect": (0, 150, 255),
           None: (200, 200, 200)}
SHORT = {"with_mask": "mask", "without_mask": "no mask", "mask_weared_incorrect": "incorrect", None: "face"}


@dataclass(frozen=True)
class FaceAnnotator:
    """Boxes and labels (and optionally blurred faces) on a copy of a BGR frame."""

    blur: bool = False
    show_counts: bool = True
    thickness: int = 2

    def annotate(self, frame: np.ndarray, faces: list[Face]) -> np.ndarray:
        out = blur_faces(frame, faces) if self.blur else frame.copy()
        for face in faces:
            x0, y0, x1, y1 = (int(round(v)) for v in face.box)
            colour = COLOURS[face.label]
            cv2.rectangle(out, (x0, y0), (x1, y1), colour, self.thickness)
            text = SHORT[face.label]
            if face.probabilities is not None and face.label is not None:
                text += f" {max(face.probabilities):.2f}"
            if face.track_id is not None:
                text = f"#{face.track_id} {text}"
            _label(out, text, (x0, y0), colour)
        if self.show_counts:
            counts = count_labels(faces)
            summary = "  ".join(f"{SHORT[c]}: {n}" for c, n in counts.items())
            _label(out, summary, (4, 22), (40, 40, 40), scale=0.55)
        return out


def blur_faces(frame: np.ndarray, faces: list[Face]) -> np.ndarray:
    """A copy of the frame with every face box strongly blurred (unrecoverable at these sizes)."""
    out = frame.copy()
    h, w = out.shape[:2]
    for face in faces:
        x0, y0, x1, y1 = (int(round(v)) for v in face.clipped(w, h).box)
        if x1 - x0 < 1 or y1 - y0 < 1:
            continue
        region = out[y0:y1, x0:x1]
        k = max(3, (max(x1 - x0, y1 - y0) // 2) | 1)
        # Downscale then blur: a plain blur of a large face can still leave features.
        small = cv2.resize(region, (max(1, (x1 - x0) // 8), max(1, (y1 - y0) // 8)), interpolation=cv2.INTER_AREA)
        out[y0:y1, x0:x1] = cv2.GaussianBlur(cv2.resize(small, (x1 - x0, y1 - y0)), (k, k), 0)
    return out


def _label(img: np.ndarray, text: str, origin: tuple[int, int], colour, scale: float = 0.4) -> None:
    x, y = origin
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    y = max(y, th + base + 2)
    cv2.rectangle(img, (x, y - th - base - 2), (x + tw + 4, y), colour, -1)
    cv2.putText(img, text, (x + 2, y - base), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)

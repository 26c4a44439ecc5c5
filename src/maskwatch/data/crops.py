"""Cutting a face out of a photo: one function for training and for inference alike."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

MAX_CROP = 512  # px: the largest crop side `prepare` makes (the shipped models read 96 px)


@dataclass(frozen=True)
class CropSpec:
    """How a face becomes a model input.

    size: side of the square crop in pixels.
    margin: context added around the box on each side, as a fraction of the box's side
        (0 = exactly the box).
    grey: drop colour (the crop keeps 1 channel).
    """

    size: int = 64
    margin: float = 0.0
    grey: bool = False

    def __post_init__(self) -> None:
        if not 8 <= self.size <= MAX_CROP or not 0 <= self.margin <= 2:
            raise ValueError(f"crop size must be 8-{MAX_CROP} px and margin between 0 and 2, "
                             f"got {self.size} and {self.margin}")

    @property
    def channels(self) -> int:
        return 1 if self.grey else 3

    def to_dict(self) -> dict:
        return {"size": self.size, "margin": self.margin, "grey": self.grey}


def crop_face(image: np.ndarray, box: tuple[float, float, float, float], spec: CropSpec) -> np.ndarray:
    """Crop `box` (+ margin) from a BGR image and resize it to spec.size square.

    image: HxWx3 uint8 BGR. Returns size x size x 3 BGR uint8, or size x size grey uint8.
    Context that falls outside the image is filled by replicating the border, so the face
    stays centred. Raises ValueError if the box has no area inside the image.
    """
    return resize_patch(face_patch(image, box, spec), spec)


def face_patch(image: np.ndarray, box: tuple[float, float, float, float], spec: CropSpec) -> np.ndarray:
    """The pixels of `box` (xyxy, image pixels, + margin) of a BGR image (HxWx3 uint8) at their own
    resolution, border replicated where the margin leaves the image: crop_face before its resize,
    kept apart so that training can resize the same patch at several sizes."""
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be HxWx3 BGR, got shape {image.shape}")
    h, w = image.shape[:2]
    x0, y0, x1, y1 = box
    bw, bh = x1 - x0, y1 - y0
    mx, my = bw * spec.margin, bh * spec.margin
    left, top = int(round(x0 - mx)), int(round(y0 - my))
    # At least one pixel each way: Python rounds halves to even, so (11.5, 12.5) would round to (12, 12).
    right, bottom = max(int(round(x1 + mx)), left + 1), max(int(round(y1 + my)), top + 1)
    # The face itself must overlap the image; context outside it is replicated.
    if min(x1, w) - max(x0, 0) < 1 or min(y1, h) - max(y0, 0) < 1:
        raise ValueError(f"box {box} has no area inside the {w}x{h} image")
    pad = max(0, -left, -top, right - w, bottom - h)
    if pad:
        image = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        left, top, right, bottom = left + pad, top + pad, right + pad, bottom + pad
    return image[top:bottom, left:right]


def resize_patch(patch: np.ndarray, spec: CropSpec) -> np.ndarray:
    """A face_patch resized to spec.size square (and made grey if spec.grey)."""
    # Tiny faces grow a lot: cubic keeps edges; shrinking big faces wants area averaging.
    interp = cv2.INTER_AREA if patch.shape[0] > spec.size else cv2.INTER_CUBIC
    crop = cv2.resize(patch, (spec.size, spec.size), interpolation=interp)
    if spec.grey:
        crop = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
    return crop

"""Mask classification of face crops through ONNX Runtime: no torch needed.

    from maskwatch import Classifier
    clf = Classifier.load()                      # the model shipped in the package
    clf.predict([crop])[0].label                 # crop: BGR uint8, exactly the face's box
    clf.predict_boxes(photo, [(x0, y0, x1, y1)]) # -> [Face(label=..., probabilities=...)]
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from maskwatch.data.crops import CropSpec, model_input
from maskwatch.faces import CLASSES, Face

SHIPPED_MODEL = Path(__file__).parent / "weights" / "classifier.onnx"
# Keys of the ONNX metadata that make an exported model self-describing.
META_KEY = "maskwatch"


@dataclass(frozen=True)
class Prediction:
    """One crop's class and its calibrated probabilities (CLASSES order)."""

    label: str
    probabilities: tuple[float, ...]

    def as_dict(self) -> dict:
        return {"label": self.label, "probabilities": dict(zip(CLASSES, self.probabilities))}


class Classifier:
    """An exported maskwatch classifier (.onnx with its crop spec and temperature inside)."""

    def __init__(self, model_path: Path | str, threads: int = 0) -> None:
        import onnxruntime as ort

        model_path = Path(model_path)
        if not model_path.is_file():
            raise FileNotFoundError(f"{model_path}: classifier model not found")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
        meta = self.session.get_modelmeta().custom_metadata_map
        if META_KEY not in meta:
            raise ValueError(f"{model_path}: not a maskwatch model (no '{META_KEY}' metadata); "
                             "use `maskwatch export`")
        self.info = json.loads(meta[META_KEY])
        if tuple(self.info["classes"]) != CLASSES:
            raise ValueError(f"{model_path}: model classes {self.info['classes']} differ from {CLASSES}")
        self.spec = CropSpec(**self.info["crop"])
        self.temperature = float(self.info.get("temperature", 1.0))
        self.model_path = model_path
        self._input = self.session.get_inputs()[0].name

    @classmethod
    def load(cls, path: Path | str | None = None, threads: int = 0) -> Classifier:
        """The shipped model, or the .onnx file at `path`."""
        return cls(path or SHIPPED_MODEL, threads=threads)

    def predict(self, crops: Sequence[np.ndarray], batch_size: int = 256) -> list[Prediction]:
        """Classify face crops: each HxWx3 BGR uint8, exactly the face's box (any size)."""
        exact = replace(self.spec, margin=0.0)
        inputs = [model_input(c, (0, 0, c.shape[1], c.shape[0]), exact) for c in map(_as_bgr, crops)]
        return self._classify(inputs, batch_size)

    def predict_boxes(self, image: np.ndarray, boxes: Sequence[Face | Sequence[float]],
                      batch_size: int = 256) -> list[Face]:
        """Classify the faces at `boxes` (xyxy pixels, or Faces) of one BGR photo.

        Crops take the context margin the model was trained with; boxes reaching outside
        the photo are clipped first. Returns one Face per box, labelled, in the same order.
        """
        faces = [b if isinstance(b, Face) else Face(box=tuple(b)) for b in boxes]
        h, w = image.shape[:2]
        inputs = [model_input(image, f.clipped(w, h).box, self.spec) for f in faces]
        predictions = self._classify(inputs, batch_size)
        return [f.with_prediction(p.label, p.probabilities) for f, p in zip(faces, predictions)]

    def probabilities(self, batch: np.ndarray) -> np.ndarray:
        """N x S x S x C uint8 prepared crops (S: the spec's size or small_size) -> N x 3
        calibrated probabilities."""
        side = batch.shape[1]
        x = np.ascontiguousarray(batch.reshape(len(batch), side, side, -1).transpose(0, 3, 1, 2),
                                 dtype=np.float32)
        logits = self.session.run(None, {self._input: x})[0] / self.temperature
        logits -= logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        return e / e.sum(axis=1, keepdims=True)

    def probabilities_of(self, inputs: Sequence[np.ndarray], batch_size: int = 256) -> np.ndarray:
        """Model inputs of mixed sides (spec.size or small_size, as model_input makes them) ->
        N x 3 calibrated probabilities, in the same order."""
        # One batch holds one input side: small faces and large ones go through separately.
        probs = np.zeros((len(inputs), len(CLASSES)), dtype=np.float32)
        sides = np.array([x.shape[0] for x in inputs])
        for side in np.unique(sides):
            rows = np.flatnonzero(sides == side)
            for i in range(0, len(rows), batch_size):
                part = rows[i:i + batch_size]
                probs[part] = self.probabilities(np.stack([inputs[j] for j in part]))
        return probs

    def _classify(self, inputs: list[np.ndarray], batch_size: int) -> list[Prediction]:
        probs = self.probabilities_of(inputs, batch_size)
        return [Prediction(CLASSES[int(p.argmax())], tuple(float(v) for v in p)) for p in probs]


def _as_bgr(crop: np.ndarray) -> np.ndarray:
    if not isinstance(crop, np.ndarray) or crop.dtype != np.uint8:
        raise ValueError("crops must be uint8 NumPy arrays (BGR)")
    if crop.ndim == 2:
        import cv2

        return cv2.cvtColor(crop, cv2.COLOR_GRAY2BGR)
    if crop.ndim != 3 or crop.shape[2] != 3 or crop.shape[0] < 1 or crop.shape[1] < 1:
        raise ValueError(f"a crop must be HxWx3 BGR, got shape {crop.shape}")
    return crop

"""maskwatch: who wears a face mask, who wears it wrongly, who wears none.

The public API is small: :class:`Face` (one face in a frame), :class:`Classifier`
(three-way mask classification of BGR face crops through ONNX Runtime) and :class:`Detector`
(every face of a frame, found and classified).
"""

import os

# Decompression bombs: OpenCV refuses to decode an image whose header claims more pixels than
# this (maskwatch.data.images.MAX_PIXELS), before allocating it. OpenCV reads the variable when
# it is loaded, so it is set before anything here imports cv2; a value already set is kept.
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", "100000000")

from maskwatch.faces import CLASSES, Face  # noqa: E402

__all__ = ["CLASSES", "Face", "Classifier", "Detector"]
__version__ = "0.1.0"


def __getattr__(name: str):
    # Imported lazily so that `import maskwatch` does not start ONNX Runtime.
    if name == "Classifier":
        from maskwatch.classifier import Classifier

        return Classifier
    if name == "Detector":
        from maskwatch.detection.detector import Detector

        return Detector
    raise AttributeError(f"module 'maskwatch' has no attribute {name!r}")

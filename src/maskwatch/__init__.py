"""maskwatch: who wears a face mask, who wears it wrongly, who wears none.

The public API is small: :class:`Face` (one face in a frame), :class:`Classifier`
(three-way mask classification of BGR face crops through ONNX Runtime) and :class:`Detector`
(every face of a frame, found and classified).
"""

from maskwatch.faces import CLASSES, Face

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

r"""maskwatch: who wears a face mask, who wears it wrongly, who wears none.

The public API is small: :class:`Face` (one face in a frame), :class:`Classifier`
(three-way mask classification of BGR face crops through ONNX Runtime), :class:`Detector`
(every face of a frame, found and classified) and :func:`read_detections` (a `detect` run's
detections.jsonl read back as :class:`FrameRecord`\ s of `Face`\ s).
"""

import os

# Decompression bombs: images whose header claims more pixels than this are refused before they
# are decoded (maskwatch.data.images). OpenCV reads the limit when it is loaded, so it is set
# before anything here imports cv2; a value already set is kept.
MAX_PIXELS = 100_000_000
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(MAX_PIXELS))
# FFmpeg's and OpenCV's own lines ("[tcp @ 0x...] Connection ... failed", "Stream timeout
# triggered") came on every retry of a dead camera; maskwatch says each outage once, by name.
# Set either variable to see them again.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")

from typing import TYPE_CHECKING  # noqa: E402

from maskwatch.faces import CLASSES, Face  # noqa: E402
from maskwatch.records import FrameRecord, read_detections  # noqa: E402

if TYPE_CHECKING:  # so that type checkers see what __getattr__ imports on first use
    from maskwatch.classifier import Classifier
    from maskwatch.detection.detector import Detector

__all__ = ["CLASSES", "Face", "FrameRecord", "read_detections", "Classifier", "Detector"]
try:  # one version, pyproject.toml's, as the installed package records it
    from importlib.metadata import PackageNotFoundError, version as _version

    __version__ = _version("maskwatch")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "unknown"


def __getattr__(name: str):
    # Imported lazily so that `import maskwatch` does not start ONNX Runtime.
    if name == "Classifier":
        from maskwatch.classifier import Classifier

        return Classifier
    if name == "Detector":
        from maskwatch.detection.detector import Detector

        return Detector
    raise AttributeError(f"module 'maskwatch' has no attribute {name!r}")


def __dir__() -> list[str]:
    # With __getattr__ alone, dir() and a shell's tab completion lacked Classifier and Detector
    # until something imported them (PEP 562 pairs the two).
    return sorted(set(globals()) | set(__all__))

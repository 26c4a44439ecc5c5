r"""maskwatch: who wears a face mask, who wears it wrongly, who wears none.

The public API is small: :class:`Face` (one face in a frame), `CLASSES` (the three labels, in the
order of every model's probabilities), :class:`Classifier` (three-way mask classification of BGR
face crops through ONNX Runtime), :class:`Detector` (every face of a frame, found and classified)
and :func:`read_detections` (a `detect` run's detections.jsonl read back as
:class:`FrameRecord`\ s of `Face`\ s).
"""

import os as _os

# Decompression bombs: images whose header claims more pixels than this are refused before they
# are decoded (maskwatch.data.images). OpenCV reads the limit when it is loaded, so it is set
# before anything here imports cv2; a value already set is kept.
MAX_PIXELS = 100_000_000
_os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(MAX_PIXELS))
# FFmpeg's and OpenCV's own lines ("[tcp @ 0x...] Connection ... failed", "Stream timeout
# triggered") came on every retry of a dead camera; maskwatch says each outage once, by name.
# Set either variable to see them again.
_os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
_os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
# ONNX Runtime 1.32's Linux builds keep a device id and queue telemetry (the process, the OS, the
# paths, every model session) under ~/.cache/Microsoft for upload to Microsoft: a site's machine
# would report home unasked. Off before onnxruntime is imported, which is when it reads this
# (disable_telemetry_events() later still leaves the device id and the first event); a value
# already set, ORT_DISABLE_TELEMETRY=0 to allow it, is kept.
_os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

from typing import TYPE_CHECKING  # noqa: E402

from maskwatch.faces import CLASSES, Face  # noqa: E402
from maskwatch.records import FrameRecord, read_detections  # noqa: E402

if TYPE_CHECKING:  # so that type checkers see what __getattr__ imports on first use
    from maskwatch.classifier import Classifier
    from maskwatch.detection.detector import Detector
# The module's names are its API (dir(maskwatch), a shell's completion): what it imports for its own
# use is private (os, importlib.metadata's) or gone once used (TYPE_CHECKING).
del TYPE_CHECKING

__all__ = ["CLASSES", "Face", "FrameRecord", "read_detections", "Classifier", "Detector"]
try:  # one version, pyproject.toml's, as the installed package records it
    from importlib.metadata import PackageNotFoundError as _NotInstalled, version as _version

    __version__ = _version("maskwatch")
except _NotInstalled:  # run from a source tree that was never installed
    __version__ = "unknown"


def __getattr__(name: str) -> type:
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
    # until something imported them (PEP 562 pairs the two). Private names (_os) are left out.
    return sorted(name for name in set(globals()) | set(__all__) if name.startswith("__") or not name.startswith("_"))

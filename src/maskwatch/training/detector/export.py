"""`maskwatch export-detector`: a detector run to an ONNX file and its settings.

The settings' score cut-off is fitted on the run's training photos (best F1 at IoU 0.5), never
on the held-out ones.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from maskwatch.atomic import atomic_dir
from maskwatch.detection.detector import DetectorConfig

META_KEY = "maskwatch.detector"
# The project's detector learned this dataset's boxes: no mapping, frames scaled automatically.
# Scale settings chosen on training photos (`python -m maskwatch.training.detector.tune_scale`, BENCHMARKS.md).
DEFAULT_SETTINGS = DetectorConfig(backend="maskwatch", model="detector.onnx", upscale=None,
                                  target_side=800, photo_side=1280,  # benchmarks/photo_side.py
                                  max_upscale=2.0, native_side=640, coarse_side=256,
                                  coarse_min_face=32.0,  # benchmarks/medium_faces.py, issue 23
                                  threshold=0.05, min_score=0.4, nms_iou=0.4)


def export_detector(run: Path, out: Path, settings: DetectorConfig = DEFAULT_SETTINGS,
                    fit_photos: int | None = None, progress: bool = True) -> dict:
    """Write OUT/detector.onnx and OUT/detector.json (settings with a fitted cut-off), and
    OUT/detector-int8.onnx with its settings (static int8 quantization); fit_photos: the first N
    training photos only, for both the cut-off and the int8 calibration (a quick export)."""
    from maskwatch.data.photos import photo_split
    from maskwatch.training.detector.train import DetectorRecipe

    run = Path(run)
    finished_model(run)
    recipe = DetectorRecipe.from_dict(json.loads((run / "config.json").read_text())["recipe"])  # checked first
    with atomic_dir(out, own="detector.json") as tmp:
        onnx_path = tmp / "detector.onnx"
        config = write_onnx(run, onnx_path)
        train = photo_split(Path(config["data"]), seed=recipe.split_seed).train
        fitted, report = fit_settings(Path(config["data"]), train[:fit_photos], replace(settings, model=str(onnx_path.resolve())),
                                      progress=progress)
        settings = replace(fitted, model=settings.model)
        (tmp / "detector.json").write_text(json.dumps(settings.to_dict() | {"fitted_on": report}, indent=2))
        # The int8 variant, same settings: measured beside the float model in BENCHMARKS.md. Its
        # activations are calibrated on the photos the cut-off was fitted on (fit_photos of them).
        quantize_detector(onnx_path, tmp / "detector-int8.onnx", Path(config["data"]), train[:fit_photos],
                          settings=settings)
        (tmp / "detector-int8.json").write_text(json.dumps(
            replace(settings, model="detector-int8.onnx").to_dict() | {"fitted_on": report}, indent=2))
    return settings.to_dict() | {"fitted_on": report}


def finished_model(run: Path) -> Path:
    """The run's final model.pt; FileNotFoundError saying how to finish the run if there is none."""
    model_path = Path(run) / "model.pt"
    if not model_path.is_file():
        raise FileNotFoundError(f"{model_path} not found: the run is not finished "
                                "(run `maskwatch train-detector` again with the same --out to resume)")
    return model_path


def write_onnx(run: Path, onnx_path: Path) -> dict:
    """The run's final model as ONNX at onnx_path, its recipe and split in the metadata, checked
    against PyTorch; returns the run's config.json."""
    import onnx
    import onnxruntime as ort

    from maskwatch.training.detector.facenet import FaceNet
    from maskwatch.training.detector.train import build_net

    model_path = finished_model(run)
    config = json.loads((Path(run) / "config.json").read_text())
    net = build_net()
    try:
        net.load_state_dict(torch.load(model_path, weights_only=True, map_location="cpu")["model"])
    except Exception as err:  # noqa: BLE001 - truncated, or of another version: a traceback of every key
        raise ValueError(f"{model_path}: not a model this can export ({type(err).__name__}: "
                         f"{str(err).splitlines()[0][:200] if str(err) else ''}); train the run again") from None
    model = FaceNet(net).eval()
    torch.onnx.export(model, (torch.zeros(1, 3, 256, 320),), str(onnx_path), input_names=["image"],
                      output_names=["heatmap", "size", "offset"],
                      dynamic_axes={"image": {0: "batch", 2: "height", 3: "width"},
                                    **{k: {0: "batch", 2: "h", 3: "w"} for k in ("heatmap", "size", "offset")}},
                      opset_version=17, dynamo=False)
    proto = onnx.load(str(onnx_path))
    entry = proto.metadata_props.add()
    entry.key, entry.value = META_KEY, json.dumps({
        "input": "RGB 0..255, N x 3 x H x W, H and W multiples of 32",
        "outputs": "stride 4: heatmap (sigmoid), size (log(h/4), log(w/4)), offset (y, x)",
        "base": "CenterFace (MIT), fine-tuned by maskwatch", "split": config["split"],
        "train_photos": config["train_photos"], "recipe": config["recipe"]})
    onnx.save(proto, str(onnx_path))
    _check_same_outputs(model, onnx_path, ort)
    return config


def _check_same_outputs(model, onnx_path: Path, ort) -> None:
    """The ONNX graph must give what the PyTorch module gives (to 1e-4)."""
    x = np.random.default_rng(0).uniform(0, 255, (1, 3, 192, 256)).astype(np.float32)
    with torch.no_grad():
        expected = [t.numpy() for t in model(torch.from_numpy(x))]
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    for name, want, got in zip(("heatmap", "size", "offset"), expected, session.run(None, {"image": x})):
        if not np.allclose(want, got, atol=1e-4):
            raise RuntimeError(f"exported {name} differs from PyTorch by {np.abs(want - got).max():.2e}")


def fit_settings(data_dir: Path, annotations, settings: DetectorConfig, closeups: int = 60,
                 progress: bool = True) -> tuple[DetectorConfig, dict]:
    """The default cut-off (best F1 at IoU 0.5 over these training photos) and, with a coarse
    pass, its score power (fitted on close-ups made from the same training photos)."""
    from maskwatch.detection.closeups import closeup_set
    from maskwatch.detection.fit import fit_coarse_score_power, fit_min_score

    fitted, report = fit_min_score(data_dir, annotations, settings, progress=progress)
    if fitted.coarse_side:
        power, coarse = fit_coarse_score_power(closeup_set(data_dir, annotations, count=closeups, seed=1), fitted)
        fitted = replace(fitted, coarse_score_power=round(power, 4))
        report |= coarse
    return fitted, report


def quantize_detector(onnx_path: Path, out: Path, data_dir: Path, annotations, photos: int = 32,
                      settings: DetectorConfig = DEFAULT_SETTINGS) -> Path:
    """int8 weights and activations (ONNX Runtime's static quantization, QDQ, per channel).
    The output is written whole or not at all.

    Activation ranges are calibrated on `photos` training photos, each resized as the detector
    resizes it at run time.
    """
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    from maskwatch.atomic import atomic_path
    from maskwatch.data.photos import read_photo
    from maskwatch.detection.centerface import network_input

    class Photos(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter(annotations[:photos])

        def get_next(self):
            ann = next(self.items, None)
            if ann is None:
                return None
            image = read_photo(data_dir, ann)
            h, w = image.shape[:2]
            return {"image": network_input(image, settings.scale.main_scale(w, h))}

    with atomic_path(out, suffix=".onnx") as tmp:
        quantize_static(str(onnx_path), str(tmp), Photos(), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    return Path(out)

"""`maskwatch export`: a run folder to one self-describing ONNX file for ONNX Runtime."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from maskwatch.atomic import atomic_path
from maskwatch.classifier import META_KEY, CloseupRule, GateRule, NightRule
from maskwatch.training.classifier.train import load_model


def export_onnx(run: Path, out: Path, gate: GateRule | None = None, closeup: CloseupRule | None = None,
                night: NightRule | None = None) -> Path:
    """Write the run's model to `out` with its classes, crop spec and temperature as metadata.

    The temperature comes from the run's metrics.json (written by `maskwatch evaluate`);
    without it probabilities are left uncalibrated (T = 1). With `gate`, the file is a gate
    (see maskwatch.classifier.GateRule), which a gate without calibration cannot be; with
    `closeup`, a close-up model (maskwatch.classifier.CloseupRule); with `night`, a night model
    (maskwatch.classifier.NightRule).
    """
    import onnx

    run = Path(run)
    if gate is not None and not (run / "metrics.json").is_file():
        raise FileNotFoundError(f"{run / 'metrics.json'}: a gate needs calibrated probabilities; "
                                f"run `maskwatch evaluate {run}` first")
    model, config = load_model(run)
    if night is not None and not config.get("train", {}).get("night"):  # a colour model would answer grey faces
        raise ValueError(f"{run}: not trained as a night model (its config.json has no train.night); "
                         "train it with `maskwatch train --night`")
    metrics_path = run / "metrics.json"
    try:
        calibration = json.loads(metrics_path.read_text()).get("calibration", {}) if metrics_path.is_file() else {}
    except (ValueError, AttributeError) as err:  # truncated, not text, or not an object
        raise ValueError(f"{metrics_path}: not the metrics `maskwatch evaluate` writes ({str(err)[:80]}); "
                         f"run `maskwatch evaluate {run}` again") from None
    temperature = calibration.get("temperature", 1.0)
    crop = config["crop"]
    channels = 1 if crop["grey"] else 3
    example = torch.zeros(1, channels, crop["size"], crop["size"])
    with atomic_path(out, suffix=".onnx") as tmp:
        torch.onnx.export(model, (example,), str(tmp), input_names=["pixels"], output_names=["logits"],
                          dynamic_axes={"pixels": {0: "batch"}, "logits": {0: "batch"}},
                          opset_version=17, dynamo=False)
        proto = onnx.load(str(tmp))
        info = {"model": config["model"], "classes": config["classes"], "crop": crop,
                "temperature": temperature, "input": config["input"], "split": config.get("split")}
        if gate is None and "doubt" in calibration:
            info["doubt"] = calibration["doubt"]["threshold"]  # see Classifier: unsure faces are unassessable
        if gate is not None:
            info["gate"] = {"threshold": gate.threshold, "max_side": gate.max_side, "answers": list(gate.answers)}
        if closeup is not None:
            info["closeup"] = {"above": closeup.above}
        if night is not None:
            info["night"] = {"frames": night.frames}
        entry = proto.metadata_props.add()
        entry.key, entry.value = META_KEY, json.dumps(info)
        onnx.save(proto, str(tmp))
    return Path(out)

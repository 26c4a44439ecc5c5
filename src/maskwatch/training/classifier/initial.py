"""`train --init`: start from a trained classifier (the shipped one, an exported .onnx file or a run
folder) instead of ImageNet's weights, for a site that has a few dozen photos of its own.

An exported file has its batch normalisation folded into the convolutions, so its weights go back
in unfolded: each convolution takes the folded weights, and the normalisation after it passes them
on unchanged (mean 0, variance 1 - eps, scale 1, shift the folded bias). The network then computes
what the file computes (checked here against ONNX Runtime), and an --init run keeps every
normalisation's statistics as they are while it trains (train.py): the batches of a few dozen faces
would replace statistics learned on thousands, and from a file those statistics are gone anyway.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from maskwatch.data.crops import CropSpec
from maskwatch.faces import CLASSES

SHIPPED = "shipped"  # --init shipped: the shipped classifier.onnx
# --init without --lr trains at this share of the recipe's rate. The recipe's (2e-3, onecycle) is
# for a start from ImageNet's weights: from the shipped classifier, its normalisation frozen, it
# threw the start away (on 24 photos of the Kaggle set, two seeds: every face called with_mask
# after 12 epochs, where a tenth kept and sharpened the start).
INIT_LR_SHARE = 0.1


def init_source(value: str) -> Path:
    """The file or run folder `--init` names (`shipped`: the shipped classifier), or ValueError."""
    if value == SHIPPED:
        from maskwatch.classifier import SHIPPED_MODEL

        return SHIPPED_MODEL
    path = Path(value)
    if path.is_dir():
        return path.resolve()
    if path.is_file() and path.suffix.lower() == ".onnx":
        return path.resolve()
    what = "no such file or folder" if not path.exists() else "neither an .onnx file nor a run folder"
    raise ValueError(f"--init {value}: {what}; give `shipped`, a classifier exported by `maskwatch export` "
                     "(.onnx) or a run folder of `maskwatch train`")


def load_initial_weights(model: nn.Module, source: Path, model_name: str, spec: CropSpec) -> None:
    """Put the weights of `source` (init_source's) into `model`, a fresh `model_name` for `spec`'s
    crops; ValueError naming the source where it is another network or was trained on other crops."""
    source = Path(source)
    if source.is_dir():
        from maskwatch.training.classifier.train import load_model

        trained, config = load_model(source)
        _check_same(source, config.get("model"), CropSpec(**config["crop"]), model_name, spec, config.get("classes"))
        model.load_state_dict(trained.state_dict())
        return
    info, weights, convs = _read_onnx(source)
    _check_same(source, info.get("model"), CropSpec(**info["crop"]), model_name, spec, info.get("classes"))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    norms = _norm_after_conv(model, spec)
    for name, value in weights.items():  # the weights the export kept under their own names (the dense layers)
        if name in state:
            state[name] = torch.from_numpy(value.copy())
    for module_path, (weight, bias) in convs.items():
        if f"{module_path}.weight" not in state:
            raise ValueError(f"--init {source}: its convolution {module_path} is not in a {model_name}")
        state[f"{module_path}.weight"] = torch.from_numpy(weight.copy())
        norm = norms.get(module_path)
        if norm is None:
            state[f"{module_path}.bias"] = torch.from_numpy(bias.copy())
            continue
        if f"{module_path}.bias" in state:
            state[f"{module_path}.bias"].zero_()
        eps = dict(model.named_modules())[norm].eps
        state[f"{norm}.weight"].fill_(1.0)
        state[f"{norm}.bias"] = torch.from_numpy(bias.copy())
        state[f"{norm}.running_mean"].zero_()
        state[f"{norm}.running_var"].fill_(1.0 - eps)
    model.load_state_dict(state)
    _check_same_logits(model, source, spec)


def init_digest(source: Path) -> str:
    """SHA-256 of the weights `source` holds (a run folder's model.safetensors), so that a checkpoint
    of a run started from other weights under the same name is not resumed."""
    import hashlib

    path = source / "model.safetensors" if source.is_dir() else source
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def freeze_norms(model: nn.Module) -> None:
    """Every batch normalisation of `model` normalises with its stored statistics and keeps them
    (its scale and shift still learn); called after model.train() in an --init run."""
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()


def _read_onnx(source: Path) -> tuple[dict, dict[str, np.ndarray], dict[str, tuple[np.ndarray, np.ndarray]]]:
    """The file's maskwatch metadata, its named weights, and each convolution's (weight, bias) by the
    module path its node is named after (`/backbone/_blocks.0/_depthwise_conv/Conv`)."""
    import onnx
    from onnx import numpy_helper

    from maskwatch.classifier import META_KEY

    try:
        proto = onnx.load(str(source))
        info = json.loads({p.key: p.value for p in proto.metadata_props}[META_KEY])
        info["crop"]
    except Exception as err:  # noqa: BLE001 - not ONNX, cut short, or not a maskwatch export
        raise ValueError(f"--init {source}: not a classifier exported by `maskwatch export` "
                         f"({type(err).__name__}: {str(err)[:80]})") from None
    weights = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    convs = {}
    for node in proto.graph.node:
        if node.op_type != "Conv":
            continue
        module_path = node.name.strip("/").removesuffix("/Conv").replace("/", ".")
        if len(node.input) < 3 or node.input[1] not in weights or node.input[2] not in weights:
            raise ValueError(f"--init {source}: convolution {node.name} has no weights of its own in the file")
        convs[module_path] = (weights[node.input[1]], weights[node.input[2]])
    return info, weights, convs


def _norm_after_conv(model: nn.Module, spec: CropSpec) -> dict[str, str]:
    """Each convolution's path and the path of the batch normalisation run straight after it (the one
    the export folded into it), found by running the network once."""
    names = {module: name for name, module in model.named_modules()}
    calls: list[nn.Module] = []
    hooks = [module.register_forward_hook(lambda m, i, o: calls.append(m)) for module in model.modules()
             if isinstance(module, (nn.Conv2d, nn.modules.batchnorm._BatchNorm))]
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, spec.channels, spec.size, spec.size))
    finally:
        for hook in hooks:
            hook.remove()
    return {names[conv]: names[norm] for conv, norm in zip(calls, calls[1:])
            if isinstance(conv, nn.Conv2d) and isinstance(norm, nn.modules.batchnorm._BatchNorm)}


def _check_same(source: Path, their_model: str | None, their_spec: CropSpec, model_name: str, spec: CropSpec,
                their_classes: list | None) -> None:
    # Outputs in another order (or of other names) started each class from another's weights, in
    # silence: the logits check below compares the file with itself, not with the classes.
    if their_classes is None or tuple(their_classes) != CLASSES:
        raise ValueError(f"--init {source}: its classes are {their_classes}, and this training's are "
                         f"{list(CLASSES)} in that order; start from a model of these classes")
    if their_model != model_name:
        raise ValueError(f"--init {source}: its network is {their_model}, and this training's is {model_name}; "
                         f"train with --model {their_model}")
    if their_spec != spec:
        raise ValueError(f"--init {source}: trained on {_crops(their_spec)}, and the work folder holds "
                         f"{_crops(spec)}; prepare with {_prepare_options(their_spec)}")


def _check_same_logits(model: nn.Module, source: Path, spec: CropSpec) -> None:
    """The network as loaded answers as the file does (a layer mapped wrong would not)."""
    import onnxruntime as ort

    pixels = np.random.default_rng(0).uniform(0, 255, (4, spec.channels, spec.size, spec.size)).astype(np.float32)
    session = ort.InferenceSession(str(source), providers=["CPUExecutionProvider"])
    expected = session.run(None, {session.get_inputs()[0].name: pixels})[0]
    model.eval()
    with torch.no_grad():
        got = model(torch.from_numpy(pixels)).numpy()
    if not np.allclose(got, expected, rtol=1e-3, atol=1e-3 * max(1.0, float(np.abs(expected).max()))):
        raise ValueError(f"--init {source}: its weights do not load into a {model.__class__.__name__} "
                         f"(logits differ by up to {float(np.abs(got - expected).max()):.3g})")


def _crops(spec: CropSpec) -> str:
    return f"{spec.size} px {'grey' if spec.grey else 'colour'} crops with margin {spec.margin:g}"


def _prepare_options(spec: CropSpec) -> str:
    return f"--size {spec.size} --margin {spec.margin:g} {'--grey' if spec.grey else '--colour'}"

"""Models by name, for `--model`."""

from __future__ import annotations

from typing import Callable

from torch import nn

from maskwatch.models.effnet_lite import effnet_lite0, effnet_lite1
from maskwatch.models.seed_cnn import gate_cnn, seed_cnn

MODELS: dict[str, Callable[..., nn.Module]] = {
    "seed-cnn": seed_cnn,
    "gate-cnn": gate_cnn,
    "effnet-lite0": effnet_lite0,
    "effnet-lite1": effnet_lite1,
}


def build_model(name: str, channels: int, size: int, classes: int = 3, pretrained: bool = True) -> nn.Module:
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    return MODELS[name](channels=channels, size=size, classes=classes, pretrained=pretrained)

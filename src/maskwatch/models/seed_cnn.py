"""The study's small sequential CNN, as a baseline."""

from __future__ import annotations

from torch import nn


class Rescale(nn.Module):
    """Pixels 0..255 to 0..1 inside the model, so every runtime feeds raw pixels."""

    def forward(self, x):
        return x * (1.0 / 255.0)


def seed_cnn(channels: int, size: int, classes: int = 3, pretrained: bool = False) -> nn.Sequential:
    """Rescale, three Conv2D + MaxPool blocks, a dense head; logits out (softmax at inference).

    Input: N x channels x size x size float pixels 0..255 (BGR or grey). `pretrained` is
    accepted for a uniform registry and ignored: the seed CNN always starts from scratch.
    """
    return _small_cnn(channels, size, classes, batch_norm=False)


def gate_cnn(channels: int, size: int, classes: int = 3, pretrained: bool = False) -> nn.Sequential:
    """The seed CNN with batch normalisation after each convolution: a gate in front of the
    full classifier (maskwatch.classifier.GateRule).

    With normalisation the network trained from scratch is both more accurate and surer where
    it is right (5-fold CV at 32 px: 0.958 accuracy against the seed CNN's 0.943, and as a gate
    it answers 76 % of faces against 65 %; BENCHMARKS.md, section 2, round eight). ONNX Runtime
    folds it into the convolutions, so it runs at the seed CNN's cost.
    """
    return _small_cnn(channels, size, classes, batch_norm=True)


def _small_cnn(channels: int, size: int, classes: int, batch_norm: bool) -> nn.Sequential:
    blocks = []
    width = channels
    for out in (32, 64, 128):
        norm = [nn.BatchNorm2d(out)] if batch_norm else []
        blocks += [nn.Conv2d(width, out, 3, padding=1, bias=not batch_norm), *norm, nn.ReLU(), nn.MaxPool2d(2)]
        width = out
    side = size // 8
    return nn.Sequential(
        Rescale(),
        *blocks,
        nn.Flatten(),
        nn.Linear(128 * side * side, 128),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Linear(128, classes),
    )

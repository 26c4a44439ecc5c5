"""The shipped close-up recipe with stronger augmentation (issue 23 candidate S; rule RULE-strong-augment.md).

Runs `maskwatch train` with maskwatch.training.classifier.train.augment_batch replaced by
strong_augment below; nothing else changes.
"""
import math
import sys

import torch
import torch.nn.functional as F

import maskwatch.training.classifier.train as train_module


def strong_augment(x: torch.Tensor, generator: torch.Generator, max_shift: float = 0.08) -> torch.Tensor:
    n = x.shape[0]
    u = lambda *shape: torch.rand(*shape, generator=generator)  # noqa: E731
    flip = u(n) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    # geometry: rotation +-15 degrees, scale +-15 %, shift +-8 %
    angle = (u(n) - 0.5) * 2 * math.radians(15)
    scale = 1 + (u(n) - 0.5) * 0.3
    shift = (u(n, 2) - 0.5) * 2 * max_shift
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = torch.cos(angle) * scale
    theta[:, 0, 1] = -torch.sin(angle) * scale
    theta[:, 1, 0] = torch.sin(angle) * scale
    theta[:, 1, 1] = torch.cos(angle) * scale
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    # softness: 30 % of crops shrunk to 35-70 % of their side and grown back
    h, w = x.shape[-2:]
    soft = u(n) < 0.3
    if soft.any():
        factor = float(0.35 + u(1).item() * 0.35)
        small = F.interpolate(x[soft], size=(max(8, int(h * factor)), max(8, int(w * factor))),
                              mode="bilinear", align_corners=False, antialias=True)
        x = x.clone()
        x[soft] = F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)
    # colour: per-channel gains 0.9-1.1 (white balance), saturation 0.6-1.4
    gains = 0.9 + u(n, 3, 1, 1) * 0.2
    x = x * gains
    grey = x.mean(dim=1, keepdim=True)
    saturation = 0.6 + u(n, 1, 1, 1) * 0.8
    x = grey + (x - grey) * saturation
    # contrast and brightness as the shipped augmentation
    contrast = 1 + (u(n, 1, 1, 1) - 0.5) * 0.4
    brightness = (u(n, 1, 1, 1) - 0.5) * 50
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return ((x - mean) * contrast + mean + brightness).clamp(0, 255)


train_module.augment_batch = strong_augment

if __name__ == "__main__":
    from maskwatch.cli import app
    sys.argv = ["maskwatch", "train", *sys.argv[1:]]
    app()

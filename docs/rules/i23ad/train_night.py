"""Candidate N (RULE-night-model.md): the shipped classifier recipe on grey crops with low-light and glare copies.
What trained the shipped night.onnx (on WORK-grey of make_grey_work.py); `maskwatch train WORK --night` is the same recipe."""
import sys

import torch
import torch.nn.functional as F

import maskwatch.training.classifier.train as train_module
from maskwatch.training.classifier.augment import augment_batch

LUMA_BGR = torch.tensor([0.114, 0.587, 0.299]).view(1, 3, 1, 1)


def uniform(n, lo, hi, g):
    return lo + (hi - lo) * torch.rand(n, generator=g)


def night_augment(x: torch.Tensor, generator: torch.Generator, max_shift: float = 0.08) -> torch.Tensor:
    x = augment_batch(x, generator, max_shift)
    x = (x * LUMA_BGR).sum(dim=1, keepdim=True).expand(-1, 3, -1, -1).contiguous()
    n = x.shape[0]
    # low light: contrast cut, darkened, horizontal blur, sensor noise
    low = torch.rand(n, generator=generator) < 0.5
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    contrast = uniform(n, 0.25, 0.8, generator).view(n, 1, 1, 1)
    target = uniform(n, 25, 110, generator).view(n, 1, 1, 1)
    dark = (x - mean) * contrast + target
    widths = torch.tensor([1, 3, 5, 7])[torch.randint(0, 4, (n,), generator=generator)]
    blurred = torch.empty_like(dark)
    for w in (1, 3, 5, 7):
        rows = widths == w
        if rows.any():
            kernel = torch.full((3, 1, 1, w), 1.0 / w)
            blurred[rows] = F.conv2d(F.pad(dark[rows], (w // 2, w // 2, 0, 0), mode="replicate"), kernel, groups=3)
    noise = torch.randn(n, 1, *x.shape[2:], generator=generator) * uniform(n, 0, 10, generator).view(n, 1, 1, 1)
    dark = (blurred + noise).clamp(0, 255)
    x = torch.where(low[:, None, None, None], dark, x)
    # glare: the lower half pushed toward white
    glare = torch.rand(n, generator=generator) < 0.25
    alpha = uniform(n, 0.2, 0.6, generator).view(n, 1, 1)
    half = x.shape[2] // 2
    lower = x[:, :, half:, :]
    lit = lower + (255.0 - lower) * alpha[:, None]
    x = x.clone()
    x[:, :, half:, :] = torch.where(glare[:, None, None, None], lit, lower)
    return x.clamp(0, 255)


train_module.augment_batch = night_augment

if __name__ == "__main__":
    from maskwatch.cli import app
    sys.argv = ["maskwatch", "train", *sys.argv[1:]]
    app()

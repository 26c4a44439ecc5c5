"""Augmentation suited to tiny face crops, applied to whole batches as torch tensors."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def augment_batch(x: torch.Tensor, generator: torch.Generator, max_shift: float = 0.08) -> torch.Tensor:
    """Random horizontal flip, small shift and scale, brightness and contrast jitter.

    x: N x C x H x W float pixels 0..255. Masks are left-right symmetric, so flips are safe;
    shifts stay small because a crop is exactly the face and moving it far loses the chin.
    """
    n = x.shape[0]
    flip = torch.rand(n, generator=generator) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    scale = 1 + (torch.rand(n, generator=generator) - 0.5) * 0.2
    shift = (torch.rand(n, 2, generator=generator) - 0.5) * 2 * max_shift
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = scale
    theta[:, 1, 1] = scale
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    contrast = 1 + (torch.rand(n, 1, 1, 1, generator=generator) - 0.5) * 0.4
    brightness = (torch.rand(n, 1, 1, 1, generator=generator) - 0.5) * 50
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return ((x - mean) * contrast + mean + brightness).clamp(0, 255)


LUMA_BGR = torch.tensor([0.114, 0.587, 0.299]).view(1, 3, 1, 1)


def _uniform(n: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator)


def night_batch(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Crops as an infrared camera sends them at night, for the night model (`train --night`).

    Every crop grey (its luminance in all three channels); half of them a low-light copy (contrast
    cut to 0.25-0.8 around a dark mean of 25-110, a horizontal blur of 1-7 px as a slow shutter
    makes, sensor noise of s.d. 0-10 levels); a quarter with glare (the lower half pushed 20-60 %
    toward white: infrared light reflected by a mask's fabric). x: N x 3 x H x W pixels 0..255, BGR.
    """
    x = (x * LUMA_BGR).sum(dim=1, keepdim=True).expand(-1, 3, -1, -1).contiguous()
    n = x.shape[0]
    low = torch.rand(n, generator=generator) < 0.5
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    contrast = _uniform(n, 0.25, 0.8, generator).view(n, 1, 1, 1)
    target = _uniform(n, 25, 110, generator).view(n, 1, 1, 1)
    dark = (x - mean) * contrast + target
    widths = torch.tensor([1, 3, 5, 7])[torch.randint(0, 4, (n,), generator=generator)]
    blurred = torch.empty_like(dark)
    for width in (1, 3, 5, 7):
        rows = widths == width
        if rows.any():
            kernel = torch.full((3, 1, 1, width), 1.0 / width)
            padded = F.pad(dark[rows], (width // 2, width // 2, 0, 0), mode="replicate")
            blurred[rows] = F.conv2d(padded, kernel, groups=3)
    noise = torch.randn(n, 1, *x.shape[2:], generator=generator) * _uniform(n, 0, 10, generator).view(n, 1, 1, 1)
    x = torch.where(low[:, None, None, None], (blurred + noise).clamp(0, 255), x)
    glare = torch.rand(n, generator=generator) < 0.25
    alpha = _uniform(n, 0.2, 0.6, generator).view(n, 1, 1, 1)
    half = x.shape[2] // 2
    lower = x[:, :, half:, :]
    x = x.clone()
    x[:, :, half:, :] = torch.where(glare[:, None, None, None], lower + (255.0 - lower) * alpha, lower)
    return x.clamp(0, 255)

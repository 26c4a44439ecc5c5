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


def degrade_resolution(x: torch.Tensor, generator: torch.Generator, p: float,
                       sides: tuple[int, int] = (8, 40)) -> torch.Tensor:
    """Shrink a share p of the crops to a random side in `sides` and blow them back up.

    Cameras give faces from 8 px to hundreds; this shows the model the same face tiny and
    blurred, so its call does not hinge on detail that a far camera never resolves.
    """
    n, _, h, w = x.shape
    picked = torch.nonzero(torch.rand(n, generator=generator) < p).flatten().tolist()
    if not picked:
        return x
    x = x.clone()
    for i in picked:
        side = int(torch.randint(sides[0], sides[1] + 1, (1,), generator=generator))
        small = F.interpolate(x[i:i + 1], size=(side, side), mode="area")
        x[i:i + 1] = F.interpolate(small, size=(h, w), mode="bicubic", align_corners=False)
    return x.clamp(0, 255)


def mask_below_nose(masked: torch.Tensor, bare: torch.Tensor, generator: torch.Generator,
                    feather: int = 3) -> torch.Tensor:
    """Wrongly worn masks made from real faces: a bare face's eyes and nose above a seam,
    a masked face's mask pushed down below it (the nose shows, the mouth stays covered).

    masked, bare: N x C x H x W crops of exactly the face box. The seam falls at 50-65 % of the
    height (under the nose tip in this dataset's boxes); the mask is moved down by 5-15 %.
    """
    n, _, h, _ = masked.shape
    out = bare.clone()
    ramp = torch.linspace(0, 1, feather + 2)[1:-1].view(1, -1, 1)
    for i in range(n):
        seam = int(h * (0.50 + 0.15 * float(torch.rand(1, generator=generator))))
        shift = max(1, int(h * (0.05 + 0.10 * float(torch.rand(1, generator=generator)))))
        lower = masked[i, :, seam - shift:h - shift]
        band = min(feather, lower.shape[1])
        out[i, :, seam + band:] = lower[:, band:]
        # A short linear blend hides the seam's hard edge, which would otherwise be the cue.
        out[i, :, seam:seam + band] = (1 - ramp[:, :band]) * bare[i, :, seam:seam + band] + ramp[:, :band] * lower[:, :band]
    return out

"""The shipped recipes with random grey copies of crops (candidate G; rule RULE-grey-augment.md).

Runs `maskwatch train` with maskwatch.training.classifier.train.augment_batch followed by
a luminance replacement of each crop with probability 0.2; nothing else changes.
"""
import sys

import torch

import maskwatch.training.classifier.train as train_module
from maskwatch.training.classifier.augment import augment_batch

LUMA_BGR = torch.tensor([0.114, 0.587, 0.299]).view(1, 3, 1, 1)


def grey_augment(x: torch.Tensor, generator: torch.Generator, max_shift: float = 0.08) -> torch.Tensor:
    x = augment_batch(x, generator, max_shift)
    if x.shape[1] != 3:
        return x
    grey = torch.rand(x.shape[0], generator=generator) < 0.2
    luma = (x * LUMA_BGR).sum(dim=1, keepdim=True).expand_as(x)
    return torch.where(grey[:, None, None, None], luma, x)


train_module.augment_batch = grey_augment

if __name__ == "__main__":
    from maskwatch.cli import app
    sys.argv = ["maskwatch", "train", *sys.argv[1:]]
    app()

"""Classifier architectures (PyTorch; needs the `train` extra)."""

from maskwatch.models.registry import MODELS, build_model

__all__ = ["MODELS", "build_model"]

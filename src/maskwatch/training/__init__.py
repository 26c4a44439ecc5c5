"""Training, evaluation and the study (PyTorch; needs the `train` extra)."""

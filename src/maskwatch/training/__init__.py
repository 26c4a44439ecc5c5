"""Training (PyTorch; needs the `train` extra): classifier/ and detector/."""

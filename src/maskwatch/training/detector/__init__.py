"""The face detector: training crops, fine-tuning CenterFace in PyTorch, export to ONNX."""

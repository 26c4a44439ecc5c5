"""ONNX Runtime sessions as maskwatch runs them: several networks in turn on a few cores."""

from __future__ import annotations

from pathlib import Path


def cpu_session(model: Path | str | bytes, threads: int = 0):
    """A CPU InferenceSession whose idle threads sleep instead of spinning.

    maskwatch runs networks one after another (the face detector, the gate, the classifier).
    By default ONNX Runtime's threads spin for a while after each run, taking the cores from
    the next network: on 2 cores the gate and classifier together ran 1.48x faster than the
    classifier alone with spinning, and 2.11x without (BENCHMARKS.md, section 2).
    threads: intra-op threads (0: ONNX Runtime's default, one per core).
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads:
        options.intra_op_num_threads = threads
    return ort.InferenceSession(model if isinstance(model, bytes) else str(model), options,
                                providers=["CPUExecutionProvider"])

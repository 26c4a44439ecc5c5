"""Frames per second end to end on a crowded frame at 640x480, 1280x720 and 1920x1080.

    python benchmarks/fps.py [--frames 40] [--passes 3] [--config NAME=settings.json[:every]] [--gate G.onnx] [--no-centerface]

The crowded frame is the bundled sample's most crowded photo, scaled to cover each resolution
and cut to it, held for the whole clip. Every pipeline runs through `maskwatch detect`'s loop on
the same clip: decode, detect, classify, track, draw, and write the annotated MP4 and JSON
lines. Pipelines alternate within each pass, so that a busy machine slows them alike; the
figure is the median over passes. Rows: the old CenterFace default, today's default, detecting
on every frame, today's default without the gate, and the default as it was before the gate
(no gate, and ONNX Runtime's threads spinning between runs, its default); --gate adds today's
default with another gate in front of the shipped classifier.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import cv2

from maskwatch.data.voc import load_voc_annotation
from maskwatch.detection.detector import WEIGHTS, Detector, DetectorConfig
from maskwatch.video.pipeline import DEFAULT_DETECT_EVERY, run_detect

SAMPLE = Path(__file__).resolve().parents[1] / "sample" / "face-mask-detection"
RESOLUTIONS = ((640, 480), (1280, 720), (1920, 1080))


def crowded_photo() -> Path:
    """The sample photo with the most annotated faces."""
    annotations = [load_voc_annotation(p) for p in sorted((SAMPLE / "annotations").glob("*.xml"))]
    best = max(annotations, key=lambda a: len(a.objects))
    return SAMPLE / "images" / best.filename


def make_clip(path: Path, photo: Path, size: tuple[int, int], frames: int) -> Path:
    image = cv2.imread(str(photo))
    w, h = size
    scale = max(w / image.shape[1], h / image.shape[0])
    resized = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    y0, x0 = (resized.shape[0] - h) // 2, (resized.shape[1] - w) // 2
    frame = resized[y0:y0 + h, x0:x0 + w]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (w, h))
    for _ in range(frames):
        writer.write(frame)
    writer.release()
    return path


def spinning(detector: Detector) -> Detector:
    """The detector with ONNX Runtime's default sessions, whose threads spin between runs (as
    maskwatch ran before maskwatch.runtime.cpu_session)."""
    import onnxruntime as ort

    for part in (detector.finder, detector.classifier):
        part.session = ort.InferenceSession(part.session._model_path, providers=["CPUExecutionProvider"])
    return detector


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--config", action="append", default=[],
                        help="NAME=settings.json[:every]: another pipeline (detect on every n-th frame)")
    parser.add_argument("--gate", type=Path, action="append", default=[],
                        help="another pipeline: today's default with this gate (an exported gate .onnx)")
    parser.add_argument("--no-centerface", action="store_true", help="leave out the slow CenterFace row")
    args = parser.parse_args()
    # name -> (detector, detect on every n-th frame)
    pipelines = {} if args.no_centerface else {
        "CenterFace x2 (default before)": (Detector.load(config=WEIGHTS / "centerface.json"), 1)}
    pipelines |= {
        f"maskwatch default (detect every {DEFAULT_DETECT_EVERY})": (Detector.load(), DEFAULT_DETECT_EVERY),
        "maskwatch, detect every frame": (Detector.load(), 1),
        f"maskwatch default without the gate (detect every {DEFAULT_DETECT_EVERY})":
            (Detector.load(gate=False), DEFAULT_DETECT_EVERY),
        f"maskwatch default before the gate: no gate, threads spinning (detect every {DEFAULT_DETECT_EVERY})":
            (spinning(Detector.load(gate=False)), DEFAULT_DETECT_EVERY),
    }
    for item in args.config:
        name, spec = item.split("=", 1)
        path, _, every = spec.partition(":")
        pipelines[name] = (Detector.load(config=DetectorConfig.from_json(Path(path))), int(every or 1))
    for gate in args.gate:
        pipelines[f"maskwatch default with the gate {gate} (detect every {DEFAULT_DETECT_EVERY})"] = (
            Detector.load(gate=gate), DEFAULT_DETECT_EVERY)
    photo = crowded_photo()
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for size in RESOLUTIONS:
            clip = make_clip(Path(tmp) / f"{size[0]}.mp4", photo, size, args.frames)
            fps = {name: [] for name in pipelines}
            faces = {}
            for _ in range(args.passes):
                for i, (name, (detector, every)) in enumerate(pipelines.items()):
                    start = time.perf_counter()
                    result = run_detect(str(clip), Path(tmp) / f"out-{i}", detector, progress=False,
                                        detect_every=every)
                    fps[name].append(result.frames / (time.perf_counter() - start))
                    faces[name] = result.faces / result.frames
            rows[size] = {name: (statistics.median(v), min(v), max(v), faces[name]) for name, v in fps.items()}
            print(f"done {size}", flush=True)
    print(f"\n{photo.name} ({args.frames} frames per clip, {args.passes} alternating passes, cv2 {cv2.__version__})\n")
    print("| pipeline | " + " | ".join(f"{w}x{h} FPS (min-max)" for w, h in RESOLUTIONS) + " | faces per frame |")
    print("|---|" + "---:|" * (len(RESOLUTIONS) + 1))
    for name in pipelines:
        cells = " | ".join(f"{rows[s][name][0]:.1f} ({rows[s][name][1]:.1f}-{rows[s][name][2]:.1f})" for s in RESOLUTIONS)
        faces = "/".join(f"{rows[s][name][3]:.0f}" for s in RESOLUTIONS)
        print(f"| {name} | {cells} | {faces} |")


if __name__ == "__main__":
    main()

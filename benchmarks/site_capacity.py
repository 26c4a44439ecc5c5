"""Cameras per machine: how many 640x480 cameras one `maskwatch run` keeps up with, at 2 and 5
analysed frames per second, and the CPU each camera costs.

    python benchmarks/site_capacity.py [--fps 2 5] [--seconds 30] [--max-cameras 12]

Every camera plays the same 640x480 clip (the bundled sample's photos, each held 2 s, looped at
25 fps, so each camera decodes 25 frames/s as a real stream sends them) through the whole site:
reader thread, detection every 2nd analysed frame, tracking, votes, events in SQLite with blurred
snapshots, the live view. For each analysed rate the number of cameras grows by one until the
cameras fall behind (mean analysed rate under 95 % of the target) or the process uses more
than 95 % of the machine's cores. CPU is the process's own (user + system) over the measured
window, after a warm-up, so it includes decoding.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import cv2

from maskwatch.data.voc import load_voc_annotation
from maskwatch.detection.detector import Detector
from maskwatch.site.config import SiteConfig
from maskwatch.site.runner import Site

SAMPLE = Path(__file__).resolve().parents[1] / "sample" / "face-mask-detection"
STREAM_FPS = 25.0


def make_clip(path: Path, seconds_per_photo: float = 2.0) -> tuple[Path, float]:
    """The sample's photos at 640x480, each held a while; returns the path and faces per photo."""
    photos = sorted((SAMPLE / "annotations").glob("*.xml"))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), STREAM_FPS, (640, 480))
    faces = []
    for xml in photos:
        annotation = load_voc_annotation(xml)
        faces.append(len(annotation.objects))
        image = cv2.resize(cv2.imread(str(SAMPLE / "images" / annotation.filename)), (640, 480))
        for _ in range(int(seconds_per_photo * STREAM_FPS)):
            writer.write(image)
    writer.release()
    return path, sum(faces) / len(faces)


def measure(clip: Path, cameras: int, fps: float, seconds: float, warmup: float, folder: Path,
            detector) -> dict:
    config = SiteConfig(cameras={f"cam{i}": {"source": str(clip), "fps": fps} for i in range(cameras)},
                        storage={"database": str(folder / f"site-{cameras}-{fps}.db"),
                                 "snapshots": str(folder / f"snaps-{cameras}-{fps}")})
    site = Site(config, detector).start()
    try:
        time.sleep(warmup)
        workers = [c.worker for c in site.cameras_by_id.values()]
        analysed0, cpu0, wall0 = [w.analysed for w in workers], os.times(), time.monotonic()
        time.sleep(seconds)
        analysed1, cpu1, wall1 = [w.analysed for w in workers], os.times(), time.monotonic()
        errors = [w.last_error for w in workers if w.last_error]
    finally:
        site.stop()
    wall = wall1 - wall0
    cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    rates = [(b - a) / wall for a, b in zip(analysed0, analysed1)]
    return {"cameras": cameras, "fps_target": fps, "fps_mean": sum(rates) / len(rates), "fps_min": min(rates),
            "cpu_cores": cpu / wall, "cpu_per_camera": cpu / wall / cameras, "errors": errors}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fps", type=float, nargs="+", default=[2.0, 5.0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--warmup", type=float, default=8.0)
    parser.add_argument("--max-cameras", type=int, default=12)
    parser.add_argument("--out", type=Path, default=None, help="write the rows as JSON here")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    detector = Detector.load()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        clip, faces = make_clip(Path(tmp) / "clip.mp4")
        print(f"{cores} cores; clip 640x480 at {STREAM_FPS:.0f} fps, {faces:.1f} annotated faces per photo")
        for fps in args.fps:
            for cameras in range(1, args.max_cameras + 1):
                row = measure(clip, cameras, fps, args.seconds, args.warmup, Path(tmp), detector)
                rows.append(row)
                keeps_up = row["fps_mean"] >= 0.95 * fps and row["cpu_cores"] <= 0.95 * cores
                print(f"fps {fps:g}: {cameras:2d} cameras, analysed {row['fps_mean']:.2f}/s "
                      f"(slowest {row['fps_min']:.2f}), CPU {row['cpu_cores']:.2f} cores, "
                      f"{row['cpu_per_camera']:.3f} per camera{'' if keeps_up else '  <- falls behind'}"
                      + (f"  errors: {row['errors']}" if row["errors"] else ""), flush=True)
                if not keeps_up:
                    break
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()

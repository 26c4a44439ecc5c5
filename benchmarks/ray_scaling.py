"""Photos/s and video frames/s on Ray with 1 and 2 actors, beside single-process sequential
`maskwatch detect` on the same inputs; Ray's own CPU; a sizing table for camera fleets.

    python benchmarks/ray_scaling.py --photos ../shared/datasets/face-mask-detection/images \\
        [--limit 400] [--video FILE | --video-frames 300 --video-size 640x360] [--videos 4] \\
        [--actors 1,2] [--no-media] [--json ray_scaling.json]

Workloads: the photos of --photos (the first --limit, sorted), and --videos copies of one video
(--video, or a clip of the bundled sample's most crowded photo held for --video-frames frames,
as benchmarks/fps.py makes). Sequential: one process, one thread (ONNX Runtime and OpenCV), each
file through `detect`'s loop (run_detect) in turn: the per-core reference. Ray: `maskwatch
batch` (run_batch) on a local cluster of all cores, once per actor count, after one unmeasured
warm-up photo; its time includes starting the actor pool and loading the models in each actor
(about a second: use a few hundred photos and minutes of video).

CPU: the process CPU time of the sequential run; for Ray, every process below this one (GCS,
raylet, agents, workers) sampled from /proc every 0.2 s, split into the scoring actors and
Ray's own processes (plus this driver). The sizing table takes the sequential CPU-seconds per
video frame (decode, detect every 2nd frame, track; plus drawing and MP4 writing unless
--no-media) for each analysed frame, the measured decode cost for each frame a camera sends
that is not analysed (--stream-fps), and adds Ray's measured overhead share.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Self

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fps import crowded_photo, make_clip  # the same clip maker as the FPS benchmark

from maskwatch.scale.files import ScoreOptions, find_files, score_file

SAMPLE_IMAGES = Path(__file__).resolve().parents[1] / "sample" / "face-mask-detection" / "images"
TICKS = os.sysconf("SC_CLK_TCK")


# --- CPU of this process's descendants, from /proc ------------------------------------------

def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, user+system CPU seconds) of a process; None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / TICKS


def _title(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def category(title: str) -> str:
    """Which part of Ray a process is, from its command line (workers retitle themselves ray::...)."""
    if "MapWorker" in title or "FileScorer" in title:
        return "scoring actors"
    for name in ("gcs_server", "raylet"):
        if name in title:
            return name
    if title.startswith("ray::"):
        return "other workers"
    return "agents and monitors"


class RayCpuMeter:
    """Samples the CPU seconds of every descendant of this process until stopped. A process
    that exits between two samples loses at most one interval of its CPU."""

    def __init__(self, every: float = 0.2) -> None:
        self.every = every
        self.seen: dict[int, tuple[str, float, float]] = {}  # pid -> (category, first, last CPU s)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Self:
        self.driver_start = time.process_time()
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
        self.driver = time.process_time() - self.driver_start

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self._sample()

    def _sample(self) -> None:
        stats = {int(p): s for p in os.listdir("/proc") if p.isdigit() and (s := _stat(int(p)))}
        me, mine = os.getpid(), set()
        frontier = {me}
        while frontier:
            frontier = {pid for pid, (parent, _) in stats.items() if parent in frontier} - mine
            mine |= frontier
        for pid in mine:
            cpu = stats[pid][1]
            kind = category(_title(pid))
            old = self.seen.get(pid)
            if old is None:
                self.seen[pid] = (kind, cpu, cpu)
            else:  # keep the most telling title: an idle worker becomes a scoring actor
                self.seen[pid] = (kind if kind != "other workers" else old[0], old[1], cpu)

    def totals(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for kind, first, last in self.seen.values():
            out[kind] = out.get(kind, 0.0) + last - first
        out["driver (this process)"] = self.driver
        return {k: round(v, 2) for k, v in sorted(out.items())}


# --- The runs -----------------------------------------------------------------------------------

def sequential(files, out: Path, options: ScoreOptions) -> dict:
    """`detect` on each file in turn, in this process, on one thread: wall and CPU seconds."""
    from maskwatch.detection.detector import Detector

    cv2.setNumThreads(1)
    detector = Detector.load(threads=1)
    wall, cpu = time.perf_counter(), time.process_time()
    rows = [score_file(f, out, detector, options) for f in files]
    return {"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu,
            "frames": sum(r["frames"] for r in rows), "failed": sum(r["status"] == "failed" for r in rows)}


def on_ray(inputs: list[Path], out: Path, options: ScoreOptions, actors: int) -> dict:
    from maskwatch.scale.batch import run_batch

    with RayCpuMeter() as meter:
        wall = time.perf_counter()
        report = run_batch(inputs, out, options, actors=actors, progress=False)
        wall = time.perf_counter() - wall
    cpu = meter.totals()
    scoring = cpu.get("scoring actors", 0.0)
    return {"wall_s": wall, "frames": sum(r.get("frames", 0) for r in report.files),
            "failed": report.count("failed"), "cpu_s": cpu, "scoring_cpu_s": scoring,
            "ray_own_cpu_s": round(sum(cpu.values()) - scoring, 2)}


def copy_or_link(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy(source, target)


def decode_seconds_per_frame(video: Path) -> float:
    """CPU seconds to decode one frame of `video` on one thread (no analysis)."""
    cv2.setNumThreads(1)
    capture, frames, cpu = cv2.VideoCapture(str(video)), 0, time.process_time()
    while capture.read()[0]:
        frames += 1
    capture.release()
    return (time.process_time() - cpu) / max(1, frames)


def sizing(cpu_per_frame: float, decode: float, stream_fps: float, overhead: float, node_cores: int) -> list[dict]:
    """Cores (and nodes) for 100 and 1000 cameras at 2 and 5 analysed FPS."""
    rows = []
    for cameras in (100, 1000):
        for fps in (2, 5):
            per_camera = fps * cpu_per_frame + max(0.0, stream_fps - fps) * decode
            cores = cameras * per_camera * (1 + overhead)
            rows.append({"cameras": cameras, "analysed_fps": fps, "cores": round(cores, 1),
                         "nodes": -(-cores // node_cores)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, default=SAMPLE_IMAGES, help="folder of photos (default: the sample)")
    parser.add_argument("--limit", type=int, default=None, help="score only the first N photos")
    parser.add_argument("--video", type=Path, default=None, help="a video file (default: a generated clip)")
    parser.add_argument("--video-frames", type=int, default=300)
    parser.add_argument("--video-size", default="640x360", help="WxH of the generated clip")
    parser.add_argument("--videos", type=int, default=4, help="copies of the video, so every actor gets some")
    parser.add_argument("--actors", default="1,2", help="actor counts to run, comma-separated")
    parser.add_argument("--no-media", action="store_true", help="JSON lines only (closest to camera analysis)")
    parser.add_argument("--stream-fps", type=float, default=25.0, help="frames a camera sends per second (sizing)")
    parser.add_argument("--node-cores", type=int, default=16, help="cores per machine (sizing)")
    parser.add_argument("--json", type=Path, default=None, help="also write every figure here")
    args = parser.parse_args()
    options = ScoreOptions(save_media=not args.no_media)

    with tempfile.TemporaryDirectory(prefix="ray-scaling-") as tmp_name:
        tmp = Path(tmp_name)
        photos = tmp / "photos"
        photos.mkdir()
        for photo in sorted(p for p in args.photos.iterdir() if p.is_file())[:args.limit]:
            (photos / photo.name).symlink_to(photo.resolve())
        videos = tmp / "videos"
        videos.mkdir()
        if args.video is None:
            w, h = (int(v) for v in args.video_size.split("x"))
            source = make_clip(tmp / "clip.mp4", crowded_photo(), (w, h), args.video_frames)
        else:
            source = args.video.resolve()
        for i in range(args.videos):  # hard links (or copies): a batch scores one path once
            copy_or_link(source, videos / f"clip-{i}{source.suffix}")

        results: dict = {"inputs": {"photos": len(list(photos.iterdir())), "videos": args.videos,
                                    "video": str(args.video or f"generated {args.video_size}"),
                                    "media": not args.no_media, "cores": os.cpu_count()}}
        print(f"inputs: {results['inputs']}", flush=True)
        for name, folder in (("photos", photos), ("video", videos)):
            run = sequential(find_files([folder]), tmp / f"seq-{name}", options)
            results[f"sequential {name}"] = run
            print(f"sequential {name}: {run}", flush=True)
        from maskwatch.scale.batch import run_batch
        from maskwatch.scale.cluster import ray_cluster

        with ray_cluster():
            # Warm-up, unmeasured: Ray starts its worker pool and imports on first use.
            run_batch([next(photos.iterdir())], tmp / "warm-up", options, actors=1, progress=False)
            for actors in (int(a) for a in args.actors.split(",")):
                for name, folder in (("photos", photos), ("video", videos)):
                    run = on_ray([folder], tmp / f"ray{actors}-{name}", options, actors)
                    results[f"ray {actors} actors {name}"] = run
                    print(f"ray, {actors} actors, {name}: {run}", flush=True)
        decode = decode_seconds_per_frame(source)

    report(results, args, decode)


def report(results: dict, args, decode: float) -> None:
    actors = [int(a) for a in args.actors.split(",")]
    print("\n| run | photos/s | video frames/s | scaling (photos, video) | Ray's own CPU / scoring CPU |")
    print("| --- | ---: | ---: | --- | ---: |")
    base = {k: results[f"sequential {k}"]["frames"] / results[f"sequential {k}"]["wall_s"] for k in ("photos", "video")}
    print(f"| sequential detect, 1 process, 1 thread | {base['photos']:.2f} | {base['video']:.2f} | 1.00x, 1.00x | - |")
    overheads = []
    for n in actors:
        rate = {k: results[f"ray {n} actors {k}"]["frames"] / results[f"ray {n} actors {k}"]["wall_s"]
                for k in ("photos", "video")}
        own = sum(results[f"ray {n} actors {k}"]["ray_own_cpu_s"] for k in ("photos", "video"))
        scoring = sum(results[f"ray {n} actors {k}"]["scoring_cpu_s"] for k in ("photos", "video"))
        overheads.append(own / scoring if scoring else 0.0)
        results[f"ray {n} actors"] = {"photos_per_s": rate["photos"], "frames_per_s": rate["video"],
                                      "own_over_scoring": overheads[-1]}
        print(f"| Ray batch, {n} actor{'s' * (n > 1)} | {rate['photos']:.2f} | {rate['video']:.2f} | "
              f"{rate['photos'] / base['photos']:.2f}x, {rate['video'] / base['video']:.2f}x | "
              f"{100 * overheads[-1]:.0f} % |")
    seq = results["sequential video"]
    cpu_per_frame = seq["cpu_s"] / max(1, seq["frames"])
    overhead = statistics.mean(overheads) if overheads else 0.0
    print(f"\nCPU per video frame (sequential, 1 thread): {1000 * cpu_per_frame:.1f} ms; decode only: "
          f"{1000 * decode:.2f} ms; Ray's own CPU: {100 * overhead:.0f} % of the scoring CPU "
          f"(mean over {len(overheads)} runs). Per-process CPU (s): see --json.")
    rows = sizing(cpu_per_frame, decode, args.stream_fps, overhead, args.node_cores)
    print(f"\nSizing: cores = cameras x (fps x {1000 * cpu_per_frame:.1f} ms + ({args.stream_fps:g} - fps) x "
          f"{1000 * decode:.2f} ms decode) x (1 + {overhead:.2f} Ray)")
    print(f"| cameras | analysed FPS | cores | machines of {args.node_cores} cores |")
    print("| ---: | ---: | ---: | ---: |")
    for row in rows:
        print(f"| {row['cameras']} | {row['analysed_fps']} | {row['cores']} | {row['nodes']:.0f} |")
    results["sizing"] = {"cpu_per_frame_s": cpu_per_frame, "decode_per_frame_s": decode,
                         "ray_overhead": overhead, "stream_fps": args.stream_fps, "rows": rows}
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
        print(f"-> {args.json}")


if __name__ == "__main__":
    main()

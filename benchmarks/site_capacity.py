"""Cameras per machine on real streams: one `maskwatch run` site, every camera an RTSP stream
(H.264 from GStreamer's RTSP server, tests/rtsp_server.py), motion gating on and off, side by
side with an older commit's code.

    python benchmarks/site_capacity.py quiet --cameras 8 --variants gated ungated base \
        --base-src /tmp/mw-c2fa597/src
    python benchmarks/site_capacity.py busy --cameras 8 14 20 --variants gated base --base-src ...
    python benchmarks/site_capacity.py soak --cameras 8 --seconds 900 --variants gated
    python benchmarks/site_capacity.py busy --cameras $(seq 8 2 30) --variants gated --until-behind

(--until-behind stops a variant at the first camera count it does not keep up with: the
capacity sweep of BENCHMARKS §8, now on RTSP streams.)

Scenes (640x480, 25 fps, built from the bundled sample photos, looped by the server):
  quiet: a store that is empty 80 % of the time: for each of 4 photos (23 faces), 8 s of the
         photo with its faces inpainted away (tests/scenes.py), then 2 s of the photo itself.
  busy:  the 40 sample photos, each held 2 s (people in view all the time, as BENCHMARKS §8).
  soak:  4 cameras on the quiet stream and 4 on the busy one, resident memory sampled.

Variants, each measured in a fresh process so its CPU is its own:
  grab, convert: the cameras' readers alone, every frame grabbed; converted to BGR or not
           (the cost of a stream before any analysis).
  gated:   this tree, motion gating on (the default for `run`), frames decoded on request.
  substream: gated, analysing a 5 fps (--substream-fps) substream of the same clip (`detect_source`, 640x480)
           instead of the 25 fps main stream, as a camera's second stream would be set up.
  ungated: this tree with `motion: {enabled: false}` (decoding on request stays).
  base:    the code under --base-src (e.g. `git archive c2fa597 src | tar -x -C /tmp/mw-c2fa597`),
           run with the same config minus `motion:` (it has no such setting).
  gated-before, substream-before: gated and substream with the code under --before-src (a
           recent commit, to measure one change side by side).

Each run: warm-up, then a measured window (CPU = the process's user + system time over it,
so it includes decoding), then the site stops and every person in view is decided. Reported:
cameras kept up with (mean analysed rate >= 95 % of the target), CPU per camera, detector calls
per analysed frame, frames converted per frame received, and people recorded (events).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STREAM_FPS = 25
SUBSTREAM_FPS = 5  # the `substream` variant's detect_source (--substream-fps)
QUIET_PHOTOS = (0, 2, 3, 4)  # 3, 7, 3 and 10 faces


def build_frames(scene: str, folder: Path, fps: int = STREAM_FPS) -> tuple[Path, float, int]:
    """frame0000.jpg ... of a scene (links to a few distinct JPEGs); (folder, loop seconds, faces per loop)."""
    import cv2

    sys.path.insert(0, str(ROOT))
    from tests.scenes import empty_view, sample_photos

    folder.mkdir(parents=True, exist_ok=True)
    photos = sample_photos()
    runs: list[tuple[object, int]] = []  # (image, frames)
    if scene == "quiet":
        for i in QUIET_PHOTOS:
            runs += [(empty_view(i), 8 * fps), (photos[i][0], 2 * fps)]
        faces = sum(photos[i][1] for i in QUIET_PHOTOS)
    elif scene == "busy":
        runs = [(photo, 2 * fps) for photo, _ in photos]
        faces = sum(n for _, n in photos)
    else:
        raise ValueError(f"unknown scene {scene!r}")
    index = 0
    for k, (image, frames) in enumerate(runs):
        still = folder / f"still{k:03d}.jpg"
        cv2.imwrite(str(still), image, [cv2.IMWRITE_JPEG_QUALITY, 90])
        for _ in range(frames):
            (folder / f"frame{index:04d}.jpg").symlink_to(still.name)
            index += 1
    return folder, index / fps, faces


def serve(scene: str, work: Path, fps: int = STREAM_FPS):
    sys.path.insert(0, str(ROOT))
    from tests.rtsp import RtspServer

    frames, loop, faces = build_frames(scene, work / f"frames-{scene}-{fps}", fps)
    server = RtspServer(frames, work / f"rtsp-{scene}-{fps}.log", fps=fps).start()
    return server, loop, faces


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a process (and its waited-for children) from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return sum(int(fields[i]) for i in (11, 12, 13, 14)) / ticks


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# The measured process -----------------------------------------------------------------------

class CountingDetector:
    """The real detector, counting the frames that reach it (any maskwatch version)."""

    def __init__(self, detector) -> None:
        self.classifier, self.calls = detector.classifier, 0
        self._lock = threading.Lock()
        # The real detector's signature, so that FrameProcessor asks it for what it would ask the
        # detector itself (the unsure faces) in every version.

        def detect(image, *args, **kwargs):
            with self._lock:
                self.calls += 1
            return detector.detect(image, *args, **kwargs)

        self.detect = functools.wraps(detector.detect)(detect)


def measure_readers(job: dict) -> dict:
    """Only the cameras' readers: every frame grabbed, and converted ("convert") or not ("grab")."""
    from maskwatch.video.cameras import CameraReader

    readers = [CameraReader(url, name=f"cam{i}", decode_on_request=job["variant"] == "grab").start()
               for i, url in enumerate(job["urls"])]
    try:
        time.sleep(job["warmup"])
        received0, cpu0, wall0 = sum(r.state().frames for r in readers), os.times(), time.monotonic()
        time.sleep(job["seconds"])
        received1, cpu1, wall1 = sum(r.state().frames for r in readers), os.times(), time.monotonic()
        decoded = sum(r.decoded for r in readers)
    finally:
        for reader in readers:
            reader.stop()
    cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    received = received1 - received0
    return {"variant": job["variant"], "cameras": len(readers), "cpu_cores": cpu / (wall1 - wall0),
            "received_fps": received / (wall1 - wall0) / len(readers),
            "cpu_ms_per_received": 1000 * cpu / received if received else None, "converted": decoded,
            "run_seconds": job["warmup"] + job["seconds"]}


def last_error(worker) -> str | None:
    """A camera worker's last problem: in its ProblemLog since 82ba233, in last_error before (the
    code under --base-src or --before-src may be that old)."""
    problems = getattr(worker, "problems", None)
    return problems.last if problems is not None else worker.last_error


def measure(job: dict) -> dict:
    """One site run as `job` says, in this process; the figures as a dict."""
    if job["variant"] in ("grab", "convert"):
        return measure_readers(job)
    from maskwatch.detection.detector import Detector
    from maskwatch.site.config import SiteConfig
    from maskwatch.site.events import EventStore
    from maskwatch.site.runner import Site

    folder = Path(job["folder"])
    try:  # as `maskwatch run` loads it: one thread a call (after 8f58625)
        from maskwatch.runtime import single_threaded
        threads = single_threaded()
    except ImportError:
        threads = 0
    detector = CountingDetector(Detector.load(threads=threads))
    cameras = {}
    for i, url in enumerate(job["urls"]):
        camera = {"source": url, "fps": job["fps"]}
        if job["variant"].startswith("substream"):
            camera["detect_source"] = job["detect_urls"][i]
        if job["variant"] == "ungated":
            camera["motion"] = {"enabled": False}
        cameras[f"cam{i}"] = camera
    database = str(folder / "site.db")
    config = SiteConfig(cameras=cameras, storage={"database": database, "snapshots": str(folder / "snaps")})
    site = Site(config, detector).start()
    samples = []
    try:
        time.sleep(job["warmup"])
        workers = [c.worker for c in site.cameras_by_id.values()]
        readers = [w.reader for w in workers]
        analysed0, cpu0, wall0, calls0 = [w.analysed for w in workers], os.times(), time.monotonic(), detector.calls
        received0 = [r.state().frames for r in readers]
        decoded0 = [getattr(r, "decoded", None) for r in readers]
        end = wall0 + job["seconds"]
        while time.monotonic() < end:
            time.sleep(min(job["sample_every"], max(0.0, end - time.monotonic())))
            samples.append((round(time.monotonic() - wall0, 1), round(rss_mb(), 1)))
        analysed1, cpu1, wall1, calls1 = [w.analysed for w in workers], os.times(), time.monotonic(), detector.calls
        received1 = [r.state().frames for r in readers]
        decoded1 = [getattr(r, "decoded", None) for r in readers]
        errors = sorted({error for error in map(last_error, workers) if error})
    finally:
        site.stop()
    store = EventStore(database, None)
    people = len(store.events(limit=10**7))
    store.close()
    wall = wall1 - wall0
    cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    rates = [(b - a) / wall for a, b in zip(analysed0, analysed1)]
    analysed = sum(analysed1) - sum(analysed0)
    received = sum(received1) - sum(received0)
    decoded = received if None in decoded1 else sum(decoded1) - sum(decoded0)  # base: every frame converted
    return {"variant": job["variant"], "cameras": len(job["urls"]), "fps_target": job["fps"],
            "fps_mean": sum(rates) / len(rates), "fps_min": min(rates),
            "kept_up": sum(r >= 0.95 * job["fps"] for r in rates),
            "cpu_cores": cpu / wall, "cpu_per_camera": cpu / wall / len(rates),
            "detector_share": (calls1 - calls0) / analysed if analysed else None,
            "converted_share": decoded / received if received else None,
            "received_fps": received / wall / len(rates),
            "cpu_ms_per_analysed": 1000 * cpu / analysed if analysed else None,
            "people": people, "run_seconds": job["warmup"] + job["seconds"], "errors": errors,
            "rss_mb": samples}


# The parent -----------------------------------------------------------------------------------

def steady_malloc_of(src: Path, env: dict) -> dict:
    """The malloc settings `maskwatch run` of `src` restarts with ({} before bab6d0b had any)."""
    code = ("import json\ntry:\n    from maskwatch.runtime import STEADY_MALLOC\nexcept ImportError:\n"
            "    STEADY_MALLOC = {}\nprint(json.dumps(STEADY_MALLOC))")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def run_job(job: dict, src: Path) -> dict:
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(src), str(ROOT)])}
    env = {**steady_malloc_of(src, env), **env}  # `maskwatch run` of that src starts with them (if any)
    done = subprocess.run([sys.executable, __file__, "_measure", json.dumps(job)], env=env,
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{job['variant']} run failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "_measure":
        print(json.dumps(measure(json.loads(sys.argv[2]))))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scene", choices=["quiet", "busy", "soak"])
    parser.add_argument("--cameras", type=int, nargs="+", default=[8])
    parser.add_argument("--variants", nargs="+", default=["gated", "ungated"],
                        choices=["gated", "substream", "ungated", "base", "grab", "convert", "gated-before",
                                 "substream-before"])
    parser.add_argument("--base-src", type=Path, default=None, help="the src folder of the commit to compare with")
    parser.add_argument("--before-src", type=Path, default=None, help="the src folder of the *-before variants")
    parser.add_argument("--fps", type=float, default=2.0, help="analysed frames per second per camera")
    parser.add_argument("--seconds", type=float, default=None, help="measured window (default: one loop of the clip)")
    parser.add_argument("--warmup", type=float, default=10.0)
    parser.add_argument("--substream-fps", type=int, default=SUBSTREAM_FPS,
                        help="frame rate of the substream variants' detect_source (a camera's second stream)")
    parser.add_argument("--sample-every", type=float, default=30.0, help="seconds between memory samples")
    parser.add_argument("--until-behind", action="store_true",
                        help="stop trying a variant after the first camera count it does not keep up with")
    parser.add_argument("--out", type=Path, default=None, help="write the rows as JSON here")
    args = parser.parse_args()
    if "base" in args.variants and args.base_src is None:
        parser.error("--variants base needs --base-src")
    if any(v.endswith("-before") for v in args.variants) and args.before_src is None:
        parser.error("the *-before variants need --before-src")
    sources = {"gated": ROOT / "src", "substream": ROOT / "src", "ungated": ROOT / "src", "base": args.base_src, "grab": ROOT / "src",
               "convert": ROOT / "src", "gated-before": args.before_src, "substream-before": args.before_src}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        scenes = ["quiet", "busy"] if args.scene == "soak" else [args.scene]
        servers = {scene: serve(scene, work) for scene in scenes}
        substreams = {scene: serve(scene, work, args.substream_fps) for scene in scenes} if any(v.startswith("substream") for v in args.variants) else {}
        every_server = [s for s, _, _ in [*servers.values(), *substreams.values()]]
        try:
            loop = max(loop for _, loop, _ in servers.values())
            faces = {scene: f for scene, (_, _, f) in servers.items()}
            print(f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; {args.scene}: loop {loop:.0f} s at "
                  f"{STREAM_FPS} fps 640x480, faces per loop {faces}", flush=True)
            if args.seconds and abs(args.seconds / loop - round(args.seconds / loop)) > 0.05:
                # The streams loop on their own clocks: a window of part of a loop takes in a
                # crowd or not by chance, and people counts differ between variants for it.
                print(f"warning: --seconds {args.seconds:g} is not a whole number of {loop:.0f}-s loops; "
                      "compare people only over whole loops", flush=True)
            behind: set[str] = set()
            for cameras in args.cameras:
                for variant in [v for v in args.variants if v not in behind]:
                    urls = [servers[scenes[i % len(scenes)]][0].url for i in range(cameras)]
                    folder = work / f"{variant}-{cameras}"
                    folder.mkdir()
                    detect_urls = [substreams[scenes[i % len(scenes)]][0].url for i in range(cameras)] if substreams else []
                    job = {"variant": variant, "urls": urls, "detect_urls": detect_urls, "fps": args.fps, "folder": str(folder),
                           "warmup": args.warmup, "seconds": args.seconds or loop,
                           "sample_every": args.sample_every}
                    servers_cpu0 = sum(process_cpu(s.process.pid) for s in every_server)
                    row = run_job(job, sources[variant])
                    row["server_cpu_cores"] = (sum(process_cpu(s.process.pid) for s in every_server)
                                               - servers_cpu0) / (row["run_seconds"])
                    row["load"] = os.getloadavg()[0]
                    rows.append(row)
                    if args.until_behind and row.get("kept_up", cameras) < cameras:
                        behind.add(variant)
                    if variant in ("grab", "convert"):
                        print(f"{variant:8s} {cameras:2d} readers: CPU {row['cpu_cores']:.2f} cores, received "
                              f"{row['received_fps']:.1f} fps each, {row['cpu_ms_per_received']:.2f} ms per frame "
                              f"received, {row['converted']} converted; load {row['load']:.1f}", flush=True)
                        continue
                    print(f"{variant:16s} {cameras:2d} cameras: kept up {row['kept_up']}/{cameras}, analysed "
                          f"{row['fps_mean']:.2f}/s (slowest {row['fps_min']:.2f}), CPU {row['cpu_cores']:.2f} cores, "
                          f"{row['cpu_per_camera']:.3f} per camera, {row['cpu_ms_per_analysed']:.0f} ms per analysed frame; "
                          f"received {row['received_fps']:.1f} fps; detector on {row['detector_share']:.0%} of "
                          f"analysed frames; {row['converted_share']:.0%} of received frames converted; "
                          f"{row['people']} people; load {row['load']:.1f}"
                          + (f"; RSS {row['rss_mb']}" if args.scene == "soak" else "")
                          + (f"  errors: {row['errors']}" if row["errors"] else ""), flush=True)
        finally:
            for server in every_server:
                server.stop()
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()

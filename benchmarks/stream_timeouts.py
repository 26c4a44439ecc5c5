"""How fast each way of reading a stream notices trouble: OpenCV's VideoCapture against PyAV.

    pip install av            # PyAV is not a dependency: this only measures it
    python benchmarks/stream_timeouts.py [--repeats 3] [--timeout 2]

Serves a clip over RTSP on loopback (GStreamer's server, tests/rtsp_server.py, system python3)
and, for each backend, with the same FFmpeg options (TCP, short probe) and timeout, measures:
open (to the first frame), dead (the server is killed mid-stream: until a read fails), stalled
(the server is frozen with SIGSTOP: until a read fails) and refused (nothing listens: until
the open fails). Prints the median seconds of each over the repeats.

Measured here (2 shared cores, OpenCV 5.0.0, PyAV 18.1.0, 3 runs, timeout 2 s):

    backend              open   dead  stalled  refused
    cv2.VideoCapture     0.62   0.00     6.01     0.00
    PyAV                 0.62   0.00     4.01     0.00

(timeout 1 s: stalled 3.01 and 2.01). Both open as fast and notice a dead server or a refused
connection at once; a stalled stream takes OpenCV three read timeouts and PyAV two. maskwatch
keeps OpenCV (already in the base install, one fewer dependency) and sets its read timeout to a
third of the camera's stall_timeout (video/cameras.py).
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.rtsp import RtspServer, free_port, make_frames  # noqa: E402

OPTIONS = {"rtsp_transport": "tcp", "analyzeduration": "1000000", "probesize": "100000"}


class OpenCvReader:
    name = "cv2.VideoCapture"

    def __init__(self, url: str, timeout: float) -> None:
        import os

        import cv2

        os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] = "|".join(f"{k};{v}" for k, v in OPTIONS.items())
        ms = int(timeout * 1000)
        self.capture = cv2.VideoCapture(url, cv2.CAP_FFMPEG,
                                        [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms])
        if not self.capture.isOpened():
            raise OSError("cannot open")

    def read(self) -> bool:
        ok, image = self.capture.read()
        return bool(ok) and image is not None

    def close(self) -> None:
        self.capture.release()


class PyAvReader:
    name = "PyAV"

    def __init__(self, url: str, timeout: float) -> None:
        import av

        self.container = av.open(url, options=OPTIONS, timeout=(timeout, timeout))
        self.frames = self.container.decode(video=0)

    def read(self) -> bool:
        try:
            next(self.frames).to_ndarray(format="bgr24")
            return True
        except Exception:  # noqa: BLE001 - any end or error is "the stream failed"
            return False

    def close(self) -> None:
        self.container.close()


def seconds_until_failure(reader, limit: float = 60.0) -> float:
    started = time.monotonic()
    while time.monotonic() - started < limit:
        if not reader.read():
            break
    return time.monotonic() - started


def measure(backend, server: RtspServer, timeout: float) -> dict[str, float]:
    started = time.monotonic()
    reader = backend(server.url, timeout)
    reader.read()
    result = {"open": time.monotonic() - started}
    for _ in range(5):
        reader.read()
    server.stop()
    result["dead"] = seconds_until_failure(reader)
    reader.close()
    server.start()
    reader = backend(server.url, timeout)
    for _ in range(5):
        reader.read()
    server.pause()
    result["stalled"] = seconds_until_failure(reader)
    server.resume()
    reader.close()
    started = time.monotonic()
    try:
        backend(f"rtsp://127.0.0.1:{free_port()}/none", timeout).close()
    except Exception:  # noqa: BLE001
        pass
    result["refused"] = time.monotonic() - started
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=2.0, help="open and read timeout, seconds")
    args = parser.parse_args()
    if importlib.util.find_spec("av") is None:  # found out only after OpenCV's runs, as a traceback
        parser.error("PyAV is not installed: pip install av (it is what this compares OpenCV with, not a dependency)")
    with tempfile.TemporaryDirectory() as tmp:
        frames = make_frames(Path(tmp) / "frames", ROOT / "sample" / "face-mask-detection")
        server = RtspServer(frames, Path(tmp) / "rtsp.log").start()
        try:
            print(f"median seconds over {args.repeats} runs, timeout {args.timeout:g} s")
            print(f"{'backend':18} {'open':>6} {'dead':>6} {'stalled':>8} {'refused':>8}")
            for backend in (OpenCvReader, PyAvReader):
                runs = [measure(backend, server, args.timeout) for _ in range(args.repeats)]
                median = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
                print(f"{backend.name:18} {median['open']:6.2f} {median['dead']:6.2f} "
                      f"{median['stalled']:8.2f} {median['refused']:8.2f}")
        finally:
            server.stop()


if __name__ == "__main__":
    main()

"""A real RTSP server on loopback (tests/rtsp_server.py under the system python3), stoppable; fake
cameras that answer nothing, and loopback ports for servers and for addresses nobody listens on."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
from contextlib import contextmanager, suppress
from pathlib import Path

import cv2
import pytest

SERVER_SCRIPT = Path(__file__).with_name("rtsp_server.py")
SYSTEM_PYTHON = "/usr/bin/python3"
FREE_PORT_TRIES = 3  # starts of a server on a free_port(), each on a new one, before it is an error


def free_port() -> int:
    """A port free now. Another process (the other xdist worker) can take it before our server
    binds it: the servers started on one (RtspServer, Broker, Postgres) try again on a new one
    when theirs was taken (FREE_PORT_TRIES)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_on_free_port(started, what: str, port: int | None = None, tries: int = FREE_PORT_TRIES,
                       log: Path | None = None):
    """started(port): what listens on `port` (True, or the process and its address), None or False
    where the port was taken meanwhile (the other xdist worker; any other failure raised or failed
    by it). Tried on `port` (a free_port() where None), then on new free_port()s up to `tries` in
    all: what the first start that listened gave. Where none did, RuntimeError: `what` did not
    start, with its `log`'s text (a test's folder is gone when CI's output is read)."""
    for attempt in range(tries):
        if listening := started(free_port() if attempt or port is None else port):
            return listening
    said = f":\n{log.read_text(errors='replace')}" if log is not None and log.exists() else ""
    raise RuntimeError(f"{what} did not start: no port it could listen on{said}")


def held_port() -> tuple[socket.socket, int]:
    """A loopback port bound but not listening, and its socket: connections to it are refused, and
    while it is held no other process can bind it (it is bound without SO_REUSEADDR, which every
    server's bind would need beside it). A free_port() let go is no such address: the other xdist
    worker's server could take it and answer. Close it to start a server of the test's there."""
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    return held, held.getsockname()[1]


@contextmanager
def reserved_port():
    """A loopback port that no other process's free_port() (or any bind to port 0) is given while
    the block runs, yet that a server binding it with SO_REUSEADDR, as `maskwatch serve` and `run`
    check and bind theirs (uvicorn too), can listen on: bound with SO_REUSEADDR, not listening. For
    a command that checks its port before it refuses or starts: a free_port() let go could be the
    other xdist worker's server's by then, and the command would refuse for the port instead.
    Ray Serve's proxy binds with SO_REUSEADDR and SO_REUSEPORT (Serve's default): it listens there too.
    It does not keep off a server given the same port by a free_port() before it was reserved (that
    one binds with SO_REUSEADDR too): a server the tests start keeps its retry (start_on_free_port)."""
    held = socket.socket()
    held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    held.bind(("127.0.0.1", 0))
    try:
        yield held.getsockname()[1]
    finally:
        held.close()


_HELD: list[socket.socket] = []


def refused_port() -> int:
    """A loopback port nobody listens on (held_port), held as long as this process (the xdist
    worker) runs: a site's camera may dial it again after its test or module is done."""
    held, port = held_port()
    _HELD.append(held)
    return port


def lost_its_port(process: subprocess.Popen, said: str) -> bool:
    """Whether `maskwatch serve` or `run` (said: its output) ended because the free_port() it was
    given was taken meanwhile (the other xdist worker): start it again on a new one. `serve` checks
    the port, then uvicorn binds it: taken in between, uvicorn says "address already in use"."""
    return process.poll() is not None and ("cannot listen on 127.0.0.1:" in said
                                           or "address already in use" in said.lower())


@contextmanager
def mute_server(events: list | None = None, name: str = "", answers_options: bool = True, on_open=None):
    """A loopback server (its port) that takes connections and then says nothing, a camera or a
    receiver that never answers; answers_options: a camera that answers RTSP's OPTIONS (the
    reader's check of its host) and nothing more, whose OpenCV open holds every other camera's
    open for its timeout. `on_open` is called at its second connection (OpenCV's open, after the
    reader's check). events: (name, "connected" or "closed") appended as its clients connect and
    let go, in the order they do: whether they were tried side by side (overlapped)."""
    listener = socket.create_server(("127.0.0.1", 0))
    held, ending = [], threading.Event()

    def hold(connection: socket.socket) -> None:
        keep_off_signals()
        try:
            while message := connection.recv(4096):
                if answers_options and message.startswith(b"OPTIONS"):
                    connection.sendall(b"RTSP/1.0 200 OK\r\nCSeq: 1\r\nPublic: DESCRIBE, SETUP, PLAY\r\n\r\n")
        except OSError:
            pass
        if events is not None and not ending.is_set():  # not closed here, at the block's end
            events.append((name, "closed"))

    def serve() -> None:
        keep_off_signals()
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            held.append(connection)
            if events is not None:
                events.append((name, "connected"))
            if len(held) == 2 and on_open is not None:
                on_open()
            threading.Thread(target=hold, args=(connection,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield listener.getsockname()[1]
    finally:
        ending.set()
        listener.close()
        for connection in held:
            with suppress(OSError):  # one its client closed
                connection.shutdown(socket.SHUT_RDWR)  # ends hold()'s wait
            connection.close()


def keep_off_signals() -> None:
    """This thread blocks SIGINT and SIGTERM: the kernel gives a signal sent to the process to a
    thread that does not, and one taken by a test's helper thread left the main thread asleep in a
    lock's wait (a test's real Ctrl-C answered after the camera's 20 s, not at once)."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})


def overlapped(events: list, first: str, second: str) -> bool:
    """Whether, in `events` (mute_server's), one of `first`'s connections was open while one of
    `second`'s was (another of its own where second is first): parts tried one after another
    each let go before the next is dialled. No clock, which a busy neighbour could stretch."""
    open_now = {first: 0, second: 0}
    for name, what in events:
        open_now[name] += 1 if what == "connected" else -1
        if open_now[first] > 0 and open_now[second] > (first == second):
            return True
    return False


def make_frames(folder: Path, sample_dir: Path, count: int = 6, photos: int = 3) -> Path:
    """320x240 JPEGs of the first `photos` sample photos, in equal runs: the clip the server loops."""
    folder.mkdir(parents=True, exist_ok=True)
    photos = sorted(sample_dir.glob("images/*.png"))[:photos]
    for i in range(count):
        image = cv2.imread(str(photos[i * len(photos) // count]))
        cv2.imwrite(str(folder / f"frame{i:03d}.jpg"), cv2.resize(image, (320, 240)))
    return folder


class RtspServer:
    """GStreamer's RTSP server serving `frames` looped at rtsp://127.0.0.1:PORT/clip.

    fps: None serves frame000.jpg ... at 5 FPS (the tests' clips); a rate serves frame0000.jpg ...
    at that rate (benchmarks/site_capacity.py's 25 fps clips)."""

    def __init__(self, frames: Path, log: Path, fps: int | None = None, auth: str | None = None) -> None:
        self.frames, self.log_path, self.fps, self.auth = frames, log, fps, auth  # auth: METHOD:USER:PASSWORD
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/clip"

    def start(self) -> RtspServer:
        start_on_free_port(self._started, "RTSP server", self.port, log=self.log_path)
        return self

    def _started(self, port: int) -> bool:
        """Whether the server listens on `port` (now self.port); False where it was taken meanwhile."""
        self.port = port
        log = open(self.log_path, "a")
        self.process = subprocess.Popen([SYSTEM_PYTHON, str(SERVER_SCRIPT), str(self.frames), str(self.port),
                                         *([str(self.fps)] if self.fps else [])],
                                        stdout=subprocess.PIPE, stderr=log, text=True, env=os.environ | {"PYTHONUNBUFFERED": "1"}
                                        | ({"RTSP_AUTH": self.auth} if self.auth else {}))
        line = self.process.stdout.readline()
        if line.strip() == "ready":
            return True
        self.stop()
        if "cannot listen on" not in self.log_path.read_text():
            raise RuntimeError(f"RTSP server did not start: {line!r}; see {self.log_path}")
        return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): its connections stay open and send nothing, a stalled stream."""
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)


def rtsp_server_available() -> bool:
    if not shutil.which(SYSTEM_PYTHON):
        return False
    probe = ("import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0'); "
             "from gi.repository import Gst, GstRtspServer; Gst.init(None); "
             "assert Gst.ElementFactory.find('x264enc') and Gst.ElementFactory.find('jpegdec')")
    return subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True, check=False).returncode == 0


@pytest.fixture()
def rtsp_server(tmp_path_factory, sample_dir):
    if not rtsp_server_available():
        pytest.fail("GStreamer's RTSP server is missing: the Makefile's rtsp target installs it "
                    "(gir1.2-gst-rtsp-server-1.0 python3-gi gstreamer1.0-plugins-*)")
    frames = make_frames(tmp_path_factory.mktemp("rtsp-frames"), sample_dir)
    server = RtspServer(frames, tmp_path_factory.mktemp("rtsp-log") / "server.log").start()
    yield server
    server.stop()

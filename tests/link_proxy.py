"""A bad mobile link on loopback: a TCP proxy in front of a test server (the RTSP server) that
adds delay, stalls its connections (held open, nothing forwarded), drops them, or throttles
their bytes, as a camera on a bus's 4G link does."""

from __future__ import annotations

import socket
import threading
import time
from collections import deque
from contextlib import suppress

from tests.rtsp import keep_off_signals


class LinkProxy:
    """Forwards 127.0.0.1:port to 127.0.0.1:upstream, both ways, with:

    delay: seconds each chunk waits before it goes on (latency; the order is kept).
    rate: bytes per second at most each way of each connection (None: no limit).
    stall() / flow(): hold every byte from now on (connections stay open) / let them go again.
    drop(): close every connection now, as a link that dies; new ones are taken.
    freeze(): hold every byte of the connections open now for ever, without closing them (a 4G
        link back with a new address: the old connections are dead, and nothing says so); new
        ones flow.
    """

    def __init__(self, upstream: int, delay: float = 0.0, rate: float | None = None) -> None:
        self.upstream, self.delay, self.rate = upstream, delay, rate
        self.connections = 0  # taken since the start
        self._flowing = threading.Event()
        self._flowing.set()
        self._open: list[socket.socket] = []
        self._alive: list[threading.Event] = []  # one per connection: cleared by freeze()
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, path: str = "clip") -> str:
        return f"rtsp://127.0.0.1:{self.port}/{path}"

    def stall(self) -> None:
        self._flowing.clear()

    def flow(self) -> None:
        self._flowing.set()

    def freeze(self) -> None:
        with self._lock:
            frozen, self._alive = self._alive, []
        for alive in frozen:
            alive.clear()

    def drop(self) -> None:
        with self._lock:
            dropped, self._open = self._open, []
        for connection in dropped:
            with suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
            connection.close()

    def close(self) -> None:
        self._listener.close()
        self.flow()
        self.drop()

    def _accept(self) -> None:
        keep_off_signals()
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(("127.0.0.1", self.upstream), timeout=5)
                server.settimeout(None)
            except OSError:
                client.close()
                continue
            alive = threading.Event()
            alive.set()
            with self._lock:
                self._open += [client, server]
                self._alive.append(alive)
                self.connections += 1
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink, alive), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, alive: threading.Event) -> None:
        """source -> sink through a delay line, held while stalled, at most `rate` bytes a second."""
        keep_off_signals()
        line: deque[tuple[float, bytes]] = deque()
        arrived = threading.Condition()
        done = threading.Event()

        def read() -> None:
            keep_off_signals()
            try:
                while chunk := source.recv(65536):
                    with arrived:
                        line.append((time.monotonic() + self.delay, chunk))
                        arrived.notify()
            except OSError:
                pass
            done.set()
            with arrived:
                arrived.notify()

        threading.Thread(target=read, daemon=True).start()
        try:
            while True:
                with arrived:
                    while not line and not done.is_set():
                        arrived.wait(0.5)
                    if not line:
                        break
                    due, chunk = line.popleft()
                time.sleep(max(0.0, due - time.monotonic()))
                self._flowing.wait()
                alive.wait()
                step = max(1, int(self.rate / 20)) if self.rate else len(chunk)
                for start in range(0, len(chunk), step):
                    sink.sendall(chunk[start:start + step])
                    if self.rate:
                        time.sleep(step / self.rate)
                    self._flowing.wait()
        except OSError:
            pass
        for end in (source, sink):
            with suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)

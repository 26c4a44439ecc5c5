"""Limits on a request's head (its request line and headers) as uvicorn reads it off the socket,
before any of maskwatch sees the request: anyone who reaches the port can send one.

uvicorn's httptools parser keeps a head whole however long it grows and waits for its end however
long that takes: one header of 300 MB, sent by a client on the LAN without logging in, took a `run`
server from 670 MB to 1.1 GB, and a connection that sent half a head (or nothing) was held for good,
a file descriptor each, out of the process's one limit for its sockets, cameras and database. Here a head
over HEAD_BYTES is answered 431 and one not complete within HEAD_SECONDS 408, the connection closed
either way, as nginx does (its client_header_timeout, large_client_header_buffers). Without
httptools, uvicorn's h11 refuses a head over 16 KiB itself (a plain 400) before HEAD_BYTES is reached.
"""

from __future__ import annotations

try:  # the parser uvicorn's "auto" picks: httptools where installed, else its own h11
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as Parser
except ImportError:
    from uvicorn.protocols.http.h11_impl import H11Protocol as Parser

HEAD_BYTES = 64 * 1024  # a browser's head with its cookies is 1-8 KiB; nginx takes 32 KiB by default
HEAD_SECONDS = 30.0  # from the connection, or the end of the last answer, to the end of the next head


class HeadLimits:
    """Mixed into uvicorn's HTTP protocol (either parser): counts the bytes and the time of each head.

    A head is awaited from the connection's start and again once an answer is complete with no
    other request begun (keep-alive); it has arrived once the parser has made a new request cycle
    of it. Each read is counted while a head is awaited: a head over the limit is refused at the
    first read that passes it without ending it, and a body begun in the head's last read is not
    held against it. A head begun while an answer is still going (pipelined) is counted from its
    start too: uncounted, a client that left one answer unread could send the next head without
    end; its time runs once that answer is complete."""

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._head_timer = None
        self._await_head()

    def _await_head(self, timed: bool = True) -> None:
        self._awaiting = True
        self._head_of = self.cycle  # the cycle before the awaited head: a new one means it arrived
        self._head_bytes = 0
        self._head_begun = not timed  # untimed: a pipelined head whose start the parser has seen
        if timed:
            self._time_head()

    def _time_head(self) -> None:
        self._head_timer = self.loop.call_later(HEAD_SECONDS, self._head_too_slow)

    def _head_arrived(self) -> None:
        self._awaiting = False
        self._head_of = None
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    # httptools' callbacks, where a head begins and ends within a read (h11 makes none, and keeps
    # a pipelined head to its own 16 KiB; its heads arrive as new cycles, seen in data_received).
    def on_message_begin(self) -> None:
        super().on_message_begin()
        if not self._awaiting:  # a pipelined head, begun in the read that ended the last one or later
            self._await_head(timed=False)

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._head_arrived()  # a websocket upgrade's too, which makes no cycle

    def data_received(self, data: bytes) -> None:
        if self._awaiting:
            self._head_bytes += len(data)
            self._head_begun = self._head_begun or bool(data)
        super().data_received(data)  # a read may hold the head's end and a body's start: both parsed
        if not self._awaiting or self.transport.is_closing():
            return
        if self.cycle is not self._head_of:
            self._head_arrived()
        elif self._head_bytes > HEAD_BYTES:  # the parser holds this much at most, and a read more
            self._refuse(b"431 Request Header Fields Too Large", f"request line and headers over {HEAD_BYTES} bytes")

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.transport.is_closing() or not (self.cycle is None or self.cycle.response_complete):
            return  # closing, or a pipelined request begun
        if not self._awaiting:
            self._await_head()
        elif self._head_timer is None:  # a pipelined head begun during this answer: its time starts
            self._time_head()

    def connection_lost(self, exc) -> None:
        self._head_arrived()
        super().connection_lost(exc)

    def _head_too_slow(self) -> None:
        """408 for a head begun and not finished; a connection where nothing of the next head came is
        closed without a word, as nginx closes an idle one: a client that sends on it at that moment
        (a kept-alive pool reusing it) would read a 408 as its request's answer."""
        self._head_timer = None
        if self.transport.is_closing():
            return
        if not self._head_begun and (self.cycle is None or self.cycle.response_complete):
            self.transport.close()
            return
        self._refuse(b"408 Request Timeout", f"request line and headers not sent within {HEAD_SECONDS:g} s")

    def _refuse(self, status: bytes, message: str) -> None:
        if self.cycle is not None and not self.cycle.response_complete:  # an answer is going: no room for ours
            self.transport.abort()
            return
        body = f'{{"error":"{message}"}}'.encode()
        self.transport.write(b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\nconnection: close\r\n"
                             b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        self.transport.close()


class LimitedHttp(HeadLimits, Parser):
    """uvicorn's `http` protocol for `serve` and `run` (a class of this module's: `--workers` pickles it)."""

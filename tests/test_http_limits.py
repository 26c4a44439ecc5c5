"""What a client that never logs in may make a server hold: a request head without end (in bytes or
in time) and a body trickled in. A real uvicorn on loopback with `serve`'s and `run`'s protocol
(serving/http_limits.py) and body limit (serving/drain.py), their waits made short for the test."""

from __future__ import annotations

import json
import socket
import threading

import pytest
from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool

from maskwatch.serving import drain, http_limits
from maskwatch.serving.drain import DrainBeforeAnswering, SmallBodies
from maskwatch.serving.http_limits import HEAD_BYTES, LimitedHttp
from tests.test_serve import read_response
from tests.test_site_trend import serving

SHORT = 1.0  # seconds: the waits under test, in place of their 30
ANSWER_HELD = threading.Event()  # GET /held answers once this is set (at most 20 s on)


@pytest.fixture(scope="module")
def server():
    """A small app behind the middlewares and protocol `serve` and `run` use, with short waits."""
    app = FastAPI()

    @app.get("/hello")
    def hello() -> dict:
        return {"hello": "you"}

    @app.get("/held")
    async def held() -> dict:
        await run_in_threadpool(ANSWER_HELD.wait, 20)
        return {"held": "no more"}

    @app.post("/echo")
    async def echo(request: Request) -> dict:
        return {"bytes": len(await request.body())}

    app.add_middleware(SmallBodies, upload_paths=("/upload",))
    app.add_middleware(DrainBeforeAnswering)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(http_limits, "HEAD_SECONDS", SHORT)
        patch.setattr(drain, "SMALL_BODY_SECONDS", SHORT)
        with serving(app, http=LimitedHttp) as base:
            yield base


def connect(base: str) -> socket.socket:
    """A raw connection; reads wait 20 s at most (past the short waits, so that a server holding the
    connection is a timeout here, not a hang)."""
    host, port = base.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=20)


def error_of(sock: socket.socket) -> tuple[int, str]:
    status, headers, body = read_response(sock)
    assert headers["connection"] == "close" and sock.recv(1) == b""  # and closed
    return status, json.loads(body)["error"]


def test_a_head_longer_than_the_limit_is_refused_before_it_ends(server):
    """One header of 300 MB was kept whole (the server grew by 470 MB); now 431 past 64 KiB."""
    with connect(server) as sock:
        sock.sendall(b"GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Filler: " + b"a" * HEAD_BYTES)  # and no end
        assert error_of(sock) == (431, f"request line and headers over {HEAD_BYTES} bytes")


def test_a_head_not_finished_is_answered_408_and_closed(server):
    with connect(server) as sock:
        sock.sendall(b"GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        assert error_of(sock) == (408, "request line and headers not sent within 1 s")


def test_a_connection_where_nothing_came_is_closed_without_an_answer(server):
    """A client that sends on an idle connection just as its time runs out must not read a 408 as
    its request's answer (10 of 10 raw sockets did, sending at that moment): nothing is written."""
    with connect(server) as sock:
        assert sock.recv(1) == b""  # closed, after the head's time, with no bytes
    with connect(server) as sock:
        sock.sendall(b"GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert read_response(sock)[0] == 200
        assert sock.recv(1) == b""  # kept alive, then closed silently when no next head came


def test_the_next_head_on_a_kept_alive_connection_has_its_limits_too(server):
    with connect(server) as sock:
        sock.sendall(b"GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert read_response(sock)[0] == 200
        sock.sendall(b"GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and no more
        assert error_of(sock)[0] == 408


def test_a_body_trickled_in_is_answered_408_and_closed(server):
    """A login's body declared and never sent held the connection for good."""
    with connect(server) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 50\r\n\r\n{")
        assert error_of(sock) == (408, "request body not sent within 1 s")


def test_ordinary_requests_bodies_and_pipelines_go_through(server):
    """A body is never counted as head, even one sent with its head in one read; pipelined requests
    are answered in turn."""
    with connect(server) as sock:
        body = b"x" * (HEAD_BYTES - 100)  # under the small-body limit, over a head's with its head
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
                     + b"GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        first, second = read_response(sock), read_response(sock)
        assert (first[0], json.loads(first[2])) == (200, {"bytes": len(body)})
        assert (second[0], json.loads(second[2])) == (200, {"hello": "you"})


@pytest.fixture()
def answer_held():
    ANSWER_HELD.clear()
    yield
    ANSWER_HELD.set()


def test_a_head_sent_while_an_answer_is_going_has_its_limit_too(server, answer_held):
    """A pipelined head was not counted while the answer before it went: a client that sent it
    behind a slow (or unread) answer could make the server hold it however long. Now that client is
    cut off (there is no room for a 431 in an answer going). h11 (without httptools) stops reading
    behind an answer going instead."""
    pytest.importorskip("httptools")
    with connect(server) as sock:
        sock.sendall(b"GET /held HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nGET /hello HTTP/1.1\r\nX-Filler: ")
        with pytest.raises((ConnectionResetError, BrokenPipeError)):
            for _ in range(16):
                sock.sendall(b"a" * HEAD_BYTES)
            sock.recv(1)


def test_a_pipelined_head_has_its_time_from_the_answer_before_it(server, answer_held):
    """A head begun during an answer, whole by the end of it, is answered; one left unfinished
    gets its 408 once that answer is complete, never in its middle."""
    with connect(server) as sock:
        sock.sendall(b"GET /held HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nGET /hello HTTP/1.1\r\n")
        sock.sendall(b"Host: 127.0.0.1\r\n\r\nGET /hello HTTP/1.1\r\n")
        ANSWER_HELD.set()
        assert [read_response(sock)[0] for _ in range(2)] == [200, 200]
        assert error_of(sock) == (408, "request line and headers not sent within 1 s")


def refuses_a_head_without_end(base: str) -> None:
    """The check of a command's server (`serve`, `serve --workers`, `run`): it uses LimitedHttp."""
    with connect(base) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Filler: " + b"a" * HEAD_BYTES)
        assert error_of(sock) == (431, f"request line and headers over {HEAD_BYTES} bytes")

"""Read what is left of a request body before answering, so that every client can read a refusal.

When the app answers before it has read the whole body (a 413 on the declared size, a 400 on a
broken form), uvicorn closes the connection with unread bytes in the socket, and the kernel
answers those with a reset. A client that writes its whole body before reading (urllib,
requests: a camera integration's few lines of Python) then sees "connection reset by peer"
instead of the JSON error. Draining first makes the close clean. The draining is bounded in
bytes and seconds; past either bound the answer goes out at once with `Connection: close`.
"""

from __future__ import annotations

import asyncio
import json

CLOSE = (b"connection", b"close")


class DrainBeforeAnswering:
    """ASGI middleware: before a response starts, read and discard the rest of the request body."""

    def __init__(self, app, max_bytes: int = 64 * 1024 * 1024, max_seconds: float = 30.0) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_seconds = max_seconds

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = _declared_length(headers)
        state = {"done": declared == 0 or (declared is None and b"transfer-encoding" not in headers),
                 "bytes": 0, "received": False}

        async def tracked_receive():
            message = await receive()
            state["received"] = True
            if message["type"] == "http.request":
                state["bytes"] += len(message.get("body", b""))
                state["done"] = state["done"] or not message.get("more_body", False)
            elif message["type"] == "http.disconnect":
                state["done"] = True
            return message

        async def drained_send(message) -> None:
            if (message["type"] == "http.response.start" and not state["done"]
                    and CLOSE not in message.get("headers", [])  # closing anyway: a 408's trickling client
                    and not await self._drain(tracked_receive, state, declared, headers)):
                message = {**message, "headers": [*message.get("headers", []), CLOSE]}
            await send(message)

        await self.app(scope, tracked_receive, drained_send)

    async def _drain(self, receive, state: dict, declared: int | None, headers: dict) -> bool:
        """True when the body was read to its end; False when it was left (the caller closes)."""
        if headers.get(b"expect", b"").lower() == b"100-continue" and not state["received"]:
            return False  # the client waits for our go-ahead: it has sent nothing, nothing to drain
        if declared is not None and declared > self.max_bytes:
            return False
        try:
            async with asyncio.timeout(self.max_seconds):
                while not state["done"]:
                    if state["bytes"] > self.max_bytes:
                        return False
                    await receive()
        except TimeoutError:
            return False
        return True


def _declared_length(headers: dict) -> int | None:
    value = headers.get(b"content-length")
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


SMALL_BODY = 64 * 1024  # bytes: a login's JSON, a logout's nothing; only uploads are larger
# A body trickled in (or declared and never sent) held its connection for good, before any login:
# every route but the uploads' has this long to send its SMALL_BODY (2 KiB a second at least).
SMALL_BODY_SECONDS = 30.0


class SmallBodies:
    """ASGI middleware: every request but those to `upload_paths` may carry at most SMALL_BODY
    bytes, read here before the app sees them, else 413. FastAPI reads a JSON body whole before
    any field limit applies: a 400 MB password sent to /login (anyone may) took the server from
    138 MB to 1.78 GB. Inside DrainBeforeAnswering, so that a refused client reads the 413."""

    def __init__(self, app, upload_paths: tuple[str, ...]) -> None:
        self.app = app
        self.upload_paths = upload_paths

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope.get("path") in self.upload_paths:
            await self.app(scope, receive, send)
            return
        declared = _declared_length(dict(scope.get("headers") or []))
        body, more, gone = b"", declared != 0, None
        try:
            async with asyncio.timeout(SMALL_BODY_SECONDS):
                while more and len(body) <= SMALL_BODY and (declared is None or declared <= SMALL_BODY):
                    message = await receive()
                    if message["type"] != "http.request":  # the client went away: the app hears it so
                        gone = message
                        break
                    body += message.get("body", b"")
                    more = message.get("more_body", False)
        except TimeoutError:  # nothing to drain: the client is gone or trickling
            await _refused(send, 408, f"request body not sent within {SMALL_BODY_SECONDS:g} s", [CLOSE])
            return
        if gone is not None:
            async def disconnected():
                return gone

            await self.app(scope, disconnected, send)
            return
        if len(body) > SMALL_BODY or (declared is not None and declared > SMALL_BODY):
            await _refused(send, 413, f"request body over {SMALL_BODY} bytes: only POST /v1/detect takes more")
            return
        sent = False

        async def replay():
            nonlocal sent
            if sent:
                return await receive()  # after the body: a disconnect, when it comes
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


async def _refused(send, status: int, error: str, headers: tuple = ()) -> None:
    payload = json.dumps({"error": error}, separators=(",", ":")).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()), *headers]})
    await send({"type": "http.response.body", "body": payload})

"""HEAD answered as GET without its body (RFC 9110, 9.3.2: a server that answers GET answers
HEAD). FastAPI's routes are registered for GET alone, so every HEAD was a 405: a load balancer's
or an uptime monitor's HEAD /healthz read the service as down."""

from __future__ import annotations

import anyio


class HeadAsGet:
    """ASGI middleware: a HEAD request runs as GET; the answer keeps its status and headers
    (Content-Length included) and sends no body. A streamed answer (no Content-Length: /v1/events.csv)
    ends at its headers, its GET cancelled there: it was run to its end and its chunks dropped, so a HEAD
    read every stored event (a million rows, a page at a time) for an answer of a few headers."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        ended = False

        async with anyio.create_task_group() as answering:
            async def headers_only(message) -> None:
                nonlocal ended
                if ended:
                    return
                if message["type"] == "http.response.start":
                    await send(message)
                    if not any(name.lower() == b"content-length" for name, _ in message.get("headers", ())):
                        ended = True  # a streamed answer: its headers said, the rest is not made
                        await send({"type": "http.response.body", "body": b"", "more_body": False})
                        answering.cancel_scope.cancel()
                    return
                if message["type"] == "http.response.body":
                    ended = True
                    message = {"type": "http.response.body", "body": b"", "more_body": False}
                await send(message)

            answering.start_soon(self.app, {**scope, "method": "GET"}, receive, headers_only)

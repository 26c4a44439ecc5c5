"""HEAD answered as GET without its body (RFC 9110, 9.3.2: a server that answers GET answers
HEAD). FastAPI's routes are registered for GET alone, so every HEAD was a 405: a load balancer's
or an uptime monitor's HEAD /healthz read the service as down."""

from __future__ import annotations


class HeadAsGet:
    """ASGI middleware: a HEAD request runs as GET; the answer keeps its status and headers
    (Content-Length included) and sends no body."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def headers_only(message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return  # a streamed answer's chunks: dropped, the last one ends it
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, headers_only)

"""Serving under a path prefix behind a reverse proxy (`serve --root-path`, the site's server.root_path,
checked by site.config.server.check_root_path; a request's prefix read by security.request_checks.root_of).

A proxy at https://host/maskwatch/ strips the prefix and passes /v1/events on. The app is told the
prefix once, by its operator, and writes it wherever a URL leaves the server: redirects' Location,
the session cookie's Path, snapshot URLs in /v1/events, /openapi.json's servers. The page itself
uses URLs relative to where it was served, so one build works at / and under any prefix.
X-Forwarded-Prefix is not read: the prefix goes into Location and the cookie's Path, and one value
in the config is simpler to check than a header from each proxy.
"""

from __future__ import annotations


class RootPath:
    """Marks each request as served under `prefix` as uvicorn's --root-path does (scope root_path,
    and the path with the prefix before it), so that request.url and base_url name the address the
    browser used while routing still matches /v1/events. Inside the other middlewares: they see the
    path the proxy passed."""

    def __init__(self, app, prefix: str) -> None:
        self.app, self.prefix = app, prefix

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] in ("http", "websocket"):
            scope = {**scope, "root_path": self.prefix, "path": self.prefix + scope["path"],
                     # raw_path is optional in ASGI and may be None: the decoded path stands in
                     "raw_path": self.prefix.encode() + (scope.get("raw_path") or scope["path"].encode())}
        await self.app(scope, receive, send)

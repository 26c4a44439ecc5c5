"""Security headers on every response, errors included (a plain ASGI middleware, outermost).

The dashboard's scripts and styles are files of its own (/static/); the login page, served before a
login and so without them, keeps its one script and style inline. The Content-Security-Policy
allows those files and exactly those inline blocks by their SHA-256, computed from the pages at
start, and no other inline script, style or style attribute: an injected one is refused. /docs
loads Swagger UI from its CDN and gets a policy that allows that, and nothing else.
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

SCRIPT = re.compile(r"<script>(.*?)</script>", re.S)
STYLE = re.compile(r"<style>(.*?)</style>", re.S)


def inline_hashes(pages: list[Path], block: re.Pattern) -> list[str]:
    """CSP source expressions ('sha256-...') of every inline `block` (SCRIPT, STYLE) of `pages`."""
    found = []
    for page in pages:
        for body in block.findall(page.read_text(encoding="utf-8")):
            digest = base64.b64encode(hashlib.sha256(body.encode("utf-8")).digest()).decode()
            found.append(f"'sha256-{digest}'")
    return found


def page_policy(pages: list[Path]) -> str:
    return ("default-src 'self'; script-src " + " ".join(["'self'", *inline_hashes(pages, SCRIPT)]) + "; "
            "style-src " + " ".join(["'self'", *inline_hashes(pages, STYLE)]) + "; "
            "img-src 'self' data: blob:; connect-src 'self'; "
            "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


DOCS_POLICY = ("default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net/npm/swagger-ui-dist@5.35.0/; "
               "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net/npm/swagger-ui-dist@5.35.0/; "
               "img-src 'self' data:; connect-src 'self'; object-src 'none'; "
               "base-uri 'none'; frame-ancestors 'none'")
HSTS = b"max-age=31536000"
# The answer to what a route raised and nothing handled: Starlette's own 500 is sent from outside
# every middleware, so it went without these headers (no nosniff, no CSP, no no-store).
FAILED = b'{"error":"the server failed on this request; its log says why"}'


class SecurityHeaders:
    """nosniff, a CSP with frame-ancestors 'none', X-Frame-Options for old browsers, a strict
    Referrer-Policy, Cache-Control no-store where a route sets none, and HSTS on https (the scheme
    after trusted proxies' X-Forwarded-Proto). A failure nothing answered is a 500 sent here, with
    them, before it goes on to Starlette (which then only logs it)."""

    def __init__(self, app, pages: list[Path]) -> None:
        self.app = app
        self.policy = page_policy(pages).encode()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        policy = DOCS_POLICY.encode() if scope["path"] == "/docs" else self.policy
        https = scope.get("scheme") == "https"
        started = False

        async def send_with_headers(message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = [(k, v) for k, v in message.get("headers", [])
                           if k.lower() not in (b"content-security-policy", b"x-content-type-options")]
                headers += [(b"x-content-type-options", b"nosniff"), (b"content-security-policy", policy),
                            (b"x-frame-options", b"DENY"), (b"referrer-policy", b"same-origin"),
                            (b"cross-origin-opener-policy", b"same-origin")]
                if https:
                    headers.append((b"strict-transport-security", HSTS))
                if not any(k.lower() == b"cache-control" for k, _ in headers):
                    # Answers are a viewer's own (events, counts, pictures): kept by no shared cache,
                    # and not in the browser after a logout.
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            if not started:
                await send_with_headers({"type": "http.response.start", "status": 500, "headers": [
                    (b"content-type", b"application/json"), (b"content-length", str(len(FAILED)).encode())]})
                await send_with_headers({"type": "http.response.body", "body": FAILED})
            raise

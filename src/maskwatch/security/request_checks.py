"""What a request shows before its sender is known (client, host, camera, cookie, same site); AuthError refuses it."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlencode

from fastapi import Request

from maskwatch.runtime import is_loopback
from maskwatch.security.route_access import AUDIT_QUERY

CSRF_HEADER = "x-maskwatch-csrf"
SECURE_COOKIE = "__Host-maskwatch-session"  # Secure, Path=/, no Domain: only this origin can set it
PLAIN_COOKIE = "maskwatch-session"  # plain http beyond loopback, where a browser refuses Secure cookies
# Secure under a proxy's path prefix (root_path.py): a __Host- cookie must have Path=/, and the
# browser dropped it, so no login held there.
PREFIXED_SECURE_COOKIE = "__Secure-maskwatch-session"


class AuthError(Exception):
    """A refused request: 401 (who are you?), 403 (not you) or 429 (slow down)."""

    def __init__(self, status: int, message: str, headers: dict | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def secure_cookies(request: Request) -> bool:
    """Browsers keep Secure cookies from https and from http://localhost or a loopback address only."""
    return request.url.scheme == "https" or is_loopback(request.url.hostname)


def session_cookie(request: Request) -> str:
    """The session cookie's name for this request: whether Secure, and whether under a prefix."""
    if not secure_cookies(request):
        return PLAIN_COOKIE
    return PREFIXED_SECURE_COOKIE if root_of(request) else SECURE_COOKIE


def stale_root_cookie(request: Request) -> str | None:
    """Under a prefix, the token of a __Host- session cookie (Path=/) this browser kept from before
    server.root_path was set; None at / or without one."""
    if session_cookie(request) != PREFIXED_SECURE_COOKIE:
        return None
    return request.cookies.get(SECURE_COOKIE)


def client_address(request: Request) -> str:
    """The client's address (X-Forwarded-For was already applied for trusted proxies only)."""
    return request.client.host if request.client else "unknown"


def guesser(client: str) -> str:
    """What failed logins of `client` are counted under: its address, or for IPv6 its /64 (one
    subscriber's network: each of its 2**64 addresses had 20 guesses of its own); an IPv4-mapped
    address as IPv4."""
    try:
        address = ipaddress.ip_address(client)
    except ValueError:  # "unknown", a test client's name
        return client
    if address.version == 6 and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(ipaddress.ip_network(f"{address}/64", strict=False)) if address.version == 6 else client


def camera_of(request: Request) -> str | None:
    """The camera a request is about: /cameras/{camera_id}/..., a snapshot CAMERA-ID.jpg, else
    ?camera=. A route's path decides first: `/snapshots/till-7.jpg?camera=door` is about `till`
    (the query was taken first, and a viewer of `door` got `till`'s snapshot)."""
    path = request.path_params
    if "camera_id" in path:
        return path["camera_id"]
    if "name" in path:
        return path["name"].rsplit("-", 1)[0]  # snapshots are named CAMERA-EVENTID.jpg
    return request.query_params.get("camera")


def audit_target(request: Request, extra: dict) -> str:
    """What an audited request read: its path, and its query where the route says what was read is
    in it. An export's target was its path alone, and the rows' once a minute per path let a second
    export (another camera's events, another month) within the minute leave no row. Each parameter
    once, its value the one the route read (the last), so repeating one does not make a new target."""
    query = urlencode(dict(request.query_params)) if extra.get(AUDIT_QUERY) else ""
    return request.url.path + (f"?{query}" if query else "")


def check_csrf(request: Request) -> None:
    """A state-changing browser request must carry our header (which a cross-origin page cannot
    send without a CORS preflight we never grant) and, when the browser names one, our Origin."""
    if request.headers.get(CSRF_HEADER) != "1":
        raise AuthError(403, "state-changing requests need the header X-Maskwatch-CSRF: 1")
    check_origin(request)


def check_origin(request: Request) -> None:
    """A request a browser sends from another site (its Origin, or Sec-Fetch-Site) is refused."""
    origin = request.headers.get("origin")
    own = f"{request.url.scheme}://{request.headers.get('host', '')}"
    if origin is not None and origin != own:
        raise AuthError(403, f"cross-origin request refused (Origin {origin}, this site {own}; behind a "
                             "reverse proxy, list it in trusted_proxies and pass the Host header on)")
    if request.headers.get("sec-fetch-site") not in (None, "same-origin", "none"):
        raise AuthError(403, "cross-site request refused")


def root_of(request: Request) -> str:
    """The prefix a reverse proxy served this request under ("" at /; serving.root_path sets it)."""
    return request.scope.get("app_root_path", request.scope.get("root_path", ""))

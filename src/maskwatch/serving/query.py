"""Refuse query parameters an endpoint does not take, so a typo is an error, not a silent default.

`/v1/detect?anotate=1` would otherwise answer JSON as if nothing were asked. Endpoints that take
no parameters at all (the frame JPEGs, the dashboard) still ignore a query string, because
`?t=<now>` is how pages bust the cache of a refreshed image.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.exceptions import RequestValidationError


def known_query_only(request: Request) -> None:
    """App-wide dependency: 422, in FastAPI's own error format, for each unknown query parameter."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    known = set(query_names(dependant))
    if not known:
        return
    unknown = [name for name in request.query_params if name not in known]  # each name once
    if unknown:
        raise RequestValidationError([
            {"type": "extra_forbidden", "loc": ("query", name), "input": request.query_params.get(name),
             "msg": f"unknown query parameter; this endpoint takes: {', '.join(sorted(known))}"}
            for name in unknown])


def query_names(dependant):
    """The query parameters a route and its sub-dependencies declare, by the name a client sends."""
    yield from (param.alias for param in dependant.query_params)
    for sub in dependant.dependencies:
        yield from query_names(sub)

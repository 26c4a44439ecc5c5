"""Refuse query parameters an endpoint does not take, so a typo is an error, not a silent default.

`/v1/detect?anotate=1` would otherwise answer JSON as if nothing were asked. Endpoints that take
no parameters at all (the frame JPEGs, the dashboard) still ignore a query string, because
`?t=<now>` is how pages bust the cache of a refreshed image.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.exceptions import RequestValidationError


def known_query_only(request: Request) -> None:
    """App-wide dependency: 422, in FastAPI's own error format (plus error_line's `error`), for
    each unknown query parameter."""
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
             "msg": f"not a parameter of this endpoint, which takes: {', '.join(sorted(known))}"}
            for name in unknown])
    # Each parameter takes one value: `camera=door&camera=till` was read as till alone, and a
    # client that sends a list so (requests, axios) got one camera's events as if they were all.
    # The same value twice says one thing, and is read as it.
    values = {name: list(dict.fromkeys(request.query_params.getlist(name))) for name in request.query_params}
    if any(len(given) > 1 for given in values.values()):
        raise RequestValidationError([
            {"type": "too_long", "loc": ("query", name), "input": given,
             "msg": f"given {len(given)} values ({', '.join(given)[:80]}); it takes one: ask once for each"}
            for name, given in values.items() if len(given) > 1])


def query_names(dependant):
    """The query parameters a route and its sub-dependencies declare, by the name a client sends."""
    yield from (param.alias for param in dependant.query_params)
    for sub in dependant.dependencies:
        yield from query_names(sub)


PLACES = {"query": "query parameter", "path": "path parameter", "header": "header", "cookie": "cookie",
          "body": "body field"}
# A parameter whose form is a pattern, said in words: pydantic's message is the regular expression.
PATTERNS_SAID = {"before": "not a cursor: give the one in the `next` link of the page before, as it is (for a "
                           "time, use until)"}


# A body that is no JSON object, said as what to send: pydantic's words were "body field '0': JSON
# decode error" (the 0 a character's place, not a field) and "body: Input should be a valid
# dictionary or object to extract fields from" (a form, `curl -d user=...`, posted to /login).
JSON_OBJECT = "expected a JSON object, sent with Content-Type: application/json"


def body_said(error: dict) -> str | None:
    """The line for a JSON body that does not parse or is not an object; None for other errors."""
    loc = tuple(error.get("loc", ()))
    if error.get("type") == "json_invalid" and loc[:1] == ("body",):
        at = f" at character {loc[1]}" if len(loc) > 1 else ""
        return f"body: not valid JSON{at} ({str(error.get('ctx', {}).get('error', 'decode error'))}); {JSON_OBJECT}"
    if error.get("type") in ("model_attributes_type", "dict_type") and loc == ("body",):
        return f"body: {JSON_OBJECT}"
    return None


def error_line(errors: list[dict]) -> str:
    """FastAPI's 422 details as the one line of `error` that every other refusal of the API has,
    naming each bad parameter: a client in another language reads one key for every error."""
    parts = []
    for error in errors:
        if (said := body_said(error)) is not None:
            parts.append(said)
            continue
        where, *name = [str(part) for part in error.get("loc", ())] or ["request"]
        place = f"{PLACES.get(where, where)} {'.'.join(name)!r}" if name else where
        given = error.get("input")
        shown = isinstance(given, str) and len(given) <= 40 and error.get("type") not in ("extra_forbidden", "missing")
        said = PATTERNS_SAID.get(name[-1]) if name and error.get("type") == "string_pattern_mismatch" else None
        parts.append(f"{place}: {said or error.get('msg', 'invalid')}" + (f" (got {given!r})" if shown else ""))
    return "; ".join(parts)

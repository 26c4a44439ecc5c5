"""Login, logout, who am I, and the admin's views: users and the access log; /v1/privacy.

One module-level router, included by serving/app.py; the AccessControl lives on app.state.
"""

from __future__ import annotations

from datetime import timezone
from pathlib import Path
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from maskwatch.security.access import AccessControl, Principal, reads_users
from maskwatch.security.request_checks import SECURE_COOKIE, AuthError, root_of, stale_root_cookie
from maskwatch.security.route_access import ADMIN, PUBLIC
from maskwatch.security.admin_routes import site_cameras, viewer_camera_choices
from maskwatch.security.two_step_routes import RENEWED_MEANWHILE_SENT
from maskwatch.security.user_rules import name_problem
from maskwatch.site.database_wait import DatabaseNotAnswering
from maskwatch.site.event_views import CURSOR, cursor_of, iso_utc, parse_cursor
from maskwatch.site.trend import NO_ZONE, SINCE_SCHEMA, parse_since

LOGIN_PAGE = Path(__file__).resolve().parents[1] / "serving" / "static" / "login.html"
router = APIRouter(tags=["access"])


class LoginBody(BaseModel):
    username: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=1, max_length=1000)
    code: str = Field("", max_length=16, description=(
        "the authenticator app's 6 digits, for a user with two-step login on (others may leave it out)"))


class PasswordBody(BaseModel):
    model_config = ConfigDict(extra="forbid")  # said in the schema too (additionalProperties: false)

    current: str = Field(min_length=1, max_length=1000, description="the password this session logged in with")
    new: str = Field(min_length=1, max_length=1000, description="at least 10 characters, not the user name, not one of the common passwords")
    code: str = Field("", max_length=16, description=(
        "with two-step login on: the 6 digits the authenticator app shows now, or a recovery code (used up); "
        "others leave it out"))

    @model_validator(mode="before")
    @classmethod
    def only_current_and_new(cls, data):
        """A field more was ignored: an admin's `{"username": "bob", ...}`, meant as bob's reset,
        changed the admin's own password (with their current one) and left bob's."""
        if isinstance(data, dict) and (extra := sorted(set(data) - {"current", "new", "code"})):
            raise PydanticCustomError("own_password_only", "takes only current, new and code (your own password), not "
                                      "{fields}: an admin sets another user's in the dashboard's Users (POST "
                                      "/v1/users/NAME/password) or with `maskwatch users passwd NAME`",
                                      {"fields": ", ".join(map(repr, extra))})
        return data


def _access(request: Request) -> AccessControl:
    return request.app.state.access


def principal_of(request: Request) -> Principal:
    """Who the request is from (set by AccessControl.authorize)."""
    return request.state.principal


@router.get("/login", response_class=HTMLResponse, openapi_extra=PUBLIC)
def login_page(next: str | None = Query(None, max_length=2000, description="where to go after logging in")) -> str:
    return LOGIN_PAGE.read_text(encoding="utf-8")


@router.post("/login", openapi_extra=PUBLIC,
             responses={400: {"description": "A body that cannot be read as JSON text (not UTF-8); JSON of the wrong shape is a 422"},
                        401: {"description": "Wrong user name or password, or a missing or wrong code for a "
                                             "user with two-step login on (the same answer for each)"},
                        403: {"description": "No X-Maskwatch-CSRF header, or another site's Origin"},
                        409: {"description": RENEWED_MEANWHILE_SENT},
                        429: {"description": "Too many failed logins; Retry-After says when to try again"},
                        503: {"description": "Too many logins at once in this process; Retry-After: 1"}})
def login(request: Request, body: LoginBody) -> JSONResponse:
    """Start a session: the token goes in an HttpOnly cookie; send X-Maskwatch-CSRF: 1."""
    access = _access(request)
    user, token = access.login(request, login_name(body.username), body.password, body.code)
    response = JSONResponse({"user": user["name"], "role": user["role"], "cameras": user["cameras"]})
    return _with_session(response, request, access, token)


# A Japanese input method's full-width forms (U+FF01-FF5E) as the ASCII they stand for. Only these:
# NFKC made the Kelvin sign in "\u212aim" a K, the name of kim (test_access_log), which no keyboard's
# mode types.
FULL_WIDTH = {0xFF01 + i: 0x21 + i for i in range(94)}


def login_name(typed: str) -> str:
    """The user name as a login reads it: one typed with a Japanese input method in full-width mode
    ("ｔａｎａｋａ") was no user's, a failed login; read as its ASCII where that follows the name rule
    and the typed one does not (a name older than the rule is taken as typed)."""
    folded = typed.translate(FULL_WIDTH)
    if folded != typed and name_problem(typed, "user") is not None and name_problem(folded, "user") is None:
        return folded
    return typed


@router.post("/logout")
def logout(request: Request) -> JSONResponse:
    """End this session, here and in every worker (the session is deleted from the database)."""
    access = _access(request)
    access.logout(request, principal_of(request))
    response = JSONResponse({"status": "logged out"})
    name, _, attributes = access.cookie(request, None)
    response.delete_cookie(name, path=attributes["path"], secure=attributes["secure"], httponly=True, samesite="lax")
    return response


@router.post("/password",
             responses={400: {"description": ("A new password too short, the user name, or the current one; said once the "
                                            "current password is right (a wrong one is 403 whatever the new one), "
                                            "but before it and the code where two-step login is on (the code not "
                                            "spent)")},
                        403: {"description": "Wrong current password or two-step code (a failed login of the user); no "
                                            "code where two-step login is on (not counted); an API token "
                                            "or an open server (no password to change); no X-Maskwatch-CSRF "
                                            "header, or another site's Origin"},
                        409: {"description": "The password or two-step login was changed, or the user removed, meanwhile"},
                        429: {"description": "Too many failed logins; Retry-After says when to try again"},
                        503: {"description": "Too many password checks at once in this process; Retry-After: 1"}})
def change_password(request: Request, body: PasswordBody) -> JSONResponse:
    """Change your own password, logged in: `current` (and `code`, where two-step login is on) is
    checked as a login checks it, and counts as a failed login when wrong. Every session of yours
    ends; this browser gets a new one."""
    access = _access(request)
    principal = principal_of(request)
    token = access.change_password(request, principal, body.current, body.new, body.code)
    response = JSONResponse({"status": "password changed; your other sessions ended", "user": principal.name})
    return _with_session(response, request, access, token)


def _with_session(response: JSONResponse, request: Request, access: AccessControl, token: str) -> JSONResponse:
    """`response` setting this browser's new session cookie, and deleting a __Host- one kept from
    before server.root_path was set (its session ended by the login or the password change; Path=/,
    as it was set)."""
    name, value, attributes = access.cookie(request, token)
    response.set_cookie(name, value, **attributes)
    if stale_root_cookie(request):
        response.delete_cookie(SECURE_COOKIE, path="/", secure=True, httponly=True, samesite="lax")
    return response


def _session_end(access: AccessControl, principal: Principal) -> dict | None:
    """When a session ends, for the dashboard to warn of it: `ends_at` (ISO), server.session_max_hours
    after login however used, and `idle_ends_at` if unused till then (its last use is written a minute
    apart at most: up to a minute early). Times, not seconds left: two answers alike stay alike. None
    for a token or an open server."""
    times = access.store.session_times(principal.session) if principal.via == "session" and access.store else None
    if times is None:
        return None
    return {"ends_at": iso_utc(times[0] + access.absolute), "idle_ends_at": iso_utc(times[1] + access.idle)}


@router.get("/v1/me")
def me(request: Request) -> dict:
    """Who asks; `two_step`: whether a session's user has two-step login on (null for a token or
    an open server, which have no login), and `recovery_codes_left` their unused recovery codes
    (null where it is off); `two_step_required`: the site requires it of them and it is off, so
    that nothing but setting it up is answered (server.require_two_step); `two_step_kept`: the site
    requires it of them, on or off, so that they cannot turn it off themselves; `timezone`: the site's clock, which the dashboard shows
    every time in, as the chart's hours (null: `serve` without a site, the browser's own clock);
    `session`: when a session ends (_session_end; null for a token or an open server)."""
    principal = principal_of(request)
    access = _access(request)
    found, session = None, None
    if principal.via == "session" and access.store is not None:  # a read of the users, a few seconds at most
        try:
            found, session = access.reads.call(lambda: (access.store.user(principal.name),
                                                        _session_end(access, principal)))
        except DatabaseNotAnswering:  # a page loaded while it hangs still learns who it is: its cards wait for it
            found = {"two_step": principal.two_step, "recovery_codes_left": None}
    return {"user": principal.name, "role": principal.role, "via": principal.via, "scope": principal.scope,
            "cameras": list(principal.cameras) if principal.cameras is not None else None,
            "two_step": found["two_step"] if found is not None else None,
            "recovery_codes_left": found["recovery_codes_left"] if found is not None else None,
            "two_step_required": _access(request).two_step_missing(principal),
            "two_step_kept": _access(request).two_step_kept(principal),
            "timezone": site.config.clock() if (site := request.app.state.site) is not None else None,
            "session": session}


@router.get("/v1/users", openapi_extra=ADMIN)
@reads_users
def list_users(request: Request) -> Response:
    """The users (name, role, a viewer's cameras or null for every one, created, `two_step` and
    `recovery_codes_left`: null where it is off), `two_step_kept`: the names of those whom
    server.require_two_step covers (an admin's turning theirs off leaves them to set it up again;
    beside the users, each the same object as every route's), and `cameras`: the
    ids a viewer's list may name (the site's config, disabled ones too, then those no longer in it
    with stored history; null for `serve` without a site, where any camera id is taken), and
    `in_file`: the ids of the site's file alone (null without a site), against which the dialog
    marks a viewer's or token's camera that the file no longer has (renamed or removed)."""
    access = _access(request)
    users = access.store.users() if access.store is not None else []
    in_file, _ = site_cameras(request)
    return JSONResponse({"users": users,
                         "two_step_kept": [user["name"] for user in users if access.settings.two_step_required(user["role"])],
                         "cameras": viewer_camera_choices(request), "in_file": in_file})


# The schema of a text no row holds a NUL of (the route's 400 says so): without it the schema called
# a NUL valid, and a fuzzer took the 400 for a valid request refused.
NO_NUL = {"pattern": "^[^\\u0000]*$"}


@router.get("/v1/access-log", openapi_extra=ADMIN,
            responses={400: {"description": "A since or until that is not a time, or since after until; a user "
                                            "or action holding a NUL character",
                             "content": {"application/json": {"schema": {
                                 "type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}}}}}})
@reads_users
def read_access_log(request: Request, user: str | None = Query(None, max_length=200, json_schema_extra=NO_NUL),
                    action: str | None = Query(None, max_length=32, json_schema_extra=NO_NUL, description=(
                        "one action; GET /v1/privacy lists them (access_log.records)")),
                    since: str | None = Query(None, description="rows at or after it: Unix seconds or ISO 8601 "
                                              f"({NO_ZONE}; UTC's without a site)", json_schema_extra=SINCE_SCHEMA),
                    until: str | None = Query(None, description="rows before it: Unix seconds or ISO 8601 "
                                              f"({NO_ZONE}; UTC's without a site)", json_schema_extra=SINCE_SCHEMA),
                    before: str | None = Query(None, pattern=CURSOR.pattern, description=(
                        "a cursor: the rows after it, newest first; the `next` of the page before holds it")),
                    limit: int = Query(100, ge=1, le=1000)) -> Response:
    """Who logged in, who failed to, who changed users or tokens, who viewed which camera's frame
    or snapshot, who downloaded a report or exported events: newest first (time, then id). A page
    of `limit`, whose `next` is the URL of the page of older rows (null: none), as /v1/events pages.
    A failed login's target is the name tried where it is a user's, else `(unknown name)`: what was
    typed is not kept (it is often a password)."""
    try:  # as /v1/events reads them (nan and inf passed as floats and answered nothing, or everything)
        site = request.app.state.site  # a date alone is the site's day (`serve` without one: UTC's)
        tz = site.config.tz() if site is not None else timezone.utc
        since_seconds = parse_since(since, days=tz) if since is not None else None
        until_seconds = parse_since(until, "until", tz) if until is not None else None
    except ValueError as err:
        return JSONResponse({"error": str(err)}, status_code=400)
    for name, value in (("user", user), ("action", action)):  # PostgreSQL refused the query: a 503
        if value is not None and "\x00" in value:
            return JSONResponse({"error": f"{name} holds a NUL character, which no row's {name} has; got {value!r}"},
                                status_code=400)
    if since_seconds is not None and until_seconds is not None and since_seconds > until_seconds:
        return JSONResponse({"error": f"since must not be after until; got since {since!r}, until {until!r}"},
                            status_code=400)
    store = _access(request).store
    if user is not None and store is not None and len(spellings := store.user_spellings(user)) == 1:
        # A user's name in any case, as a login takes it: `Ana` is ana's rows, not none. The name as
        # asked too: `bob` removed and `Bob` added since, `bob` answered Bob's rows and none of bob's.
        user = (user, spellings[0])
    after = parse_cursor(before) if before is not None else None  # its form checked by FastAPI (422)
    rows = store.access_log(user=user, action=action, since=since_seconds, until=until_seconds, before=after,
                            limit=limit + 1) if store is not None else []  # one more: is there a next page?
    following = None
    if len(rows) > limit:
        query = [(k, v) for k, v in request.query_params.multi_items() if k != "before"]
        query.append(("before", cursor_of(rows[limit - 1], "at")))
        following = f"{request.url.path}?{urlencode(query)}"
    return JSONResponse({"entries": rows[:limit], "next": following})


@router.get("/v1/privacy")
@reads_users
def privacy(request: Request) -> dict:
    """What this site keeps and who may see it, read from the running configuration; a viewer of
    some cameras is told of those only."""
    statement = request.app.state.privacy()
    principal = request.state.principal
    if "site" in statement and principal is not None and principal.cameras is not None:
        for listed in ("cameras", "cameras_not_running_with_history"):
            statement["site"][listed] = [c for c in statement["site"][listed] if c in principal.cameras]
    if principal is not None and principal.role != "admin":  # how many users and tokens: the admins' business
        for count in ("admins", "viewers", "viewers_limited_to_cameras", "api_tokens"):
            statement["access"].pop(count, None)
    return statement


def refusal(request: Request, err: AuthError) -> Response:
    """JSON {"error"} like the rest of the API; a page load that needs a login goes to the login page."""
    if (err.status == 401 and request.method == "GET" and "text/html" in request.headers.get("accept", "")
            and not request.headers.get("authorization")):
        from urllib.parse import quote

        # The query comes back too: the dashboard's holds its chart's choices (a bookmark's were lost
        # at the login); one too long for the login page's next (2000 characters) is left behind.
        back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        back = back if len(back) <= 2000 else request.url.path
        return Response(status_code=303, headers={"Location": root_of(request) + "/login?next=" + quote(back, safe="/")})
    return JSONResponse({"error": err.message}, status_code=err.status, headers=err.headers)

"""The admins' users and API tokens from the dashboard: `maskwatch users` and `maskwatch tokens`
over HTTP, through the same store calls and checks.

Changes need an admin logged in: an API token (even a full one) is refused, so that a leaked
token cannot mint accounts or more tokens. Adding a user, changing their role or cameras, setting a
password, turning off their two-step login (a lost phone), removing a user and creating a token
also need the admin's own password
(`admin_password`, checked as a login), so that a stolen or unattended session is not enough;
revoking a token only takes access away. Each change is a row of the access log in the acting
admin's name; no answer, error or log line holds a password (app.py's 422 leaves it out too).
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from maskwatch.security.access import reads_users
from maskwatch.security.auth_settings import MAX_TOKEN_DAYS
from maskwatch.security.request_checks import AuthError, client_address
from maskwatch.security.route_access import ADMIN
from maskwatch.security.passwords import WeakPassword, check_strength
from maskwatch.security.store import AuthStore, Conflict, NoSuch
from maskwatch.security.user_rules import (API_EDIT, CAMERAS_TEXT, ROLES, SCOPES, UNCHANGED, changed_meanwhile, edit_problem,
                                           name_problem, new_user_problem, no_such, token_access_problem,
                                           viewer_cameras)
from maskwatch.security.user_words import added_target, revoked_target, revoked_words, two_step_off_words

CameraId = Annotated[str, Field(max_length=64)]
UserName = Annotated[str, Path(min_length=1, max_length=64, description="as GET /v1/users lists it, in any case")]
TokenName = Annotated[str, Path(min_length=1, max_length=58, description="as GET /v1/tokens lists it")]
AdminPassword = Annotated[str, Field(min_length=1, max_length=1000, description=(
    "your own password, the admin's making the change: checked as a login, a wrong one counted as a failed login"))]


class Confirmed(BaseModel):
    model_config = ConfigDict(extra="forbid")

    admin_password: AdminPassword


class NewUser(Confirmed):
    name: str = Field(min_length=1, max_length=64, description="1-64 of A-Z, a-z, 0-9, _ . @ or -, not starting with -")
    role: str = Field("viewer", max_length=16, json_schema_extra={"enum": list(ROLES)})
    cameras: list[CameraId] | None = Field(None, min_length=1, max_length=CAMERAS_TEXT // 65,
                                           description="a viewer's cameras; left out: every camera")
    password: str = Field(min_length=1, max_length=1000, description="at least 10 characters, not the user name, not one of the common passwords")


class UserAsRead(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: str = Field(max_length=16, json_schema_extra={"enum": list(ROLES)})
    cameras: list[CameraId] | None = Field(max_length=CAMERAS_TEXT // 65, description="null: every camera")


class ChangedUser(Confirmed):
    role: Annotated[str, Field(max_length=16, json_schema_extra={"enum": list(ROLES)})] | None = Field(
        None, description="left out: as now")
    cameras: list[CameraId] | None = Field(None, min_length=1, max_length=CAMERAS_TEXT // 65,
                                           description="a viewer's cameras, in place of their list; left out: as now")
    all_cameras: bool = Field(False, description="true: the viewer sees every camera (not with cameras)")
    expected: UserAsRead | None = Field(None, description=(
        "the user's role and cameras as you read them (GET /v1/users): where they differ now (another admin's "
        "change meanwhile) the edit is refused (409), not written over it; left out: not checked"))


class NewPassword(Confirmed):
    password: str = Field(min_length=1, max_length=1000, description="at least 10 characters, not the user name, not one of the common passwords")


class NewToken(Confirmed):
    name: str = Field(min_length=1, max_length=58, description="what uses it, e.g. prometheus")
    scope: str = Field("read", max_length=8, json_schema_extra={"enum": list(SCOPES)},
                       description="read: GET only, as a viewer (of `cameras`); full: as an admin, but no changes to users or tokens")
    cameras: list[CameraId] | None = Field(None, min_length=1, max_length=CAMERAS_TEXT // 65, description=(
        "a read token's cameras, as a viewer's (`tokens add --camera`); left out: every camera"))
    expires_days: int | None = Field(None, strict=True, ge=1, le=MAX_TOKEN_DAYS, description=(
        f"days until it stops working, 1-{MAX_TOKEN_DAYS} (refused then as a revoked one, logged as "
        "token_expired), as `tokens add --expires DAYS`; left out or null: never"))


def admin_in_person(request: Request) -> str:
    """The admin's name; AuthError 403 for an API token and for an open server (no users yet:
    the first admin is added with `maskwatch users add`, on the server)."""
    principal = request.state.principal
    if principal.via == "token":
        raise AuthError(403, "users and tokens are managed by an admin logged in, not with an API token "
                             "(or with maskwatch users / maskwatch tokens on the server)")
    if principal.via != "session":
        raise AuthError(403, "this server has no users yet: add the first admin with "
                             "maskwatch users add NAME --role admin")
    return principal.name


Admin = Annotated[str, Depends(admin_in_person)]
REFUSALS = {403: {"description": "Not an admin logged in (a viewer, an API token, an open server); no "
                                 "X-Maskwatch-CSRF header, or another site's Origin"}}
CONFIRMED = {403: {"description": "Not an admin logged in (a viewer, an API token, an open server); no "
                                  "X-Maskwatch-CSRF header, or another site's Origin; a wrong admin_password "
                                  "(a failed login of the admin)"},
             429: {"description": "Too many failed logins; Retry-After says when to try again"},
             503: {"description": "Too many password checks at once in this process, or the database cannot be "
                                  "read or written just now; Retry-After says when to try again"}}
ACTING_CHANGED = "was removed, or given a new password or role, while the change was checked"
MEANWHILE = f"; or the acting admin {ACTING_CHANGED}"
BAD_VALUE = {400: {"description": "A bad name, role, camera or scope, or a weak password (as the CLI says it)"}}
router = APIRouter(tags=["users"])


def _store(request: Request) -> AuthStore:
    return request.app.state.access.store


def _done(request: Request, admin: str, action: str, target: str, answer: dict, status: int = 200,
          revoked: tuple[str, str, list[str]] = ("", "", [])) -> JSONResponse:
    """The change's access-log row, then one `token_revoked` row for each of `revoked` (the user,
    why, their tokens' names: revoked with their owner), and the answer."""
    _store(request).log(action, admin, client_address(request), target)
    owner, why, tokens = revoked
    for token in tokens:
        _store(request).log("token_revoked", admin, client_address(request), revoked_target(token, owner, why))
    return JSONResponse(answer, status_code=status)


def _confirmed(request: Request, password: str, change: str) -> tuple[str, str]:
    """The acting admin's name and checked hash once `password` is theirs (AccessControl.confirm_admin)."""
    return request.app.state.access.confirm_admin(request, request.state.principal, password, change)


def _strong(password: str, user: str) -> None:
    """The new password's rule said before any hashing (and before the admin's password costs a guess)."""
    try:
        check_strength(password, user)
    except WeakPassword as err:
        raise AuthError(400, str(err)) from None


def _refused(err: ValueError) -> AuthError:
    """The store's refusal as an answer: 404 no such name, 409 taken or the last admin, else 400."""
    return AuthError(404 if isinstance(err, NoSuch) else 409 if isinstance(err, Conflict) else 400, str(err))


def _stored(request: Request, user_name: str) -> str:
    """The user's name as stored, `user_name` in any case (AuthStore.stored_user_name): 404 where
    it is no user's, or where several stored from before the case rule differ from it in case alone.
    Looked up before anything else, your own account's check too (`BOSS` is boss: changed here, your
    own password would need no current one)."""
    try:
        return _store(request).stored_user_name(user_name)
    except ValueError as err:
        raise _refused(err) from None


def site_cameras(request: Request) -> tuple[list[str] | None, object]:
    """The site's configured cameras, `enabled: false` ones too as `users add --config` reads them
    (they were left out: the dashboard refused a disabled camera the CLI took); None for `serve`
    without a site: nothing to check against, as `users add --database`. And who says which of
    some still have history."""
    site = request.app.state.site
    if site is None:
        return None, None
    return ([*site.config.cameras, *site.config.disabled_cameras],
            lambda unknown: [c for c in site.retired_cameras() if c in unknown])


def viewer_camera_choices(request: Request) -> list[str] | None:
    """The cameras a viewer's list may name, as site_cameras checks them: the site's config
    (`enabled: false` too), then those no longer in it whose history is stored; None for `serve`
    without a site (any camera id). GET /v1/users sends it for the Users dialog's boxes, which
    offered /v1/cameras and /v1/cameras/retired: a disabled camera with no history could not be
    ticked there."""
    configured, _ = site_cameras(request)
    if configured is None:
        return None
    return configured + [c for c in request.app.state.site.retired_cameras() if c not in configured]


@router.post("/v1/users", openapi_extra=ADMIN, status_code=201, responses=BAD_VALUE | CONFIRMED | {
    409: {"description": "The name is taken (whatever its case)" + MEANWHILE}})
def add_user(request: Request, body: NewUser, admin: Admin) -> JSONResponse:
    """Add a user, as `maskwatch users add`: a viewer sees only `cameras` where given."""
    if (problem := new_user_problem(body.name, body.role, body.cameras, API_EDIT[1])) is not None:
        raise AuthError(400, problem)
    _strong(body.password, body.name)
    try:
        cameras = viewer_cameras(body.cameras, *site_cameras(request), "the site's config", API_EDIT[1])
    except ValueError as err:
        raise _refused(err) from None
    acting = _confirmed(request, body.admin_password, f"user_added {body.name}")
    try:
        user = _store(request).add_user(body.name, body.password, body.role, cameras, acting=acting)
    except ValueError as err:
        raise _refused(err) from None
    return _done(request, admin, "user_added", added_target(user), {"user": user}, 201)


@router.post("/v1/users/{user_name}/password", openapi_extra=ADMIN,
             responses=BAD_VALUE | CONFIRMED | {404: {"description": "No such user"},
                                                409: {"description": f"The acting admin {ACTING_CHANGED}"}})
def set_password(request: Request, user_name: UserName, body: NewPassword, admin: Admin) -> JSONResponse:
    """A user's new password, as `maskwatch users passwd`: every session of theirs ends."""
    user_name = _stored(request, user_name)
    if user_name == admin:  # with the current one asked: a session left open must not be enough
        raise AuthError(400, "your own password is changed with Change password (POST /password), "
                             "which asks for the current one")
    if _store(request).user(user_name) is None:  # said before the password's hashing
        raise AuthError(404, no_such(user_name))
    _strong(body.password, user_name)
    acting = _confirmed(request, body.admin_password, f"password_set {user_name}")
    try:
        _store(request).set_password(user_name, body.password, acting=acting)
    except ValueError as err:
        raise _refused(err) from None
    return _done(request, admin, "password_set", user_name,
                 {"status": f"password of {user_name} set; their sessions ended", "user": user_name})


@router.patch("/v1/users/{user_name}", openapi_extra=ADMIN,
              responses=CONFIRMED | {400: {"description": "A bad role or camera, a camera list for an admin, nothing "
                                                          "to change, or your own account"},
                                     404: {"description": "No such user"},
                                     409: {"description": "The last admin made a viewer (add another admin first); "
                                                          "the user's role or cameras no longer `expected`"
                                                          + MEANWHILE}})
def edit_user(request: Request, user_name: UserName, body: ChangedUser, admin: Admin) -> JSONResponse:
    """Change a user's role or a viewer's cameras, as `maskwatch users edit`: their password and
    sessions stay, and their next request has the new role and cameras. The last admin stays one.
    An admin made a viewer loses the API tokens they own: `tokens_revoked` names them."""
    user_name = _stored(request, user_name)
    if user_name == admin:  # as your own password: another admin, or the CLI on the server, does it
        raise AuthError(400, "your own role is not changed here: another admin does it "
                             "(or maskwatch users edit on the server)")
    if (problem := edit_problem(body.role, body.cameras, body.all_cameras, API_EDIT)) is not None:  # as `users edit`
        raise AuthError(400, problem)
    if (now := _store(request).user(user_name)) is None:  # said before the admin's password is checked
        raise AuthError(404, no_such(user_name))
    expected = body.expected.model_dump() if body.expected is not None else None
    if (problem := changed_meanwhile(now, expected)) is not None:  # so too (the store checks it as it writes)
        raise AuthError(409, problem)
    cameras = None if body.all_cameras else UNCHANGED
    try:
        if body.cameras is not None:
            cameras = viewer_cameras(body.cameras, *site_cameras(request), "the site's config", API_EDIT[1])
        acting = _confirmed(request, body.admin_password, f"user_changed {user_name}")
        user, revoked = _store(request).edit_user(user_name, body.role, cameras, acting=acting, expected=expected,
                                                 names=API_EDIT)
    except ValueError as err:
        raise _refused(err) from None
    return _done(request, admin, "user_changed", added_target(user), {"user": user, "tokens_revoked": revoked},
                 revoked=(user_name, "made a viewer", revoked))


@router.delete("/v1/users/{user_name}", openapi_extra=ADMIN,
               responses=CONFIRMED | {400: {"description": "A body that cannot be read as JSON text (not UTF-8); JSON of the wrong shape is a 422"},
                                      404: {"description": "No such user"},
                                      409: {"description": "The last admin (add another admin first)" + MEANWHILE}})
def remove_user(request: Request, user_name: UserName, body: Confirmed, admin: Admin) -> JSONResponse:
    """Remove a user, as `maskwatch users remove`: their sessions end, and the API tokens they own
    are revoked (`tokens_revoked` names them). The last admin stays."""
    user_name = _stored(request, user_name)  # said before the admin's password is checked
    acting = _confirmed(request, body.admin_password, f"user_removed {user_name}")
    try:
        revoked = _store(request).remove_user(user_name, leave_an_admin=True, acting=acting)
    except ValueError as err:
        raise _refused(err) from None
    return _done(request, admin, "user_removed", user_name,
                 {"status": f"removed {user_name}; their sessions ended{revoked_words(revoked)}", "user": user_name,
                  "tokens_revoked": revoked}, revoked=(user_name, "removed", revoked))


@router.delete("/v1/users/{user_name}/two-step", openapi_extra=ADMIN,
               responses=CONFIRMED | {400: {"description": "Your own account (turned off under Two-step login, with "
                                                          "a code); a body that cannot be read as JSON text (not "
                                                          "UTF-8); JSON of the wrong shape is a 422"},
                                      404: {"description": "No such user"},
                                      409: {"description": "Two-step login is not on for the user" + MEANWHILE}})
def turn_off_two_step(request: Request, user_name: UserName, body: Confirmed, admin: Admin) -> JSONResponse:
    """Two-step login off for a user who lost their phone, as `maskwatch users 2fa NAME --off`:
    their password alone logs in (where server.require_two_step covers them: only to set it up
    again), and every session of theirs ends (one started by whoever has the phone does not go on)."""
    user_name = _stored(request, user_name)
    if user_name == admin:  # yours with your password and a code: a session left open must not be enough
        raise AuthError(400, "your own two-step login is turned off under Two-step login (DELETE /two-step), "
                             "which asks for a code")
    if (user := _store(request).user(user_name)) is None:  # said before the admin's password is checked
        raise AuthError(404, no_such(user_name))
    if not user["two_step"]:  # so too (the store checks it as it writes)
        raise AuthError(409, f"two-step login is not on for {user_name}")
    acting = _confirmed(request, body.admin_password, f"totp_off {user_name}")
    try:
        _store(request).turn_off_for(user_name, acting=acting)
    except ValueError as err:
        raise _refused(err) from None
    status = two_step_off_words(user_name, request.app.state.access.settings.require_two_step, user["role"],
                                _store(request).tokens_of(user_name))
    return _done(request, admin, "totp_off", user_name, {"status": status, "user": user_name})


@router.get("/v1/tokens", openapi_extra=ADMIN)
@reads_users
def list_tokens(request: Request) -> JSONResponse:
    """The API tokens: name, scope, cameras (null: every camera), created and last used (Unix
    seconds), and owner: the admin who made it, whose removal or demotion revokes it (null: a site
    token, made on the server); never the tokens."""
    store = _store(request)
    return JSONResponse({"tokens": store.tokens() if store is not None else []})


@router.post("/v1/tokens", openapi_extra=ADMIN, status_code=201, responses=BAD_VALUE | CONFIRMED | {
    409: {"description": "A token of that name exists" + MEANWHILE}})
def add_token(request: Request, body: NewToken, admin: Admin) -> JSONResponse:
    """A new API token, as `maskwatch tokens add --owner YOU [--expires DAYS] [--camera C]`: yours,
    revoked if you are removed or made a viewer; `expires` when it stops working (Unix seconds,
    null: never); `cameras` as given (null: every camera). `token` is in this answer only (the
    server keeps its hash): send it as `Authorization: Bearer TOKEN`."""
    problem = name_problem(body.name, "token") or token_access_problem(body.scope, body.cameras, API_EDIT[1])
    if problem is not None:
        raise AuthError(400, problem)
    try:  # as a viewer's (POST /v1/users): the site's cameras, or one removed whose history is kept
        cameras = viewer_cameras(body.cameras, *site_cameras(request), "the site's config", API_EDIT[1])
    except ValueError as err:
        raise _refused(err) from None
    acting = _confirmed(request, body.admin_password, f"token_added {body.name}")
    expires = None if body.expires_days is None else time.time() + body.expires_days * 86400
    try:
        token = _store(request).add_token(body.name, body.scope, acting=acting, expires=expires, cameras=cameras,
                                          cameras_name=API_EDIT[1])
    except ValueError as err:
        raise _refused(err) from None
    return _done(request, admin, "token_added",
                 added_target(token=(body.name, body.scope, body.expires_days), cameras=cameras),
                 {"name": body.name, "scope": body.scope, "cameras": cameras, "owner": admin, "expires": expires,
                  "token": token}, 201)


@router.delete("/v1/tokens/{token_name}", openapi_extra=ADMIN,
               responses=REFUSALS | {404: {"description": "No such token"}})
def revoke_token(request: Request, token_name: TokenName, admin: Admin) -> JSONResponse:
    """Revoke a token, as `maskwatch tokens revoke`: the next request with it gets 401. The name
    in any case; `name` in the answer is the token's as stored."""
    try:
        token_name = _store(request).revoke_token(token_name)
    except ValueError as err:
        raise _refused(err) from None
    return _done(request, admin, "token_revoked", token_name, {"status": f"revoked {token_name}", "name": token_name})

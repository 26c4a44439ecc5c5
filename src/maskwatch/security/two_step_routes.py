"""A user's own two-step login on the dashboard (static/two-step.js): a new secret for their app,
turned on with a code from it, turned off with a code, a new set of recovery codes; each with the
user's password; and a new phone's secret in place of the old one's, in one step (open to users
whom server.require_two_step covers: their login is never the password alone meanwhile).

The CLI (`maskwatch users 2fa NAME --on/--off`, commands.py) does the same on the server. A user
who lost their phone and their recovery codes is helped by an admin: the Users dialog's "Turn off two-step" (DELETE
/v1/users/NAME/two-step, admin_routes.py) or `users 2fa NAME --off`, each ending their sessions.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

router = APIRouter(tags=["access"])

Code = Field(min_length=1, max_length=16, description=(
    "the 6 digits the authenticator app shows now (spaces ignored), or a recovery code (xxxx-xxxx)"))
REFUSED = ("an API token or an open server (no login to secure); no X-Maskwatch-CSRF header, or another "
           "site's Origin")
# A 409 of each route a recovery code is sent to (the login too): said only to whoever sent the
# right password and code, so it is no tell to a guesser (access.AccessControl._fresh_code).
RENEWED_MEANWHILE_SENT = ("The recovery code sent was right, but another set was made meanwhile (another tab, `users 2fa "
                          "--recovery-codes`): use a code of that set; not counted as a failed login")
LIMITS = {429: {"description": "Too many failed logins; Retry-After says when to try again"},
          503: {"description": "Too many password checks at once in this process; Retry-After: 1"}}


class PasswordAndCode(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: str = Field(min_length=1, max_length=1000, description="your password, checked as a login")
    code: str = Code


class NewPhone(PasswordAndCode):
    code: str = Field(min_length=1, max_length=16, description=(
        "the 6 digits the current phone's app shows now (spaces ignored), or a recovery code (xxxx-xxxx)"))
    new_code: str = Field(min_length=1, max_length=16, description=(
        "the 6 digits the new phone's app shows now for the secret of POST /two-step/secret"))


@router.post("/two-step/secret", responses={
        403: {"description": REFUSED}, 409: {"description": "The user was removed meanwhile"},
        429: {"description": "Too many new secrets made by this user lately; Retry-After says when to try again"}})
def new_secret(request: Request) -> JSONResponse:
    """A new secret for your authenticator app: `secret` (to type), `uri` (otpauth://) and
    `qr_svg` (the URI as a QR code, an SVG data URI). Shown this once; nothing changes until a
    code from it is sent to POST /two-step, or, where two-step login is on, to POST
    /two-step/replace (a new phone: the current one works until then). A second call replaces
    the first's secret (10 calls per user in 15 minutes, the failed logins' window; then 429)."""
    access = request.app.state.access
    return JSONResponse(access.two_step_secret(request.state.principal), headers={"Cache-Control": "no-store"})


@router.post("/two-step", responses={
        400: {"description": "The code is not the new secret's code for now; a body that cannot be read as JSON text (not UTF-8)"},
        403: {"description": "A wrong password (a failed login); " + REFUSED},
        409: {"description": "On already, no new secret made, or the password or secret changed meanwhile"}, **LIMITS})
def turn_on(request: Request, body: PasswordAndCode) -> JSONResponse:
    """Turn two-step login on with the secret of POST /two-step/secret, confirmed by a code from
    the app: from the next login the code is asked with the password. Every other session of
    yours ends; this browser gets a new one. `recovery_codes`: ten one-time codes, each taken
    once in place of the app's code; shown this once."""
    access = request.app.state.access
    principal = request.state.principal
    token, codes = access.turn_on_two_step(request, principal, body.password, body.code)
    return _renewed(request, token, {"status": "two-step login on; your other sessions ended", "user": principal.name,
                                     "recovery_codes": codes})


@router.post("/two-step/replace", responses={
        400: {"description": "`new_code` is not the new secret's code for now (not counted); a body that cannot be "
                             "read as JSON text (not UTF-8)"},
        403: {"description": "A wrong password or code (a failed login); " + REFUSED},
        409: {"description": "Two-step login is not on, no new secret made, or two-step login, the password or the "
                             "secret changed meanwhile. " + RENEWED_MEANWHILE_SENT}, **LIMITS})
def replace(request: Request, body: NewPhone) -> JSONResponse:
    """A new phone in one step: the secret of POST /two-step/secret in place of the current one,
    once your password and `code` (the current phone's, or a recovery code, used up) are right,
    checked as a login checks them, and `new_code` is the new secret's code. Until then the
    current phone keeps working; after it, only the new one. Also where the site requires two-step
    login of you. Every other session of yours ends, as turning it on does; this browser gets a
    new one. `recovery_codes`: a new set of ten in place of the old (kept with the old secret,
    they no longer work); shown this once."""
    access = request.app.state.access
    principal = request.state.principal
    token, codes = access.replace_two_step(request, principal, body.password, body.code, body.new_code)
    return _renewed(request, token, {"status": "two-step login moved to the new phone; your other sessions ended",
                                     "user": principal.name, "recovery_codes": codes})


def _renewed(request: Request, token: str, answer: dict) -> JSONResponse:
    """The answer, with the new session's cookie of a change that ended the user's other sessions."""
    response = JSONResponse(answer, headers={"Cache-Control": "no-store"})
    name, value, attributes = request.app.state.access.cookie(request, token)
    response.set_cookie(name, value, **attributes)
    return response


@router.delete("/two-step", responses={
        400: {"description": "A body that cannot be read as JSON text (not UTF-8); JSON of the wrong shape is a 422"},
        403: {"description": "A wrong password or code (a failed login); the site requires two-step login of you "
                             "(server.require_two_step); " + REFUSED},
        409: {"description": "Two-step login is not on. " + RENEWED_MEANWHILE_SENT}, **LIMITS})
def turn_off(request: Request, body: PasswordAndCode) -> JSONResponse:
    """Turn two-step login off: your password and a code, checked as a login checks them. Your
    recovery codes go, and every other session of yours ends; this browser gets a new one. Refused
    where the site requires it of you (server.require_two_step, GET /v1/me's `two_step_kept`): a
    new phone takes its place with POST /two-step/replace."""
    principal = request.state.principal
    token = request.app.state.access.turn_off_two_step(request, principal, body.password, body.code)
    return _renewed(request, token, {"status": "two-step login off; your other sessions ended", "user": principal.name})


@router.post("/two-step/recovery-codes", responses={
        400: {"description": "A body that cannot be read as JSON text (not UTF-8); JSON of the wrong shape is a 422"},
        403: {"description": "A wrong password or code (a failed login); " + REFUSED},
        409: {"description": "Two-step login is not on, or was turned off or on again meanwhile; or another "
                             "set was made meanwhile (another tab, `users 2fa --recovery-codes`): use that one, "
                             "also where the recovery code sent was of the set replaced (not counted as a failed login)"},
        **LIMITS})
def new_recovery_codes(request: Request, body: PasswordAndCode) -> JSONResponse:
    """A new set of ten recovery codes (`recovery_codes`, shown this once) in place of the old,
    whose unused codes no longer work: your password and a code, checked as a login checks them."""
    principal = request.state.principal
    codes = request.app.state.access.renew_recovery_codes(request, principal, body.password, body.code)
    return JSONResponse({"status": "new recovery codes; the old ones no longer work", "user": principal.name,
                         "recovery_codes": codes}, headers={"Cache-Control": "no-store"})

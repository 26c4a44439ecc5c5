"""A user's own two-step login on the dashboard (static/two-step.js): a new secret for their app,
turned on with a code from it, turned off with a code; each with the user's password.

The CLI (`maskwatch users 2fa NAME --on/--off`, commands.py) does the same on the server. A user
who lost their phone is helped by an admin: the Users dialog's "Turn off two-step" (DELETE
/v1/users/NAME/two-step, admin_routes.py) or `users 2fa NAME --off`, each ending their sessions.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

router = APIRouter(tags=["access"])

Code = Field(min_length=1, max_length=16, description="the 6 digits the authenticator app shows now (spaces ignored)")
REFUSED = ("an API token or an open server (no login to secure); no X-Maskwatch-CSRF header, or another "
           "site's Origin")
LIMITS = {429: {"description": "Too many failed logins; Retry-After says when to try again"},
          503: {"description": "Too many password checks at once in this process; Retry-After: 1"}}


class PasswordAndCode(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: str = Field(min_length=1, max_length=1000, description="your password, checked as a login")
    code: str = Code


@router.post("/two-step/secret", responses={403: {"description": REFUSED},
                                            409: {"description": "Two-step login is on already"}})
def new_secret(request: Request) -> JSONResponse:
    """A new secret for your authenticator app: `secret` (to type), `uri` (otpauth://) and
    `qr_svg` (the URI as a QR code, an SVG data URI). Shown this once; nothing changes until a
    code from it is sent to POST /two-step. A second call replaces the first's secret."""
    access = request.app.state.access
    return JSONResponse(access.two_step_secret(request.state.principal), headers={"Cache-Control": "no-store"})


@router.post("/two-step", responses={
        400: {"description": "The code is not the new secret's code for now; a body that cannot be read as JSON text (not UTF-8)"},
        403: {"description": "A wrong password (a failed login); " + REFUSED},
        409: {"description": "On already, no new secret made, or the password or secret changed meanwhile"}, **LIMITS})
def turn_on(request: Request, body: PasswordAndCode) -> JSONResponse:
    """Turn two-step login on with the secret of POST /two-step/secret, confirmed by a code from
    the app: from the next login the code is asked with the password. Every other session of
    yours ends; this browser gets a new one."""
    access = request.app.state.access
    principal = request.state.principal
    token = access.turn_on_two_step(request, principal, body.password, body.code)
    response = JSONResponse({"status": "two-step login on; your other sessions ended", "user": principal.name})
    name, value, attributes = access.cookie(request, token)
    response.set_cookie(name, value, **attributes)
    return response


@router.delete("/two-step", responses={
        400: {"description": "A body that cannot be read as JSON text (not UTF-8); JSON of the wrong shape is a 422"},
        403: {"description": "A wrong password or code (a failed login); " + REFUSED},
        409: {"description": "Two-step login is not on"}, **LIMITS})
def turn_off(request: Request, body: PasswordAndCode) -> JSONResponse:
    """Turn two-step login off: your password and a code, checked as a login checks them."""
    principal = request.state.principal
    request.app.state.access.turn_off_two_step(request, principal, body.password, body.code)
    return JSONResponse({"status": "two-step login off", "user": principal.name})

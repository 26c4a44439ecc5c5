"""Two-step login: RFC 6238 time-based codes (TOTP) from an authenticator app, with pyotp.

A user who turned it on logs in with their password and the 6-digit code their app shows for
the current 30 s step. A code is taken for the step before and after too (a phone's clock a
little off), and never for a step at or before the last one accepted: a code seen over a
shoulder or in a proxy's log cannot be used again (store.AuthStore.use_step keeps that step).
The secret is the user's second factor: it is shown once, at enrolment, and never logged.
"""

from __future__ import annotations

import hmac
import re
import time

import pyotp

ISSUER = "maskwatch"
STEP = 30  # seconds: what every authenticator app uses
DRIFT = 1  # steps either side of now taken (a clock 30 s off)
CODE = re.compile(r"[0-9]{6}")


def new_secret() -> str:
    """160 random bits in base32 (RFC 4226's recommended length), as apps read it."""
    return pyotp.random_base32(32)


def enrolment_uri(secret: str, name: str) -> str:
    """The otpauth:// URI an authenticator app reads (from the QR code or pasted)."""
    return pyotp.TOTP(secret).provisioning_uri(name=name, issuer_name=ISSUER)


def qr_svg(uri: str) -> str | None:
    """The URI as a QR code, an SVG data URI (the page's CSP takes img-src data:); None without segno."""
    try:
        import segno
    except ImportError:
        return None
    return segno.make(uri, error="m").svg_data_uri(scale=4)


def matching_step(secret: str, code: str, last_step: int | None, now: float | None = None) -> int | None:
    """The time step `code` is the code of, within DRIFT of now and after `last_step` (the last
    accepted: a code is good once); None otherwise. Spaces in the code are dropped ("123 456", as
    apps show it). Each candidate is compared in constant time."""
    code = (code or "").replace(" ", "")
    if not CODE.fullmatch(code):
        return None
    totp = pyotp.TOTP(secret)
    now_step = int((time.time() if now is None else now) // STEP)
    found = None
    for step in range(now_step - DRIFT, now_step + DRIFT + 1):
        if hmac.compare_digest(totp.generate_otp(step), code) and (last_step is None or step > last_step):
            found = step if found is None else found
    return found

"""Two-step login: RFC 6238 time-based codes (TOTP) from an authenticator app, with pyotp.

A user who turned it on logs in with their password and the 6-digit code their app shows for
the current 30 s step. A code is taken for the step before and after too (a phone's clock a
little off), and never for a step at or before the last one accepted: a code seen over a
shoulder or in a proxy's log cannot be used again (store.AuthStore.use_step keeps that step).
The secret is the user's second factor: it is shown once, at enrolment, and never logged.
Recovery codes (below) stand in for a code once each, for a user without their phone.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
import unicodedata

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


def as_typed(code: str | None) -> str:
    """A code as its digits and letters: a Japanese input method left in full-width mode types
    "４２００４７" (and "　" for a space), which was refused as a wrong code, counted as a failed login."""
    return unicodedata.normalize("NFKC", code or "")


def matching_step(secret: str, code: str, last_step: int | None, now: float | None = None) -> int | None:
    """The time step `code` is the code of, within DRIFT of now and after `last_step` (the last
    accepted: a code is good once); None otherwise. Spaces in the code are dropped ("123 456", as
    apps show it). Each candidate is compared in constant time."""
    code = as_typed(code).replace(" ", "")
    if not CODE.fullmatch(code):
        return None
    totp = pyotp.TOTP(secret)
    now_step = int((time.time() if now is None else now) // STEP)
    found = None
    for step in range(now_step - DRIFT, now_step + DRIFT + 1):
        if hmac.compare_digest(totp.generate_otp(step), code) and (last_step is None or step > last_step):
            found = step if found is None else found
    return found


# Recovery codes: the way back for a user whose phone is lost, without an admin. Ten one-time codes,
# shown once when two-step login is turned on (or a new set made), taken in a login's code field.
RECOVERY_COUNT = 10
RECOVERY_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"  # 32 signs, no l/1 or o/0 to mistake
RECOVERY = re.compile(f"[{RECOVERY_ALPHABET}]{{8}}")


def new_recovery_codes() -> list[str]:
    """RECOVERY_COUNT random codes of 8 signs (40 bits each), written `xxxx-xxxx`."""
    codes = ["".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(8)) for _ in range(RECOVERY_COUNT)]
    return [f"{code[:4]}-{code[4:]}" for code in codes]


def recovery_hash(secret: str, code: str) -> str | None:
    """What is stored of a recovery code: HMAC-SHA256 keyed with the user's TOTP secret, of the code
    as typed less spaces and dashes, in lower case; None for text that is no recovery code (a TOTP
    code, a typo). Not Argon2 as passwords: a login's code would be checked against up to ten
    hashes, 1.5 s of 64 MiB each under the four hashing slots. A fast hash is enough for 40 random
    bits nobody chose, and keyed with the secret it is worth nothing without it, while whoever reads
    the secret (stored as it is beside them) holds the second factor already."""
    code = re.sub(r"[\s-]", "", as_typed(code)).lower()
    if not RECOVERY.fullmatch(code):
        return None
    return hmac.new(secret.encode("ascii"), code.encode("ascii"), hashlib.sha256).hexdigest()


def recovery_matches(hashed: str, stored: list[str]) -> bool:
    """Whether `hashed` is one of the `stored` hashes, each compared in constant time."""
    return sum(hmac.compare_digest(hashed, other) for other in stored) > 0


def recovery_hashes(secret: str, codes: list[str]) -> list[str]:
    """What is stored of a new set of `codes`."""
    return [recovery_hash(secret, code) for code in codes]

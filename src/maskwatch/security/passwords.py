"""Password hashing: Argon2id through pwdlib, with parameters measured to cost 50-250 ms a login.

t=2 passes over m=64 MiB with 2 lanes: about 150 ms on the 2-core dev machine under load
(benchmarks/auth_speed.py; docs/bench-security.md). The stored string names its parameters,
so raising them later re-hashes each password at its owner's next login.
"""

from __future__ import annotations

import functools
import threading
import unicodedata

from pwdlib.hashers.argon2 import Argon2Hasher

TIME_COST, MEMORY_KIB, LANES = 2, 64 * 1024, 2
MIN_LENGTH = 10
SAME_PASSWORD = "the new password is the current one: choose another"
COMMON_PASSWORD = ("the password is one of the 30,000 most common passwords (zxcvbn's list, from leaked ones), "
                   "which guessers try first: choose another")
# 64 MiB each: at most this many hashes at once, so a login flood cannot exhaust memory.
_CONCURRENT = threading.BoundedSemaphore(4)
_HASHER = Argon2Hasher(time_cost=TIME_COST, memory_cost=MEMORY_KIB, parallelism=LANES)
# Verified against when the user name is unknown, so that answer takes as long as a wrong password.
# The hash of "maskwatch: no such user" written out, not made at import: that cost every command
# line start ~0.15 s (`maskwatch users list` too). It must carry the parameters above (a test checks).
DUMMY_HASH = "$argon2id$v=19$m=65536,t=2,p=2$sT5pqHf5cu+ox9soKZ0o3w$Y5TCw6H/JmojocrlYv9Bkf5FBVwp5FPVuNbisny68z0"


class WeakPassword(ValueError):
    pass


@functools.cache
def _common_passwords() -> frozenset[str]:
    """zxcvbn's 30,000 passwords most often found in leaked lists (lowercase, xato's corpus), as
    NIST SP 800-63B 5.1.1.2 asks a verifier to refuse. Read at the first password set (0.07 s),
    not at import: every command's start would pay it."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(FREQUENCY_LISTS["passwords"])


def normalized(password: str) -> str:
    """The password as it is hashed: NFKC, as NIST SP 800-63B 5.1.1.2 asks. A Mac may send "ü" as
    u and a combining diaeresis (NFD), Windows and Linux as one character (NFC), a Japanese input
    method full-width letters: each is one password, where the hash of the bytes typed told them apart."""
    return unicodedata.normalize("NFKC", password)


def check_strength(password: str, user: str) -> None:
    """Refuse what a guesser tries first: short passwords, the user's own name and the common
    passwords, whatever their case (`Password123` as `password123`). Only where a password is set:
    a user whose password is on the list still logs in. Read normalized: "ü" typed on a Mac is one character."""
    # Counted as shown (NFC: a Mac's "ü" is one), and not past NFKC's count: one U+FDFA is 18 in NFKC.
    length = min(len(unicodedata.normalize("NFC", password)), len(normalized(password)))
    password = normalized(password)
    if length < MIN_LENGTH:
        raise WeakPassword(f"the password needs at least {MIN_LENGTH} characters, got {length}")
    if password.strip().lower() == user.strip().lower():
        raise WeakPassword("the password must not be the user name")
    if password.strip().lower() in _common_passwords():
        raise WeakPassword(COMMON_PASSWORD)


def hash_password(password: str) -> str:
    with _CONCURRENT:
        return _HASHER.hash(normalized(password))


def verify_password(password: str, stored: str | None) -> bool:
    """True when `password` matches `stored`; with `stored` None (no such user), the same work, False.
    A password not in NFKC is tried as typed too (the same work for a user missing): one set before
    2026-12-07 was hashed as typed. Both are tried whatever the first answers: a right NFKC form
    checked once and a wrong one twice told a guesser without the two-step code, by the answer's
    time, that the password was right."""
    as_hashed = normalized(password)
    with _CONCURRENT:
        ok = _HASHER.verify(as_hashed, stored or DUMMY_HASH)
        if as_hashed != password:
            ok = _HASHER.verify(password, stored or DUMMY_HASH) or ok
    return ok and stored is not None


def needs_rehash(stored: str) -> bool:
    return _HASHER.check_needs_rehash(stored)

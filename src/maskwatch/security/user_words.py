"""How users, tokens and changes to them are said, alike in the access log and the commands' and dashboard's answers."""

from __future__ import annotations

# The access log's actions of a change to the users or tokens, by an admin on the dashboard
# (admin_routes.py) or on the server with `maskwatch users`/`tokens` (commands.py).
# totp_on/totp_off: two-step login turned on or off, by the user on the dashboard or with `users 2fa`;
# recovery_renewed: a new set of recovery codes made, the old set gone.
CHANGES = ("user_added", "user_changed", "user_removed", "password_set", "token_added", "token_revoked",
           "totp_on", "totp_off", "recovery_renewed")


def added_target(user: dict | None = None, token: tuple[str, str] | None = None) -> str:
    """The access log's target of an added or changed user (name, role and cameras: as they are
    now) or of an added token (name, scope)."""
    if token is not None:
        return f"{token[0]} ({token[1]})"
    seen = ",".join(user["cameras"]) if user["cameras"] is not None else "all cameras"
    return f"{user['name']} ({user['role']}; {seen})"


def revoked_target(token: str, owner: str, why: str) -> str:
    """The access log's target of a token revoked with its owner (`why`: "removed", "made a
    viewer"), beside the owner's own user_removed or user_changed row."""
    return f"{token} (owner {owner} {why})"


def codes_left_words(left: int) -> str:
    """How many recovery codes a user has left, in the words of the two-step dialog (two-step.js)."""
    return f"{left or 'no'} recovery code{'' if left == 1 else 's'} left"


def revoked_words(tokens: list[str]) -> str:
    """The tokens revoked with their owner, as `users remove`/`edit` and the dashboard's answers end."""
    if not tokens:
        return ""
    return f"; {len(tokens)} API token{'s' if len(tokens) > 1 else ''} of theirs revoked ({', '.join(tokens)})"

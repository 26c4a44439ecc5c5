"""How users, tokens and changes to them are said, alike in the access log and the commands' and dashboard's answers."""

from __future__ import annotations

from maskwatch.security.auth_settings import two_step_covers

# The access log's actions of a change to the users or tokens, by an admin on the dashboard
# (admin_routes.py) or on the server with `maskwatch users`/`tokens` (commands.py).
# totp_on/totp_off: two-step login turned on or off, by the user on the dashboard or with `users 2fa`;
# totp_replaced: another app's secret in place of the one before (a new phone), with a new set of recovery codes;
# recovery_renewed: a new set of recovery codes made, the old set gone.
CHANGES = ("user_added", "user_changed", "user_removed", "password_set", "token_added", "token_revoked",
           "totp_on", "totp_off", "totp_replaced", "recovery_renewed")


def added_target(user: dict | None = None, token: tuple[str, str, int | None] | None = None,
                 cameras: list[str] | None = None) -> str:
    """The access log's target of an added or changed user (name, role and cameras: as they are
    now) or of an added token (name, scope, its `cameras` where it has a list, and the days chosen
    until it expires: None, never)."""
    if token is not None:
        name, scope, days = token
        seen = f"{','.join(cameras)}; " if cameras is not None else ""
        return f"{name} ({scope}; {seen}{'never expires' if days is None else f'expires in {days} day' + 's' * (days != 1)})"
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


def required_words(rule: str) -> str:
    """What server.require_two_step's `rule` ("admins", "all") requires, in the one wording of the
    refusal to turn it off (access.TWO_STEP_KEPT) and of an admin's turning it off (below)."""
    return f"requires two-step login of {'every user' if rule == 'all' else 'admins'} (server.require_two_step: {rule})"


def two_step_off_words(name: str, rule: str | None, role: str, tokens: list[str] = ()) -> str:
    """What an admin's turning off a user's two-step login leaves (`users 2fa --off`, the Users
    dialog's answer): the password alone logs in, unless server.require_two_step (`rule`; None:
    not known, no site file read) covers them: then nothing but setting it up again at their next
    login (a covered user's password alone was said to log in). The API `tokens` they own keep
    working, named: a token has no login, so no rule of two-step login stops it (a stolen phone's
    admin may want them revoked too)."""
    done = f"two-step login off for {name}: their sessions ended; "
    if rule is None:
        left = ("their password alone logs in, unless the site's server.require_two_step covers them (--config "
                "reads it): then at their next login they set two-step login up again before anything else")
    elif not two_step_covers(rule, role):
        left = "their password alone logs in"
    else:
        left = (f"the site {required_words(rule)}: at their next "
                "login they set it up again before anything else (whoever logs in first with their password "
                "sets up their phone)")
    if tokens:
        left += (f"; {len(tokens)} API token{'s' if len(tokens) > 1 else ''} of theirs still "
                 f"work{'' if len(tokens) > 1 else 's'} ({', '.join(tokens)}): a token has no login (revoke it under Tokens or with `tokens revoke`)")
    return done + left

"""The access settings: plain data the CLI makes and every worker and replica copies, apart from access.py that reads them."""

from __future__ import annotations

from dataclasses import dataclass

# A token's expiry, in days from its making, at most: ten years (`tokens add --expires`, POST
# /v1/tokens' `expires_days`); a longer one is no expiry: left out.
MAX_TOKEN_DAYS = 3650


@dataclass(frozen=True)
class AuthSettings:
    """How the service decides who asks (serializable: serve's workers and Ray replicas get a copy)."""

    database: str | None = None  # where users, sessions and tokens live; None: no users at all
    open_without_users: bool = True  # bound to loopback: with no user yet, no login is asked
    # ... and only to requests addressed to a loopback name (Host 127.0.0.1 or localhost): a page
    # that rebinds its own domain to 127.0.0.1 (DNS rebinding) or a proxy passing its public Host
    # finds the open server closed. The CLI sets it; in-process apps (tests) leave it off.
    open_to_loopback_hosts_only: bool = False
    trusted_proxies: tuple[str, ...] = ()  # addresses whose X-Forwarded-For/-Proto are believed
    idle_minutes: float = 60.0  # a session unused this long ends
    absolute_hours: float = 12.0  # and any session ends this long after login
    retention_days: float = 30.0  # of the access log
    user_limit: int = 5  # failed logins per user name per window, then 429
    client_limit: int = 20  # failed logins per client address per window, then 429
    window_minutes: float = 15.0
    require_two_step: str = "none"  # none | admins | all: who must have two-step login (server.require_two_step)

    def two_step_required(self, role: str) -> bool:
        """Whether a user of `role` must have two-step login on to use more than TWO_STEP_SETUP."""
        return two_step_covers(self.require_two_step, role)


def two_step_covers(rule: str, role: str) -> bool:
    """Whether server.require_two_step `rule` (none, admins or all) covers a user of `role`: the
    one rule of the server (AuthSettings) and of `users 2fa --off --config` (the site's file)."""
    return rule == "all" or (rule == "admins" and role == "admin")

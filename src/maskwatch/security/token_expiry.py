"""API tokens about to stop working, said before they do: in the server's log, `tokens list` and the dashboard.

A token made on the dashboard expires in 90 days unless changed: a Prometheus or monitoring
token made there stopped one day with no word before it (its scrapes refused, a `token_expired`
row after). The access control's sweep says each token ending within SAID_WITHIN_DAYS once a day
for the whole site (AuthStore.claim_daily: every process of `run`, `serve --workers` and the Ray
replicas said it, N times a day), by name, owner and date, never its secret (the server keeps its
hash only). `tokens list` marks those ending within MARKED_WITHIN_DAYS, in the dashboard's words.
"""

from __future__ import annotations

import logging
import time

log = logging.getLogger(__name__)

SAID_WITHIN_DAYS = 7  # the server's log, daily
MARKED_WITHIN_DAYS = 14  # `tokens list` and the dashboard's tokens table (users.js's SOON_DAYS)
SAID_EVERY = 86400.0  # seconds between the log's words of the tokens ending, for the whole site
DAILY_NOTICE = "tokens_ending"  # its row in the users database's daily_notices


def ending_tokens(tokens: list[dict], now: float, days: float = SAID_WITHIN_DAYS) -> list[dict]:
    """The tokens (as AuthStore.tokens lists them) that stop working within `days` of `now`, soonest first."""
    return sorted((token for token in tokens if token["expires"] is not None
                   and now < token["expires"] <= now + days * 86400), key=lambda token: token["expires"])


def time_left(seconds: float) -> str:
    """`3 days`, `5 hours` or `under an hour`: rounded as the dashboard's tokens table rounds it."""
    days, hours = round(seconds / 86400), round(seconds / 3600)
    return (f"{days} day{'s' * (days != 1)}" if seconds >= 86400 else f"{hours} hour{'s' * (hours != 1)}"
            if seconds >= 3600 else "under an hour")


def expiry_words(expires: float | None, now: float) -> str:
    """A token's expiry as `tokens list` says it: `expires never`, `expires TIME`, `expired TIME`,
    or within MARKED_WITHIN_DAYS `expires TIME (ends in 3 days: make its successor)`, as the dashboard."""
    from maskwatch.site.event_views import minute_utc

    if expires is None:
        return "expires never"
    if expires <= now:
        return f"expired {minute_utc(expires)}"
    if expires - now > MARKED_WITHIN_DAYS * 86400:
        return f"expires {minute_utc(expires)}"
    return f"expires {minute_utc(expires)} (ends in {time_left(expires - now)}: make its successor)"


def say_ending_tokens(tokens: list[dict], now: float | None = None) -> None:
    """A warning for each token that stops working within SAID_WITHIN_DAYS: its name, owner and end."""
    from maskwatch.site.event_views import minute_utc

    now = time.time() if now is None else now
    for token in ending_tokens(tokens, now):
        owner = f"owner {token['owner']}" if token["owner"] is not None else "a site token"
        log.warning("API token %r (%s, %s) stops working at %s, in %s: make its successor (the dashboard's Users, "
                    "or maskwatch tokens add --expires DAYS) and put it where this one is used",
                    token["name"], token["scope"], owner, minute_utc(token["expires"]),
                    time_left(token["expires"] - now))

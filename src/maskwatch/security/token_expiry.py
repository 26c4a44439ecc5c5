"""API tokens about to stop working, said in the server's log before they do.

A token made on the dashboard expires in 90 days unless changed: a Prometheus or monitoring
token made there stopped one day with no word before it (its scrapes refused, a `token_expired`
row after). The access control's sweep says each token ending within SAID_WITHIN_DAYS at the
start and then once a day, by name, owner and date, never its secret (the server keeps its hash only).
"""

from __future__ import annotations

import logging
import time

log = logging.getLogger(__name__)

SAID_WITHIN_DAYS = 7  # the dashboard's tokens table marks those ending within 14 (users.js)
SAID_EVERY = 86400.0  # seconds between the log's words of the tokens ending


def ending_tokens(tokens: list[dict], now: float, days: float = SAID_WITHIN_DAYS) -> list[dict]:
    """The tokens (as AuthStore.tokens lists them) that stop working within `days` of `now`, soonest first."""
    return sorted((token for token in tokens if token["expires"] is not None
                   and now < token["expires"] <= now + days * 86400), key=lambda token: token["expires"])


def say_ending_tokens(tokens: list[dict], now: float | None = None) -> None:
    """A warning for each token that stops working within SAID_WITHIN_DAYS: its name, owner and end."""
    from maskwatch.site.event_views import minute_utc

    now = time.time() if now is None else now
    for token in ending_tokens(tokens, now):
        left = token["expires"] - now
        days, hours = round(left / 86400), round(left / 3600)  # as the dashboard's tokens table says it
        within = (f"{days} day{'s' * (days != 1)}" if left >= 86400 else f"{hours} hour{'s' * (hours != 1)}"
                  if left >= 3600 else "under an hour")
        owner = f"owner {token['owner']}" if token["owner"] is not None else "a site token"
        log.warning("API token %r (%s, %s) stops working at %s, in %s: make its successor (the dashboard's Users, "
                    "or maskwatch tokens add --expires DAYS) and put it where this one is used",
                    token["name"], token["scope"], owner, minute_utc(token["expires"]), within)

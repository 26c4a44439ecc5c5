"""apprise's log lines (and its HTTP parts') kept out of the site's log: they name a URL's token
(apprise's "Could not load URL", urllib3's debug `"POST /bot123:token/sendMessage"`), and a
failure is said once, by notify.py, less the URL's secrets.

Run as maskwatch.site is imported, before any of its modules imports apprise: apprise logs at
DEBUG as it loads (its locale, "189 Notification Plugin(s) ... loaded"), which a root logger at
DEBUG (MASKWATCH_LOG_LEVEL=DEBUG) put in the site's log. This module imports no apprise.
"""

from __future__ import annotations

import logging

QUIETED = ("apprise", "urllib3", "requests_oauthlib", "oauthlib")


def quiet_apprise() -> None:
    """Each of QUIETED passes nothing up (a NullHandler, or logging's last resort prints them anyway)."""
    for name in QUIETED:
        logger = logging.getLogger(name)
        logger.propagate = False
        if not any(isinstance(handler, logging.NullHandler) for handler in logger.handlers):
            logger.addHandler(logging.NullHandler())

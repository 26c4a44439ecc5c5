"""What a route says in its OpenAPI entry of who may ask it and what is logged: set by every router, read by access.py."""

from __future__ import annotations

ACCESS = "x-maskwatch-access"  # public | user (the default) | all-cameras | admin
AUDIT = "x-maskwatch-audit"  # an action name: each request to the route is written to the access log
# ... with its query in the target, where what was read is in it (an export's camera, a report's days)
AUDIT_QUERY = "x-maskwatch-audit-query"
# (best effort: where the database cannot be written the request is answered, the row lost and the
# failure logged; docs/security.md)
# A route a page of another site must not start in a logged-in browser's name (a link to an export:
# SameSite=Lax sends the cookie on a top-level navigation, and the access log named the victim).
SAME_SITE_ONLY = "x-maskwatch-same-site-only"
# A POST that changes nothing (the zone editor's check only reads the text it is given): a read-scope
# API token may call it, as every GET; every other POST refuses such a token.
READS_ONLY = "x-maskwatch-reads-only"
PUBLIC = {ACCESS: "public"}
ADMIN = {ACCESS: "admin"}
# Figures over every camera (/metrics): admins, API tokens (Prometheus) and viewers of every camera.
ALL_CAMERAS = {ACCESS: "all-cameras"}

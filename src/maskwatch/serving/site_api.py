"""The site's HTTP routes: cameras and their state, each camera's newest frame, the events,
compliance over time and the daily report.

One module-level router of plain functions, included by the one FastAPI app (serving/app.py) when
`maskwatch run` serves a site; each route reads the site from `request.app.state`. Errors are
JSON {"error": "..."} like the rest of the API.
"""

from __future__ import annotations

import functools
import itertools
import re
import time
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import Field
from sqlalchemy.exc import SQLAlchemyError

from maskwatch.faces import PERSON_LABELS
from maskwatch.security.admin_routes import CONFIRMED, Confirmed
from maskwatch.security.route_access import ADMIN, AUDIT, AUDIT_QUERY, READS_ONLY, SAME_SITE_ONLY
from maskwatch.security.store import log_row
from maskwatch.serving.drain import SMALL_BODY
from maskwatch.serving.exports import (EXPORT_OF_YOURS_RESPONSE, EXPORTS, EXPORTS_BUSY_RESPONSE, SlotStream,
                                       exports_busy, said_if_cut_off)
from maskwatch.serving.openapi import ERROR, JPEG_RESPONSE
from maskwatch.security.request_checks import AuthError, client_address, root_of
from maskwatch.site.event_views import (CURSOR, asked_range, cursor_of, event_view, events_csv, iso_on_site, iso_utc,
                                        parse_cursor)
from maskwatch.site.compliance import ALERT_FIELDS, ALERTS_LISTED
from maskwatch.site.events import ErasureError
from maskwatch.site.report import report_csv, report_period
from maskwatch.site.config import CameraConfig, SiteConfigError, camera_with_shapes
from maskwatch.site.runner import Site
from maskwatch.site.schemas import AlertList, CameraStatus, CameraZones, ComplianceSeries, EventList, RetiredCameraList, ZonesText
from maskwatch.site.trend import (NO_ZONE, SINCE_SCHEMA, BUCKETS, bucket_start, buckets_back, compliance_series, parse_since,
                                  zone_named)
from maskwatch.video.sources import host_port, stream_address

# The most buckets with people a compliance answer may hold (each interval costs about 2 ms).
MAX_BUCKETS = 1000

# The zone check's problems said in its one line: each corner of 50 zones and 50 masks of 100 can be
# one (10,000 lines, a megabyte the page would show); the first are what the user mends first.
PROBLEMS_SHOWN = 20


def zones_answer(camera_id: str, config: CameraConfig) -> dict:
    """GET .../zones' answer (CameraZones): the zones in the config's order; motion's settings that
    differ from maskwatch's own, masks always; whether `motion:` is given at all."""
    motion = config.motion.model_dump(mode="json", exclude_defaults=True)
    motion["masks"] = [[list(point) for point in polygon] for polygon in config.motion.masks]
    return {"camera": camera_id,
            "zones": [{"name": name, "points": [list(point) for point in polygon]}
                      for name, polygon in config.zones.items()],
            "motion": motion, "motion_given": "motion" in config.model_fields_set}


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _errors(*pairs: tuple[int, str]) -> dict:
    return {code: {"description": text, "content": {"application/json": {"schema": ERROR}}} for code, text in pairs}


SITE_VALUES = "x-maskwatch-site-values"  # "cameras" or "zones": filled in by schema_for, then removed


def one_of(values) -> dict:
    """A query parameter's documented schema: one of `values` (the handler still answers 400 for others)."""
    values = list(values)
    return {"anyOf": None, "type": "string", "enum": values} if values else {}


def schema_for(schema: dict, site: Site, principal) -> dict:
    """The OpenAPI document as `principal` may read it: the camera and zone lists a query is
    documented with name only the cameras a viewer limited to some may see, and their zones (the
    whole document named every camera and zone of the site to any viewer); the cameras no longer
    running whose history is stored are among them, as the queries take them, and so are the zones
    with stored counts that the config no longer names (renamed, removed, a retired camera's)."""
    every = principal is None or principal.cameras is None
    mine = [c for c in site.cameras_by_id if every or principal.may_see(c)]
    try:
        retired = [c for c in site.retired_cameras() if every or principal.may_see(c)]
        stored_zones = site.store.zones_since(0, None if every else mine + retired)
    except SQLAlchemyError:  # the database away: the document still answers, with the running cameras
        retired, stored_zones = [], []
    values = {"cameras": mine + retired, "zones": sorted(set(_zones(site, mine)) | set(stored_zones))}

    def limited(node):
        if isinstance(node, list):
            return [limited(value) for value in node]
        if not isinstance(node, dict):
            return node
        node = {key: limited(value) for key, value in node.items()}
        if SITE_VALUES in node and (listed := values[node.pop(SITE_VALUES)]):
            node["enum"] = listed
        return node

    return limited(schema)


def _zones(site: Site, cameras) -> list[str]:
    return sorted({z for c in cameras for z in site.cameras_by_id[c].config.zones})


router = APIRouter(prefix="/v1", tags=["site"])
# A query whose documented values are the site's cameras (or zones): the router is built once, for any
# site, so schema_for writes the caller's own cameras and zones in when it serves the document.
CAMERA_IDS = {"anyOf": None, "type": "string", SITE_VALUES: "cameras"}
ALL_ZONES = {"anyOf": None, "type": "string", SITE_VALUES: "zones"}


def reads_events(endpoint):
    """`endpoint` run as one read of the events database (Site.reads): a server that hangs is a
    503 naming it within a few seconds, not a request (and a server thread) held as long as it hangs."""
    @functools.wraps(endpoint)
    def bounded(**values):
        return _site(values["request"]).reads.call(endpoint, **values)

    return bounded


def _site(request: Request) -> Site:
    """The site the app serves (create_app puts it on app.state)."""
    return request.app.state.site


def readable(request: Request) -> list[str] | None:
    """The cameras whose history the caller may read; None: every one, running or not. A
    viewer's own list otherwise, as it stands: a camera on it since removed from the config,
    or disabled, keeps its stored people (AccessControl.authorize already refused a request
    naming a camera outside it)."""
    principal = request.state.principal
    return None if principal is None or principal.cameras is None else list(principal.cameras)


def caller(request: Request) -> str | None:
    """Who an export is counted to: the user, or "token:NAME"; None on an open server."""
    principal = request.state.principal
    return None if principal is None else principal.name


def running(request: Request) -> list[str]:
    """The cameras of the config the caller may see, in its order."""
    site = _site(request)
    allowed = readable(request)
    return [c for c in site.cameras_by_id if allowed is None or c in allowed]


def retired(request: Request) -> list[str]:
    """The cameras no longer running whose history is stored, that the caller may read."""
    site = _site(request)
    allowed = readable(request)
    return [c for c in site.retired_cameras() if allowed is None or c in allowed]


def named(request: Request, retired_too: bool = True) -> str:
    """The cameras an error may list: the caller's (a viewer whose list names a camera since
    removed from the config passes the access check, and must not be told the others)."""
    listed = ", ".join(running(request)) or "none"
    old = retired(request) if retired_too else []
    return listed + (f"; not running, with stored history: {', '.join(old)}" if old else "")


def camera_refusal(request: Request, camera: str | None) -> JSONResponse | None:
    """400 for a camera neither in the config nor in the stored history, naming the caller's:
    a camera removed from the file or disabled is read as long as its people are kept."""
    site = _site(request)
    if camera is None or camera in site.cameras_by_id or site.store.has_history(camera):
        return None
    return _error(400, f"unknown camera {camera!r}; cameras: {named(request)}")


def zone_refusal(request: Request, camera: str | None, zone: str | None) -> JSONResponse | None:
    """404 for a zone none of the caller's cameras has (or not `camera`), naming theirs only;
    a zone their events still carry (renamed or removed from the config since, or of a camera
    no longer running) is one."""
    site = _site(request)
    if zone is None:
        return None
    every_zone = _zones(site, running(request))
    if zone not in every_zone:
        refusal = f"unknown zone {zone!r}; zones: {', '.join(every_zone) or 'none'}"
    elif camera is not None and camera not in site.cameras_by_id:
        refusal = f"camera {camera!r} is not running and has no people stored in zone {zone!r}"
    elif camera is not None and zone not in site.cameras_by_id[camera].config.zones:
        zones = site.cameras_by_id[camera].config.zones
        refusal = f"camera {camera!r} has no zone {zone!r}; its zones: {', '.join(zones) or 'none'}"
    else:
        return None
    cameras = [camera] if camera is not None else readable(request)
    if site.store.has_zone(zone, cameras=cameras):
        return None
    return _error(404, refusal)


def without_addresses(text: str | None, sources) -> str | None:
    """`text` (a camera's last_error or analysis_error) with its sources' hosts, ports and file
    paths as ***, for whom the sources are shown as their kind alone: under `rtsp://***` a viewer
    read `no such host (door-cam.corp.lan does not resolve)`. A webcam's number is no address."""
    if text is None:
        return None
    parts = set()
    for source in sources:
        if source is None:
            continue
        if not source.isdigit():
            parts.add(source)
        if (address := stream_address(source)) is not None:
            parts |= {host_port(address), address[0]}
    for part in sorted(parts, key=len, reverse=True):  # host:port before the host alone
        text = re.sub(rf"(?<![\w.-]){re.escape(part)}(?![\w-])", "***", text)
    return text


@router.get("/cameras", response_model=list[CameraStatus])
def cameras(request: Request) -> JSONResponse:
    """Every camera of the site the caller may see: connected, last frame and since when it counts
    as down (ISO times with the site's offset), FPS received, frames, reconnects, last error, and today's people per voted label (since midnight in the site's timezone, from the database)."""
    site = _site(request)
    rows = site.cameras(only=readable(request))  # a viewer's cameras' figures only are read
    principal = request.state.principal
    tz = site.config.tz()
    for row in rows:
        for key in ("last_frame_at", "offline_since"):
            row[key] = iso_on_site(row[key], tz)
        if principal is not None and principal.role != "admin":  # a camera's address and user: admins only
            for key in ("last_error", "analysis_error"):
                row[key] = without_addresses(row[key], (row["source"], row["detect_source"]))
            for key in ("source", "detect_source"):
                if row[key] is not None:
                    row[key] = row[key].split("://", 1)[0] + "://***" if "://" in row[key] else "***"
    return JSONResponse(rows)


@router.get("/cameras/retired", response_model=RetiredCameraList)
@reads_events
def retired_cameras(request: Request) -> JSONResponse:
    """The cameras no longer running (removed from the config, or `enabled: false`) whose people
    or counts are still stored, until retention deletes them, that the caller may read: their
    history answers /v1/events, /v1/compliance and report.csv as a running camera's does. They
    have no frame and no stream state (not in /v1/cameras or /metrics)."""
    site = _site(request)
    disabled = set(site.config.disabled_cameras)
    return JSONResponse({"cameras": [{"id": camera, "disabled": camera in disabled,
                                      "last_seen": iso_utc(site.store.last_seen(camera))}
                                     for camera in retired(request)]})


@router.get("/cameras/{camera_id}/frame.jpg", response_class=Response,
            responses=JPEG_RESPONSE | _errors((404, "No such camera, or no frame from it yet")),
            openapi_extra={AUDIT: "camera_frame"})
def camera_frame(request: Request, camera_id: str) -> Response:
    site = _site(request)
    camera = site.cameras_by_id.get(camera_id)
    if camera is None and site.reads.call(site.store.has_history, camera_id):
        return _error(404, f"camera {camera_id!r} is not running (removed from the config, or enabled: false): "
                           "no live frame; /v1/events and /v1/compliance still read its stored history")
    if camera is None:
        return _error(404, f"no camera {camera_id!r}; cameras: {named(request, retired_too=False)}")
    jpeg = camera.live.jpeg()
    if jpeg is None:
        return _error(404, f"no frame from camera {camera_id!r} yet")
    return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"})


@router.get("/cameras/{camera_id}/zones", response_model=CameraZones,
            responses=_errors((404, "No such camera running")))
def camera_zones(request: Request, camera_id: str) -> JSONResponse:
    """The camera's zones and motion masks, polygons in 0-1 of the frame, as the config file has
    them (the page's zone editor draws them on its picture; it gives YAML to paste, and writes
    nothing): /v1/cameras names the zones only."""
    site = _site(request)
    camera = site.cameras_by_id.get(camera_id)
    if camera is None:
        return _error(404, f"no camera {camera_id!r} running; cameras: {named(request, retired_too=False)}")
    return JSONResponse(zones_answer(camera_id, camera.config))


@router.post("/cameras/{camera_id}/zones/check", response_model=CameraZones, openapi_extra={READS_ONLY: True},
             responses=_errors((400, "The text is not what the config takes under the camera: its problems "
                                     "in one line, as `maskwatch run --check` says them"),
                               (404, "No such camera running"),
                               (413, f"A body over {SMALL_BODY} bytes (every route's but /v1/detect's limit)")))
def check_zones(request: Request, camera_id: str, body: ZonesText) -> JSONResponse:
    """The camera's zones and motion as the text gives them (the YAML the zone editor gives to
    paste under the camera in site.yaml), read and checked by the config's own loader, in GET
    .../zones' shape; nothing is written. The page's editor draws from this answer, so the text
    has one reader, the file's."""
    site = _site(request)
    camera = site.cameras_by_id.get(camera_id)
    if camera is None:
        return _error(404, f"no camera {camera_id!r} running; cameras: {named(request, retired_too=False)}")
    try:
        config = camera_with_shapes(camera_id, camera.config, body.text)
    except SiteConfigError as err:
        shown = err.problems[:PROBLEMS_SHOWN]
        more = len(err.problems) - len(shown)
        return _error(400, "; ".join(shown) + (f"; and {more} more problems" if more else ""))
    return JSONResponse(zones_answer(camera_id, config))


def event_filters(request: Request, camera: str | None, zone: str | None, label: str | None,
                  since: str | None, until: str | None) -> dict | JSONResponse:
    """The store's filters for /v1/events and events.csv, or the refusal of a bad one."""
    if (refused := camera_refusal(request, camera)) is not None:
        return refused
    # A zone no camera has matched nothing: a typo read as "nobody was seen there".
    if (refused := zone_refusal(request, camera, zone)) is not None:
        return refused
    if label is not None and label not in PERSON_LABELS:
        return _error(400, f"label must be one of {', '.join(PERSON_LABELS)}; got {label!r}")
    try:
        tz = _site(request).config.tz()  # a date alone is the site's day, as report.csv's
        since_seconds = parse_since(since, days=tz) if since is not None else None
        until_seconds = parse_since(until, "until", tz) if until is not None else None
    except ValueError as err:
        return _error(400, str(err))
    # since == until is a range with nothing in it (until is not in it), answered as such
    if since_seconds is not None and until_seconds is not None and since_seconds > until_seconds:
        return _error(400, f"since must not be after until; got since {since!r}, until {until!r}")
    return {"camera": camera, "zone": zone, "label": label, "since": since_seconds, "until": until_seconds,
            "cameras": readable(request)}


event_zone = Query(None, description="one zone (a zone the events still carry, renamed or removed since, too)")
event_label = Query(None, json_schema_extra=one_of(PERSON_LABELS))
event_since = Query(None, description=f"events last seen at or after it: Unix seconds or ISO 8601 ({NO_ZONE})",
                    json_schema_extra=SINCE_SCHEMA)
event_until = Query(None, description=f"events last seen before it: Unix seconds or ISO 8601 ({NO_ZONE})",
                    json_schema_extra=SINCE_SCHEMA)


@router.get("/events", response_model=EventList,
            responses=_errors((400, "A filter that names no camera or class, or a bad time"),
                              (404, "A zone none of the caller's cameras has")))
@reads_events
def list_events(request: Request, camera: str | None = Query(None, json_schema_extra=CAMERA_IDS),
                zone: str | None = event_zone, label: str | None = event_label,
                since: str | None = event_since, until: str | None = event_until,
                before: str | None = Query(None, pattern=CURSOR.pattern, description=(
                    "a cursor: the events after it, newest first; the `next` of the page before holds it")),
                limit: int = Query(100, ge=1, le=1000)) -> JSONResponse:
    """Decided people, newest first (last seen, then id), filtered by camera, zone, voted label and
    last seen from `since` and before `until`; a page of `limit`, whose `next` is the URL of the
    page after it (null: none), stable while new events are stored."""
    site = _site(request)
    filters = event_filters(request, camera, zone, label, since, until)
    if isinstance(filters, JSONResponse):
        return filters
    after = parse_cursor(before) if before is not None else None  # its form checked by FastAPI (422)
    rows = site.store.events(**filters, limit=limit + 1, before=after)  # one more: is there a next page?
    page = rows[:limit]
    following = None
    if len(rows) > limit:
        query = [(k, v) for k, v in request.query_params.multi_items() if k != "before"]
        query.append(("before", cursor_of(page[-1])))
        following = f"{request.url.path}?{urlencode(query)}"
    # A snapshot's URL as the client reaches it, through a proxy's prefix too.
    return JSONResponse({"events": [event_view(row, root_of(request)) for row in page], "next": following})


@router.get("/events.csv", response_class=Response,
            responses={200: {"description": "The events /v1/events finds, every one, newest first, as CSV",
                             "content": {"text/csv": {"schema": {"type": "string"}}}},
                       **_errors((400, "A filter that names no camera or class, or a bad time"),
                                 (404, "A zone none of the caller's cameras has"), EXPORTS_BUSY_RESPONSE,
                                 EXPORT_OF_YOURS_RESPONSE)},
            openapi_extra={AUDIT: "events_export", AUDIT_QUERY: True, SAME_SITE_ONLY: True})
def export_events(request: Request, camera: str | None = Query(None, json_schema_extra=CAMERA_IDS),
                  zone: str | None = event_zone, label: str | None = event_label,
                  since: str | None = event_since, until: str | None = event_until) -> Response:
    """Every event the filters find, newest first, one CSV row each with the columns of /v1/events
    (times in ISO 8601 UTC), then `first_seen_local` and `last_seen_local` (YYYY-MM-DD HH:MM:SS in
    the site's timezone, as a spreadsheet reads a date), `infrared`, then `first_seen_local_offset`
    and `last_seen_local_offset` (UTC+02:00: which reading of the hour the clocks go back a local
    time is), streamed as it is read: an audit's month of a busy site, without a limit."""
    site = _site(request)
    filters = site.reads.call(event_filters, request, camera, zone, label, since, until)
    if isinstance(filters, JSONResponse):
        return filters
    give_back = EXPORTS.take(caller(request))
    if isinstance(give_back, str):
        return exports_busy(give_back)
    try:
        rows = site.store.each_event(**filters)
        first = site.reads.call(next, rows, None)  # read here: a database away is a 503, not a cut-off file
    except BaseException:
        give_back()
        raise
    body = events_csv(itertools.chain([first] if first is not None else [], rows), site.config.tz(), root_of(request))
    name = "maskwatch-events" + "".join(f"-{value}" for value in (camera, zone, label) if value) + ".csv"
    return SlotStream(said_if_cut_off(body, request.url.path), give_back=give_back, media_type="text/csv",
                      headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})


@router.get("/compliance", response_model=ComplianceSeries,
            responses=_errors((400, "An unknown camera or bucket, or a bad time"),
                              (404, "No camera has such a zone, or this camera has not")))
@reads_events
def compliance(request: Request, camera: str | None = Query(None, description="one camera (default: all)",
                                          json_schema_extra=CAMERA_IDS),
               zone: str | None = Query(None, description="one zone (default: all, and outside them)",
                                        json_schema_extra=ALL_ZONES),
               bucket: str = Query("hour", description="hour, day or week", json_schema_extra=one_of(BUCKETS)),
               since: str | None = Query(None, description=f"Unix seconds or ISO 8601 ({NO_ZONE}); "
                                                           "default: 24 buckets back",
                                         json_schema_extra=SINCE_SCHEMA)) -> JSONResponse:
    """The compliant share per hour, day or week (in the site's timezone), from the per-minute counts:
    corrected for the classifier's known confusions, with its 95 % interval (compliance_low,
    compliance_high) and the plain with_mask / people (observed_share); and the zones with people
    counted in the period (the dashboard's zone choices: the config names only the zones it has now)."""
    site = _site(request)
    if (refused := camera_refusal(request, camera)) is not None:
        return refused
    # A zone renamed or removed from the config still has its counts (report.csv lists them).
    if (refused := zone_refusal(request, camera, zone)) is not None:
        return refused
    if bucket not in BUCKETS:
        return _error(400, f"bucket must be one of {', '.join(BUCKETS)}; got {bucket!r}")
    tz = site.config.tz()
    try:  # by default the 23 whole buckets before this one, and this one so far; a given since
        # is moved back to its bucket's start (a day from 10:07 looked like a whole day)
        now = time.time()  # no count is from before 1970 or next week: a since past them means them
        if since is not None:
            asked = min(max(0.0, parse_since(since, days=tz)), now + BUCKETS["week"])
            since_seconds = bucket_start(asked, bucket, tz).timestamp()
        else:
            since_seconds = buckets_back(now, bucket, tz, 23).timestamp()
    except ValueError as err:
        return _error(400, str(err))
    cameras = [camera] if camera is not None else readable(request)
    rows = site.store.quarter_sums(since_seconds, cameras=cameras, zone=zone)
    try:
        series = compliance_series(rows, bucket, tz, max_buckets=MAX_BUCKETS)
    except ValueError as err:
        return _error(400, str(err))
    return JSONResponse({"camera": camera, "zone": zone, "bucket": bucket,
                         "timezone": site.config.clock(), "since": iso_utc(since_seconds // 60 * 60),
                         "buckets": series, "zones": site.store.zones_since(since_seconds, cameras)})


@router.get("/alerts", response_model=AlertList)
@reads_events
def alerts(request: Request) -> JSONResponse:
    """Today's compliance alerts (since midnight in the site's timezone) on the caller's cameras, newest
    first, as the webhooks had them, each with how its camera and zone stand now over its rule's window:
    the dashboard's list, for the people who get no webhook or message. Read from the database (a
    restart keeps them), with those it refused so far from the site's memory."""
    site = _site(request)
    tz, now = site.config.tz(), time.time()
    monitor = site.compliance
    midnight = bucket_start(now, "day", tz).timestamp()
    allowed = readable(request)
    waiting, lost = list(monitor.unstored), dict(monitor.lost_at)  # copies: the check thread changes them
    lost_at = max((at for camera, at in lost.items() if allowed is None or camera in allowed), default=float("-inf"))
    stored, kept_since = site.store.alerts(midnight, cameras=allowed, limit=ALERTS_LISTED + 1)
    known = {(a["rule"], a["camera"], a["at"]) for a in stored}  # one stored meanwhile is in both
    unstored = [a for a in reversed(waiting) if a["at"] >= midnight and (allowed is None or a["camera"] in allowed)
                and (a["rule"], a["camera"], a["at"]) not in known]
    listed = sorted([*stored, *unstored], key=lambda a: a["at"], reverse=True)  # stable: a check's ties as they were
    # The list is whole from midnight, or from when the database began to keep alerts (an upgrade today),
    # or after the newest alert left out: past ALERTS_LISTED, or let go unstored (`cut`).
    left_out = max(listed[ALERTS_LISTED]["at"] if len(listed) > ALERTS_LISTED else float("-inf"), lost_at)
    cut = left_out >= max(midnight, kept_since)
    since = left_out if cut else max(midnight, kept_since)
    shown, standing = [], {}
    for alert in listed:
        if alert["at"] < since or (cut and alert["at"] <= left_out):  # those of that instant: some went
            break
        # Its repeats stand as one: read once (by the rule as it fired: the file may have changed since).
        key = tuple(alert[name] for name in ("rule", "camera", "zone", "below", "minutes", "min_people"))
        if key not in standing:
            standing[key] = monitor.standing(alert, now)
        shown.append({name: alert[name] for name in ALERT_FIELDS} | {"at": iso_on_site(alert["at"], tz),
                                                                     "now": standing[key]})
    rules = sum(1 for rule in monitor.rules if any(allowed is None or camera in allowed for camera in monitor.targets(rule)))
    return JSONResponse({"since": iso_on_site(since, tz), "since_start": not cut and since > midnight,
                         "cut": cut, "rules": rules, "alerts": shown})


@router.get("/report.csv", response_class=Response,
            responses={200: {"description": "Daily compliance per camera and zone (the site's days)",
                             "content": {"text/csv": {"schema": {"type": "string"}}}},
                       **_errors((400, "A date that is not YYYY-MM-DD, or from after to"), EXPORTS_BUSY_RESPONSE,
                                 EXPORT_OF_YOURS_RESPONSE)},
            openapi_extra={AUDIT: "report", AUDIT_QUERY: True, SAME_SITE_ONLY: True})
def report(request: Request, start: str | None = Query(None, alias="from", json_schema_extra={"format": "date"},
                                                       description="first day, YYYY-MM-DD (default: 6 days before to)"),
           end: str | None = Query(None, alias="to", json_schema_extra={"format": "date"},
                                   description="last day, YYYY-MM-DD (default: today in the site's timezone)")) -> Response:
    """One row per day, camera and zone: people per voted label, the corrected compliant share with
    its 95 % interval, the plain with_mask / people, those seen on grey frames, and the day's hours
    on the site's clock (25 or 23 the days the clocks change)."""
    site = _site(request)
    tz = site.config.tz()
    try:
        period = report_period(start, end, tz)
    except (ValueError, OverflowError) as err:
        return _error(400, str(err))
    give_back = EXPORTS.take(caller(request))
    if isinstance(give_back, str):
        return exports_busy(give_back)
    try:
        site.reads.check()  # read at length, unbounded, but not begun behind a read stuck already
        body = report_csv(site.store, period, tz, cameras=readable(request))  # a viewer's cameras, running or not
    finally:
        give_back()
    return Response(body, media_type="text/csv", headers={
        "Content-Disposition": f'attachment; filename="maskwatch-{period.first}-{period.last}.csv"'})


@router.get("/snapshots/{name}", response_class=Response,
            responses=JPEG_RESPONSE | _errors((404, "No such snapshot (privacy mode keeps none)")),
            openapi_extra={AUDIT: "snapshot"})
@reads_events
def snapshot(request: Request, name: str) -> Response:
    site = _site(request)
    path = site.store.snapshot_path(name)
    if path is None:
        return _error(404, f"no snapshot {name!r}")
    # no-store: a cached copy outlived retention and a viewer's revoked access (frame.jpg alike)
    return FileResponse(path, media_type="image/jpeg", headers={"Cache-Control": "no-store"})


class Erasure(Confirmed):
    """DELETE /v1/events' body: the people in view in a range, and the admin's own password."""

    since: str = Field(min_length=1, max_length=64, description=(
        "from this time: ISO 8601 with its offset or Z, Unix seconds, or a date alone (midnight in the site's "
        "timezone); a time with no zone is refused"))
    until: str = Field(min_length=1, max_length=64, description="to this time, not included; as since")
    camera: str | None = Field(None, min_length=1, max_length=64, description=(
        "one camera's people (one no longer running whose history is kept too); left out: every camera's"))


def _erasing_admin(request: Request) -> str:
    """An admin logged in: a leaked API token, even a full one, cannot delete people's records."""
    principal = request.state.principal
    if principal is None or principal.via != "session":
        raise AuthError(403, "people's events are erased by an admin logged in, not with an API token or on a server "
                             "with no users (or with maskwatch events delete on the server)")
    return principal.name


@router.delete("/events", openapi_extra=ADMIN, responses=CONFIRMED | _errors(
    (400, "A camera neither in the config nor in the stored history, a bad time or one with no zone, or since not before until"),
    (503, CONFIRMED[503]["description"] + "; or a snapshot file that cannot be deleted (nothing erased: the "
          "file is named)")))
def erase_events(request: Request, body: Erasure, admin: Annotated[str, Depends(_erasing_admin)]) -> JSONResponse:
    """Delete the people in view at any moment of the range (first seen before `until`, last seen
    at or after `since`; GET /v1/events filters by the last seen alone) and their snapshot files, as
    `maskwatch events delete --yes`: a request to erase from someone filmed. The counts stay; the
    access log's `events_erased` row (the camera and range asked, how many) is written with it."""
    site = _site(request)
    if (refused := camera_refusal(request, body.camera)) is not None:
        return refused
    tz = site.config.tz()
    try:
        since, until = zone_named(body.since, "since", tz), zone_named(body.until, "until", tz)
    except ValueError as err:
        return _error(400, str(err))
    if since >= until:
        return _error(400, f"since must be before until; got since {body.since!r}, until {body.until!r}")
    target = asked_range(body.camera, since, until, tz)
    site.reads.check()  # a write at length, unbounded, but not begun behind a read stuck already
    request.app.state.access.confirm_admin(request, request.state.principal, body.admin_password,
                                           f"events_erased {target}")
    client = client_address(request)
    try:
        erased, files = site.store.erase(since, until, body.camera, audit=lambda people, snapshots: log_row(
            "events_erased", admin, client, f"{target}: events {people}, snapshots {snapshots}", time.time()))
    except ErasureError as err:
        return _error(503, str(err))
    return JSONResponse({"status": f"deleted {erased} {'person' if erased == 1 else 'people'} and {files} snapshot "
                                   f"file{'s' * (files != 1)}", "erased": erased, "snapshots": files,
                         "since": iso_utc(since), "until": iso_utc(until), "camera": body.camera})

"""The site config: one YAML file of cameras (Frigate's shape), validated whole at start.

    defaults:            # any camera setting, for every camera that does not set it
      fps: 5
    cameras:
      entrance:          # the camera's id: letters, digits, _ and -
        name: Front door
        source: rtsp://viewer:${CAM1_PASSWORD}@10.0.0.5:554/stream1
        zones:
          door: [[0, 0], [0.5, 0], [0.5, 1], [0, 1]]   # polygon, 0-1 of width and height
        hours: ["mon-fri 08:00-18:00"]                # alerts fire only then (default: always)
    timezone: Europe/Berlin  # of opening hours and the compliance chart's days (default: local time)
    alerts:
      compliance:        # under 80 % masked over 15 minutes at the door (the whole 95 % interval)
        - {camera: entrance, zone: door, below: 80, minutes: 15}

Every problem is collected, not just the first: `load_site_config` raises SiteConfigError with
one line per problem, each naming the camera and the field.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from maskwatch.faces import PERSON_LABELS
from maskwatch.site.hours import DAYS, parse_span
from maskwatch.video.sources import SECRET_PARAMETER, STREAM_PREFIXES, stream_url_problem

CAMERA_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")  # whole (fullmatch): "$" let a final newline in
MQTT_HOST = re.compile(r"[^\s:/\[\]]+|\[[0-9A-Fa-f:.]+\]")  # a name, IPv4, or IPv6 in brackets (as in a URL)
MQTT_PREFIX = re.compile(r"[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*")  # whole (fullmatch): "$" let a final newline in
ENV_VAR = re.compile(r"\$\{([^}]*)\}")
# A drawn zone or mask has a few corners, each checked against every other (polygon_problem): one of
# thousands (POST .../zones/check takes 64 KB, and a YAML alias repeats a corner in 3 bytes) held a
# worker thread for a minute a request. Real shapes are far inside these.
MOST_CORNERS = 100  # per zone or mask
MOST_SHAPES = 50  # zones per camera; motion masks per camera

Point = tuple[Annotated[float, Field(ge=0, le=1)], Annotated[float, Field(ge=0, le=1)]]



def check_proxies(proxies) -> tuple[str, ...]:
    """Trusted proxies as IP addresses or networks; ValueError names one that is neither (uvicorn
    would quietly compare it as text and never match)."""
    for proxy in proxies:
        try:
            ipaddress.ip_network(proxy, strict=False)
        except ValueError:
            raise ValueError(f"a trusted proxy is an IP address or network such as 10.0.0.0/8; got {proxy!r}") from None
    return tuple(proxies)


class SiteConfigError(ValueError):
    """A config that cannot run: `problems` holds one line per problem."""

    def __init__(self, path: Path | str, problems: list[str]) -> None:
        self.path, self.problems = path, problems
        super().__init__("\n".join(f"{path}: {p}" for p in problems))


def without_blanks(data: Any, model: type[BaseModel]) -> Any:
    """`data` less the lists, mappings and sections left blank: `zones:` with every line under it
    commented out reads as null, and was refused ("Input should be a valid dictionary") where
    the user meant none. Settings of one value left blank stay an error."""
    if not isinstance(data, dict):
        return data
    return {key: value for key, value in data.items()
            if value is not None or key not in model.model_fields or model.model_fields[key].default_factory is None}


class Section(BaseModel):
    """A part of the site's config: a blank list, mapping or section in it reads as not written."""

    @model_validator(mode="before")
    @classmethod
    def _blanks(cls, data: Any) -> Any:
        return without_blanks(data, cls)


class MotionConfig(Section):
    """A camera's motion gate (video/motion.py): the face detector runs only when something moves."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    enabled: bool = Field(True, description="gate the detector by motion (false: detect on every analysed frame)")
    threshold: int = Field(25, ge=1, le=255, description="least change of a pixel's brightness (0-255) that counts")
    contour_area: float = Field(10.0, gt=0, description="least moving area, in pixels of the 100 px high grey frame")
    full_check: float = Field(5.0, gt=0, le=3600,
                              description="seconds after which a still scene is checked anyway while anyone is tracked "
                                          "(people standing still)")
    empty_check: float = Field(30.0, gt=0, le=3600,
                               description="the same while nobody is tracked (only what motion missed; rare)")
    masks: list[list[Point]] = Field(default_factory=list,
                                     description="polygons in 0-1 coordinates whose motion is ignored (a clock, a TV)")

    @field_validator("masks", mode="before")
    @classmethod
    def _masks_in_pixels(cls, masks: Any) -> Any:
        if isinstance(masks, list):
            too_many("motion masks", masks)
            for i, polygon in enumerate(masks):
                too_many_corners(f"mask {i}", polygon)
                in_pixels(f"mask {i}", polygon)
        return masks

    @field_validator("masks")
    @classmethod
    def _masks(cls, masks: list[list]) -> list[list]:
        for i, polygon in enumerate(masks):
            if len(polygon) < 3:
                raise ValueError(f"mask {i} needs at least 3 points, got {len(polygon)}")
            if problem := polygon_problem([(float(x), float(y)) for x, y in polygon]):
                raise ValueError(f"mask {i} {problem}; list its corners in order around it")
        return masks

    def settings(self):
        """The MotionSettings these stand for (None when gating is off)."""
        from maskwatch.video.motion import MotionSettings

        if not self.enabled:
            return None
        return MotionSettings(threshold=self.threshold, contour_area=self.contour_area, full_check=self.full_check,
                              empty_check=self.empty_check,
                              masks=tuple(tuple(tuple(point) for point in polygon) for polygon in self.masks))


class CameraSettings(Section):
    """What `defaults:` may set, and every camera may override."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    enabled: bool = Field(True, description="false: the camera is checked but not run (its settings kept, its "
                                            "history in the database)")
    fps: float = Field(5.0, gt=0, le=60, description="frames analysed per second (the stream may send more)")
    detect_every: int = Field(2, ge=1, le=100, description="run the detector on every n-th analysed frame, track between")
    min_face: float = Field(0.0, ge=0, description="smallest face counted, short side in pixels")
    upscale: float | None = Field(None, gt=0, le=4, description="resize factor before face detection, for a "
                                  "camera whose faces are far (1.5: more 12-24 px faces found, 1.6x the CPU); "
                                  "default: picked from the frame's size")
    moving: bool = Field(False, description="the camera pans or is carried: tracks follow the whole view's motion "
                         "(about 6 ms of CPU a frame; on a fixed camera it can take people's motion for the camera's)")
    # At most an hour: milliseconds written as seconds (10000) are refused, and OpenCV's timeouts
    # (stall_timeout in ms, an int32) overflowed past 24 days, ending the camera's reader in silence.
    stall_timeout: float = Field(10.0, gt=0, le=3600,
                                 description="seconds without a frame before the stream counts as dead")
    retry_max: float = Field(10.0, gt=0, le=3600,
                             description="longest wait between reconnects, seconds (backoff doubles up to it)")
    motion: MotionConfig = Field(default_factory=MotionConfig,
                                 description="motion gating; `motion: {enabled: false}` turns it off")
    hours: list[str] = Field(default_factory=list,
                             description="opening hours, e.g. ['mon-fri 08:00-18:00']: alerts fire only then "
                                         "(default: always)")

    @field_validator("hours")
    @classmethod
    def _hours(cls, hours: list[str]) -> list[str]:
        for spec in hours:
            parse_span(spec)
        return hours


OWN_SETTINGS = {"source", "detect_source", "name", "zones"}  # each camera's own, never in defaults


def _mistyped_url(value: str) -> str:
    """A hint where a source read as a file is a stream URL mistyped (rtsp:/host, rtsp//host,
    host:554/path): "no such video file: rtsp:/10.0.0.5/stream1" alone sent one to look for a file."""
    schemes = [prefix.removesuffix("://") for prefix in STREAM_PREFIXES]
    scheme = re.match(r"[A-Za-z]*", value).group().lower()
    if scheme in schemes and value[len(scheme):].startswith((":", "/")):
        return f"; a stream URL is written {scheme}://host:port/path"
    if re.match(r"[\w.-]+:\d+(/|$)", value):
        return "; a stream URL is written with its scheme: rtsp://host:port/path"
    return ""


class CameraConfig(CameraSettings):
    source: str = Field(description="rtsp://, rtsps://, http(s)://, rtmp:// URL, a video file, or webcam:N")
    detect_source: str | None = Field(None, description="a smaller stream of the same camera (its substream) to "
                                                        "analyse instead of `source`; same forms as source")
    name: str = Field("", description="display name (default: the camera's id)")
    zones: dict[str, list[Point]] = Field(default_factory=dict,
                                          description="named polygons in 0-1 coordinates of the frame")

    @field_validator("source", "detect_source", mode="before")
    @classmethod
    def _webcam_number(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:  # OpenCV's habit
            raise ValueError(f"a webcam is written webcam:{value}")
        return value

    @field_validator("source", "detect_source")
    @classmethod
    def _source(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if not value.strip():  # `source: ${CAM_URL}` with the variable set empty
            raise ValueError("empty; a stream URL, a video file or webcam:N")
        if value.startswith("webcam:"):
            if not value[7:].isdigit():
                raise ValueError(f"webcam sources are written webcam:N, N a device number; got {value!r}")
        elif "://" in value:
            if not value.startswith(STREAM_PREFIXES):
                raise ValueError(f"stream URLs start with one of {', '.join(STREAM_PREFIXES)}; got {value.split('://')[0]}://")
            if problem := stream_url_problem(value):
                raise ValueError(problem)
        elif not Path(value).is_file():
            # user:password@host or ?pwd=... with its scheme left out or mistyped: not repeated
            if "@" in value or SECRET_PARAMETER.search(value):
                raise ValueError(f"neither a video file nor a stream URL; a URL starts with one of "
                                 f"{', '.join(STREAM_PREFIXES)}")
            raise ValueError(f"no such video file: {value}{_mistyped_url(value)}")
        return value

    @field_validator("zones", mode="before")
    @classmethod
    def _zones_in_pixels(cls, zones: Any) -> Any:
        if isinstance(zones, dict):
            too_many("zones", zones)
            for name, polygon in zones.items():
                too_many_corners(f"zone {name!r}", polygon)
                in_pixels(f"zone {name!r}", polygon)
        return zones

    @field_validator("zones")
    @classmethod
    def _zones(cls, zones: dict[str, list]) -> dict[str, list]:
        for name, polygon in zones.items():
            if not CAMERA_ID.fullmatch(name):
                raise ValueError(f"zone name {name!r} must be 1-64 of A-Z, a-z, 0-9, _ and - (it is written in "
                                 "MQTT messages, URLs and the report)")
            if len(polygon) < 3:
                raise ValueError(f"zone {name!r} needs at least 3 points, got {len(polygon)}")
            if problem := polygon_problem([(float(x), float(y)) for x, y in polygon]):
                raise ValueError(f"zone {name!r} {problem}; list its corners in order around it")
        return zones


def too_many(what: str, shapes: Any) -> None:
    """ValueError, before any shape is checked, for more than MOST_SHAPES."""
    if len(shapes) > MOST_SHAPES:
        raise ValueError(f"{len(shapes)} {what}; a camera has at most {MOST_SHAPES}")


def too_many_corners(what: str, polygon: Any) -> None:
    """ValueError, before its corners are checked (against each other), for more than MOST_CORNERS."""
    if isinstance(polygon, list) and len(polygon) > MOST_CORNERS:
        raise ValueError(f"{what} has {len(polygon)} corners; at most {MOST_CORNERS}: draw it with fewer")


def in_pixels(what: str, polygon: Any) -> None:
    """ValueError, once for the polygon, where a corner is past 2: pixels, where 0-1 of the frame
    was meant (each coordinate was its own line, 'less than or equal to 1')."""
    numbers = [c for point in polygon if isinstance(point, list) for c in point
               if isinstance(c, (int, float)) and not isinstance(c, bool) and math.isfinite(c)] \
        if isinstance(polygon, list) else []
    if numbers and max(numbers) > 2:  # 1.5: past the edge, said per corner
        raise ValueError(f"{what}: corners are in 0-1 of the frame's width and height, not pixels "
                         f"(got {max(numbers):g}); divide x by the frame's width and y by its height")


def polygon_problem(points: list[tuple[float, float]]) -> str | None:
    """Why a zone's corners make no area a face could fall in (in a line, or repeated), or cross
    themselves (a bow-tie: which side is inside is then not what was meant); None if they are a zone."""
    edges = list(zip(points, points[1:] + points[:1]))

    def side(a, b, c) -> float:
        return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])

    for i, (a, b) in enumerate(edges):
        for j in range(i + 2, len(edges)):
            if i == 0 and j == len(edges) - 1:
                continue  # the first and last edges meet at the first corner
            c, d = edges[j]
            if side(a, b, c) * side(a, b, d) < 0 and side(c, d, a) * side(c, d, b) < 0:
                return "crosses itself"
    if abs(sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in edges)) < 2e-9:  # twice the area
        return "has no area (its corners are in one line or repeated)"
    return None


class TlsConfig(Section):
    """HTTPS served directly (uvicorn's ssl options): PEM files, relative to the config's folder."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    cert: str = Field(description="PEM certificate (chain)")
    key: str = Field(description="PEM private key")

    @field_validator("cert", "key")
    @classmethod
    def _exists(cls, value: str) -> str:
        if not Path(value).is_file():
            raise ValueError(f"no such file: {value}")
        return value


class ServerConfig(Section):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    host: str = Field("127.0.0.1", description="beyond loopback, `run` needs a user (maskwatch users add)")
    port: int = Field(8000, ge=1, le=65535)
    tls: TlsConfig | None = None
    trusted_proxies: list[str] = Field(default_factory=list,
                                       description="reverse proxies whose X-Forwarded-For/-Proto are believed")
    session_idle_minutes: float = Field(60.0, gt=0, description="a session unused this long ends")

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, proxies: list[str]) -> list[str]:
        return list(check_proxies(proxies))
    session_max_hours: float = Field(12.0, gt=0, description="every session ends this long after login")
    require_two_step: Literal["none", "admins", "all"] = Field(
        "none", description="users who must have two-step login: without it they log in only to set it up")


class StorageConfig(Section):
    """Where events and counts go, how long they stay, and whether faces are kept at all."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    database: str = Field("maskwatch.db", description="an SQLite file, or an SQLAlchemy URL")
    snapshots: str = Field("snapshots", description="folder of blurred event snapshots")
    privacy: bool = Field(False, description="keep no snapshot at all, and blur the live frames")
    blur_live: bool = Field(False, description="blur every face in the live frames the page and API show "
                                               "(always so in privacy mode)")
    retention_days: float = Field(30.0, gt=0, description="events, counts and snapshots older than this are deleted")

    @field_validator("database")
    @classmethod
    def _database(cls, value: str) -> str:
        """A server's URL SQLAlchemy reads as meant. Its password ends at the first @: one holding an
        @ was read as part of the host, shown in errors after the ***; a bad port was a traceback."""
        if "://" not in value or value.startswith("sqlite"):
            return value
        if value.split("?", 1)[0].count("@") > 1:
            raise ValueError("the URL's user or password holds an @: write it %40 (and a % as %25)")
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            make_url(value)
        except (ArgumentError, ValueError):  # ValueError: a port that is no number
            raise ValueError("not a database URL (dialect://user:password@host:port/database)") from None
        return value

    @property
    def live_blurred(self) -> bool:
        return self.privacy or self.blur_live


class AlertTargetConfig(Section):
    """Which people alert a receiver (webhooks and notifications alike), and how hard it is tried."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    labels: list[str] = Field(default_factory=lambda: ["without_mask", "mask_weared_incorrect"], min_length=1,
                              description="people's labels that alert (default: not compliant); "
                                          "`unassessable` may be added")
    cameras: list[str] = Field(default_factory=list, description="cameras that alert (default: all)")
    zones: list[str] = Field(default_factory=list, description="zones that alert (default: all)")
    cooldown: float = Field(0.0, ge=0, description="seconds a camera stays quiet after an alert")
    retries: int = Field(5, ge=0, le=20, description="tries after a failed one, 1 s apart and doubling")
    timeout: float = Field(5.0, gt=0, le=60, description="seconds a try waits for the receiver's answer")

    @field_validator("labels")
    @classmethod
    def _labels(cls, labels: list[str]) -> list[str]:
        unknown = [label for label in labels if label not in PERSON_LABELS]
        if unknown:
            raise ValueError(f"unknown labels {unknown}; labels are {', '.join(PERSON_LABELS)}")
        return labels


class WebhookConfig(AlertTargetConfig):
    """One receiver of alerts: a JSON POST per matching person, signed with `secret`."""

    url: str = Field(description="http:// or https:// URL of the receiver")
    secret: str = Field(min_length=8, description="HMAC-SHA256 key for the X-Maskwatch-Signature header")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        from urllib.parse import urlsplit

        from maskwatch.site.alerts import shown_url

        if not value.startswith(("http://", "https://")):
            raise ValueError(f"webhook URLs start with http:// or https://; got {shown_url(value)!r}")
        if "@" in re.split(r"[/?#]", value.partition("://")[2], maxsplit=1)[0]:  # before urlsplit: see shown_url
            raise ValueError(f"webhook URL {shown_url(value)!r}: a user and password in the URL are not sent; "
                             "the receiver checks the X-Maskwatch-Signature header (or put a token in the path)")
        try:
            parts = urlsplit(value)
        except ValueError:  # a [ or ] outside an IPv6 address
            raise ValueError(f"webhook URL {shown_url(value)!r}: the host is neither a name nor an [IPv6] "
                             "address") from None
        try:
            parts.port
        except ValueError:
            raise ValueError(f"webhook URL {shown_url(value)!r}: the port must be a number of 1-65535") from None
        if not parts.hostname:
            raise ValueError(f"webhook URL {shown_url(value)!r} names no host")
        if any(c.isspace() for c in value):
            raise ValueError(f"webhook URL {shown_url(value)!r} holds a space; write it as %20")
        return value


def _apprise_url(url: str) -> str:
    """A URL apprise can send to; ValueError saying why not, its secrets left out."""
    from maskwatch.site.notify import url_problem

    if problem := url_problem(url):
        raise ValueError(problem)
    return url


class NotifyConfig(AlertTargetConfig):
    """Messages a person reads (Slack, Telegram, ntfy, e-mail...), sent by apprise to each URL."""

    urls: list[Annotated[str, AfterValidator(_apprise_url)]] = Field(
        min_length=1, description="apprise URLs (slack://, tgram://, ntfy://, mailto:// ...), each sent on its own")
    snapshot: bool = Field(False, description="attach the person's blurred snapshot (none in privacy mode)")
    timeout: float = Field(10.0, gt=0, le=120, description="seconds a try may take (a mail server is slower)")

    @field_validator("urls", mode="before")
    @classmethod
    def _one_url(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value  # `urls: ntfy://...`: one URL


class ComplianceRuleConfig(Section):
    """Alert when the masked share over the last `minutes` is under `below` percent beyond doubt: the
    whole 95 % interval of the corrected share (docs/compliance.md)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    below: float = Field(gt=0, le=100, description="percent of people masked; the rule fires when the whole "
                                                  "95 % interval of the corrected share is under it")
    minutes: int = Field(ge=1, le=1440, description="the window, in minutes up to now")
    camera: str | None = Field(None, description="the camera watched (default: every camera, each on its own)")
    zone: str | None = Field(None, description="a zone of the camera (default: the whole camera)")
    min_people: int = Field(5, ge=1, description="fewer people in the window is too few to judge")
    cooldown: float = Field(900.0, ge=0, description="seconds the same camera and zone stay quiet after it fired")

    @field_validator("below")
    @classmethod
    def _a_percentage(cls, value: float) -> float:
        if value <= 1:  # 0.8 read as 0.8 %, where 80 % was meant: a rule that never fires
            raise ValueError(f"below is a percentage (80 for 80 %); {value:g} would be {value:g} %")
        return value


class AlertsConfig(Section):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    webhooks: list[WebhookConfig] = Field(default_factory=list)
    notify: list[NotifyConfig] = Field(default_factory=list)
    compliance: list[ComplianceRuleConfig] = Field(default_factory=list)


REPORT_TIME = re.compile(r"([01]?[0-9]|2[0-3]):([0-5][0-9])")


class ReportConfig(Section):
    """A compliance report sent on a schedule in the site's timezone (reports.py): per camera (and
    zone) the people and the corrected share with its 95 % interval, the period's report.csv attached."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    urls: list[Annotated[str, AfterValidator(_apprise_url)]] = Field(
        min_length=1, description="apprise URLs (mailto://, slack://, workflows://, ntfy:// ...), each sent on its own")
    every: Literal["day", "week"] = Field("day", description="day: a day's report (its day up to `at`, or the day "
                                                            "before: covers); week: the 7 days before `day`")
    covers: Literal["current", "previous"] | None = Field(
        None, description="current: the day it is sent on, up to `at` (every: day's default); previous: the whole "
                          "day before it (every: week: the 7 days before, its only period)")
    at: str = Field("18:00", description="HH:MM in the site's timezone")
    day: Literal[DAYS] | None = Field(None, description="with every: week, the day it is sent (default: mon)")
    cameras: list[str] = Field(default_factory=list, description="cameras reported (default: all)")
    zones: list[str] = Field(default_factory=list, description="zones reported, each on its own line (default: "
                                                               "each camera whole)")
    retries: int = Field(5, ge=0, le=20, description="tries after a failed one, 1 s apart and doubling")
    timeout: float = Field(30.0, gt=0, le=120, description="seconds a try may take (a mail server is slow)")

    @field_validator("urls", mode="before")
    @classmethod
    def _one_url(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("at", mode="before")
    @classmethod
    def _time(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1440:  # YAML 1.1: 18:00 is 1080
            raise ValueError(f'YAML reads an unquoted time as a number ({value}); write it in quotes: '
                             f'at: "{value // 60:02d}:{value % 60:02d}"')
        if not isinstance(value, str) or not REPORT_TIME.fullmatch(value.strip()):
            raise ValueError(f'a time written "HH:MM" from 00:00 to 23:59, such as "18:00"; got {value!r}')
        hours, minutes = value.strip().split(":")
        return f"{int(hours):02d}:{minutes}"

    @model_validator(mode="after")
    def _day_for_a_week(self) -> ReportConfig:
        if self.every == "day" and self.day is not None:
            raise ValueError(f"day: {self.day} is the day a weekly report is sent; with every: day remove it, "
                             "or write every: week")
        if self.every == "day" and self.covers != "previous" and self.at == "00:00":
            raise ValueError('at: "00:00" ends a daily report at the midnight it starts, with no one in it; for '
                             "the day before write covers: previous")
        if self.every == "week" and self.covers == "current":
            raise ValueError("covers: current is a daily report's (its day up to `at`); a weekly one covers the "
                             "7 days before the day it is sent: remove it, or write covers: previous")
        return self

    @property
    def previous_day(self) -> bool:
        """A daily report of the whole day before the one it is sent on (`covers: previous`)."""
        return self.every == "day" and self.covers == "previous"

    def schedule(self) -> str:
        """How `run --check` and the log name it: "every mon at 07:00", "every day at 18:00",
        "every day at 07:00, the previous day"."""
        if self.every == "week":
            return f"every {self.day or 'mon'} at {self.at}"
        return f"every day at {self.at}" + (", the previous day" if self.previous_day else "")


class MqttConfig(Section):
    """A broker to publish availability, events and counts to (Frigate's topic layout)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    host: str = Field(description="the broker's name or address, no scheme or port (mqtt://b:1883 is host b, "
                                  "port 1883)")
    port: int = Field(1883, ge=1, le=65535)
    prefix: str = Field("maskwatch", description="topic prefix (levels joined by /, none empty)")
    username: str | None = None
    password: str | None = None
    discovery: bool = Field(False, description="publish Home Assistant's MQTT discovery configs: each camera a "
                                               "device with its sensors")
    discovery_prefix: str = Field("homeassistant", description="Home Assistant's discovery prefix (its MQTT "
                                                                "integration's setting)")

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        """Said in words: the pattern's regular expression told a user nothing. A URL with its
        user:password@ is not repeated (the error goes to the journal when `run` starts)."""
        if "@" in value:
            raise ValueError("a broker's address with a user name or password in it (user:password@host); write the "
                             "host alone, and the rest as username: and password:")
        if not MQTT_HOST.fullmatch(value):
            raise ValueError(f"{value!r} is not a broker's name or address: write it alone, without a scheme, "
                             "port or path (mqtt://b:1883 is host: b and port: 1883; IPv6 in brackets, [::1])")
        return value

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not MQTT_PREFIX.fullmatch(value):
            raise ValueError(f"{value!r} is no topic prefix maskwatch publishes under: letters, digits, _ and -, "
                             "in levels joined by / (none empty, no space, no wildcard), e.g. maskwatch or site/door")
        return value

    @field_validator("discovery_prefix")
    @classmethod
    def _discovery_prefix(cls, value: str) -> str:
        problem = discovery_prefix_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value


def discovery_prefix_problem(value: str) -> str | None:
    """What is wrong with a discovery prefix, or None: a wildcard or an empty level would publish
    nowhere Home Assistant looks (and a filter made of it, subscribed, is a protocol error)."""
    if not value:
        return "empty; Home Assistant's default is homeassistant"
    if "+" in value or "#" in value:
        return f"{value!r} holds an MQTT wildcard (+ or #); write the prefix itself, e.g. homeassistant"
    if value.startswith("/") or value.endswith("/") or "//" in value:
        return (f"{value!r} has an empty topic level (a / at the start, the end or twice); "
                "write it as homeassistant or ha/discovery")
    if not value.isprintable():
        return f"{value!r} holds a control character"
    return None


class RuntimeConfig(Section):
    """Where the networks run: ONNX Runtime execution providers, tried in order (runtime.py)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    providers: list[str] = Field(default_factory=lambda: ["CUDAExecutionProvider", "OpenVINOExecutionProvider",
                                                          "CPUExecutionProvider"],
                                 description="tried in order; those not installed are skipped, the CPU always works")

    @field_validator("providers")
    @classmethod
    def _providers(cls, names: list[str]) -> list[str]:
        from maskwatch.runtime import check_providers

        return list(check_providers(names))


def local_zone_name() -> str | None:
    """The IANA name of this machine's local time, found where the C library finds it: TZ, else
    /etc/localtime (a link into zoneinfo, or a copy named by Debian's /etc/timezone), UTC where
    neither is set. None where no name is found, or the one found keeps another offset than the
    local time now (a stale /etc/timezone, a POSIX rule in TZ)."""
    if "TZ" in os.environ:
        name = os.environ["TZ"].removeprefix(":") or "UTC"
    elif not os.path.lexists("/etc/localtime"):
        name = "UTC"
    else:
        target = os.path.realpath("/etc/localtime")
        try:
            name = target if "/zoneinfo/" in target else Path("/etc/timezone").read_text().strip()
        except OSError:
            return None
    name = name.split("/zoneinfo/")[-1].removeprefix("posix/").removeprefix("right/")
    try:
        zone = ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None
    now = datetime.now()
    return name if now.astimezone().utcoffset() == now.astimezone(zone).utcoffset() else None


class SiteConfig(Section):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    cameras: dict[str, CameraConfig]
    server: ServerConfig = Field(default_factory=ServerConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    mqtt: MqttConfig | None = None
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig)
    reports: list[ReportConfig] = Field(default_factory=list, description="compliance reports sent on a schedule")
    timezone: str | None = Field(None, description="IANA name, e.g. Europe/Berlin, of opening hours, chart days, "
                                                   "reports and the dashboard's times (default: the machine's local time)")
    _disabled: tuple[str, ...] = PrivateAttr(())  # the ids of cameras with enabled: false, for --check

    @property
    def disabled_cameras(self) -> tuple[str, ...]:
        return self._disabled

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown timezone {value!r}; use an IANA name such as Europe/Berlin or UTC") from None
        return value

    def tz(self):
        """The site's timezone (None: local time)."""
        return ZoneInfo(self.timezone) if self.timezone else None

    def clock(self) -> str | None:
        """The IANA name of the site's clock, for the dashboard to show every time in (a browser's
        Intl needs a name): `timezone`, else the machine's local time as named (None: it cannot be)."""
        return self.timezone or local_zone_name()

    @model_validator(mode="after")
    def _some_cameras(self) -> SiteConfig:
        if not self.cameras:
            raise ValueError("cameras: at least one camera is needed")
        if not any(camera.enabled for camera in self.cameras.values()):
            raise ValueError("cameras: every camera has enabled: false; at least one must run")
        for camera_id, camera in self.cameras.items():
            if not camera.name:
                camera.name = camera_id
        problems = reference_problems({camera_id: list(camera.zones) for camera_id, camera in self.cameras.items()},
                                      {section: [(target.cameras, target.zones) for target in targets]
                                       for section, targets in (("alerts.webhooks", self.alerts.webhooks),
                                                                ("alerts.notify", self.alerts.notify),
                                                                ("reports", self.reports))},
                                      [(rule.camera, rule.zone) for rule in self.alerts.compliance])
        if self.storage.privacy:  # a setting that can never work is said, not left to do nothing
            problems += [f"field 'alerts.notify.{i}.snapshot': storage.privacy keeps no snapshot to attach; "
                         "remove snapshot: true" for i, target in enumerate(self.alerts.notify) if target.snapshot]
        if problems:
            raise ValueError("\n".join(problems))
        # Disabled cameras were checked (with what names them) above and are dropped here, so that
        # the rest of the site never sees them. Webhooks naming one keep it (an emptied list would
        # mean every camera); a compliance rule watching one is left out with it.
        self._disabled = tuple(camera_id for camera_id, camera in self.cameras.items() if not camera.enabled)
        self.cameras = {camera_id: camera for camera_id, camera in self.cameras.items() if camera.enabled}
        self.alerts.compliance = [rule for rule in self.alerts.compliance if rule.camera not in self._disabled]
        return self


def reference_problems(zones_of: dict[str, list[str]], targets: dict[str, list[tuple[list, list]]],
                       rules: list[tuple[str | None, str | None]]) -> list[str]:
    """What the alerts and reports name that the cameras do not have: webhooks', notifications' and
    reports' cameras and zones (`targets`, by section; a zone no camera has would never fire), compliance rules' camera
    and zone. On plain data, so that a file whose other fields fail is checked too (its problems
    were said a round later)."""
    problems = []
    cameras = ", ".join(zones_of)
    every_zone = {zone for zones in zones_of.values() for zone in zones}
    for section, filters in targets.items():
        for i, (target_cameras, target_zones) in enumerate(filters):
            if unknown := [c for c in target_cameras if c not in zones_of]:
                problems.append(f"field '{section}.{i}.cameras': no such cameras {unknown}; cameras: {cameras}")
            if unknown_zones := [z for z in target_zones if z not in every_zone]:
                problems.append(f"field '{section}.{i}.zones': no camera has the zones {unknown_zones}; "
                                f"zones: {', '.join(sorted(every_zone)) or 'none'}")
            elif target_cameras and not unknown and (
                    elsewhere := [z for z in target_zones if not any(z in zones_of[c] for c in target_cameras)]):
                theirs = sorted({zone for c in target_cameras for zone in zones_of[c]})
                problems.append(f"field '{section}.{i}.zones': the cameras named have no zone {elsewhere} (another "
                                f"camera has); their zones: {', '.join(theirs) or 'none'}")
    for i, (camera, zone) in enumerate(rules):
        where = f"field 'alerts.compliance.{i}"
        if camera is not None and camera not in zones_of:
            problems.append(f"{where}.camera': no camera {camera!r}; cameras: {cameras}")
        elif camera is not None and zone is not None and zone not in zones_of[camera]:
            problems.append(f"{where}.zone': camera {camera!r} has no zone {zone!r}; "
                            f"zones: {', '.join(zones_of[camera]) or 'none'}")
        elif camera is None and zone is not None and zone not in every_zone:
            problems.append(f"{where}.zone': no camera has a zone {zone!r}")
    return problems


def _raw_references(raw: dict) -> tuple[dict[str, list[str]], dict[str, list[tuple[list, list]]], list[tuple]]:
    """reference_problems' arguments from a file's raw mapping, taking only what is well formed."""
    def names(value) -> list[str]:
        return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []

    def name(value) -> str | None:
        return value if isinstance(value, str) else None

    cameras = raw.get("cameras") if isinstance(raw.get("cameras"), dict) else {}
    zones_of = {camera_id: list(camera["zones"]) if isinstance(camera.get("zones"), dict) else []
                for camera_id, camera in cameras.items() if isinstance(camera, dict)}
    alerts = raw.get("alerts") if isinstance(raw.get("alerts"), dict) else {}

    def entries(section: str) -> list[dict]:
        value = raw.get("reports") if section == "reports" else alerts.get(section.removeprefix("alerts."))
        return [entry for entry in value if isinstance(entry, dict)] if isinstance(value, list) else []

    return (zones_of, {section: [(names(t.get("cameras")), names(t.get("zones"))) for t in entries(section)]
                       for section in ("alerts.webhooks", "alerts.notify", "reports")},
            [(name(r.get("camera")), name(r.get("zone"))) for r in entries("compliance")])


def one_camera_site(source: str, database: str, blur: bool) -> SiteConfig:
    """`serve --source`: a site of one camera, "live", watching `source` at the cameras' defaults.

    Its events go to `database`, beside the service's users; with `blur`, frames are served
    with faces blurred and no snapshot is kept (privacy), otherwise snapshots lie beside it.
    """
    snapshots = Path(database).parent / "snapshots" if "://" not in database else Path("snapshots")
    try:
        return SiteConfig(cameras={"live": CameraConfig(source=source)},
                          storage=StorageConfig(database=database, snapshots=str(snapshots), privacy=blur))
    except ValidationError as err:
        raise SiteConfigError(Path("--source"), _describe(err, ())) from None


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader refusing a key given twice in one mapping (a second camera or zone of one
    id replaced the first in silence), and nesting past MOST_CONFIG_DEPTH: PyYAML composes a nested
    list by recursion, and 20,000 '[' were a RecursionError (POST .../zones/check's 500)."""

    def __init__(self, stream) -> None:
        super().__init__(stream)
        self.depth = 0

    def compose_node(self, parent, index):
        if self.depth >= MOST_CONFIG_DEPTH:
            raise yaml.composer.ComposerError(None, None, f"nested more than {MOST_CONFIG_DEPTH} levels deep",
                                              self.peek_event().start_mark)
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *defaults`: its keys may be replaced
                continue
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"{key!r} is given twice in one mapping (the second would replace the first)",
                    key_node.start_mark)
            seen.add(key) if isinstance(key, (str, int, float, bool)) else None
        return super().construct_mapping(node, deep=deep)


# A site's file is a few KB; a larger one is another file (a video named by mistake), and YAML's
# aliases can make a small file expand without end (nine aliases of nine, eight deep, held `run
# --check` for minutes): both are refused before anything is built.
LARGEST_CONFIG = 1024 * 1024
MOST_CONFIG_ENTRIES = 100_000
MOST_CONFIG_DEPTH = 50  # levels of nesting, aliases written out: a site's file has about 6


def _expanded_entries(node: yaml.Node, sizes: dict[int, tuple[int, int] | None], depth: int = 1) -> int:
    """How many entries the node stands for with every alias written out (each node counted once);
    ValueError for an alias inside its own anchor (a list that holds itself has no end), and for
    nesting past MOST_CONFIG_DEPTH with the aliases written out (anchors of 50 levels, each aliased
    in the next, were as deep as a document of thousands of '[', which what reads it next recurses into)."""
    if id(node) in sizes:
        if sizes[id(node)] is None:
            raise ValueError(f"an alias inside its own anchor (line {node.start_mark.line + 1}) has no end")
    else:
        sizes[id(node)] = None  # being counted
        children = node.value if isinstance(node, yaml.SequenceNode) else \
            [n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode) else []
        for child in children:
            _expanded_entries(child, sizes, depth + 1)
        sizes[id(node)] = (1 + sum(sizes[id(child)][0] for child in children),
                           1 + max((sizes[id(child)][1] for child in children), default=0))
    entries, height = sizes[id(node)]
    if depth - 1 + height > MOST_CONFIG_DEPTH:
        raise ValueError(f"nested more than {MOST_CONFIG_DEPTH} levels deep with its aliases written out (an "
                         f"alias of the anchor on line {node.start_mark.line + 1}); write the values out")
    return entries


def _read_yaml(path: Path) -> dict:
    """The file's top-level mapping; SiteConfigError saying why there is none."""
    try:
        size = path.stat().st_size
        if size > LARGEST_CONFIG:
            raise SiteConfigError(path, [f"{size / 1024 / 1024:.1f} MB, too large for a site's config (a few KB; "
                                         f"at most {LARGEST_CONFIG // 1024 // 1024} MB): is it the right file?"])
        raw = _yaml_document(path.read_text(encoding="utf-8"), path)
    except OSError as err:
        raise SiteConfigError(path, [f"cannot read: {err.strerror}"]) from None
    except UnicodeDecodeError as err:
        raise SiteConfigError(path, [f"not UTF-8 text (byte {err.start}); save the file as UTF-8"]) from None
    if not isinstance(raw, dict):
        raise SiteConfigError(path, ["expected a mapping with a 'cameras:' section at the top"])
    return raw


def _yaml_document(text: str, path: Path | str) -> Any:
    """The text's one YAML document (None if empty), read as the site's file is: keys given twice and
    aliases that expand past MOST_CONFIG_ENTRIES refused; SiteConfigError saying why it is not YAML."""
    try:
        loader = _UniqueKeyLoader(text)
        try:
            node = loader.get_single_node()
            try:
                entries = _expanded_entries(node, {}) if node is not None else 0
            except ValueError as err:
                raise SiteConfigError(path, [str(err)]) from None
            if entries > MOST_CONFIG_ENTRIES:
                raise SiteConfigError(path, [f"its YAML aliases expand to {entries:,} entries "
                                             f"(at most {MOST_CONFIG_ENTRIES:,}); write the values out"])
            return loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as err:
        raise SiteConfigError(path, [f"not valid YAML: {_yaml_problem(err)}"]) from None
    except yaml.YAMLError as err:
        raise SiteConfigError(path, [f"not valid YAML: {err}".replace("\n", " ")]) from None


DRAWN_SETTINGS = ("zones", "motion")  # what the dashboard's zone editor draws of a camera


def camera_with_shapes(camera_id: str, camera: CameraConfig, text: str) -> CameraConfig:
    """`camera` with the `zones:` and `motion:` of `text`, the YAML the dashboard's zone editor gives
    to paste under the camera in site.yaml, read and validated as load_site_config reads a camera (the
    editor drew from a reader of its own, which could disagree with this one). SiteConfigError with
    `run --check`'s lines, its path the camera; nothing is written.

    No ${VAR} is substituted: the answer would show a viewer the server's environment."""
    raw = _yaml_document(text, f"camera {camera_id!r}")
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise SiteConfigError(f"camera {camera_id!r}", [f"camera {camera_id!r}: expected its settings zones: and "
                                                        "motion:, as under the camera in site.yaml"])
    undrawn = [key for key in raw if key not in DRAWN_SETTINGS and key in CameraConfig.model_fields]
    # The text's settings on a camera of their own (a source that is always valid and reads nothing):
    # zones' and motion's checks are their fields' own, and the source given in the text, were it
    # read, would tell a viewer which files the server has.
    drawn = {key: value for key, value in without_blanks(raw, CameraConfig).items() if key not in undrawn}
    try:
        checked = CameraConfig.model_validate({**drawn, "source": "webcam:0"})
    except ValidationError as err:
        raise SiteConfigError(f"camera {camera_id!r}", _describe(err, ("cameras", camera_id))) from None
    if undrawn:
        raise SiteConfigError(f"camera {camera_id!r}", [
            f"camera {camera_id!r}, field {key!r}: the zone editor's text holds zones: and motion: only; set "
            f"{key} in site.yaml" for key in undrawn])
    # `motion:` counts as given as the text gives it (model_copy's update would count it always): the
    # editor writes back a `motion: {masks: []}` it was given, which replaces the defaults' motion
    given = (camera.model_fields_set - set(DRAWN_SETTINGS)) | (checked.model_fields_set & set(DRAWN_SETTINGS))
    return CameraConfig.model_construct(given, **{**dict(camera), **{key: getattr(checked, key) for key in DRAWN_SETTINGS}})


def _yaml_problem(err: yaml.MarkedYAMLError) -> str:
    """What PyYAML found wrong and where, without the line it quotes: a camera's URL there showed
    its password."""
    def at(mark) -> str:
        return f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""

    said = [f"{err.context}{at(err.context_mark)}"] if err.context else []
    return "; ".join([*said, f"{err.problem}{at(err.problem_mark)}"]) + _yaml_hint(str(err.problem))


def _yaml_hint(problem: str) -> str:
    """What a newcomer's slip behind PyYAML's words most likely is: "expected <block end>, but found
    '<block mapping start>'" named no indentation, and a tab's error no tab."""
    if "'\\t'" in problem:
        return "; YAML indents with spaces, not tabs"
    if "<block end>" in problem or "mapping values are not allowed" in problem or "expected key" in problem:
        return ("; check the indentation there and on the line above: the settings of one thing line up "
                "under it, indented more than its name (and a value holding ': ' goes in quotes)")
    return ""


def _storage_beside(storage: dict, path: Path) -> None:
    """A database or snapshots path not given is the default's; relative ones are beside the file."""
    for key in ("database", "snapshots"):
        value = storage.setdefault(key, StorageConfig.model_fields[key].default)
        if isinstance(value, str) and "://" not in value and not Path(value).is_absolute():
            storage[key] = str(path.parent / value)


def _storage_places(storage: dict) -> list[str]:
    """Paths a site could not use, said by --check too (a snapshots path that is a file failed only
    at the start, after the database was made): a database that is a folder, snapshots a file."""
    problems = []
    database, snapshots = storage.get("database"), storage.get("snapshots")
    if isinstance(database, str) and "://" not in database and Path(database).is_dir():
        problems.append(f"field 'storage.database': {database} is a folder; name the database file in it "
                        "(maskwatch.db)")
    if isinstance(snapshots, str) and Path(snapshots).exists() and not Path(snapshots).is_dir():
        problems.append(f"field 'storage.snapshots': {snapshots} is a file, not a folder; name a folder")
    return problems


@dataclass(frozen=True)
class SiteUsersView:
    """What the users and tokens commands read of a site's file: its storage and its cameras' ids."""

    storage: StorageConfig
    cameras: tuple[str, ...]


def load_site_users_view(path: Path | str, environ: dict[str, str] | None = None) -> SiteUsersView:
    """The file's storage (its ${VAR}s set and checked) and camera ids, the rest unread: managing
    users must not need the cameras', webhooks' or broker's secrets in the environment (it did)."""
    path = Path(path)
    raw = _read_yaml(path)
    problems: list[str] = []
    storage = _substitute_env(raw.get("storage") or {}, os.environ if environ is None else environ,
                              ("storage",), problems)
    cameras = raw.get("cameras")
    if not isinstance(cameras, dict) or not cameras:
        problems.append("cameras: list the cameras under 'cameras:', keyed by id")
        cameras = {}
    if not isinstance(storage, dict):
        problems.append("storage: expected a mapping")
    elif not problems:
        _storage_beside(storage, path)
        try:
            return SiteUsersView(StorageConfig(**storage), tuple(str(c) for c in cameras))
        except ValidationError as err:
            problems.extend(_describe(err, ("storage",)))
    raise SiteConfigError(path, problems)


def load_site_config(path: Path | str, environ: dict[str, str] | None = None) -> SiteConfig:
    """Read, substitute ${ENV_VAR}s, merge defaults into each camera and validate the whole file.

    Relative file paths (video sources, database, snapshots) are relative to the config's folder.
    Raises SiteConfigError listing every problem, each naming the camera and the field.
    """
    path = Path(path)
    environ = os.environ if environ is None else environ
    raw = _read_yaml(path)
    problems: list[str] = []
    raw = _substitute_env(raw, environ, (), problems)
    cameras = raw.get("cameras")
    defaults = raw.pop("defaults", None) or {}
    if not isinstance(defaults, dict):
        problems.append("defaults: expected a mapping of camera settings")
        defaults = {}
    else:
        for key in sorted(OWN_SETTINGS & set(defaults)):  # each camera's own: "unknown setting (a typo?)" misled
            problems.append(f"field 'defaults.{key}': a camera's own setting; set it under each camera")
        defaults = {key: value for key, value in defaults.items() if key not in OWN_SETTINGS}
        try:
            CameraSettings(**defaults)
        except ValidationError as err:
            problems.extend(_describe(err, ("defaults",)))
            defaults = {}  # said once, here, not again for every camera that takes them
    if cameras is None:
        problems.append("cameras: missing; list the cameras under 'cameras:', keyed by id")
    elif not isinstance(cameras, dict):
        problems.append("cameras: expected a mapping of camera id -> settings")
    else:
        merged = {}
        for camera_id, camera in cameras.items():
            if not isinstance(camera_id, str):  # YAML read `true:` as True, `007:` as 7 (and True == 1)
                problems.append(f"camera {camera_id!r}: YAML reads this id as a {type(camera_id).__name__}; "
                                f"write it in quotes ('{camera_id}') or use letters")
                continue
            if not CAMERA_ID.fullmatch(str(camera_id)):
                problems.append(f"camera {camera_id!r}: the id must be 1-64 of A-Z, a-z, 0-9, _ and - (it names "
                                "MQTT topics, URLs and snapshot files); spaces or accents go in its `name:`")
                continue
            if not isinstance(camera, dict):
                problems.append(f"camera {camera_id!r}: expected a mapping of settings, got {type(camera).__name__}")
                continue
            camera = {**defaults, **without_blanks(camera, CameraConfig)}  # a blank list: the defaults'
            for key in ("source", "detect_source"):
                if isinstance(camera.get(key), str) and camera[key] and _is_relative_file(camera[key]):
                    camera[key] = str(path.parent / camera[key])
            merged[str(camera_id)] = camera
        raw["cameras"] = merged
    tls = raw.get("server", {}).get("tls") if isinstance(raw.get("server"), dict) else None
    if isinstance(tls, dict):
        for key in ("cert", "key"):
            if isinstance(tls.get(key), str) and not Path(tls[key]).is_absolute():
                tls[key] = str(path.parent / tls[key])
    storage = raw.get("storage")
    if storage is None:
        storage = raw["storage"] = {}
    if isinstance(storage, dict):
        _storage_beside(storage, path)
        problems += _storage_places(storage)
    try:  # validated whatever was found above, so that every problem is said at once
        config = SiteConfig(**raw)
    except ValidationError as err:
        named = {problem.split(":", 1)[0] for problem in problems}  # a ${VAR} left unset is said already
        if any(problem.startswith("camera ") for problem in problems):
            named.add("cameras")  # "at least one camera is needed" once the bad ones were left out
        if any(problem.startswith("cameras: ") for problem in problems):
            named.add("field 'cameras'")  # missing, or not a mapping: said once, not again in pydantic's words
        problems.extend(p for p in _describe(err, ()) if p.split(":", 1)[0] not in named)
        if isinstance(raw.get("cameras"), dict) and raw["cameras"]:  # what the alerts name, checked anyway
            said = set(problems)
            problems.extend(p for p in reference_problems(*_raw_references(raw)) if p not in said)
    else:
        if not problems:
            return config
    raise SiteConfigError(path, problems)


def _is_relative_file(source: str) -> bool:
    """A relative path (a mistyped URL kept as written: beside the file, rtsp//host read rtsp/host)."""
    return ("://" not in source and not source.startswith("webcam:") and not Path(source).is_absolute()
            and not _mistyped_url(source))


def with_absolute_files(camera: CameraConfig) -> CameraConfig:
    """The camera with a file source and substream as absolute paths (from the working folder), for
    a process that may run in another one (a Ray actor)."""
    update = {key: str(Path(value).resolve()) for key in ("source", "detect_source")
              if (value := getattr(camera, key)) is not None and _is_relative_file(value)}
    return camera.model_copy(update=update) if update else camera


def _substitute_env(value: Any, environ, where: tuple, problems: list[str]) -> Any:
    """${NAME} in every string value, from the environment; an unset NAME is a problem named by place."""
    if isinstance(value, dict):
        return {k: _substitute_env(v, environ, (*where, k), problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute_env(v, environ, (*where, i), problems) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def lookup(match: re.Match) -> str:
        name = match.group(1)
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            problems.append(f"{_place(where)}: ${{{name}}} is not a valid environment variable name")
        elif name not in environ:
            problems.append(f"{_place(where)}: environment variable {name} is not set")
        else:
            return environ[name]
        return match.group(0)

    return ENV_VAR.sub(lookup, value)


MOST_SHOWN = 100  # characters of a value quoted in an error


def _shown(value: Any) -> str:
    """The value as an error quotes it, cut at MOST_SHOWN: a list aliased in itself a few times
    (359 bytes to POST .../zones/check) was quoted whole in each of its errors, 274 KB in one line."""
    text = repr(value)
    return text if len(text) <= MOST_SHOWN else text[:MOST_SHOWN] + "..."


def _place(loc: tuple) -> str:
    """'camera 'entrance', field 'fps'' for ('cameras', 'entrance', 'fps'); dotted otherwise."""
    loc = tuple(str(p) for p in loc)
    if len(loc) >= 2 and loc[0] == "cameras":
        field = ".".join(loc[2:])
        return f"camera {loc[1]!r}" + (f", field {field!r}" if field else "")
    return "field " + repr(".".join(loc)) if loc else "file"


SECRET_FIELDS = {"secret", "password", "username", "source", "detect_source", "database", "urls"}


def _holds_secret(value: Any) -> bool:
    """A mapping or list with a secret's key anywhere in it: a section of the wrong shape (cameras
    as a list) was quoted whole, a stream URL's password with it."""
    if isinstance(value, dict):
        return bool(SECRET_FIELDS & set(map(str, value))) or any(map(_holds_secret, value.values()))
    return isinstance(value, (list, tuple)) and any(map(_holds_secret, value))


def _describe(err: ValidationError, prefix: tuple) -> list[str]:
    lines = []
    for problem in err.errors():
        loc = (*prefix, *problem["loc"])
        message = problem["msg"].removeprefix("Value error, ")
        if problem["type"] == "missing":
            message = "missing (required)"
        elif problem["type"] == "extra_forbidden":
            message = "unknown setting (a typo?)"
            if len(loc) == 1:  # a camera's lines indented too little land at the top, as unknown sections
                sections = ["cameras", "defaults", *(key for key in SiteConfig.model_fields if key != "cameras")]
                message = (f"unknown section (a typo?); a site's are {', '.join(sections)}"
                           + ("; a camera goes under cameras:, indented"
                              if isinstance(problem.get("input"), dict) and "source" in problem["input"] else ""))
        elif ("input" in problem and problem["type"] not in ("value_error",) and not SECRET_FIELDS & set(map(str, loc))
              and not _holds_secret(problem["input"])):
            message += f" (got {_shown(problem['input'])})"  # a secret's value is never repeated in an error (or a log)
        if loc:
            lines.append(f"{_place(loc)}: {message}")
        else:
            lines.extend(message.split("\n"))  # a whole-file check may name several problems
    return lines

"""Response models of the site routes, so /docs and /openapi.json describe what they answer.

The routes build their JSON themselves (times already as ISO 8601 strings); these models are
the documented shape, and tests check real answers against them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from maskwatch.site.infrared import INFRARED_DOCS, NIGHT_WORDS


class PeopleCounts(BaseModel):
    people: int = Field(ge=0, description="decided people")
    with_mask: int = Field(ge=0)
    without_mask: int = Field(ge=0)
    mask_weared_incorrect: int = Field(ge=0)
    unassessable: int = Field(0, ge=0, description="people seen too briefly or too small to decide; not in people")
    infrared: int = Field(0, ge=0, description="of people and unassessable, those seen on grey (infrared) frames, "
                                               f"{NIGHT_WORDS} ({INFRARED_DOCS})")


class CameraStatus(BaseModel):
    """One camera of the site and the state of its stream."""

    id: str
    name: str
    source: str = Field(description="the source with any password shown as ***; to a viewer, its kind only (rtsp://***)")
    detect_source: str | None = Field(description="its substream, read and analysed instead of `source` (null: "
                                                  "none), shown as `source` is")
    zones: list[str]
    fps_target: float = Field(description="frames analysed per second, as configured")
    connected: bool
    last_frame_at: str | None = Field(description="ISO 8601 with the site's UTC offset; null before the first frame "
                                                  "since the site started")
    offline_since: str | None = Field(description="ISO 8601 with the site's UTC offset: since when it counts as down "
                                                  "(its last frame and offline_after; the site's start where no frame "
                                                  "came); null while connected")
    fps: float = Field(description="frames received per second, over the last few seconds")
    frames: int = Field(description="frames received since start")
    reconnects: int = Field(description="tries to open the stream again since start: after it was lost, and each "
                                        "failed one (a camera that never answers counts up while it is retried)")
    last_error: str | None
    analysed: int = Field(description="frames analysed since start")
    detected: int | None = Field(description="of them, frames the detector ran on (the motion gate and detecting "
                                             "every n-th frame spare the rest); null before the camera started")
    analysis_error: str | None
    grey_frames: bool = Field(description="its frames are grey (infrared) now, as the log's last turn said: a turn "
                                          "counts once it has held for a minute (false before)")
    people_waiting: int = Field(description="its people waiting in memory to be stored (the database refusing or "
                                            "not answering), at most 1000")
    people_dropped: int = Field(description="its people dropped unstored since the site's start, the oldest waiting "
                                            "past 1000")
    today: PeopleCounts | None = Field(description="today's people (since midnight in the site's timezone), from the database; null while it "
                                                   "cannot be read")


Polygon = list[tuple[float, float]]


class NamedPolygon(BaseModel):
    name: str
    points: Polygon = Field(description="its corners in order, each [x, y] in 0-1 of the frame's width and height")


class CameraZones(BaseModel):
    """A camera's zones and motion masks as its config has them, for the page's zone editor."""

    camera: str
    zones: list[NamedPolygon] = Field(description="the zones in the config's order (a face in two belongs to the "
                                                  "first)")
    motion: dict = Field(description="the camera's `motion:` settings that differ from maskwatch's own (those it "
                                     "takes from `defaults:` among them), `masks` (polygons as the zones') always: a "
                                     "`motion:` pasted under the camera replaces the defaults' whole")
    motion_given: bool = Field(description="whether `motion:` is given (under the camera, in `defaults:`, or in the "
                                           "checked text), even with nothing in it: `motion: {masks: []}` keeps the "
                                           "defaults' masks off this camera, where no `motion:` takes them")


class ZonesText(BaseModel):
    """POST .../zones/check's body: the zone editor's text, checked by the config's loader."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(description="YAML as pasted under the camera in site.yaml: its `zones:` and, optionally, "
                                  "its `motion:`")


class RetiredCamera(BaseModel):
    """A camera no longer running whose history is still stored."""

    id: str
    disabled: bool = Field(description="true: still in the config with enabled: false; false: removed from it")
    last_seen: str | None = Field(description="ISO 8601, UTC: when its newest stored person was last seen; null when "
                                              "only its counts are left")


class RetiredCameraList(BaseModel):
    cameras: list[RetiredCamera]


class Event(BaseModel):
    """One person: the vote over their track's frames of a large enough face, or unassessable."""

    id: int
    camera: str
    zone: str | None
    track_id: int
    label: Literal["with_mask", "without_mask", "mask_weared_incorrect", "unassessable"]
    probability: float = Field(ge=0, le=1, description="the label's mean probability; 0 when unassessable")
    first_seen: str = Field(description="ISO 8601, UTC")
    last_seen: str = Field(description="ISO 8601, UTC")
    frames: int
    snapshot: str | None = Field(description="URL of the blurred snapshot; null in privacy mode")
    infrared: bool = Field(description="seen on grey (infrared) frames more often than not, so "
                                       f"{NIGHT_WORDS} ({INFRARED_DOCS}); false for people stored before")


class EventList(BaseModel):
    events: list[Event] = Field(description="newest first: last seen, then id, descending")
    next: str | None = Field(description="the URL of the next page (these filters, `before` its cursor); null: "
                                         "this page is the last. Stable while new events are stored")


class ComplianceBucket(PeopleCounts):
    start: str = Field(description="ISO 8601 start of the hour, day or week, in the site's timezone")
    compliance: float | None = Field(ge=0, le=1, description="the compliant share corrected for the classifier's "
                                     "known confusions (docs/compliance.md); null when no one was decided")
    compliance_low: float | None = Field(ge=0, le=1, description="its 95 % interval's lower end: for the number of "
                                         "people and the classifier's measured confusion")
    compliance_high: float | None = Field(ge=0, le=1, description="its 95 % interval's upper end")
    observed_share: float | None = Field(ge=0, le=1, description="with_mask / decided people, uncorrected")
    infrared_share: float | None = Field(None, ge=0, le=1, description="infrared / (people + unassessable); null "
                                                                       "where no one was seen")


class ComplianceSeries(BaseModel):
    """Compliance over time from the per-minute counts; buckets without people are left out."""

    camera: str | None = Field(description="null: every camera")
    zone: str | None = Field(description="null: every zone and outside them")
    bucket: Literal["hour", "day", "week"]
    timezone: str | None = Field(description="the IANA name of the buckets' starts' timezone, the site's clock as "
                                             "/v1/me names it; null: the server's local time, which has no IANA name")
    since: str = Field(description="ISO 8601, UTC: counts from this minute on")
    buckets: list[ComplianceBucket]
    zones: list[str] = Field(description="the zones with people counted from `since` on the camera asked (null: on "
                                         "the caller's cameras), whatever `zone` is, sorted: the zones the chart may "
                                         "be asked of, one renamed or removed from the config, or a camera's no "
                                         "longer running, among them")


class AlertStanding(BaseModel):
    """The alert's camera and zone over its rule's window now."""

    state: Literal["under", "recovered", "unclear", "too_few"] = Field(description=(
        "under: the whole 95 % interval still under `below`; recovered: the whole of it at or over; unclear: it "
        "spans `below`; too_few: fewer people than the rule's min_people in the window (no figures)"))
    people: int = Field(description="decided people in the window now")
    compliance: float | None = Field(description="percent, corrected as the alert's; null: too_few")
    compliance_low: float | None
    compliance_high: float | None


class ComplianceAlert(BaseModel):
    """A compliance alert as the webhooks, notify and MQTT had it, and how its camera and zone stand now."""

    rule: int = Field(description="its index in alerts.compliance when it fired (the file may have changed since: "
                                  "`below` and `minutes` are that rule's, and `now` is judged by them)")
    camera: str
    zone: str | None = Field(description="null: the whole camera")
    at: str = Field(description="when it fired, ISO 8601 with the site's offset")
    compliance: float = Field(description="percent wearing a mask over the window, corrected")
    compliance_low: float = Field(description="its 95 % interval, percent")
    compliance_high: float
    observed: float = Field(description="with_mask / people, percent, uncorrected")
    below: float = Field(description="the rule's threshold, percent")
    people: int = Field(description="decided people in the window")
    with_mask: int
    unassessable: int = Field(description="people in the window too briefly or too small in view to judge: in no "
                                          "share, counted apart as everywhere")
    minutes: int = Field(description="the rule's window")
    infrared: int = Field(0, description="of the window's people (decided or not), those seen on grey (infrared) "
                                         f"frames, {NIGHT_WORDS} ({INFRARED_DOCS})")
    seen: int = Field(0, description="the window's people, decided or not (people and the unassessable)")
    now: AlertStanding


class AlertList(BaseModel):
    """Today's compliance alerts of the caller's cameras, newest first."""

    since: str = Field(description="ISO 8601 with the site's offset: midnight on the site's clock, or when the "
                                   "database began to keep alerts where that was later today (the upgrade to events "
                                   "schema 7; alerts are stored, a restart keeps them)")
    since_start: bool = Field(description="true: `since` is when the database began to keep alerts, today; the "
                                          "alerts of before it were not kept")
    cut: bool = Field(description="true: more alerts fired today on the caller's cameras than the list holds (1000), "
                                  "or the site let go of some on them that the database refused: `since` is the time of the "
                                  "newest one left out, and the list holds those after it")
    rules: int = Field(description="the compliance rules watching any of the caller's cameras (0: none set up)")
    alerts: list[ComplianceAlert]

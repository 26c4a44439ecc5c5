"""A camera's settings: its source, zones, motion gate and the defaults every camera takes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import ConfigDict, Field, ValidationInfo, field_validator

from maskwatch.site.config.section import Section
from maskwatch.site.config.shapes import Point, in_pixels, polygon_problem, too_many, too_many_corners
from maskwatch.site.hours import parse_span
from maskwatch.video.iso_media import no_video
from maskwatch.video.sources import SECRET_PARAMETER, STREAM_PREFIXES, stream_url_problem

CAMERA_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")  # whole (fullmatch): "$" let a final newline in


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
                                 description="seconds without a frame before the stream is reopened (and the camera "
                                 "counts as offline, unless offline_after is longer)")
    offline_after: float | None = Field(None, gt=0, le=3600,
                                        description="seconds without a frame before the camera counts as offline "
                                        "and its people in view as gone (default: stall_timeout; at least it): "
                                        "longer for a mobile link that stalls, whose stream is still reopened "
                                        "after stall_timeout")
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


class NoSuchVideoFile(ValueError):
    """A source read as a file that is not there, its path kept (SiteConfigError.missing_files): `run`
    told a demo site run before `make demo` so by reading the path back out of this message."""

    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(f"no such video file: {path}{_mistyped_url(path)}")


class CameraConfig(CameraSettings):
    source: str = Field(description="rtsp://, rtsps://, http(s)://, rtmp:// URL, a video file, or webcam:N")
    detect_source: str | None = Field(None, description="a smaller stream of the same camera (its substream) to "
                                                        "analyse instead of `source`; same forms as source")
    name: str = Field("", description="display name (default: the camera's id)")
    zones: dict[str, list[Point]] = Field(default_factory=dict,
                                          description="named polygons in 0-1 coordinates of the frame")

    @field_validator("offline_after")
    @classmethod
    def _offline_after(cls, value: float | None, info: ValidationInfo) -> float | None:
        stall = info.data.get("stall_timeout")
        if value is not None and stall is not None and value < stall:
            raise ValueError(f"{value:g} s is shorter than stall_timeout ({stall:g} s): a camera counts as offline "
                             "no sooner than its stream is reopened")
        return value

    @field_validator("source", "detect_source", mode="before")
    @classmethod
    def _webcam_number(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:  # OpenCV's habit
            raise ValueError(f"a webcam is written webcam:{value}")
        return value

    @field_validator("source", "detect_source")
    @classmethod
    def _source(cls, value: str | None, info: ValidationInfo) -> str | None:
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
        elif (info.context or {}).get("files", True) and not Path(value).is_file():
            # user:password@host or ?pwd=... with its scheme left out or mistyped: not repeated
            if "@" in value or SECRET_PARAMETER.search(value):
                raise ValueError(f"neither a video file nor a stream URL; a URL starts with one of "
                                 f"{', '.join(STREAM_PREFIXES)}")
            raise NoSuchVideoFile(value)
        elif (info.context or {}).get("files", True) and (why := no_video(value)):
            raise ValueError(f"{value}: {why}")  # a phone's sound recording: the camera retried it for ever
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

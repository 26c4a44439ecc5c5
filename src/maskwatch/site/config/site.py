"""The whole site's config, its sections checked against each other (what the alerts and reports name)."""

from __future__ import annotations

import os
import unicodedata
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import ConfigDict, Field, PrivateAttr, field_validator, model_validator

from maskwatch.site.config.alerts import AlertsConfig
from maskwatch.site.config.cameras import CameraConfig
from maskwatch.site.config.clock import no_zone_data, unnamed_zone
from maskwatch.site.config.mqtt import MqttConfig
from maskwatch.site.config.reports import ReportConfig
from maskwatch.site.config.section import Section
from maskwatch.site.config.server import ModelsConfig, RuntimeConfig, ServerConfig, StorageConfig


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
    models: ModelsConfig = Field(default_factory=ModelsConfig)
    reports: list[ReportConfig] = Field(default_factory=list, description="compliance reports sent on a schedule")
    timezone: str | None = Field(None, description="IANA name, e.g. Europe/Berlin, of opening hours, chart days, "
                                                   "reports and the dashboard's times (default: the machine's local time)")
    _disabled: tuple[str, ...] = PrivateAttr(())  # the ids of cameras with enabled: false, for --check

    @property
    def disabled_cameras(self) -> tuple[str, ...]:
        return self._disabled

    def shared_names(self) -> list[list[str]]:
        """The ids of cameras that share a display name (case aside), each group of two or more: the
        dashboard, the report and Home Assistant show them alike. Warned of, not refused: sites run so.
        Compared in NFKC: "Süd" written on a Mac (u and a combining mark) looks as one written on Windows."""
        ids: dict[str, list[str]] = {}
        for camera_id, camera in self.cameras.items():
            ids.setdefault(unicodedata.normalize("NFKC", camera.name.strip()).casefold(), []).append(camera_id)
        return [group for group in ids.values() if len(group) > 1]

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                if missing := no_zone_data():
                    raise ValueError(f"timezone {value!r}: {missing}") from None
                raise ValueError(f"unknown timezone {value!r}; use an IANA name such as Europe/Berlin or UTC") from None
            if problem := unnamed_zone(value):
                raise ValueError(f"timezone {value!r}: {problem}")
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

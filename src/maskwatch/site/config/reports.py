"""Compliance reports sent on a schedule: what each covers and when it is sent."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, ConfigDict, Field, field_validator, model_validator

from maskwatch.site.config.alerts import _apprise_url
from maskwatch.site.config.section import Section
from maskwatch.site.hours import DAYS

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

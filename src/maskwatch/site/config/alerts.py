"""Who is alerted of which people, and how: webhooks, notifications and compliance rules."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, ConfigDict, Field, field_validator

from maskwatch.faces import PERSON_LABELS
from maskwatch.site.config.section import Section


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

"""Where the site serves and keeps its data, and where its networks run: server, TLS, storage, runtime."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Literal

from pydantic import ConfigDict, Field, ValidationInfo, field_validator

from maskwatch.site.config.section import Section


# Path segments of letters, digits and -._~ : nothing a URL, a cookie's Path or a header would escape.
ROOT_PATH = re.compile(r"^(/[A-Za-z0-9._~-]+)+$")


def check_root_path(value: str, setting: str = "root_path") -> str:
    """The prefix as the app keeps it: "" (served at /) or "/a/b"; a trailing "/" is dropped."""
    value = value.rstrip("/") if value != "/" else ""
    # "." and "..": the browser resolves them away, so the cookie's Path and the redirects named another place
    if value and (not ROOT_PATH.match(value) or {".", ".."} & set(value.split("/"))):
        raise ValueError(f"{setting} {value!r} is not a URL path such as /maskwatch (it starts with /, and holds "
                         "only letters, digits and -._~ between the slashes, no . or .. segment)")
    return value


def check_proxies(proxies) -> tuple[str, ...]:
    """Trusted proxies as IP addresses or networks; ValueError names one that is neither (uvicorn
    would quietly compare it as text and never match)."""
    for proxy in proxies:
        try:
            ipaddress.ip_network(proxy, strict=False)
        except ValueError:
            raise ValueError(f"a trusted proxy is an IP address or network such as 10.0.0.0/8; got {proxy!r}") from None
    return tuple(proxies)


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
    root_path: str = Field("", description="the path prefix a reverse proxy serves the site under, e.g. /maskwatch "
                                           "(the proxy strips it)")
    session_idle_minutes: float = Field(60.0, gt=0, description="a session unused this long ends")

    @field_validator("root_path")
    @classmethod
    def _root_path(cls, value: str) -> str:
        return check_root_path(value, "the value")  # the loader names the file and server.root_path

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, proxies: list[str]) -> list[str]:
        return list(check_proxies(proxies))
    session_max_hours: float = Field(12.0, gt=0, description="every session ends this long after login")
    require_two_step: Literal["none", "admins", "all"] = Field(
        "none", description="users who must have two-step login: without it they log in only to set it up")
    # A stop's budget: a container runtime may allow 10 s in all (docker stop) before it kills, and the
    # people in view and the queued alerts come after this wait; slow clients' uploads may want more.
    # Above 0: uvicorn reads 0 as no limit, and a stalled request held the stop for as long as it liked.
    # None: serve's (cli.servers.OPEN_REQUESTS_AT_STOP_S, 5), which this layer may not import.
    open_requests_at_stop_seconds: float | None = Field(
        None, gt=0, description="a stop waits this long for requests still open (5), then ends them")


class StorageConfig(Section):
    """Where events and counts go, how long they stay, and whether faces are kept at all."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    database: str = Field("maskwatch.db", description="an SQLite file, or an SQLAlchemy URL")
    snapshots: str = Field("snapshots", description="folder of blurred event snapshots")
    privacy: bool = Field(False, description="keep no snapshot at all, and blur the live frames")
    blur_live: bool = Field(False, description="blur every face in the live frames the page and API show "
                                               "(always so in privacy mode)")
    retention_days: float = Field(30.0, gt=0, description="events, counts, compliance alerts and snapshots older than this are deleted")

    @field_validator("database")
    @classmethod
    def _database(cls, value: str) -> str:
        """A server's URL SQLAlchemy reads as meant. Its password ends at the first @: one holding an
        @ was read as part of the host, shown in errors after the ***; a bad port was a traceback."""
        from maskwatch.site.database import url_problem

        if problem := url_problem(value):
            raise ValueError(problem)
        return value

    @property
    def live_blurred(self) -> bool:
        return self.privacy or self.blur_live


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


class ModelsConfig(Section):
    """The site's own models in place of the shipped ones (a classifier retrained on its cameras'
    photos: docs/training.md), files relative to the config's folder; `run --classifier` and
    `--detector` go over them. Before, a site could name them only on `run`'s command line."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    classifier: str | None = Field(None, description="an .onnx classifier of `maskwatch export` (default: shipped)")
    detector: str | None = Field(None, description="detector settings JSON of `maskwatch export-detector` or "
                                                   "`fit-detector` (default: shipped)")

    @field_validator("classifier", "detector")
    @classmethod
    def _exists(cls, value: str | None, info: ValidationInfo) -> str | None:
        # files=False: a command that reads the store only (`report`) needs no model
        if value is not None and (info.context or {}).get("files", True) and not Path(value).is_file():
            raise ValueError(f"no such file: {value}")
        return value

"""The MQTT broker the site publishes to, and the topic prefixes it publishes under."""

from __future__ import annotations

import re
import ssl
from pathlib import Path

from pydantic import ConfigDict, Field, ValidationInfo, field_validator, model_validator

from maskwatch.site.config.section import Section

MQTT_HOST = re.compile(r"[^\s:/\[\]]+|\[[0-9A-Fa-f:.]+\]")  # a name, IPv4, or IPv6 in brackets (as in a URL)
MQTT_PREFIX = re.compile(r"[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*")  # whole (fullmatch): "$" let a final newline in


class MqttConfig(Section):
    """A broker to publish availability, events and counts to (Frigate's topic layout)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    host: str = Field(description="the broker's name or address, no scheme or port (mqtt://b:1883 is host b, "
                                  "port 1883)")
    port: int = Field(1883, ge=1, le=65535, description="1883; 8883 with tls where no port is given")
    prefix: str = Field("maskwatch", description="topic prefix (levels joined by /, none empty)")
    username: str | None = None
    password: str | None = None
    tls: bool = Field(False, description="TLS to the broker (port 8883 unless given), its certificate and name checked: "
                                         "without it the username and password cross the network in clear")
    ca_file: str | None = Field(None, description="PEM file of the CA that signed the broker's certificate, with "
                                                  "tls (default: the system's CAs); relative to the config's folder")
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

    @field_validator("ca_file")
    @classmethod
    def _ca_file(cls, value: str | None) -> str | None:
        """Read as TLS will read it, so that `run --check` names a file that holds no PEM
        certificate (a DER .crt, the key, an empty file): it passed, and the connection then
        ended with OpenSSL's bare "[X509: NO_CERTIFICATE_OR_CRL_FOUND]"."""
        if value is None:
            return value
        if not Path(value).is_file():
            raise ValueError(f"no such file: {value}")
        try:
            ssl.create_default_context(cafile=value)
        except OSError as err:  # ssl.SSLError too; a file this account may not read
            reason = getattr(err, "reason", None) or err.strerror or str(err)
            raise ValueError(f"{value} cannot be read as PEM CA certificates ({reason})") from None
        return value

    @model_validator(mode="after")
    def _tls_port(self) -> MqttConfig:
        """TLS on 8883 unless a port is given, as mosquitto and paho's users expect: `tls: true`
        alone spoke TLS to the plain listener on 1883 and said only "cannot reach the broker"."""
        if self.tls and "port" not in self.model_fields_set:
            self.port = 8883
        return self

    @model_validator(mode="after")
    def _ca_file_needs_tls(self) -> MqttConfig:
        """A CA file without tls would be read by nothing: the password then went in clear, unsaid."""
        if self.ca_file is not None and not self.tls:
            raise ValueError("mqtt.ca_file is for a broker spoken to over TLS: add tls: true (port 8883 unless given)")
        return self

    @field_validator("password")
    @classmethod
    def _password(cls, value: str | None, info: ValidationInfo) -> str | None:
        """MQTT sends a password only after a user name: one given alone was dropped in silence,
        and the site logged in as nobody (a broker that wants a login refused it as 'Not authorized')."""
        if value is not None and not info.data.get("username"):
            raise ValueError("a password without mqtt.username: MQTT sends it only with a user name; "
                             "set username: (or drop the password for a broker open to all)")
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

"""The paho client of the site's broker, as the publisher (mqtt.py) and `run --probe` (probe.py) both
connect: its credentials, and TLS where `mqtt.tls` is on.

Without TLS an MQTT username and password cross the network in clear, readable by anyone on the
path, as every message is: the start says so once where they go beyond this machine.
"""

from __future__ import annotations

import paho.mqtt.client as mqtt

from maskwatch.runtime import is_loopback
from maskwatch.site.config import MqttConfig


def new_client(config: MqttConfig, client_id: str) -> mqtt.Client:
    """A client for `config`'s broker under `client_id` (its first 128 characters): its username
    and password, and with `tls` the broker's certificate checked against `ca_file` (else the
    system's CAs) and its name against the certificate, as paho does by default."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id[:128])
    if config.username:
        client.username_pw_set(config.username, config.password)
    if config.tls:
        client.tls_set(ca_certs=config.ca_file)  # ca_file was read as one at the config's load
    return client


def in_clear(config: MqttConfig) -> str | None:
    """What a start warns of where the password goes to a broker beyond this machine without TLS; else None."""
    if config.tls or not config.password or is_loopback(config.host):
        return None
    return (f"MQTT {config.host}:{config.port}: mqtt.password is sent to the broker in clear (no mqtt.tls), as every "
            "message: set tls: true (the broker's TLS port, usually 8883; ca_file for a CA of your own)")

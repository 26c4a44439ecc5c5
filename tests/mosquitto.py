"""A real MQTT broker on loopback (Debian's mosquitto), and a subscriber that keeps what it hears."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from tests.rtsp import FREE_PORT_TRIES, free_port, start_on_free_port

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


class Broker:
    """mosquitto on `address` (127.0.0.1, or ::1); with `user` (name, password) it lets in only them;
    with `acl` too (mosquitto's acl_file: the rules before a `user` line are anonymous clients')
    it lets in anonymous clients as well, each held to its rules; with `tls` (certificate, key: PEM
    files) it speaks TLS only; with `sessions` (a folder) it keeps its clients' sessions there from
    one broker to the next (a Subscriber's `session`, its subscriptions and what came meanwhile)."""

    def __init__(self, folder: Path, port: int | None = None, address: str = "127.0.0.1",
                 user: tuple[str, str] | None = None, acl: str | None = None,
                 tls: tuple[Path, Path] | None = None, sessions: Path | None = None) -> None:
        self.port, self.address, self.chosen_port = port or free_port(), address, port is not None
        self.config = folder / "mosquitto.conf"
        access = "allow_anonymous true\n"
        if user is not None:
            passwords = folder / "mosquitto.passwd"
            subprocess.run([shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd", "-c", "-b",
                            str(passwords), *user], check=True, capture_output=True)
            access = f"allow_anonymous {'false' if acl is None else 'true'}\npassword_file {passwords}\n"
        if acl is not None:
            (folder / "mosquitto.acl").write_text(acl)
            access += f"acl_file {folder / 'mosquitto.acl'}\n"
        self.access = access + (f"certfile {tls[0]}\nkeyfile {tls[1]}\n" if tls is not None else "")
        self.persistence = f"persistence true\npersistence_location {sessions}/\n" if sessions else "persistence false\n"
        self.log = folder / "mosquitto.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> Broker:
        """Started on self.port; on a new free port where the other xdist worker took the one
        free_port() gave (a port the test chose is kept: its test means that one)."""
        start_on_free_port(self._started, "mosquitto", self.port, 1 if self.chosen_port else FREE_PORT_TRIES,
                           log=self.log)
        return self

    def _started(self, port: int) -> bool:
        from tests.test_cameras import wait_until

        self.port = port
        self.config.write_text(f"listener {self.port} {self.address}\n{self.access}{self.persistence}"
                               "user root\nlog_dest stderr\n")
        said = self.log.read_text() if self.log.exists() else ""
        self.process = subprocess.Popen([MOSQUITTO, "-c", str(self.config)], stdout=subprocess.DEVNULL,
                                        stderr=open(self.log, "a"))
        # Its own "running" line, not a connection to the port: the process that took the port would answer.
        if wait_until(lambda: self.process.poll() is not None or " running" in self._said_since(said), 20) \
                and self.process.poll() is None:
            return True
        self.stop()
        if "Address already in use" not in self._said_since(said):
            raise RuntimeError(f"mosquitto did not start: {self.log.read_text()}")
        return False

    def _said_since(self, said: str) -> str:
        return self.log.read_text()[len(said):]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None


class Subscriber:
    """Subscribes to `topic` and keeps (topic, payload text, retained) in arrival order.

    With `fence`, `fenced` is set once every retained message of the subscription has come:
    mosquitto queues them while it handles the SUBSCRIBE, so a message this client publishes once
    subscribed (the fence, on a topic of its own, QoS 1 as they are at most) comes after them.
    Waiting on it replaces a second waited out; caught_up() sends it again later.

    With `session` (a client id), its session outlives it on the broker: subscribed once, it is
    sent what came while it was away when it connects again (QoS 1).
    """

    def __init__(self, port: int, topic: str = "#", user: tuple[str, str] | None = None, fence: bool = False,
                 session: str | None = None) -> None:
        self.messages: list[tuple[str, str, bool]] = []
        self._lock = threading.Lock()
        self.fenced = threading.Event()
        self._fence = f"tests-fence/{uuid.uuid4().hex}" if fence else None
        topics = [(topic, 1)] + ([(self._fence, 1)] if fence else [])
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=session or "",
                                  clean_session=session is None)
        if user is not None:  # a broker with a password file
            self.client.username_pw_set(*user)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(topics)
        if fence:
            self.client.on_subscribe = lambda c, u, mid, codes, p: c.publish(self._fence, "", qos=1)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, client, userdata, message) -> None:
        if message.topic == self._fence:
            self.fenced.set()
            return
        with self._lock:
            self.messages.append((message.topic, message.payload.decode(), bool(message.retain)))

    def caught_up(self, limit: float = 10.0) -> bool:
        """Whether every message the broker passed on to this client before now has come: the fence
        is sent again and heard back after them (with `fence`). Waiting on it replaces a pause."""
        self.fenced.clear()
        self.client.publish(self._fence, "", qos=1)
        return self.fenced.wait(limit)

    def on(self, topic: str) -> list[str]:
        with self._lock:
            return [payload for t, payload, _ in self.messages if t == topic]

    def json_on(self, topic: str) -> list[dict]:
        return [json.loads(p) for p in self.on(topic)]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def mosquitto_available() -> bool:
    return Path(MOSQUITTO).is_file()


@pytest.fixture()
def broker(tmp_path):
    if not mosquitto_available():
        pytest.fail("mosquitto is missing: the Makefile's mqtt-broker target installs Debian's mosquitto")
    running = Broker(tmp_path).start()
    yield running
    running.stop()

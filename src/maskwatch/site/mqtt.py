"""MQTT in Frigate's layout, for home-automation and building systems that already listen there.

    <prefix>/available         "online" while the site runs, "offline" (retained; also the last will)
    <prefix>/events            {"type": "new", ...} when a person comes into view,
                               {"type": "update", ..., "before": label} when their running vote changes,
                               {"type": "end", "event": {...}} when their vote is decided and stored,
                               the event as /v1/events gives it (event_views.event_view)
    <prefix>/<camera>/counts   today's people per voted label on that camera, and `infrared`: those
                               seen on grey frames (retained; sent at the start and at the site's
                               midnight too, not only with a person)
    <prefix>/<camera>/<label>  people in view now with that voted label, e.g. "2" (retained)
    <prefix>/<camera>/available  "online" while the camera's stream sends frames, "offline" once the
                               site counts it down (as /v1/cameras' `connected` and Prometheus's
                               maskwatch_camera_up: no frame for `offline_after` s, its
                               `stall_timeout` where unset, however the stream was lost), at the
                               start until its first frame, and at the stop (retained)
    <prefix>/alerts            {"type": "compliance", "alert": {...}} when a compliance rule fires

paho-mqtt runs its own network thread and reconnects by itself; publishing never blocks a camera.
While the broker is away the retained state (availability, counts, people in view) is kept as
its latest value per topic and the events in a backlog of the newest `max_queued`; on connecting,
"online" goes first, then the state, then the backlog (paho's own bounded queue refused "online"
once it was full, and a site that ran through a long outage showed as unavailable). A broker that
cannot be reached, refuses the connection or goes away is said once in the log (a warning) and
in status(), not at every retry: a site whose broker is misnamed would otherwise run silently.

A camera disabled, removed or renamed in the site's file left its retained topics on the broker:
people in view at a camera that no longer runs. On each connection the site subscribes to
`<prefix>/+/+` for SWEEP_SECONDS: the broker answers with the retained topics there, and those of
cameras it does not run are cleared (an empty retained message deletes one); listening on a
while, it hears the broker pass each clearing on, and says those it did not (an ACL drops them
silently). A "camera" of which only `available` is retained is another site's
`<prefix>/<name>/available` (a prefix inside this one's), not cleared. Two sites must not share a prefix: each would clear the other's cameras.

With Home Assistant's discovery (discovery.py) the configs of each camera go retained on each
connection after "online" and before the state, so that Home Assistant has the entities when the
state comes. The sweep listens to `<discovery_prefix>/+/<node>/+/config` too (its node, and that of
earlier versions), and clears the configs this site published (their exact topic and unique_id)
for cameras it does not run, and those under the old node, sending the new ones again after.
`<prefix>/discovery` (retained, discovery.marker) says under which discovery prefix the configs
are: where it names another one, or discovery is off, the sweep looks there too and clears them
all (Home Assistant kept their dead entities); one whose clearing the broker did not take stays
named in the marker, beside the new one, and is tried again at the next connection. With
discovery off and no marker nothing under the discovery prefix is read or written: a site that never used it does not subscribe outside its
prefix (a broker's ACL may refuse it, some closing the connection). The prefixes published under
before, kept in the site's database (mqtt_record.py), have their configs cleared the same way, each
found through its own marker, unless its `available` says online (another site's now: kept in the
record, tried again at the next start); one whose configs the broker would not clear stays in the
record, its marker written again to say where they stay.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from collections import deque
from typing import TYPE_CHECKING, Callable, Iterable

from maskwatch.faces import PERSON_LABELS
from maskwatch.site import discovery
from maskwatch.site.config import CAMERA_ID, MQTT_PREFIX, MqttConfig
from maskwatch.site.event_views import alert_view, event_view, iso_utc
from maskwatch.site.mqtt_client import in_clear, new_client

if TYPE_CHECKING:
    from maskwatch.site.mqtt_record import PublishedPrefix

log = logging.getLogger(__name__)

CAMERA_TOPICS = ("available", "counts", *PERSON_LABELS)  # <prefix>/<camera>/<these>, each retained
SWEEP_SECONDS = 3.0  # how long the retained topics of cameras not run are gathered after connecting


class MqttPublisher:
    def __init__(self, config: MqttConfig, cameras: Iterable[str] | None = None, names: dict[str, str] | None = None,
                 counts_of: Callable[[str], dict] | None = None, max_queued: int = 1000,
                 record: PublishedPrefix | None = None, root_path: str = "") -> None:
        """config: the site's `mqtt:` section, as it is. cameras: the ids this site runs; the
        retained topics of any other under its prefix are cleared (None: the publisher does not know
        them, and clears none). names: each camera's name for Home Assistant's discovery (default:
        its id), used when config.discovery is on (off: nothing under its discovery_prefix is read
        or written). record: the prefixes this site published under, in its database; the configs
        of those other than the prefix are cleared too. root_path: the site's server.root_path, before
        each snapshot's URL path (a proxy's prefix: without it, /v1/snapshots/... was the host's)."""
        self.root_path = root_path
        # "[::1]" is how the config writes an IPv6 address (as in a URL); the resolver wants it bare.
        self.host, self.port, self.prefix = config.host.strip("[]"), config.port, config.prefix.rstrip("/")
        self.counts_of = counts_of
        self.cameras = frozenset(cameras) if cameras is not None else None
        self.discovery_prefix, self.discovery = config.discovery_prefix, config.discovery
        if names is None:
            names = {camera: camera for camera in self.cameras or ()}
        self._discovery_of = {camera: discovery.camera_configs(self.discovery_prefix, self.prefix, camera, name)
                              for camera, name in sorted(names.items())} if self.discovery else {}
        self._discovery = {topic: payload for configs in self._discovery_of.values()
                           for topic, payload in configs.items()}
        # One id per process: two sites with one prefix, or a restart overlapping the old process,
        # knocked each other off the broker every second with a shared id.
        self.client = new_client(config, f"maskwatch-{self.prefix}-{socket.gethostname()}-{os.getpid()}")
        if (warning := in_clear(config)) is not None:
            log.warning("%s", warning)
        self.client.will_set(self.topic("available"), "offline", qos=1, retain=True)
        self.max_queued = max_queued
        self._state: dict[str, str] = {}  # retained topic -> its latest payload
        self._backlog: deque[tuple[str, str]] = deque(maxlen=max_queued)  # events while the broker is away
        self._lock = threading.Lock()  # the connection's state against the cameras' publishing
        # Today's counts are sent from the site's writer (after each person stored) and its sweep (at
        # midnight): a count read before another but sent after it left the older one retained,
        # one person short, until the next person.
        self._counts_lock = threading.Lock()
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.client.on_connect = self._on_connect
        self.client.on_connect_fail = self._on_connect_fail
        self.client.on_disconnect = self._on_disconnect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.connected, self.problem = False, None  # problem: what keeps it from the broker now
        self._stopping = False
        # The sweep of the retained topics of cameras not run: its subscriptions, what it found
        # (camera -> its topics' last levels; camera -> its discovery configs), the discovery
        # prefixes it looks under and the marker it read, its timer, and the connection it belongs to.
        self._sweep_lock = threading.Lock()  # never held while calling paho (see _on_disconnect)
        self._sweep_mids, self._found, self._found_configs, self._sweep_timer, self._connection = set(), {}, {}, None, 0
        self._looked_under: list[str] = []
        self._marker: str | None = None
        # The topics cleared, and those of them the broker passed back (taken): a broker's ACL drops
        # a publish it refuses without a word, and the site said it had cleared what stayed.
        self._clearing: set[str] = set()
        self._echoed: set[str] = set()
        self._confirm_timer: threading.Timer | None = None
        # The prefixes published under before (record), while their configs are still to be cleared;
        # at each connection those whose `available` says online (another site's now), whose marker
        # was read, and their configs found.
        self.record, self._recorded = record, record.read() if record is not None else None
        self._earlier = tuple(prefix for prefix in self._recorded or () if prefix != self.prefix
                              and MQTT_PREFIX.fullmatch(prefix))
        self._earlier_online, self._earlier_marked, self._found_earlier = set(), set(), {}
        self.swept = threading.Event()  # set once this connection's sweep is over (what a test waits for)

    def topic(self, *parts: str) -> str:
        return "/".join((self.prefix, *parts))

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self._trouble(f"the broker refused the connection ({reason_code})")
            return
        if self.problem is not None:
            log.warning("MQTT %s:%d: connected again", self.host, self.port)
        with self._lock:
            client.publish(self.topic("available"), "online", qos=1, retain=True)
            # At the state's QoS 0, so that they come before it (MQTT keeps the order of one QoS
            # only); each connection sends them again.
            for topic, payload in self._discovery.items():
                client.publish(topic, payload, qos=0, retain=True)
            self._publish_state(client)
            while self._backlog:
                client.publish(*self._backlog.popleft(), qos=1)
            self.connected, self.problem = True, None
        # Another process of this site (a rolling restart's old one) stopping, or its last will,
        # says `offline` for all: heard here, this site says its state again (_on_message).
        client.subscribe(self.topic("available"), qos=1)
        if self.cameras is None:
            return
        self.swept.clear()
        with self._sweep_lock:
            self._connection += 1
            self._found, self._found_configs, self._marker = {}, {}, None
            self._earlier_online, self._earlier_marked, self._found_earlier = set(), set(), {}
            # With discovery off, nothing under discovery_prefix is read unless a marker says this
            # site published there (a broker's ACL may refuse it, some closing the connection).
            self._looked_under = [(self.discovery_prefix, prefix) for prefix in (self.prefix, *self._earlier)
                                  if self.discovery]
            swept = self._swept(self._looked_under)
        self._listen(client, swept)

    def _swept(self, looked_under: list[tuple[str, str]]) -> list[str]:
        """What the sweep listens to: the cameras' topics, the markers, the earlier prefixes'
        `available`, and the discovery configs of each (discovery prefix, site prefix) looked under."""
        earlier = [f"{prefix}/{leaf}" for prefix in self._earlier for leaf in ("available", "discovery")]
        return [self.topic("+", "+"), self.topic("discovery"), *earlier,
                *(topic for pair in looked_under for topic in discovery.config_filters(*pair))]

    def _listen(self, client, topics: list[str]) -> None:
        mid = client.subscribe([(topic, 0) for topic in topics])[1]
        with self._sweep_lock:
            self._sweep_mids.add(mid)

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        with self._sweep_lock:
            if mid not in self._sweep_mids:
                return
            self._sweep_mids.discard(mid)
        # A broker may send retained messages after SUBACK, some (EMQX) from another process: they
        # are gathered for a while, not until SUBACK.
        timer = threading.Timer(SWEEP_SECONDS, self._sweep, args=(self._connection,))
        timer.daemon = True
        if self._sweep_timer is not None:
            self._sweep_timer.cancel()
        self._sweep_timer = timer
        timer.start()

    def _on_message(self, client, userdata, message) -> None:
        # Only a message sent for the new subscription is flagged retained (MQTT 3.1.1, 3.3.1.3):
        # the site's own publishing, echoed while the sweep listens, is not.
        if not message.payload:  # a clearing, taken by the broker (never kept: its retain flag is no matter)
            with self._sweep_lock:
                if message.topic in self._clearing:
                    self._echoed.add(message.topic)
            return
        if message.topic == self.topic("available"):
            if message.payload == b"offline" and not self._stopping:
                self._online_again(client)
            return
        if not message.retain:
            return
        for prefix in (self.prefix, *self._earlier):
            if message.topic == f"{prefix}/discovery":
                self._marked(client, message.payload, prefix)
                return
        for prefix in self._earlier:
            if message.topic == f"{prefix}/available":
                with self._sweep_lock:
                    if message.payload == b"online":
                        self._earlier_online.add(prefix)
                    else:
                        self._earlier_online.discard(prefix)
                return
        with self._sweep_lock:
            looked_under = list(self._looked_under)
        # A config, never a camera's topic (no leaf of a camera is "config"), whatever the prefixes.
        configs = [(discovery_prefix, prefix) for discovery_prefix, prefix in looked_under
                   if message.topic.startswith(discovery_prefix + "/") and message.topic.endswith("/config")
                   and message.topic.count("/") == discovery_prefix.count("/") + 4]  # <component>/<node>/<object>/config
        for discovery_prefix, prefix in configs:
            camera = discovery.camera_of(discovery_prefix, prefix, message.topic, message.payload)
            if camera is None or not CAMERA_ID.fullmatch(camera):
                continue
            with self._sweep_lock:
                if prefix != self.prefix:
                    self._found_earlier.setdefault(prefix, set()).add(message.topic)
                # Not among those published now: a camera not run, discovery off, or a config under
                # an earlier node or discovery prefix.
                elif message.topic not in self._discovery:
                    self._found_configs.setdefault(camera, set()).add(message.topic)
            return
        if configs or not message.topic.startswith(self.prefix + "/"):
            return
        camera, _, leaf = message.topic[len(self.prefix) + 1:].partition("/")
        # Only a name a maskwatch camera can have: another program's topic under the prefix is not
        # ours to clear, and a name with a line break in it (a broker that lets one through) would
        # forge lines of the log that names the cameras cleared.
        if camera not in self.cameras and leaf in CAMERA_TOPICS and CAMERA_ID.fullmatch(camera):
            with self._sweep_lock:
                self._found.setdefault(camera, set()).add(leaf)

    def _online_again(self, client) -> None:
        """`online` and the cameras' state again, retained: another process of this site (the old
        one of a rolling restart) stopped, or died, and said the site and its cameras offline
        while this one runs. Only `offline` on the site's own topic, which a running process never
        sends, so two running processes never answer each other."""
        with self._lock:
            if not self.connected:
                return
            client.publish(self.topic("available"), "online", qos=1, retain=True)
            self._publish_state(client)

    def _publish_state(self, client) -> None:
        """The latest value of each retained topic (cameras' availability, counts, in view), held
        under self._lock: sent again at each connection, and after another process's `offline`."""
        for topic, payload in self._state.items():
            client.publish(topic, payload, qos=0, retain=True)

    def _marked(self, client, payload: bytes, prefix: str) -> None:
        """A marker read (this prefix's, or the earlier one's): look under the discovery prefixes it
        names too, where not looking yet."""
        with self._sweep_lock:
            if prefix == self.prefix:
                self._marker = payload.decode(errors="replace")
            else:
                self._earlier_marked.add(prefix)
            new = [(named, prefix) for named in discovery.marked_prefixes(payload)
                   if (named, prefix) not in self._looked_under]
            self._looked_under.extend(new)
        if new:
            self._listen(client, [topic for pair in new for topic in discovery.config_filters(*pair)])

    def _sweep(self, connection: int) -> None:
        """Clear the retained topics found that the site does not publish now; still listening, to
        hear the broker take each clearing (_confirm)."""
        with self._sweep_lock:
            if connection != self._connection or not self.connected:  # the next connection sweeps
                return
            gone = {camera: sorted(self.topic(camera, leaf) for leaf in leaves)
                    for camera, leaves in self._found.items() if leaves - {"available"}}
            configs = {camera: sorted(topics) for camera, topics in self._found_configs.items()}
            self._found, self._found_configs = {}, {}
            swept, marked = self._swept(self._looked_under), self._marker
            # Each earlier prefix's configs and marker, unless its `available` says online: another
            # site's now (or this one's old process, in a rolling restart), tried again next time.
            left = [prefix for prefix in self._earlier if prefix in self._earlier_online]
            found = {prefix: sorted(self._found_earlier.get(prefix, ())) for prefix in self._earlier}
            earlier = {prefix: found[prefix] + ([f"{prefix}/discovery"] if prefix in self._earlier_marked else [])
                       for prefix in self._earlier if prefix not in left}
            cleared = sorted(topic for topics in (*gone.values(), *configs.values(), *earlier.values())
                             for topic in topics)
            self._clearing, self._echoed = set(cleared), set()
        for topic in cleared:
            self.client.publish(topic, b"", qos=1, retain=True)
        for prefix in left:
            log.warning("MQTT %s:%d: the Home Assistant configs of prefix %s, this site's before, are left: "
                        "%s/available says online (another site's now?)", self.host, self.port, prefix, prefix)
        for prefix in earlier:
            if found[prefix]:
                log.warning("MQTT %s:%d: cleared the Home Assistant configs of prefix %s, this site's before "
                            "(mqtt.prefix changed): %d entities", self.host, self.port, prefix, len(found[prefix]))
        not_run = sorted((gone.keys() | configs.keys()) - self.cameras)
        if not_run:
            log.warning("MQTT %s:%d: cleared the retained topics of cameras this site does not run (disabled, "
                        "removed or renamed): %s", self.host, self.port, ", ".join(not_run))
        moved = sorted(camera for camera in configs if camera in self._discovery_of)
        # Home Assistant ignored the configs sent at connecting while the old ones held their
        # unique_ids: sent again, after the clearing (the same QoS keeps the order).
        for camera in moved:
            for topic, payload in self._discovery_of[camera].items():
                self.client.publish(topic, payload, qos=1, retain=True)
        if moved:
            log.warning("MQTT %s:%d: moved the Home Assistant configs of cameras %s to %s/<component>/%s/ (from "
                        "another discovery_prefix, or the node of earlier versions)", self.host, self.port,
                        ", ".join(moved), self.discovery_prefix, discovery.node_id(self.prefix))
        dropped = sorted(camera for camera in configs if camera in self.cameras and camera not in self._discovery_of)
        if dropped:
            log.warning("MQTT %s:%d: cleared the Home Assistant configs of cameras %s (discovery is off)", self.host,
                        self.port, ", ".join(dropped))
        if not cleared:
            self._finish(swept, marked, [], earlier)
            return
        timer = threading.Timer(SWEEP_SECONDS, self._confirm, args=(connection, swept, marked, earlier))
        timer.daemon = True
        self._confirm_timer = timer
        timer.start()

    def _confirm(self, connection: int, swept: list[str], marked: str | None, earlier: dict[str, list[str]]) -> None:
        with self._sweep_lock:
            if connection != self._connection or not self.connected:  # the next connection sweeps
                return
            refused, self._clearing = sorted(self._clearing - self._echoed), set()
        self._finish(swept, marked, refused, earlier)

    def _finish(self, swept: list[str], marked: str | None, refused: list[str], earlier: dict[str, list[str]]
                ) -> None:
        """Stop listening, say where the configs are now, and what the broker would not clear.
        earlier: the topics cleared of each earlier prefix not left (its `available` said online)."""
        self.client.unsubscribe(swept)
        # Where this prefix's configs are: the discovery prefix of now (discovery on), and each one
        # under which the broker would not clear them, tried again at the next connection; None
        # (cleared) when there are none.
        of_earlier = {topic for topics in earlier.values() for topic in topics}
        places = [*([self.discovery_prefix] if self.discovery else []),
                  *discovery.places_of(topic for topic in refused if topic not in of_earlier)]
        marker = discovery.marker(places[0], places[1:]) if places else None
        if marker != marked:
            self.client.publish(self.topic("discovery"), marker or b"", qos=1, retain=True)
        # An earlier prefix's marker went with its configs: where the broker would not clear them, it
        # says again where they stay (the next connection found them only under the discovery prefix of now).
        for prefix, topics in earlier.items():
            stay = discovery.places_of(set(topics) & set(refused))
            if stay:
                self.client.publish(f"{prefix}/discovery", discovery.marker(stay[0], stay[1:]), qos=1, retain=True)
        # This prefix recorded, with the earlier ones whose configs are not gone yet (left, or refused):
        # a prefix changed again meanwhile was never cleared while the record held only one.
        self._earlier = tuple(prefix for prefix in self._earlier
                              if prefix not in earlier or set(earlier[prefix]) & set(refused))
        recorded = sorted({*self._earlier, self.prefix})
        if self.record is not None and self._recorded is not None and recorded != self._recorded:
            self.record.write(recorded)
            self._recorded = recorded
        if refused:
            log.warning("MQTT %s:%d: the broker did not take the clearing of %d retained topics, which stay (does "
                        "its ACL let this user write there? it drops what it refuses without a word): %s", self.host,
                        self.port, len(refused), ", ".join(refused[:3]) + (", ..." if len(refused) > 3 else ""))
        self.swept.set()

    def _on_connect_fail(self, client, userdata) -> None:
        self._trouble("cannot reach the broker")

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        # No lock here: paho calls this holding its own message lock (a write failing while it
        # resends), which a camera thread holding self._lock waits for inside publish().
        was_connected, self.connected = self.connected, False
        # A refused CONNACK is followed by a disconnect "Unspecified error": not a second problem
        # (the two took turns in the log at every retry, the refusal's reason overwritten). A
        # broker that closes before any answer (a TLS port, its connection limit) is one.
        if reason_code.is_failure and (was_connected or self.problem is None):
            # paho's words for a connection closed under it: the broker stopped (said "Unspecified
            # error", which told an operator nothing), restarted, or dropped this client
            closed = was_connected and str(reason_code) == "Unspecified error"
            self._trouble("lost the broker: it closed the connection (stopped, restarted, or dropped this client)"
                          if closed else f"lost the broker ({reason_code})")

    def _trouble(self, problem: str) -> None:
        self.connected = False  # no lock: see _on_disconnect
        if problem != self.problem:
            log.warning("MQTT %s:%d: %s; retrying, up to %d messages kept meanwhile", self.host, self.port,
                        problem, self.max_queued)
        self.problem = problem

    def status(self) -> dict:
        """{"connected": bool, "problem": what keeps it from the broker now, or None}."""
        return {"connected": self.connected, "problem": self.problem}

    def start(self) -> MqttPublisher:
        self.client.connect_async(self.host, self.port, keepalive=30)
        self.client.loop_start()
        return self

    def stop(self) -> None:
        """Say "offline" for each camera and the site (a clean stop sends no last will), then
        disconnect; never raises (the site's stop goes on to close the database)."""
        self._stopping = True  # its own `offline` is not another process's
        for timer in (self._sweep_timer, self._confirm_timer):
            if timer is not None:
                timer.cancel()
        try:
            for camera in sorted(self.cameras or ()):
                self.client.publish(self.topic(camera, "available"), "offline", qos=1, retain=True)
            info = self.client.publish(self.topic("available"), "offline", qos=1, retain=True)
            if self.client.is_connected():
                info.wait_for_publish(timeout=5)
        except (ValueError, RuntimeError) as err:  # the link dropped between the check and the wait
            log.warning("MQTT %s:%d: 'offline' not confirmed at stop (%s)", self.host, self.port, err)
        self.client.disconnect()
        self.client.loop_stop()
        with self._lock:
            if self._backlog:  # gone with the process: said, not lost in silence
                log.warning("MQTT %s:%d: %d events and alerts never reached the broker (%s)", self.host,
                            self.port, len(self._backlog), self.problem or "not connected")

    def publish_counts(self, camera: str) -> bool:
        """Today's people on `camera`, retained: after each stored person, at the start (a restart's
        broker kept the last run's) and at the site's midnight (yesterday's stayed "today" until the
        day's first person). Not sent while the database cannot be read: the next call carries them."""
        with self._counts_lock:  # read and sent as one: see _counts_lock
            today = self.counts_of(camera) if self.counts_of is not None else None
            if today is not None:
                self._publish(self.topic(camera, "counts"), today, retain=True)
        return today is not None

    def camera_up(self, camera: str, up: bool) -> None:
        """`<prefix>/<camera>/available`: "online" or "offline", retained, sent when it changes."""
        topic, payload = self.topic(camera, "available"), "online" if up else "offline"
        with self._lock:
            if self._state.get(topic) == payload:
                return
        self._send(topic, payload, retain=True)

    def person_started(self, start: dict) -> None:
        self._publish(self.topic("events"), {"type": "new", **start, "first_seen": iso_utc(start["first_seen"])})

    def person_updated(self, update: dict) -> None:
        self._publish(self.topic("events"), {"type": "update", **update})

    def in_view(self, view: dict) -> None:
        """view: {"camera": id, "counts": {label: people in view now}}."""
        for label, n in view["counts"].items():
            self._send(self.topic(view["camera"], label), str(n), retain=True)

    def event_recorded(self, event: dict) -> None:
        self._publish(self.topic("events"), {"type": "end", "event": event_view(event, self.root_path)})
        self.publish_counts(event["camera"])

    def compliance_alert(self, alert: dict) -> None:
        self._publish(self.topic("alerts"), {"type": "compliance", "alert": alert_view(alert)})

    def _publish(self, topic: str, payload: dict, retain: bool = False) -> None:
        self._send(topic, json.dumps(payload, separators=(",", ":")), retain)

    def _send(self, topic: str, payload: str, retain: bool) -> None:
        """To the broker now, or kept for it: the latest value of a retained topic, or an event in
        the backlog (past `max_queued` the oldest goes)."""
        with self._lock:
            if retain:
                self._state[topic] = payload
            if self.connected:
                # Retained state goes at QoS 0: paho drops it with a lost connection, where at QoS 1
                # it resent a stale count after the fresh state replayed on connecting (a 5 shown
                # when 0 were in view); the latest value is replayed by us instead.
                self.client.publish(topic, payload, qos=0 if retain else 1, retain=retain)
            elif not retain:
                self._backlog.append((topic, payload))

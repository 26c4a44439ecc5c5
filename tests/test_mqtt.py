"""MQTT in Frigate's layout against a real mosquitto on loopback: availability with a last will,
per camera too, events new/end, retained counts, the retained topics of cameras no longer run
cleared, and a broker that only comes up after the site."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from maskwatch.site import mqtt as site_mqtt
from maskwatch.site.config import MqttConfig
from maskwatch.site.mqtt import MqttPublisher
from tests.mosquitto import Broker, Subscriber, broker  # noqa: F401  (fixture)
from tests.postgres import postgres  # noqa: F401  (fixture)
from tests.rtsp import held_port, refused_port
from tests.test_cameras import wait_until

EVENT = {"id": 7, "camera": "door", "zone": None, "track_id": 3, "label": "without_mask", "probability": 0.9,
         "first_seen": 1.0, "last_seen": 2.0, "frames": 5, "snapshot": "door-7.jpg"}


def broker_at(port: int, host: str = "127.0.0.1", **settings) -> MqttConfig:
    """The site's `mqtt:` section for a broker on this machine."""
    return MqttConfig(host=host, port=port, **settings)


def test_availability_events_and_counts(broker):  # noqa: F811
    listener = Subscriber(broker.port, "site/#")
    publisher = MqttPublisher(broker_at(broker.port, prefix="site"),
                              counts_of=lambda camera: {"people": 1, "without_mask": 1}).start()
    try:
        assert wait_until(lambda: listener.on("site/available") == ["online"])
        publisher.person_started({"camera": "door", "zone": None, "track_id": 3, "label": "without_mask",
                                  "first_seen": 1.0})
        publisher.in_view({"camera": "door", "counts": {"with_mask": 0, "without_mask": 1, "mask_weared_incorrect": 0}})
        publisher.person_updated({"camera": "door", "zone": None, "track_id": 3, "label": "mask_weared_incorrect",
                                  "before": "without_mask"})
        publisher.event_recorded(EVENT)
        assert wait_until(lambda: len(listener.on("site/events")) == 3 and listener.on("site/door/counts"))
        new, update, end = listener.json_on("site/events")
        # Times as the API writes them, ISO 8601 in UTC, and the snapshot as its URL: one shape of an event.
        assert new == {"type": "new", "camera": "door", "zone": None, "track_id": 3, "label": "without_mask",
                       "first_seen": "1970-01-01T00:00:01.000+00:00"}
        assert update == {"type": "update", "camera": "door", "zone": None, "track_id": 3,
                          "label": "mask_weared_incorrect", "before": "without_mask"}
        assert end == {"type": "end", "event": {**EVENT, "first_seen": "1970-01-01T00:00:01.000+00:00",
                                                "last_seen": "1970-01-01T00:00:02.000+00:00",
                                                "snapshot": "/v1/snapshots/door-7.jpg"}}
        assert listener.on("site/door/without_mask") == ["1"] and listener.on("site/door/with_mask") == ["0"]
        assert listener.json_on("site/door/counts") == [{"people": 1, "without_mask": 1}]
    finally:
        publisher.stop()
    assert wait_until(lambda: listener.on("site/available")[-1:] == ["offline"])
    late = Subscriber(broker.port, "site/door/#")  # retained: a newcomer hears the counts at once
    assert wait_until(lambda: late.json_on("site/door/counts") == [{"people": 1, "without_mask": 1}]
                      and late.on("site/door/without_mask") == ["1"])
    late.close()
    listener.close()



def test_a_site_behind_a_path_prefix_sends_its_snapshots_url_under_it(broker, tmp_path):  # noqa: F811
    """server.root_path: a dashboard reading the MQTT event fetched /v1/snapshots/door-7.jpg at the
    host's root, not maskwatch's /maskwatch/ (/v1/events gave the prefix, MQTT did not)."""
    from maskwatch.detection.detector import WEIGHTS, Detector
    from maskwatch.site.config import load_site_config
    from maskwatch.site.runner import Site

    (tmp_path / "site.yaml").write_text(f"""
cameras: {{door: {{source: "rtsp://127.0.0.1:{refused_port()}/none"}}}}
server: {{root_path: /maskwatch}}
mqtt: {{host: 127.0.0.1, port: {broker.port}, prefix: site}}
""")
    site = Site(load_site_config(tmp_path / "site.yaml", environ={}), Detector.load(config=WEIGHTS / "centerface.json"))
    listener = Subscriber(broker.port, "site/events", fence=True)
    assert listener.fenced.wait(10), "the listener was not subscribed"  # before the event, which is not retained
    site.mqtt.start()
    try:
        assert wait_until(lambda: site.mqtt.status()["connected"], 20)
        site.mqtt.event_recorded(EVENT)
        assert wait_until(lambda: listener.json_on("site/events"), 20)
        assert listener.json_on("site/events")[0]["event"]["snapshot"] == "/maskwatch/v1/snapshots/door-7.jpg"
    finally:
        site.mqtt.stop()
        site.store.close()
        listener.close()

def retain(port: int, topics: dict[str, str]) -> None:
    """Publish each topic's payload retained, as a site's earlier run left them."""
    import paho.mqtt.client as mqtt

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        for topic, payload in topics.items():
            client.publish(topic, payload, qos=1, retain=True).wait_for_publish(5)
    finally:
        client.disconnect()
        client.loop_stop()


def retained(port: int, topic: str = "#") -> dict[str, str]:
    """What the broker keeps retained under `topic`: what a dashboard that subscribes now is told."""
    newcomer = Subscriber(port, topic, fence=True)
    try:
        assert newcomer.fenced.wait(10), "the broker passed on no message after the retained ones"
    finally:
        newcomer.close()
    return {t: payload for t, payload, kept in newcomer.messages if kept}


def test_the_retained_topics_of_cameras_the_site_does_not_run_are_cleared(broker, caplog, monkeypatch):  # noqa: F811
    """A camera disabled, removed or renamed kept its retained topics from its last run: a
    dashboard went on showing 2 people in view at a camera that no longer ran."""
    monkeypatch.setattr(site_mqtt, "SWEEP_SECONDS", 0.5)  # a broker on loopback answers at once
    retain(broker.port, {"site/gone/counts": '{"people":5}', "site/gone/without_mask": "2",
                         "site/gone/available": "online", "site/door/with_mask": "1",
                         "site/east/available": "online",  # a site whose prefix is site/east: not a camera
                         "site/gone/notes": "a user's own topic", "other/gone/counts": '{"people":1}',
                         # no camera can be named so: another program's, left alone (and out of the log)
                         "site/front door/counts": '{"people":3}'})
    publisher = MqttPublisher(broker_at(broker.port, prefix="site"), cameras=["door"]).start()
    try:
        # The clearings go out one after another (available, counts, without_mask): wait for the last.
        assert wait_until(lambda: retained(broker.port, "site/gone/#") == {"site/gone/notes": "a user's own topic"}, 20)
        assert retained(broker.port) == {"site/available": "online", "site/door/with_mask": "1",
                                         "site/east/available": "online", "site/gone/notes": "a user's own topic",
                                         "other/gone/counts": '{"people":1}', "site/front door/counts": '{"people":3}'}
        warned = [r.getMessage() for r in caplog.records if "cleared" in r.getMessage()]
        assert warned == [f"MQTT 127.0.0.1:{broker.port}: cleared the retained topics of cameras this site does "
                          "not run (disabled, removed or renamed): gone"]
        # The sweep listens only after connecting: a camera's topics retained later are another's business.
        retain(broker.port, {"site/later/counts": '{"people":1}'})
        time.sleep(1.0)
        assert retained(broker.port, "site/later/#") == {"site/later/counts": '{"people":1}'}
    finally:
        publisher.stop()


def test_each_camera_says_whether_it_is_up_and_offline_at_the_stop(broker):  # noqa: F811
    listener = Subscriber(broker.port, "maskwatch/+/available")
    publisher = MqttPublisher(broker_at(broker.port), cameras=["door", "till"])
    publisher.camera_up("door", False)  # the site's start, before the first frame
    publisher.camera_up("till", False)
    publisher.start()
    try:
        assert wait_until(lambda: listener.on("maskwatch/door/available") == ["offline"])
        for up in (True, True, True, False, True):  # sent when it changes, not at every look
            publisher.camera_up("door", up)
        assert wait_until(lambda: listener.on("maskwatch/door/available") == ["offline", "online", "offline",
                                                                              "online"])
    finally:
        publisher.stop()
    assert wait_until(lambda: listener.on("maskwatch/door/available")[-1:] == ["offline"])
    assert retained(broker.port, "maskwatch/+/available") == {"maskwatch/door/available": "offline",
                                                             "maskwatch/till/available": "offline"}
    listener.close()


def test_a_site_still_running_says_online_again_after_its_old_process_stops(broker):  # noqa: F811
    """A rolling restart (the new process up before the old one stops, as docs/site.md allows on one
    database): the old one's stop left `offline` retained for the site and its cameras while the
    new one ran, and Home Assistant showed them unavailable until the next restart."""
    new = MqttPublisher(broker_at(broker.port), cameras=["door"])
    new.camera_up("door", True)
    new.start()
    old = subprocess.run([sys.executable, "-c", (  # another process: another client id, as a site's
        "import time; from maskwatch.site.config import MqttConfig; from maskwatch.site.mqtt import MqttPublisher; "
        f"old = MqttPublisher(MqttConfig(host='127.0.0.1', port={broker.port}), cameras=['door']).start(); "
        "time.sleep(1); print('connected' if old.connected else 'not connected'); old.stop()")],
        capture_output=True, text=True, env=os.environ, timeout=30)
    try:
        assert old.stdout.strip() == "connected", old.stderr
        assert wait_until(lambda: retained(broker.port, "maskwatch/#") == {
            "maskwatch/available": "online", "maskwatch/door/available": "online"}), retained(broker.port)
    finally:
        new.stop()
    # Its own stop is not taken for another's: it leaves offline.
    assert wait_until(lambda: retained(broker.port, "maskwatch/#") == {
        "maskwatch/available": "offline", "maskwatch/door/available": "offline"}), retained(broker.port)


def test_the_last_will_says_offline_when_the_site_dies(broker):  # noqa: F811
    listener = Subscriber(broker.port, "maskwatch/available")
    child = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from maskwatch.site.config import MqttConfig; "
        "from maskwatch.site.mqtt import MqttPublisher; "
        f"MqttPublisher(MqttConfig(host='127.0.0.1', port={broker.port})).start(); print('up', flush=True); "
        "time.sleep(60)")],
        stdout=subprocess.PIPE, text=True, env=os.environ)
    try:
        assert child.stdout.readline().strip() == "up"
        assert wait_until(lambda: listener.on("maskwatch/available")[-1:] == ["online"])
        child.send_signal(signal.SIGKILL)
        assert wait_until(lambda: listener.on("maskwatch/available")[-1:] == ["offline"])
    finally:
        child.kill()
        child.wait()
        listener.close()


@pytest.mark.system  # starts its own broker, later
def test_a_broker_that_comes_later_is_connected_to(tmp_path, caplog):
    # Held until the broker takes it: on a free_port(), another test's server answered, and the
    # publisher said "lost the broker (Protocol error)" where "cannot reach the broker" was asserted.
    held, port = held_port()
    publisher = MqttPublisher(broker_at(port)).start()  # nobody listens yet: returns at once
    publisher.event_recorded(EVENT)
    # Said once, in the log and in the status, however often it retries.
    assert wait_until(lambda: publisher.status() == {"connected": False, "problem": "cannot reach the broker"}, 30)
    warned = [r.getMessage() for r in caplog.records if r.name == "maskwatch.site.mqtt"]
    assert warned[:1] == [f"MQTT 127.0.0.1:{port}: cannot reach the broker; retrying, up to 1000 messages kept "
                          "meanwhile"]
    held.close()
    late = Broker(tmp_path, port).start()
    listener = None
    try:
        listener = Subscriber(port, "maskwatch/#")
        assert wait_until(lambda: listener.on("maskwatch/available")[-1:] == ["online"], 60)
        publisher.event_recorded({**EVENT, "id": 8})
        assert wait_until(lambda: any(json.loads(p)["event"]["id"] == 8 for p in listener.on("maskwatch/events")))
        assert publisher.status() == {"connected": True, "problem": None}
        assert len([r for r in caplog.records if "cannot reach" in r.getMessage()]) == 1
    finally:
        publisher.stop()
        if listener is not None:
            listener.close()
        late.stop()


def ipv6_loopback() -> bool:
    """Whether this machine has ::1: a container may run with IPv6 off, where mosquitto cannot listen there."""
    import socket

    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.system  # starts its own broker
@pytest.mark.skipif(not ipv6_loopback(), reason="this machine has no IPv6 loopback (::1) to start a broker on")
def test_an_ipv6_broker_is_reached(tmp_path):
    """host "[::1]" (as the config writes IPv6) never connected."""
    ipv6 = Broker(tmp_path, address="::1").start()
    reached = MqttPublisher(broker_at(ipv6.port, host="[::1]")).start()
    try:
        assert wait_until(lambda: reached.status() == {"connected": True, "problem": None}, 30)
    finally:
        reached.stop()
        ipv6.stop()


@pytest.mark.system  # starts its own broker
def test_a_wrong_password_is_said_once_with_the_brokers_reason(tmp_path, caplog):
    """A refused CONNACK was followed by "lost the broker (Unspecified error)" at every retry,
    which replaced the reason. (With the IPv6 broker in this test, a machine without ::1 failed it.)"""
    guarded = Broker(tmp_path, user=("site", "right password")).start()
    refused = MqttPublisher(broker_at(guarded.port, username="site", password="wrong password")).start()
    try:
        assert wait_until(lambda: len([r for r in caplog.records if "refused" in r.getMessage()]) >= 1, 30)
        # A third try reached the broker (retries 1 s and 2 s apart): the client has heard the first two
        # refusals, as its one network thread handles a refusal before it dials again.
        assert wait_until(lambda: guarded.log.read_text().count("New connection from") >= 3, 30)
        said = [r.getMessage() for r in caplog.records if r.name == "maskwatch.site.mqtt" and str(guarded.port) in
                r.getMessage()]
        assert said == [f"MQTT 127.0.0.1:{guarded.port}: the broker refused the connection (Not authorized); "
                        "retrying, up to 1000 messages kept meanwhile"], said
        assert refused.status() == {"connected": False, "problem": "the broker refused the connection (Not authorized)"}
    finally:
        refused.stop()
        guarded.stop()


@pytest.mark.system  # starts its own broker, then stops it
def test_a_broker_stopped_under_the_site_is_said_in_words(tmp_path, caplog):
    """A broker stopped (systemctl stop mosquitto) was said "lost the broker (Unspecified error)":
    paho's words for a connection closed under it, which told an operator nothing."""
    own = Broker(tmp_path).start()
    publisher = MqttPublisher(broker_at(own.port)).start()
    try:
        assert wait_until(lambda: publisher.status()["connected"], 30)
        own.stop()
        assert wait_until(lambda: "lost the broker" in caplog.text, 30)  # (the next try's "cannot reach" follows)
        assert "lost the broker: it closed the connection (stopped, restarted, or dropped this client)" in caplog.text, \
            caplog.text
    finally:
        publisher.stop()


def test_a_broker_that_closes_before_answering_is_said(caplog):
    """A plain client at a TLS port, a broker at its connection limit: the connection closes before
    any CONNACK. After the refusal fix, nothing was said and status() showed no problem."""
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)

    def close_each():
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            client.close()

    threading.Thread(target=close_each, daemon=True).start()
    publisher = MqttPublisher(broker_at(server.getsockname()[1])).start()
    try:
        assert wait_until(lambda: (publisher.status()["problem"] or "").startswith("lost the broker"), 30)
    finally:
        publisher.stop()
        server.close()


@pytest.mark.system  # starts its own broker, later
def test_after_a_long_outage_the_site_is_online_with_its_latest_state_and_newest_events(tmp_path):
    # The listener's session, subscribed on a broker before, is the late broker's from its start:
    # the events are not retained, and a listener subscribed after the publisher's reconnection
    # (its retry due as the broker came up, on a busy machine) missed them.
    (tmp_path / "before").mkdir()
    before = Broker(tmp_path / "before", sessions=tmp_path).start()
    subscribed = Subscriber(before.port, "maskwatch/#", fence=True, session="tests-listener")
    assert subscribed.fenced.wait(10), "the listener was not subscribed"
    subscribed.close()
    before.stop()
    held, port = held_port()
    publisher = MqttPublisher(broker_at(port), max_queued=100).start()  # nobody listens yet
    for n in range(150):  # more than it keeps: paho's full queue refused "online" itself
        publisher.event_recorded({**EVENT, "id": n})
        publisher.in_view({"camera": "door", "counts": {"with_mask": n % 7}})
    held.close()
    late = Broker(tmp_path, port, sessions=tmp_path).start()
    listener = None
    try:
        listener = Subscriber(port, "maskwatch/#", session="tests-listener")
        assert wait_until(lambda: listener.on("maskwatch/available")[-1:] == ["online"], 60)
        assert wait_until(lambda: listener.on("maskwatch/door/with_mask")[-1:] == [str(149 % 7)])
        assert wait_until(lambda: len(listener.on("maskwatch/events")) == 100)
        ids = [json.loads(p)["event"]["id"] for p in listener.on("maskwatch/events")]
        assert ids == list(range(50, 150))  # the newest, in order
    finally:
        publisher.stop()
        if listener is not None:
            listener.close()
        late.stop()


class ResettingBroker:
    """A broker that accepts, says CONNACK, takes a few packets and resets the connection, again
    and again: the failure mosquitto cannot be made to show, where paho calls on_disconnect while
    it holds its own message lock."""

    def __init__(self) -> None:
        import socket
        import threading

        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.2)
        self.port = self.server.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        import socket
        import struct

        while not self._stop.is_set():
            try:
                connection, _ = self.server.accept()
            except TimeoutError:
                continue
            self.connections += 1
            with connection:
                connection.settimeout(1.0)
                try:
                    connection.recv(4096)  # CONNECT
                    connection.sendall(b"\x20\x02\x00\x00")  # CONNACK, accepted
                    for _ in range(3):  # "online", state, a few publishes in flight
                        connection.recv(4096)
                except OSError:
                    pass
                connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.server.close()


def test_camera_threads_never_stick_while_the_broker_resets_after_each_connack():
    """A lock taken in on_disconnect deadlocked every camera thread inside publish() (paho calls it
    holding its message lock, which publish() waits for): checked by cameras publishing for 8 s
    against a broker that resets each connection right after CONNACK."""
    import threading
    import time

    resetting = ResettingBroker()
    publisher = MqttPublisher(broker_at(resetting.port), counts_of=lambda camera: {"people": 1}).start()
    progress = [0] * 4
    stop = threading.Event()

    def camera(index: int) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            publisher.person_started({"camera": f"cam{index}", "track_id": n, "first_seen": 1.0})
            publisher.in_view({"camera": f"cam{index}", "counts": {"with_mask": n % 3}})
            publisher.event_recorded({**EVENT, "camera": f"cam{index}", "id": n})
            progress[index] = n

    threads = [threading.Thread(target=camera, args=(i,), daemon=True) for i in range(4)]
    for thread in threads:
        thread.start()
    samples = []
    for _ in range(8):
        time.sleep(1.0)
        samples.append(list(progress))
    # stuck: no publish for 3 s in a row (a deadlock is for good; a loaded machine pauses a thread briefly)
    stuck = [i for i in range(4) if any(samples[k][i] == samples[k + 3][i] for k in range(len(samples) - 3))]
    stop.set()
    for thread in threads:
        thread.join(5)
    stopping = threading.Thread(target=publisher.stop, daemon=True)
    stopping.start()
    stopping.join(15)
    resetting.stop()
    assert resetting.connections >= 3, resetting.connections  # it did connect, again and again
    assert not stuck and not any(t.is_alive() for t in threads), (stuck, progress)
    assert not stopping.is_alive()  # and it stops


def test_todays_counts_are_sent_at_the_start_and_at_the_sites_midnight(monkeypatch, caplog):
    """Yesterday's 30 people stayed MQTT's retained "today" until the first person of the new day
    was stored; a restart replayed the last run's. The publisher is not started: what it keeps
    for the broker is what a subscriber would be sent."""
    from datetime import datetime
    from types import SimpleNamespace
    from zoneinfo import ZoneInfo

    from maskwatch.site import runner
    from maskwatch.site.runner import Site

    berlin = ZoneInfo("Europe/Berlin")
    now = [datetime(2026, 12, 1, 23, 58, tzinfo=berlin).timestamp()]
    monkeypatch.setattr(runner.time, "time", lambda: now[0])
    people = {"door": 30, "till": 4}
    publisher = MqttPublisher(broker_at(refused_port()), counts_of=lambda camera: {"people": people[camera]})
    site = SimpleNamespace(mqtt=publisher, _day=None,
                           config=SimpleNamespace(tz=lambda: berlin, cameras={"door": None, "till": None}))
    Site._new_day(site)  # the start
    assert publisher._state == {"maskwatch/door/counts": '{"people":30}', "maskwatch/till/counts": '{"people":4}'}
    people.update(door=0, till=0)
    now[0] += 60
    Site._new_day(site)  # 23:59: the same day, nothing sent
    assert publisher._state["maskwatch/door/counts"] == '{"people":30}'
    now[0] += 60
    people.update(door=None)  # the database away at midnight (today_counts says None): tried again
    publisher.counts_of = lambda camera: None if people[camera] is None else {"people": people[camera]}
    Site._new_day(site)  # 00:00 in Berlin
    assert publisher._state["maskwatch/door/counts"] == '{"people":30}'
    people.update(door=0)
    now[0] += 60
    Site._new_day(site)
    assert publisher._state == {"maskwatch/door/counts": '{"people":0}', "maskwatch/till/counts": '{"people":0}'}
    publisher.compliance_alert({"camera": "door", "at": 0.0})  # the broker away: kept, then said at the stop
    publisher.stop()
    assert any("1 events and alerts never reached the broker" in r.getMessage() for r in caplog.records)


@pytest.mark.system  # a site with its cameras and the detector, in this process
def test_a_site_says_which_cameras_are_up_and_clears_a_disabled_ones_topics(broker, tmp_path, sample_dir):  # noqa: F811
    """A site gave no per-camera state (a camera down showed only in /v1/cameras and Prometheus),
    and a camera set `enabled: false` kept its retained people in view from its last run (and,
    with Home Assistant's discovery, its device)."""
    from maskwatch.detection.detector import WEIGHTS, Detector
    from maskwatch.site.config import load_site_config
    from maskwatch.site.discovery import camera_configs
    from maskwatch.site.runner import Site
    from tests.test_detection import make_video

    make_video(tmp_path / "till.mp4", sample_dir, frames=6)
    (tmp_path / "site.yaml").write_text(f"""
defaults: {{fps: 1, stall_timeout: 2, retry_max: 0.5}}
cameras:
  till: {{source: till.mp4, name: Till 1}}
  dead: {{source: "rtsp://127.0.0.1:{refused_port()}/none"}}
  door: {{source: till.mp4, enabled: false}}
storage: {{database: site.db, snapshots: snapshots}}
mqtt: {{host: 127.0.0.1, port: {broker.port}, discovery: true}}
""")
    retain(broker.port, {"maskwatch/door/counts": '{"people":9}', "maskwatch/door/without_mask": "2",
                         "maskwatch/door/available": "online",
                         **camera_configs("homeassistant", "maskwatch", "door", "door")})
    listener = Subscriber(broker.port, "maskwatch/+/available")
    site = Site(load_site_config(tmp_path / "site.yaml"), Detector.load(config=WEIGHTS / "centerface.json")).start()
    try:
        assert wait_until(lambda: listener.on("maskwatch/till/available")[-1:] == ["online"], 30)
        assert site.cameras(["till"])[0]["connected"]  # the rule of /v1/cameras and Prometheus
        time.sleep(3)  # past the dead camera's stall_timeout: it never came up
        assert listener.on("maskwatch/dead/available") == ["offline"]
        assert wait_until(lambda: not any(t.startswith("maskwatch/door/") or "/maskwatch/door_" in t
                                          for t in retained(broker.port)), 20)
        configs = {t: json.loads(p) for t, p in retained(broker.port, "homeassistant/#").items()}
        assert {c["device"]["name"] for c in configs.values()} == {"Till 1", "dead"} and len(configs) == 22
    finally:
        site.stop()
    assert retained(broker.port, "maskwatch/+/available") == {"maskwatch/till/available": "offline",
                                                             "maskwatch/dead/available": "offline"}
    listener.close()


@pytest.mark.system  # restarts its own broker
def test_a_restarted_broker_is_told_the_sites_whole_state_again(tmp_path):
    """A broker restarted without persistence forgets every retained message: a dashboard that
    subscribed then saw neither the site online nor its counts until each changed."""
    first = Broker(tmp_path).start()
    port = first.port
    publisher = MqttPublisher(broker_at(port), cameras=["door"],
                              counts_of=lambda camera: {"people": 4, "without_mask": 1}).start()
    second = None
    try:
        assert wait_until(lambda: publisher.status()["connected"], 30)
        publisher.camera_up("door", True)
        publisher.in_view({"camera": "door", "counts": {"without_mask": 1}})
        publisher.publish_counts("door")
        state = {"maskwatch/available": "online", "maskwatch/door/available": "online",
                 "maskwatch/door/without_mask": "1", "maskwatch/door/counts": '{"people":4,"without_mask":1}'}
        assert wait_until(lambda: retained(port) == state, 20)
        first.stop()
        assert wait_until(lambda: not publisher.status()["connected"], 30)
        second = Broker(tmp_path, port).start()
        assert wait_until(lambda: publisher.status()["connected"], 60)
        assert wait_until(lambda: retained(port) == state, 20), retained(port)
    finally:
        publisher.stop()
        (second or first).stop()


def home_assistant_configs(kept: dict[str, str]) -> dict[str, dict]:
    """The discovery configs among the retained topics: what Home Assistant is told at its start."""
    return {topic: json.loads(payload) for topic, payload in kept.items() if topic.startswith("homeassistant/")}


def test_home_assistant_discovery_makes_each_camera_a_device_and_clears_the_rest(broker, monkeypatch, caplog):  # noqa: F811
    """A Home Assistant user wrote each camera's sensors by hand (docs/site.md's example). Five runs
    of one site: discovery off (nothing under homeassistant/), on with door and till, on with till
    removed from the file (its configs cleared), off again (door's configs cleared: they were left,
    and Home Assistant kept dead entities), off once more (nothing under homeassistant/ touched)."""
    from maskwatch.site.discovery import camera_configs

    monkeypatch.setattr(site_mqtt, "SWEEP_SECONDS", 0.5)
    counts = {"people": 3, "with_mask": 2, "without_mask": 1, "mask_weared_incorrect": 0, "unassessable": 1, "infrared": 0}
    foreign = {"homeassistant/sensor/site/ghost_with_mask/config": '{"unique_id": "someone else\'s"}',
               "homeassistant/sensor/site/ghost_x/config": '{"unique_id": "maskwatch:site/ghost/with_mask"}',
               "homeassistant/sensor/other/door_with_mask/config": '{"unique_id": "maskwatch:other/door/with_mask"}',
               "homeassistant/light/kitchen/config": '{"unique_id": "kitchen"}'}
    retain(broker.port, foreign)

    def run(cameras: dict[str, str], discovery: bool) -> Subscriber:
        """One run of the site, as the runner starts it; what a listener to everything heard."""
        listener = Subscriber(broker.port, "#", fence=True)
        assert listener.fenced.wait(10), "the listener was not subscribed"  # its retained messages first
        publisher = MqttPublisher(broker_at(broker.port, prefix="site", discovery=discovery), cameras=cameras,
                                  names=cameras, counts_of=lambda camera: counts)
        for camera in cameras:
            publisher.in_view({"camera": camera, "counts": {"with_mask": 0, "without_mask": 0,
                                                            "mask_weared_incorrect": 0, "unassessable": 0}})
            publisher.camera_up(camera, False)
        publisher.start()
        try:
            assert wait_until(lambda: publisher.status()["connected"], 20)
            for camera in cameras:
                publisher.publish_counts(camera)
                publisher.camera_up(camera, True)
            assert publisher.swept.wait(20)
        finally:
            publisher.stop()  # returns once the broker has taken its last message ("offline")
            heard_all = listener.caught_up()  # and the listener what the broker passed on before
            listener.close()
        assert heard_all, "the broker passed on no message after the site's"
        return listener

    def sent_under_discovery(listener: Subscriber) -> list[tuple[str, str]]:
        return [(topic, payload) for topic, payload, kept in listener.messages
                if topic.startswith("homeassistant/") and not kept]

    assert sent_under_discovery(run({"door": "Front door"}, discovery=False)) == []  # nothing there of ours

    # An older run's site knew camera "gone": its configs and state are cleared, the foreign ones kept.
    retain(broker.port, {**camera_configs("homeassistant", "site", "gone", "Gone"),
                         "site/gone/counts": json.dumps(counts)})
    heard = run({"door": "Front door", "till": "till"}, discovery=True)
    state = retained(broker.port)
    configs = home_assistant_configs(state)
    assert not [t for t in state if "/site/gone_" in t or t.startswith("site/gone/")]
    assert {t: c for t, c in configs.items() if t in foreign} == {t: json.loads(p) for t, p in foreign.items()}
    ours = {t: c for t, c in configs.items() if t not in foreign}
    assert sorted(t.split("/")[3] for t in ours if "/door_" in t) == sorted(
        ["door_with_mask", "door_without_mask", "door_mask_weared_incorrect", "door_unassessable", "door_people_today",
         "door_with_mask_today", "door_without_mask_today", "door_mask_weared_incorrect_today",
         "door_unassessable_today", "door_infrared_today", "door_available"])
    assert len(ours) == 22
    # a night camera's "with a mask today" beside how many of the day's people were seen on grey frames,
    # as the counts topic has them: Home Assistant had no entity for it (its masked count judged by the night model)
    assert {k: ours["homeassistant/sensor/site/door_infrared_today/config"][k] for k in ("name", "value_template")} == {
        "name": "People seen on grey (infrared) frames today", "value_template": "{{ value_json.infrared }}"}
    # `people` holds the decided alone, as /v1/cameras' and the report's: "People today" beside "People
    # unassessable today" read as a total the unassessable were part of (their sensors summed past it).
    assert [ours[f"homeassistant/sensor/site/door_{key}_today/config"]["name"] for key in ("people", "unassessable")] == [
        "People judged today", "People unassessable today"]
    # renamed, its unique_id as before: Home Assistant keeps the entity, its entity id and history
    assert ours["homeassistant/sensor/site/door_people_today/config"]["unique_id"] == "maskwatch:site/door/people_today"
    assert ours["homeassistant/sensor/site/door_without_mask/config"] == {
        "name": "People without a mask in view", "state_topic": "site/door/without_mask",
        "unit_of_measurement": "people", "state_class": "measurement",
        "availability": [{"topic": "site/available"}, {"topic": "site/door/available"}], "availability_mode": "all",
        "unique_id": "maskwatch:site/door/without_mask",
        "device": {"identifiers": ["maskwatch:site/door"], "name": "Front door", "manufacturer": "maskwatch",
                   "model": "maskwatch"},
        "origin": {"name": "maskwatch"}}
    available = ours["homeassistant/binary_sensor/site/till_available/config"]
    assert (available["state_topic"], available["payload_on"], available["payload_off"], available["device_class"],
            available["availability"], available["device"]["name"]) == (
        "site/till/available", "online", "offline", "connectivity", [{"topic": "site/available"}], "till")
    # Every topic a config reads is one the site publishes, retained; each template reads a key of its JSON.
    for config in ours.values():
        assert config["state_topic"] in state and all(a["topic"] in state for a in config["availability"])
        if "value_template" in config:
            key = config["value_template"].removeprefix("{{ value_json.").removesuffix(" }}")
            assert key in json.loads(state[config["state_topic"]]), config
    assert len({c["unique_id"] for c in ours.values()}) == 22 and {
        c["device"]["identifiers"][0] for c in ours.values()} == {"maskwatch:site/door", "maskwatch:site/till"}
    # Retained, and sent after "online" and before the state, each connection.
    order = [topic for topic, _, kept in heard.messages if not kept]
    first_config = min(i for i, t in enumerate(order) if t.startswith("homeassistant/"))
    last_config = max(i for i, t in enumerate(order) if t.startswith("homeassistant/") and "gone" not in t)
    first_state = min(i for i, t in enumerate(order) if t.startswith(("site/door/", "site/till/")))
    assert order.index("site/available") < first_config and last_config < first_state, "\n".join(order)

    run({"door": "Front door"}, discovery=True)  # till removed from the file
    again = home_assistant_configs(retained(broker.port))
    assert {t: c for t, c in again.items() if t not in foreign} == {
        t: c for t, c in ours.items() if "/site/door_" in t}  # door's unique_ids as before; till's gone

    assert [r.getMessage() for r in caplog.records if "cleared" in r.getMessage()] == [
        f"MQTT 127.0.0.1:{broker.port}: cleared the retained topics of cameras this site does not run (disabled, "
        f"removed or renamed): {camera}" for camera in ("gone", "till")]

    assert retained(broker.port, "site/discovery") == {"site/discovery": '{"discovery_prefix":"homeassistant"}'}
    door = {t for t in ours if "/site/door_" in t}
    assert sorted(sent_under_discovery(run({"door": "Front door"}, discovery=False))) == sorted(
        (t, "") for t in door)  # off: door's configs cleared, the foreign ones left
    assert home_assistant_configs(retained(broker.port)) == {t: json.loads(p) for t, p in foreign.items()}
    assert retained(broker.port, "site/discovery") == {}  # nothing left to clear
    assert [r.getMessage() for r in caplog.records if "discovery is off" in r.getMessage()] == [
        f"MQTT 127.0.0.1:{broker.port}: cleared the Home Assistant configs of cameras door (discovery is off)"]
    assert sent_under_discovery(run({"door": "Front door"}, discovery=False)) == []  # off and nothing there: not read


def test_configs_under_an_earlier_discovery_prefix_are_cleared(broker, monkeypatch):  # noqa: F811
    """A site moved to another discovery_prefix left its configs under the old one: a Home Assistant
    still reading there kept a device per camera, never available again."""
    from maskwatch.site.discovery import camera_configs

    monkeypatch.setattr(site_mqtt, "SWEEP_SECONDS", 0.5)
    foreign = {**camera_configs("homeassistant", "other", "door", "Door"),  # another site's, same broker
               "homeassistant/light/kitchen/config": '{"unique_id": "kitchen"}'}
    retain(broker.port, foreign)
    for discovery_prefix in ("homeassistant", "ha/discovery"):
        publisher = MqttPublisher(broker_at(broker.port, prefix="site", discovery=True,
                                            discovery_prefix=discovery_prefix),
                                  cameras=["door"], names={"door": "Door"}).start()
        try:
            assert wait_until(lambda: retained(broker.port, "site/discovery") == {
                "site/discovery": json.dumps({"discovery_prefix": discovery_prefix}, separators=(",", ":"))}, 20)
        finally:
            publisher.stop()
    configs = {t: p for t, p in retained(broker.port).items() if t.endswith("/config")}
    assert configs == {**foreign, **camera_configs("ha/discovery", "site", "door", "Door")}


def test_no_two_prefixes_share_a_discovery_node_and_those_without_an_underscore_keep_theirs():
    """"shop/a" and "shop_a" were both node shop_a: two sites on one broker overwrote each other's
    configs in Home Assistant."""
    import itertools

    from maskwatch.site.discovery import node_id

    assert [node_id(p) for p in ("maskwatch", "maskwatch/east", "a-b/c")] == ["maskwatch", "maskwatch_east", "a-b_c"]
    levels = ["a", "_", "-", "a_", "_a", "a-", "-a", "a_-", "a-_", "a--", "a__"]
    prefixes = ["/".join(parts) for n in (1, 2, 3) for parts in itertools.product(levels, repeat=n)]
    by_node: dict[str, str] = {}
    for prefix in prefixes:
        assert by_node.setdefault(node_id(prefix), prefix) == prefix, (prefix, by_node[node_id(prefix)])
    assert node_id("shop/a") != node_id("shop_a") and node_id("a_/b") != node_id("a/_b")


def test_an_upgraded_site_moves_its_configs_off_a_shared_node_and_leaves_the_other_sites(broker, monkeypatch,  # noqa: F811
                                                                                          caplog):
    """A site with prefix shop_a had published under node shop_a, the node of shop/a's site too: at
    its start it clears its own old configs there (never shop/a's) and sends them under its own
    node, after the clearing, so that Home Assistant has each entity once."""
    from maskwatch.site.discovery import camera_configs, legacy_node_id, node_id

    monkeypatch.setattr(site_mqtt, "SWEEP_SECONDS", 0.5)
    neighbour = camera_configs("homeassistant", "shop/a", "door", "Door")  # shop/a's, at shop_a's old topics
    old = camera_configs("homeassistant", "shop_a", "till", "Till", legacy_node_id("shop_a"))
    assert node_id("shop/a") == legacy_node_id("shop_a") and not neighbour.keys() & old.keys()
    retain(broker.port, {**neighbour, **old})
    listener = Subscriber(broker.port, "homeassistant/#")
    publisher = MqttPublisher(broker_at(broker.port, prefix="shop_a", discovery=True), cameras=["till"],
                              names={"till": "Till"})
    publisher.start()
    try:
        now = camera_configs("homeassistant", "shop_a", "till", "Till")
        assert not now.keys() & old.keys()
        assert wait_until(lambda: home_assistant_configs(retained(broker.port)) == {
            t: json.loads(p) for t, p in {**neighbour, **now}.items()}, 20)

        def sent_after_the_clearing() -> list[str]:
            heard = [(t, p) for t, p, kept in listener.messages if not kept]
            cleared = max((i for i, (t, p) in enumerate(heard) if t in old and p == ""), default=len(heard))
            return [t for t, p in heard[cleared + 1:] if p]

        # The listener's own connection may hear the configs sent again after a fresh one reads them retained.
        assert wait_until(lambda: sent_after_the_clearing() == list(now), 10), sent_after_the_clearing()
        assert any("moved the Home Assistant configs of cameras till to homeassistant/<component>/_shop-_a/" in r.getMessage()
                   for r in caplog.records)
    finally:
        publisher.stop()
        listener.close()


@pytest.mark.system  # starts its own broker, with an ACL
def test_a_clearing_the_broker_refuses_is_said_and_the_marker_kept(tmp_path, monkeypatch, caplog):
    """A broker user allowed to read homeassistant/# but not to write there: mosquitto drops each
    clearing without a word, and the site said it had cleared configs that stayed."""
    from maskwatch.site.discovery import camera_configs, marker

    monkeypatch.setattr(site_mqtt, "SWEEP_SECONDS", 0.5)
    guarded = Broker(tmp_path, user=("site", "pw"), acl="topic readwrite #\nuser site\ntopic readwrite site/#\n"
                                                        "topic read homeassistant/#\n").start()
    try:
        left = {**camera_configs("homeassistant", "site", "door", "Door"), "site/discovery": marker("homeassistant")}
        retain(guarded.port, left)  # anonymous: may write anywhere
        publisher = MqttPublisher(broker_at(guarded.port, prefix="site", username="site", password="pw"),
                                  cameras=["door"]).start()  # discovery off now
        try:
            assert wait_until(lambda: any("did not take" in r.getMessage() for r in caplog.records), 20)
            assert publisher.swept.wait(20)
        finally:
            publisher.stop()
        kept = retained(guarded.port)
        assert {t: kept.get(t) for t in left} == left  # the configs stayed, and the marker to find them again
        said = [r.getMessage() for r in caplog.records if "did not take" in r.getMessage()]
        assert said == [f"MQTT 127.0.0.1:{guarded.port}: the broker did not take the clearing of 11 retained topics, "
                        "which stay (does its ACL let this user write there? it drops what it refuses without a "
                        "word): homeassistant/binary_sensor/site/door_available/config, "
                        "homeassistant/sensor/site/door_infrared_today/config, "
                        "homeassistant/sensor/site/door_mask_weared_incorrect/config, ..."]
    finally:
        guarded.stop()


def swept_once(port: int, prefix: str, record=None) -> None:
    """A site (user site, discovery under ha/) connects, sweeps the broker's retained topics once, stops."""
    publisher = MqttPublisher(broker_at(port, prefix=prefix, username="site", password="pw", discovery=True,
                                        discovery_prefix="ha"), cameras=["door"], names={"door": "Door"},
                              record=record).start()
    try:
        assert publisher.swept.wait(20)
    finally:
        publisher.stop()


def mend_acl(guarded: Broker, folder, rules: str) -> None:
    """The broker's ACL file rewritten and read again (mosquitto reloads it on SIGHUP). It says
    "Reloading config." and reloads in its one thread before it takes another packet: a client
    connecting once it said so is held to the new rules."""
    reloads = guarded.log.read_text().count("Reloading config")
    (folder / "mosquitto.acl").write_text(rules)
    guarded.process.send_signal(signal.SIGHUP)
    assert wait_until(lambda: guarded.log.read_text().count("Reloading config") > reloads, 10)


@pytest.mark.system  # starts its own broker, with an ACL
def test_an_old_discovery_prefix_whose_clearing_is_refused_stays_marked_and_is_tried_again(tmp_path, monkeypatch,
                                                                                            caplog):
    """discovery_prefix changed while the broker's ACL would not let the site clear the old one's
    configs: the marker was overwritten with the new discovery prefix, and the old configs were
    never looked at again. They stay named in it until their clearing is taken."""
    from maskwatch.site.discovery import camera_configs, marker

    monkeypatch.setattr(site_mqtt, "SWEEP_SECONDS", 0.5)
    rules = "topic readwrite #\nuser site\ntopic readwrite site/#\ntopic readwrite ha/#\ntopic {} homeassistant/#\n"
    guarded = Broker(tmp_path, user=("site", "pw"), acl=rules.format("read")).start()

    def run() -> None:
        swept_once(guarded.port, "site")

    try:
        old = camera_configs("homeassistant", "site", "door", "Door")
        retain(guarded.port, {**old, "site/discovery": marker("homeassistant")})  # anonymous: may write anywhere
        run()
        kept = retained(guarded.port)
        assert {t: kept.get(t) for t in old} == old
        assert kept["site/discovery"] == marker("ha", ["homeassistant"]) == \
            '{"discovery_prefix":"ha","uncleared":["homeassistant"]}'
        assert any("did not take the clearing of 11 retained topics" in r.getMessage() for r in caplog.records)

        mend_acl(guarded, tmp_path, rules.format("readwrite"))
        run()
        kept = retained(guarded.port)
        assert not kept.keys() & old.keys()  # tried again at the next connection, and cleared
        assert kept["site/discovery"] == marker("ha")
        assert {t for t in kept if t.endswith("/config")} == set(camera_configs("ha", "site", "door", "Door"))
    finally:
        guarded.stop()


@pytest.mark.system  # starts its own broker, with an ACL
def test_an_earlier_prefixs_configs_the_broker_would_not_clear_stay_marked_and_are_tried_again(tmp_path, monkeypatch):
    """mqtt.prefix changed (and discovery_prefix with it) while the broker's ACL would not let the
    site clear the old prefix's configs: their marker, which it did let it clear, went with the
    attempt, and the next connection looked for them only under the discovery prefix of now."""
    from maskwatch.site.discovery import camera_configs, marker
    from maskwatch.site.events import EventStore
    from maskwatch.site.mqtt_record import PublishedPrefix

    monkeypatch.setattr(site_mqtt, "SWEEP_SECONDS", 0.5)
    store = EventStore(str(tmp_path / "site.db"))
    PublishedPrefix(store.engine, store.url).write(["old"])
    rules = ("topic readwrite #\nuser site\ntopic readwrite old/#\ntopic readwrite new/#\ntopic readwrite ha/#\n"
             "topic {} homeassistant/#\n")
    guarded = Broker(tmp_path, user=("site", "pw"), acl=rules.format("read")).start()

    def run() -> None:
        swept_once(guarded.port, "new", PublishedPrefix(store.engine, store.url))

    try:
        old = camera_configs("homeassistant", "old", "door", "Door")
        retain(guarded.port, {**old, "old/discovery": marker("homeassistant")})  # anonymous: may write anywhere
        run()
        kept = retained(guarded.port)
        assert {t: kept.get(t) for t in old} == old and kept.get("old/discovery") == marker("homeassistant")
        assert PublishedPrefix(store.engine, store.url).read() == ["new", "old"]

        mend_acl(guarded, tmp_path, rules.format("readwrite"))
        run()
        kept = retained(guarded.port)
        assert not kept.keys() & {*old, "old/discovery"}  # tried again at the next connection, and cleared
        assert PublishedPrefix(store.engine, store.url).read() == ["new"]
    finally:
        guarded.stop()
        store.close()


def test_configs_under_the_prefix_the_site_published_under_before_are_cleared(broker, tmp_path, monkeypatch,  # noqa: F811
                                                                               caplog):
    """A site moved to another mqtt.prefix left the old one's configs: Home Assistant kept a device
    per camera, never available again. The site's database says which prefixes were its own; one
    whose `available` says online is another site's now, and is left, kept in the record beside the
    new one: a prefix changed again meanwhile was never cleared while the record held one prefix."""
    from maskwatch.site.discovery import camera_configs
    from maskwatch.site.events import EventStore
    from maskwatch.site.mqtt_record import PublishedPrefix

    monkeypatch.setattr(site_mqtt, "SWEEP_SECONDS", 0.5)
    store = EventStore(str(tmp_path / "site.db"))
    other = camera_configs("homeassistant", "other", "door", "Door")  # another site's, on the same broker
    retain(broker.port, other)

    def run(prefix: str) -> None:
        publisher = MqttPublisher(broker_at(broker.port, prefix=prefix, discovery=True), cameras=["door"],
                                  names={"door": "Door"},
                                  record=PublishedPrefix(store.engine, store.url)).start()
        try:
            assert publisher.swept.wait(20)
        finally:
            publisher.stop()

    def configs() -> dict[str, str]:
        return {t: p for t, p in retained(broker.port).items() if t.endswith("/config")}

    run("old")
    assert PublishedPrefix(store.engine, store.url).read() == ["old"]
    run("new")
    assert configs() == {**other, **camera_configs("homeassistant", "new", "door", "Door")}
    assert retained(broker.port, "old/discovery") == {} and PublishedPrefix(store.engine, store.url).read() == ["new"]
    assert [r.getMessage() for r in caplog.records if "this site's before" in r.getMessage()] == [
        f"MQTT 127.0.0.1:{broker.port}: cleared the Home Assistant configs of prefix old, this site's before "
        "(mqtt.prefix changed): 11 entities"]

    retain(broker.port, {"new/available": "online"})  # a site that runs under "new" now
    run("newer")
    assert configs() == {**other, **camera_configs("homeassistant", "new", "door", "Door"),
                         **camera_configs("homeassistant", "newer", "door", "Door")}
    assert PublishedPrefix(store.engine, store.url).read() == ["new", "newer"]  # "new" tried again next time

    run("newest")  # "newer" cleared, though "new" is still online
    assert configs() == {**other, **camera_configs("homeassistant", "new", "door", "Door"),
                         **camera_configs("homeassistant", "newest", "door", "Door")}
    assert PublishedPrefix(store.engine, store.url).read() == ["new", "newest"]
    retain(broker.port, {"new/available": "offline"})  # that site stopped
    run("newest")
    assert configs() == {**other, **camera_configs("homeassistant", "newest", "door", "Door")}
    assert PublishedPrefix(store.engine, store.url).read() == ["newest"]
    store.close()


@pytest.mark.system  # starts PostgreSQL
def test_the_prefix_record_on_postgresql_is_one_set_whoever_writes(postgres):  # noqa: F811
    """The recorded prefixes on a server database: each process migrates it (one waits for the
    other) and the last write is the one read."""
    from sqlalchemy import create_engine

    from maskwatch.site.mqtt_record import PublishedPrefix

    url = postgres.new_database("mqtt_record")
    engines = [create_engine(url) for _ in range(2)]
    try:
        first, second = (PublishedPrefix(engine, url) for engine in engines)
        assert first.read() == []
        first.write(["old"])
        second.write(["new", "newer"])
        assert first.read() == second.read() == ["new", "newer"]
    finally:
        for engine in engines:
            engine.dispose()


def test_tls_to_the_broker_checks_its_certificate_and_says_a_password_sent_in_clear(tmp_path, caplog):
    """mqtt.tls: the broker's certificate checked (ca_file, else the system's CAs), for the site and
    `run --probe` alike; without it a password to a broker beyond this machine went in clear, unsaid."""
    from maskwatch.site.mqtt_client import in_clear
    from maskwatch.site.probe import probe_mqtt
    from tests.test_security_deploy import self_signed

    cert, key = self_signed(tmp_path)
    user = ("site", "broker-pass")
    running = Broker(tmp_path, user=user, tls=(cert, key)).start()
    secured = broker_at(running.port, username=user[0], password=user[1], tls=True, ca_file=str(cert))
    try:
        assert probe_mqtt(secured, timeout=5).ok
        publisher = MqttPublisher(secured).start()
        try:
            assert wait_until(lambda: publisher.connected)
        finally:
            publisher.stop()
        unknown_ca = probe_mqtt(broker_at(running.port, username=user[0], password=user[1], tls=True), timeout=5)
        assert not unknown_ca.ok and "certificate verify failed" in unknown_ca.detail
        plain = probe_mqtt(broker_at(running.port, username=user[0], password=user[1]), timeout=5)
        assert not plain.ok and "mqtt.tls: true" in plain.detail
    finally:
        running.stop()
    beyond = MqttConfig(host="192.0.2.7", username="site", password="broker-pass")
    with caplog.at_level("WARNING", logger="maskwatch.site.mqtt"):
        MqttPublisher(beyond)
    assert "mqtt.password is sent to the broker in clear (no mqtt.tls)" in caplog.text
    assert "broker-pass" not in caplog.text
    assert in_clear(beyond.model_copy(update={"tls": True})) is None
    assert in_clear(beyond.model_copy(update={"host": "[::1]"})) is None
    assert in_clear(beyond.model_copy(update={"password": None})) is None



def test_todays_counts_read_first_are_not_sent_last():
    """publish_counts runs on the site's writer (after each person stored) and on its sweep (at
    midnight): the sweep's read, older, sent after the writer's newer one left today's retained
    counts one person short until the next person."""
    import threading

    reads, hold = iter([{"people": 4}, {"people": 5}]), threading.Event()
    first_read = threading.Event()

    def counts_of(camera):
        today = next(reads)
        if today == {"people": 4}:  # the sweep's read, held before it is sent
            first_read.set()
            hold.wait(5)
        return today

    publisher = MqttPublisher(MqttConfig(host="127.0.0.1", port=refused_port()), cameras=["door"], counts_of=counts_of)
    sweep = threading.Thread(target=publisher.publish_counts, args=("door",))
    sweep.start()
    assert first_read.wait(5)
    writer = threading.Thread(target=publisher.publish_counts, args=("door",))  # a person stored meanwhile
    writer.start()
    writer.join(0.5)  # (it waits for the sweep's to be sent, or runs through where nothing orders them)
    hold.set()
    sweep.join(5)
    writer.join(5)
    assert json.loads(publisher._state[publisher.topic("door", "counts")]) == {"people": 5}

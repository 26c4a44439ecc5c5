"""MQTT in Frigate's layout against a real mosquitto on loopback: availability with a last will,
events new/end, retained counts, and a broker that only comes up after the site."""

import json
import os
import signal
import subprocess
import sys

import pytest

from maskwatch.site.mqtt import MqttPublisher
from tests.mosquitto import Broker, Subscriber, broker  # noqa: F401  (fixture)
from tests.rtsp import free_port
from tests.test_cameras import wait_until

EVENT = {"id": 7, "camera": "door", "zone": None, "track_id": 3, "label": "without_mask", "probability": 0.9,
         "first_seen": 1.0, "last_seen": 2.0, "frames": 5, "snapshot": None}


def test_availability_events_and_counts(broker):  # noqa: F811
    listener = Subscriber(broker.port, "site/#")
    publisher = MqttPublisher("127.0.0.1", broker.port, prefix="site",
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
        assert new == {"type": "new", "camera": "door", "zone": None, "track_id": 3, "label": "without_mask",
                       "first_seen": 1.0}
        assert update == {"type": "update", "camera": "door", "zone": None, "track_id": 3,
                          "label": "mask_weared_incorrect", "before": "without_mask"}
        assert end == {"type": "end", "event": EVENT}
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


def test_the_last_will_says_offline_when_the_site_dies(broker):  # noqa: F811
    listener = Subscriber(broker.port, "maskwatch/available")
    child = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from maskwatch.site.mqtt import MqttPublisher; "
        f"MqttPublisher('127.0.0.1', {broker.port}).start(); print('up', flush=True); time.sleep(60)")],
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
    port = free_port()
    publisher = MqttPublisher("127.0.0.1", port).start()  # nobody listens yet: returns at once
    publisher.event_recorded(EVENT)
    # Said once, in the log and in the status, however often it retries.
    assert wait_until(lambda: publisher.status() == {"connected": False, "problem": "cannot reach the broker"}, 30)
    warned = [r.getMessage() for r in caplog.records if r.name == "maskwatch.site.mqtt"]
    assert warned[:1] == [f"MQTT 127.0.0.1:{port}: cannot reach the broker; retrying, up to 1000 messages kept "
                          "meanwhile"]
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


@pytest.mark.system  # starts its own broker, later
def test_after_a_long_outage_the_site_is_online_with_its_latest_state_and_newest_events(tmp_path):
    port = free_port()
    publisher = MqttPublisher("127.0.0.1", port, max_queued=100).start()  # nobody listens yet
    for n in range(150):  # more than it keeps: paho's full queue refused "online" itself
        publisher.event_recorded({**EVENT, "id": n})
        publisher.in_view({"camera": "door", "counts": {"with_mask": n % 7}})
    late = Broker(tmp_path, port).start()
    listener = None
    try:
        listener = Subscriber(port, "maskwatch/#")
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

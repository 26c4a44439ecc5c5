"""The driver's poll of its camera actors, with a stand-in for Ray: a slow actor's messages come
late, not never (the actor takes them off its queue when the call runs, answered or not)."""

import sys
import time
import types

from maskwatch.scale.fleet import RaySite, RemoteGroup, RemoteWorker
from maskwatch.site.event_sink import Listeners


class GetTimeoutError(TimeoutError):
    """Ray's own raises as a TimeoutError too (ray.exceptions.GetTimeoutError)."""


def fake_ray(answers: dict):
    """A `ray` whose get() answers a call once its entry in `answers` is set, and times out before."""
    ray = types.ModuleType("ray")
    error = type("RayError", (Exception,), {})
    ray.exceptions = types.SimpleNamespace(RayError=error, ActorDiedError=type("ActorDiedError", (error,), {}))

    def get(call, timeout=None):
        if answers.get(call) is None:
            raise GetTimeoutError("Get timed out")
        if isinstance(answers[call], Exception):  # the actor died under the call
            raise answers[call]
        return answers[call]

    def wait(calls, num_returns=1, timeout=None):  # a call is ready once answered
        ready = [c for c in calls if answers.get(c) is not None]
        return ready, [c for c in calls if c not in ready]

    ray.get, ray.wait = get, wait
    return ray


def test_a_slow_actors_messages_arrive_at_a_later_poll(monkeypatch):
    answers, made, heard = {}, [], []

    class Handle:
        class poll:  # noqa: N801  (a Ray method handle: handle.poll.remote())
            @staticmethod
            def remote():
                made.append(f"call-{len(made)}")
                return made[-1]

    monkeypatch.setitem(sys.modules, "ray", fake_ray(answers))
    site = RaySite.__new__(RaySite)
    site.groups = [RemoteGroup(["door"], handle=Handle())]
    site._listeners = Listeners(event=heard.append)
    site.poll()  # the actor is busy: no answer in time
    assert heard == [] and site.groups[0].error.startswith("camera actor unavailable (GetTimeoutError)")
    answers["call-0"] = ([("event", {"id": 1})], {"door": {"connected": True}})  # it answered, late
    site.poll()
    assert heard == [{"id": 1}] and made == ["call-0"]  # the same call, not a new one that lost them
    assert site.groups[0].error is None and site.groups[0].states == {"door": {"connected": True}}
    answers["call-1"] = ([], {"door": {"connected": True}})
    site.poll()
    assert made == ["call-0", "call-1"]


def test_a_dead_actors_cameras_show_nobody_in_view_once(monkeypatch):
    """MQTT's retained in-view counts went on showing the people of a camera whose actor died."""
    fake = fake_ray({})
    died = fake.exceptions.ActorDiedError

    def get(call, timeout=None):
        raise died("The actor died")

    fake.get = get
    monkeypatch.setitem(sys.modules, "ray", fake)

    class Handle:
        class poll:  # noqa: N801  (a Ray method handle)
            @staticmethod
            def remote():
                return "call"

    views = []
    site = RaySite.__new__(RaySite)
    site.groups = [RemoteGroup(["door", "till"], handle=Handle())]
    site._listeners = Listeners(in_view=views.append)
    site.poll()
    site.groups[0].restart_at = None  # not yet made anew: polled again
    site.poll()
    assert [v["camera"] for v in views] == ["door", "till"]  # once, not at every poll
    assert all(set(v["counts"].values()) == {0} for v in views)
    assert "ActorDiedError" in site.groups[0].error and site.groups[0].restart_at is not None


def test_a_slow_actor_costs_the_others_nothing(monkeypatch):
    """Polls waited for each actor in turn: with a shared deadline, the actors after a slow one got
    no time and showed as unavailable though they had answered."""
    answers = {"till-call": ([], {"till": {"connected": True}})}
    monkeypatch.setitem(sys.modules, "ray", fake_ray(answers))

    def handle(call):
        class Handle:
            class poll:  # noqa: N801  (a Ray method handle)
                @staticmethod
                def remote():
                    return call
        return Handle()

    site = RaySite.__new__(RaySite)
    site.groups = [RemoteGroup(["door"], handle=handle("door-call")), RemoteGroup(["till"], handle=handle("till-call"))]
    site._listeners = Listeners()
    site.poll()
    assert site.groups[0].error is not None and site.groups[1].error is None
    assert site.groups[1].states == {"till": {"connected": True}}


def test_an_actors_cameras_count_as_down_since_it_went_away(monkeypatch):
    """/v1/cameras' offline_since for a camera on an actor: the site's start while the actor starts,
    the actor's own (its reader's) once it answers, and the first poll it did not answer after that,
    unless the camera was down before it."""
    answers = {}
    monkeypatch.setitem(sys.modules, "ray", fake_ray(answers))
    calls = iter(["call-0", "call-1", "call-2"])

    class Handle:
        class poll:  # noqa: N801  (a Ray method handle)
            @staticmethod
            def remote():
                return next(calls)

    started = time.time()
    site = RaySite.__new__(RaySite)
    site.groups = [RemoteGroup(["door"], handle=Handle())]
    site._listeners = Listeners()
    door = RemoteWorker(site.groups[0], "door")
    # (said through boot_clock(): within a microsecond or so of the wall clock's own reading)
    assert started - 0.01 <= door.state()["offline_since"] <= time.time() + 0.01 and not door.state()["connected"]
    assert door.state()["grey_frames"] is False  # in /v1/cameras' schema: there while the actor starts too
    up = {"connected": True, "last_frame_at": started, "offline_since": None, "frames": 5, "reconnects": 0,
          "analysed": 5, "detected": 5, "fps": 5.0, "last_error": None, "analysis_error": None}
    answers["call-0"] = ([], {"door": up})
    site.poll()
    assert door.state() == up
    before = time.time()
    site.poll()  # call-1 is not answered: the actor is away
    away = door.state()
    # (said through boot_clock() as above: it read 67 µs before `before` once)
    assert not away["connected"] and before - 0.01 <= away["offline_since"] <= time.time() + 0.01
    site.poll()  # still away: since the first poll it missed, not the latest
    assert door.state()["offline_since"] == away["offline_since"]
    site.groups[0].states = {"door": {**up, "connected": False, "offline_since": started + 1}}
    assert door.state()["offline_since"] == started + 1  # down before its actor went away


def test_a_restarted_actors_cameras_keep_their_last_frame_and_outage(monkeypatch):
    """An actor restarted by Ray starts new readers: a camera still down after it answered with no
    last frame and down since the new actor's start. The card then said "not connected since the
    site started at 10:00" of a camera seen all morning, from a site started at 06:58, and
    maskwatch_camera_last_frame_timestamp_seconds went away."""
    answers = {}
    fake = fake_ray(answers)
    monkeypatch.setitem(sys.modules, "ray", fake)
    calls = iter(["call-0", "call-1", "call-2", "call-3"])

    class Handle:
        class poll:  # noqa: N801  (a Ray method handle)
            @staticmethod
            def remote():
                return next(calls)

    started = time.time() - 3600
    site = RaySite.__new__(RaySite)
    site.groups = [RemoteGroup(["door", "till"], handle=Handle())]
    site._listeners = Listeners()
    door, till = RemoteWorker(site.groups[0], "door"), RemoteWorker(site.groups[0], "till")
    state = {"connected": True, "last_frame_at": started + 60, "offline_since": None, "frames": 5, "reconnects": 0,
             "analysed": 5, "detected": 5, "fps": 5.0, "last_error": None, "analysis_error": None}
    never = {**state, "connected": False, "last_frame_at": None, "offline_since": started, "frames": 0}
    answers["call-0"] = ([], {"door": state, "till": never})
    site.poll()
    answers["call-1"] = fake.exceptions.RayError("the actor died")
    site.poll()
    died = door.state()["offline_since"]
    restarted = time.time()  # the new actor's readers start: no frame yet, down since then
    fresh = {**state, "connected": False, "last_frame_at": None, "offline_since": restarted, "frames": 0,
             "last_error": "rtsp://cam/stream: connection refused"}
    answers["call-2"] = ([], {"door": fresh, "till": fresh})
    site.poll()
    assert door.state()["last_frame_at"] == started + 60 and door.state()["offline_since"] == died
    assert door.state()["last_error"] == "rtsp://cam/stream: connection refused"
    assert till.state()["last_frame_at"] is None and till.state()["offline_since"] == started  # never connected
    back = {**state, "last_frame_at": time.time()}
    answers["call-3"] = ([], {"door": back, "till": back})
    site.poll()
    assert door.state() == back  # a frame from the new actor: its own figures again


def test_an_actors_cameras_outage_follows_a_clock_that_is_set(monkeypatch):
    """A site under Ray started on a box with no real-time clock (at 1970 or its last shutdown)
    and NTP set the clock 3 days forward while an actor had not answered: its cameras read down
    since the start on the old clock ("offline since 1970-01-01"), as the driver kept it."""
    import maskwatch.scale.fleet as fleet

    monkeypatch.setitem(sys.modules, "ray", fake_ray({}))
    step, real_time = [0.0], time.time
    monkeypatch.setattr(fleet.time, "time", lambda: real_time() + step[0])
    site = RaySite.__new__(RaySite)
    site.groups = [RemoteGroup(["door"], handle=None)]
    door = RemoteWorker(site.groups[0], "door")
    for jump in (3 * 86400.0, -600.0):  # NTP; then set back
        step[0] += jump
        now = time.time()
        assert now - 60 < door.state()["offline_since"] <= now, (jump, now - door.state()["offline_since"])
        assert door.state()["offline_since"] == door.state()["offline_since"]  # a steady clock: the same time

"""`maskwatch run --ray`: a 2-camera site whose cameras run on Ray actors and write their events
into the site's database; an actor that dies comes back with its cameras."""

import signal
import subprocess
import sys
import time

import httpx
import pytest
from fastapi.testclient import TestClient

from maskwatch.detection.detector import Detector
from maskwatch.scale.fleet import RaySite, absolute_paths
from maskwatch.serving.app import create_app
from maskwatch.site.config import load_site_config
from maskwatch.site.events import EventStore
from tests.link_proxy import LinkProxy
from tests.rtsp import rtsp_server  # noqa: F401  (fixture)
from tests.test_cameras import wait_until
from tests.test_ray_batch import alive, descendants
from tests.test_detection import make_video
from tests.postgres import postgres  # noqa: F401  (fixture)
from tests.test_site import SiteProcess, leaving_clip, still_clip

ray = pytest.importorskip("ray")


def two_cameras(folder, sample_dir) -> str:
    """Two looped video files: one photo held (the same people throughout), and three in turn."""
    still_clip(folder / "door.mp4", sample_dir)
    make_video(folder / "till.mp4", sample_dir, frames=6)
    return "  door: {source: door.mp4}\n  till: {source: till.mp4}\n"


@pytest.mark.parametrize("stop", ["SIGINT", "SIGTERM"])
def test_run_with_ray_stores_both_cameras_events_and_leaves_no_process(tmp_path, sample_dir, stop):
    """Ctrl-C, or SIGTERM (docker stop, systemd): uvicorn raised SIGTERM again once stopped, which
    ended the process inside the cluster's block, before its ray.shutdown."""
    running = SiteProcess(tmp_path, two_cameras(tmp_path, sample_dir), args=("--ray", "local"))
    try:
        assert wait_until(lambda: all(running.camera(c)["analysed"] >= 4 for c in ("door", "till")), 60)
        assert running.get("/v1/cameras/door/frame.jpg").headers["content-type"] == "image/jpeg"
        # the same rules as without Ray: a site with users asks for credentials (issue 25)
        assert httpx.get(running.base + "/v1/cameras/door/frame.jpg", timeout=10).status_code == 401
        # This site's cluster (its GCS, raylet, workers), not another Ray running on the machine.
        cluster = descendants(running.process.pid)
    finally:
        code = running.stop(getattr(signal, stop))
    # 143 in a shell after SIGTERM, a clean stop to systemd (docs/deployment.md)
    assert code == {"SIGINT": 0, "SIGTERM": -signal.SIGTERM}[stop], (tmp_path / "run.log").read_text()
    # People in view at the stop are decided on the way out, in the actors, into the database.
    store = EventStore(str(tmp_path / "site.db"))
    events = store.events()
    assert {e["camera"] for e in events} == {"door", "till"}
    assert all((tmp_path / "snapshots" / e["snapshot"]).is_file() for e in events)
    assert sum(c["people"] + c["unassessable"] for c in store.counts()) == len(events)
    store.close()
    # the local cluster went with the site
    assert len(cluster) > 3 and wait_until(lambda: not alive(cluster), 20), alive(cluster)


def pid_of(actor) -> int | None:
    """The actor's process id; None while it is restarting."""
    try:
        return ray.get(actor.pid.remote(), timeout=10)
    except ray.exceptions.RayError:
        return None


def test_a_killed_camera_actor_comes_back_with_its_cameras(cluster, tmp_path, sample_dir):
    (tmp_path / "site.yaml").write_text(f"""
defaults: {{fps: 3, detect_every: 1, stall_timeout: 2, retry_max: 0.5}}
cameras:
{two_cameras(tmp_path, sample_dir)}
storage: {{database: site.db, snapshots: snapshots}}
""")
    detector = Detector.load()
    site = RaySite(load_site_config(tmp_path / "site.yaml"), detector)
    assert [group.camera_ids for group in site.groups] == [["door"], ["till"]]
    with TestClient(create_app(detector, site=site)) as api:
        def analysed(camera: str) -> int:
            row = next(c for c in api.get("/v1/cameras").json() if c["id"] == camera)
            return row["analysed"] if row["connected"] else -1

        assert wait_until(lambda: analysed("door") >= 3 and analysed("till") >= 3, 60)
        assert api.get("/v1/cameras/till/frame.jpg").content[:2] == b"\xff\xd8"
        door = site.groups[0].handle
        first_pid = ray.get(door.pid.remote())
        ray.kill(door, no_restart=False)  # as a crash: Ray restarts the actor, and it its cameras
        killed_at = time.time()
        assert wait_until(lambda: pid_of(door) not in (None, first_pid), 30)  # a new process
        assert wait_until(lambda: analysed("door") >= 3, 30)
        # An actor dead for good (its restart failed: the database away as it started) was polled
        # as dead for ever; the driver makes a new one, and the row keeps its fields meanwhile.
        till = site.groups[1].handle
        ray.kill(till, no_restart=True)
        assert wait_until(lambda: "ActorDiedError" in (site.groups[1].error or ""), 30)
        row = next(c for c in api.get("/v1/cameras").json() if c["id"] == "till")
        assert not row["connected"] and "detected" in row and "\x1b" not in row["last_error"]
        assert row["offline_since"] is not None  # since the actor went away (or its camera's own outage)
        assert wait_until(lambda: site.groups[1].handle is not till and analysed("till") >= 3, 60)
    # Leaving the app stopped the site: the people in view were decided and stored.
    store = EventStore(str(tmp_path / "site.db"))
    door_events = store.events(camera="door")
    assert door_events and all(e["first_seen"] > killed_at for e in door_events)  # seen by the new actor
    assert store.events(camera="till")
    store.close()


def test_a_failing_listener_costs_its_message_not_the_poller(caplog):
    import logging
    from types import SimpleNamespace

    from maskwatch.runtime import ProblemLog
    from maskwatch.site.event_sink import Listeners

    heard = []

    def counts_of(body):  # MQTT's in-view listener, its database away
        raise OSError("database is locked")

    site = SimpleNamespace(_listeners=Listeners(event=heard.append, in_view=counts_of),
                           _listener_problems=ProblemLog(logging.getLogger("maskwatch.scale.fleet"),
                                                         "a camera actor's message"))
    messages = [("in_view", {"camera": "door"}), ("event", {"id": 1}), ("in_view", {"camera": "door"}),
                ("event", {"id": 2})]
    RaySite._dispatch(site, messages)  # raised at the first message before
    assert heard == [{"id": 1}, {"id": 2}]
    said = [r.getMessage() for r in caplog.records if r.name == "maskwatch.scale.fleet"]
    assert said == ["a camera actor's message: in_view listener: OSError: database is locked"]  # once per new problem


def test_an_actors_warnings_are_the_drivers_log_lines(tmp_path, caplog):
    """A camera actor's warnings went to its stderr, a file in Ray's session folder: `run --ray`
    never said that a camera was down. They come with its answer to the poll."""
    import logging
    from types import SimpleNamespace

    from maskwatch.runtime import ProblemLog
    from maskwatch.scale.fleet import CameraGroup
    from maskwatch.site.event_sink import Listeners

    (tmp_path / "site.yaml").write_text("defaults: {stall_timeout: 1, retry_max: 1}\n"
                                        "cameras:\n  door: {source: 'rtsp://127.0.0.1:1/none'}\n"
                                        "storage: {database: site.db}\n")
    config = absolute_paths(load_site_config(tmp_path / "site.yaml", environ={}))
    group = CameraGroup(config.cameras, config.storage)  # in this process, as Ray would run it
    try:
        assert wait_until(lambda: any(kind == "log" for kind, _ in group.messages), 20)
    finally:
        messages = group.stop()
    caplog.clear()
    site = SimpleNamespace(_listeners=Listeners(), _listener_problems=ProblemLog(logging.getLogger("x"), "x"))
    RaySite._dispatch(site, messages)
    [said] = [r for r in caplog.records if r.name == "maskwatch.video.cameras"]
    assert said.levelname == "WARNING" and said.getMessage() == (
        "door (rtsp://127.0.0.1:1/none): cannot reach 127.0.0.1:1 (Connection refused); retrying, at most 1 s apart")


def test_the_people_an_actor_could_not_store_at_its_stop_are_in_the_drivers_stopped_line(tmp_path, caplog):
    """Each actor has its own writer: at a stop its people the database refused were said in its
    relayed lines, but the driver's `stopped: N people stored` line, which counted its own writer
    only (under --ray it stores nobody), never said that any could not be stored."""
    import logging
    from types import SimpleNamespace

    import sqlalchemy

    from maskwatch.runtime import ProblemLog
    from maskwatch.scale.fleet import CameraGroup
    from maskwatch.site.event_sink import Listeners
    from maskwatch.site.event_writer import Person
    from tests.test_events import person

    (tmp_path / "site.yaml").write_text("cameras:\n  door: {source: 'rtsp://127.0.0.1:1/none'}\n"
                                        "storage: {database: site.db}\n")
    config = absolute_paths(load_site_config(tmp_path / "site.yaml", environ={}))
    group = CameraGroup(config.cameras, config.storage)  # in this process, as Ray would run it

    def full(*args, **kwargs):
        raise sqlalchemy.exc.OperationalError("INSERT", {}, Exception("database or disk is full"))

    group.store.record = full
    try:
        group.writer.put(Person("door", None, person(1, (0.9, 0.05, 0.05)), None, False, lambda event: None))
    finally:
        messages = group.stop()
    assert ("unstored", {"people": 1}) in messages
    site = SimpleNamespace(_listeners=Listeners(), _listener_problems=ProblemLog(logging.getLogger("x"), "x"),
                           unstored=0)
    RaySite._dispatch(site, messages)
    assert site.unstored == 1  # Site.stop says it: `stopped: ... ; 1 could not be stored`
    assert "camera door: 1 people could not be stored: OperationalError: database or disk is full" in caplog.text


def test_an_actors_info_lines_are_relayed_where_the_driver_logs_them(tmp_path, rtsp_server):  # noqa: F811
    """MASKWATCH_LOG_LEVEL=INFO shows a camera's stream reopened within offline_after (a bus's 4G
    drop), at INFO: `run` said it, `run --ray` never did (its actors relayed warnings only)."""
    import logging

    from maskwatch.scale.fleet import CameraGroup

    proxy = LinkProxy(rtsp_server.port)
    (tmp_path / "site.yaml").write_text("defaults: {stall_timeout: 8, retry_max: 0.5}\n"
                                        f"cameras:\n  bus: {{source: '{proxy.url()}'}}\n"
                                        "storage: {database: site.db}\n")
    config = absolute_paths(load_site_config(tmp_path / "site.yaml", environ={}))
    before = logging.getLogger("maskwatch").level
    group = CameraGroup(config.cameras, config.storage, log_level=logging.INFO)  # in this process
    try:
        camera = group.workers["bus"]
        assert wait_until(lambda: camera.reader.state().frames > 0, 30), camera.reader.state()
        proxy.drop()

        def said() -> list[dict]:
            return [body for kind, body in group.messages if kind == "log" and body["levelno"] == logging.INFO]

        assert wait_until(said, 20), list(group.messages)
        lines = said()
    finally:
        group.stop()
        proxy.close()
    assert lines[0]["msg"].startswith(f"bus ({proxy.url()}): frames again within offline_after (8 s) after: ")
    assert logging.getLogger("maskwatch").level == before


def test_an_actors_cameras_analyse_on_through_a_hung_postgresql_and_it_is_said(tmp_path, sample_dir, postgres):  # noqa: F811
    """A PostgreSQL server that hung held every actor's camera in its write: no frame analysed (and,
    before the actors had a stall watch, not a line in the log). An actor's cameras hand their
    people to its writer, as `run`'s do: they analyse on, and the hang is said, relayed to the driver."""
    import os

    from maskwatch.scale.fleet import CameraGroup

    pytest.importorskip("psycopg")
    leaving_clip(tmp_path / "door.mp4", sample_dir)  # people leave every 7 s: a write each time
    database = postgres.new_database("actor_stuck")
    (tmp_path / "site.yaml").write_text("defaults: {fps: 3, detect_every: 1, stall_timeout: 2}\n"
                                        "cameras:\n  door: {source: door.mp4}\n"
                                        f"storage: {{database: '{database}'}}\n")
    config = absolute_paths(load_site_config(tmp_path / "site.yaml", environ={}))
    group = CameraGroup(config.cameras, config.storage)  # in this process, as Ray would run it
    postmaster = int((postgres.data / "postmaster.pid").read_text().split()[0])
    server = []

    def said(words: str) -> list[str]:
        return [body["msg"] for kind, body in list(group.messages)
                if kind == "log" and body["name"] == "maskwatch.site.event_sink" and words in body["msg"]]

    try:
        assert wait_until(lambda: group.workers["door"].state()["analysed"] > 0 and any(
            kind == "event" for kind, _ in list(group.messages)), 60), list(group.messages)  # stored: connected
        server = [postmaster, *map(int, subprocess.run(["pgrep", "-P", str(postmaster)], capture_output=True,
                                                        text=True).stdout.split())]
        for pid in server:
            os.kill(pid, signal.SIGSTOP)
        assert wait_until(lambda: said("the database has not answered a write for "), 40), list(group.messages)
        analysed = group.workers["door"].state()["analysed"]
        assert wait_until(lambda: group.workers["door"].state()["analysed"] > analysed + 3, 20)  # analysing on
        for pid in server:
            os.kill(pid, signal.SIGCONT)
        assert wait_until(lambda: said("the database answered again after "), 30), list(group.messages)
        assert not [body for kind, body in list(group.messages) if kind == "log" and body["name"] == "maskwatch.site.stalls"]
    finally:
        for pid in server:
            os.kill(pid, signal.SIGCONT)
        group.stop()


def test_paths_are_made_absolute_for_actors_elsewhere(tmp_path, monkeypatch):
    (tmp_path / "door.mp4").write_bytes(b"")
    (tmp_path / "door-small.mp4").write_bytes(b"")
    (tmp_path / "site.yaml").write_text("cameras:\n  door: {source: door.mp4, detect_source: door-small.mp4}\n"
                                        "  cam: {source: 'rtsp://h/s'}\nstorage: {database: site.db, snapshots: snaps}\n")
    monkeypatch.chdir(tmp_path)
    config = absolute_paths(load_site_config("site.yaml"))
    assert config.cameras["door"].source == str(tmp_path / "door.mp4")
    assert config.cameras["door"].detect_source == str(tmp_path / "door-small.mp4")
    assert config.cameras["cam"].source == "rtsp://h/s"
    assert config.storage.database == f"sqlite:///{tmp_path / 'site.db'}"
    assert config.storage.snapshots == str(tmp_path / "snaps")


def test_a_bad_ray_address_stops_run_at_once(tmp_path, sample_dir):
    (tmp_path / "site.yaml").write_text(f"cameras:\n{two_cameras(tmp_path, sample_dir)}")
    result = subprocess.run([sys.executable, "-m", "maskwatch.cli", "run", "--config", str(tmp_path / "site.yaml"),
                             "--ray", "127.0.0.1:1"], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1
    assert "error: cannot reach a Ray cluster at 127.0.0.1:1" in result.stderr


def test_a_ray_sites_grey_camera_counts_infrared_and_its_compliance_alert_outlives_a_restart(cluster, tmp_path,
                                                                                            sample_dir):
    """`run --ray`'s cameras run in actors, its compliance rules in the driver: a night camera's people
    counted `infrared` and marked so on their events, as `run`'s are, and an alert that fired stored
    with its figures, listed by GET /v1/alerts after the site restarts too."""
    from tests.test_night import clip, grey, sample_photos

    clip(tmp_path / "night.mp4", [grey(photo) for photo in sample_photos(sample_dir, 3)])  # looped: 3 people in turn
    (tmp_path / "site.yaml").write_text("""
defaults: {fps: 3, detect_every: 1, stall_timeout: 2, retry_max: 0.5}
cameras:
  night: {source: night.mp4}
storage: {database: site.db, snapshots: snapshots}
alerts:
  compliance: [{camera: night, below: 100, minutes: 15, min_people: 1, cooldown: 0}]
""")
    config, detector = load_site_config(tmp_path / "site.yaml", environ={}), Detector.load()
    site = RaySite(config, detector)
    with TestClient(create_app(detector, site=site)) as api:
        # a rule's check, as its thread makes every 30 s, until the people stored are under 100 % masked
        assert wait_until(lambda: site.compliance.check(), 90)
        [fired] = site.compliance.stats.last
        listed = api.get("/v1/alerts").json()["alerts"]
        events = api.get("/v1/events", params={"camera": "night"}).json()["events"]
    assert fired["camera"] == "night" and fired["people"] >= 1 and fired["below"] == 100
    assert fired["infrared"] == fired["seen"] > 0, fired  # every person on grey frames, and the alert says so
    assert events and all(event["infrared"] for event in events), events
    store = EventStore(str(tmp_path / "site.db"))
    counts = store.counts()
    store.close()
    assert sum(row["infrared"] for row in counts) == sum(row["people"] + row["unassessable"] for row in counts) > 0
    kept = {name: fired[name] for name in ("rule", "camera", "compliance", "people", "with_mask", "unassessable",
                                          "infrared", "seen")}
    assert kept in [{name: alert[name] for name in kept} for alert in listed], listed
    # The site restarted over the same database: the alert is listed still, with its fields.
    site = RaySite(config, detector)
    with TestClient(create_app(detector, site=site)) as api:
        again = api.get("/v1/alerts").json()["alerts"]
    assert kept in [{name: alert[name] for name in kept} for alert in again], again

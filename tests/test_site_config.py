"""The site config: YAML cameras keyed by id, defaults, ${ENV} secrets, every error named."""

import math
import re
import time

import pytest
from typer.testing import CliRunner

from maskwatch.cli import app
from maskwatch.site.config import SiteConfigError, load_site_config
from tests.conftest import ROOT

EXAMPLE = ROOT / "src" / "maskwatch" / "examples" / "site.yaml"  # shipped: `run --init` writes it


def write(tmp_path, text):
    path = tmp_path / "site.yaml"
    path.write_text(text)
    return path


def test_the_example_config_is_valid():
    config = load_site_config(EXAMPLE, environ={"CAM_PASSWORD": "s3cret", "WEBHOOK_SECRET": "0123456789"})
    assert list(config.cameras) == ["entrance", "pharmacy", "office"]
    entrance = config.cameras["entrance"]
    assert entrance.source == "rtsp://viewer:s3cret@192.168.1.20:554/stream1"
    assert entrance.name == "Front door" and entrance.fps == 8 and entrance.detect_every == 2
    assert set(entrance.zones) == {"door", "queue"}
    assert config.cameras["pharmacy"].detect_every == 1 and config.cameras["pharmacy"].fps == 5
    assert config.cameras["office"].min_face == 12
    assert config.storage.database == str(EXAMPLE.parent / "maskwatch.db")
    (hook,) = config.alerts.webhooks
    assert hook.secret == "0123456789" and hook.cameras == ["entrance"] and hook.cooldown == 60
    assert (config.mqtt.host, config.mqtt.port, config.mqtt.prefix) == ("127.0.0.1", 1883, "maskwatch")


def test_defaults_apply_and_cameras_override(tmp_path):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"")
    path = write(tmp_path, """
defaults: {fps: 3, detect_every: 4}
cameras:
  a: {source: clip.mp4}
  b: {source: webcam:1, fps: 7}
""")
    config = load_site_config(path, environ={})
    assert (config.cameras["a"].fps, config.cameras["a"].detect_every) == (3, 4)
    assert (config.cameras["b"].fps, config.cameras["b"].detect_every) == (7, 4)
    assert config.cameras["a"].source == str(clip) and config.cameras["a"].name == "a"


def test_an_unset_environment_variable_is_named_with_its_camera(tmp_path):
    path = write(tmp_path, "cameras:\n  door:\n    source: rtsp://u:${NOPE_PASSWORD}@h/s\n")
    with pytest.raises(SiteConfigError) as err:
        load_site_config(path, environ={})
    assert err.value.problems == ["camera 'door', field 'source': environment variable NOPE_PASSWORD is not set"]


def test_an_environment_variable_set_empty_is_refused_unless_its_default_says_empty(tmp_path):
    """`CAM_PASSWORD=` passed --check, and the camera then answered 401: refused as an unset one is,
    naming the variable and the setting; `${NAME:-}` (or any default) says empty on purpose."""
    path = write(tmp_path, "cameras:\n  door:\n    source: rtsp://u:${CAM_PASSWORD}@h/s\n"
                           "storage:\n  database: 'site${SUFFIX:-}.db'\n  snapshots: 'snaps${DIR:-_x}'\n")
    with pytest.raises(SiteConfigError) as err:
        load_site_config(path, environ={"CAM_PASSWORD": "", "SUFFIX": ""})
    assert err.value.problems == ["camera 'door', field 'source': environment variable CAM_PASSWORD is set but empty "
                                  "(write ${CAM_PASSWORD:-} where empty is meant)"]
    config = load_site_config(path, environ={"CAM_PASSWORD": "pw", "SUFFIX": "-2"})
    assert config.cameras["door"].source == "rtsp://u:pw@h/s"
    assert (config.storage.database.rsplit("/", 1)[-1], str(config.storage.snapshots).rsplit("/", 1)[-1]) == ("site-2.db", "snaps_x")


@pytest.mark.parametrize("camera, expected", [
    ("{source: webcam:x}", "camera 'c', field 'source': webcam sources are written webcam:N"),
    ("{source: ftp://h/s}", "camera 'c', field 'source': stream URLs start with one of"),
    ("{source: /no/such.mp4}", "camera 'c', field 'source': no such video file: /no/such.mp4"),
    ("{name: x}", "camera 'c', field 'source': missing (required)"),
    ("{source: webcam:0, fps: -1}", "camera 'c', field 'fps': Input should be greater than 0 (got -1)"),
    ("{source: webcam:0, detect_evry: 2}", "camera 'c', field 'detect_evry': unknown setting (a typo?)"),
    ("{source: webcam:0, zones: {door: [[0, 0], [1, 0]]}}", "camera 'c', field 'zones': zone 'door' needs at least 3 points, got 2"),
    ("{source: webcam:0, zones: {door: [[0, 0], [1.5, 0], [1, 1]]}}", "camera 'c', field 'zones.door.1.0': Input should be less than or equal to 1"),
    ("webcam:0", "camera 'c': expected a mapping of settings, got str"),
    ("{source: webcam:0, upscale: 0}", "camera 'c', field 'upscale': Input should be greater than 0 (got 0)"),
    ("{source: webcam:0, upscale: 5}", "camera 'c', field 'upscale': Input should be less than or equal to 4"),
    ("{source: webcam:0, moving: sometimes}", "camera 'c', field 'moving': Input should be a valid boolean"),
    # --check passed these, and the camera retried for ever
    ("{source: 'rtsp://cam:70000/live'}", "camera 'c', field 'source': the URL's port must be a number of 1-65535"),
    ("{source: 'rtsp://u:pw@/live'}", "camera 'c', field 'source': the URL names no host"),
    ("{source: 'rtsp://u:p/w@cam/live'}", "camera 'c', field 'source': the URL's port must be a number of 1-65535 "
                                          "(a / ? or # in a password is written %2F"),
    ("{source: 'rtsp://u:p#w@cam/live'}", "camera 'c', field 'source': the URL's port must be a number of 1-65535 "
                                          "(a / ? or # in a password"),  # FFmpeg: "Port missing in uri"
    ("{source: 'rtsp://cam..local/live'}", "camera 'c', field 'source': the URL's host is not a valid name"),
    ("{source: ''}", "camera 'c', field 'source': empty"),  # was 'no such video file: <the config's folder>'
    ("{source: 0}", "camera 'c', field 'source': a webcam is written webcam:0"),  # was 'Input should be a valid string'
    # milliseconds for seconds; past 24 days OpenCV's int timeout ended the reader in silence
    ("{source: webcam:0, stall_timeout: 10000}", "camera 'c', field 'stall_timeout': Input should be less than or equal to 3600"),
    ("{source: webcam:0, retry_max: 10000}", "camera 'c', field 'retry_max': Input should be less than or equal to 3600"),
    ("{source: webcam:0, offline_after: 10000}", "camera 'c', field 'offline_after': Input should be less than or equal to 3600"),
    # a camera down before its stream is reopened: offline_after is the longer tolerance of a mobile link
    ("{source: webcam:0, stall_timeout: 20, offline_after: 15}", "camera 'c', field 'offline_after': 15 s is shorter "
                                                                 "than stall_timeout (20 s)"),
    # a zone in pixels was one line per coordinate, 'Input should be less than or equal to 1'
    ("{source: webcam:0, zones: {door: [[0, 0], [640, 0], [640, 480], [0, 480]]}}",
     "camera 'c', field 'zones': zone 'door': corners are in 0-1 of the frame's width and height, not pixels (got 640)"),
])
def test_a_bad_camera_names_the_camera_and_the_field(tmp_path, camera, expected):
    path = write(tmp_path, f"cameras:\n  c: {camera}\n")
    with pytest.raises(SiteConfigError) as err:
        load_site_config(path, environ={})
    assert len(err.value.problems) == 1 and err.value.problems[0].startswith(expected), err.value.problems


def test_a_camera_file_of_sound_alone_is_refused_at_the_start(tmp_path):
    """`serve --source voice.mp4` or a site camera given a phone's sound recording started, and the
    camera retried the file for ever ("cannot open" in the log); --check passed it."""
    from tests.test_detection import sound_only_mp4

    (tmp_path / "voice.mp4").write_bytes(sound_only_mp4())
    path = write(tmp_path, f"cameras:\n  c: {{source: {tmp_path / 'voice.mp4'}}}\n")
    with pytest.raises(SiteConfigError) as err:
        load_site_config(path, environ={})
    assert err.value.problems == [f"camera 'c', field 'source': {tmp_path / 'voice.mp4'}: an audio file: it holds "
                                  "sound and no video track"]


def test_every_problem_is_reported_at_once(tmp_path):
    path = write(tmp_path, """
defaults: {fps: 0}
cameras:
  a: {source: webcam:0, stall_timeout: 0}
  b: {source: "rtsp://${MISSING}@h/s"}
  "bad id!": {source: webcam:1}
""")
    with pytest.raises(SiteConfigError) as err:
        load_site_config(path, environ={})
    text = "\n".join(err.value.problems)
    assert "field 'defaults.fps'" in text
    assert "camera 'b', field 'source': environment variable MISSING is not set" in text
    assert "camera 'bad id!': the id must be" in text
    assert "camera 'a', field 'stall_timeout'" in text  # validated too, not held back by the problems above
    assert "camera 'a', field 'fps'" not in text  # the defaults' fps is said once, as the defaults'


@pytest.mark.parametrize("text, expected", [
    ("cameras: [1, 2", "not valid YAML"),
    ("- a\n- b\n", "expected a mapping"),
    ("server: {port: 1}\n", "cameras: missing"),
    ("cameras: {}\n", "at least one camera"),
    # 'letters' read as taking é: the id names MQTT topics, URLs and files, the display name is name:
    ("cameras: {café: {source: webcam:0}}\n", "camera 'café': the id must be 1-64 of A-Z, .*go in its `name:`"),
    # a stream URL mistyped read as a file, said as a missing file alone
    ("cameras: {a: {source: 'rtsp:/10.0.0.5/s'}}\n", "no such video file: rtsp:/10.0.0.5/s; a stream URL is written rtsp://host"),
    ("cameras: {a: {source: 'HTTP//10.0.0.5/s'}}\n", "no such video file: HTTP//10.0.0.5/s; a stream URL is written http://host"),
    ("cameras: {a: {source: '10.0.0.5:554/s'}}\n", "no such video file: 10.0.0.5:554/s; a stream URL is written with its scheme"),
    # uvicorn reads a wait of 0 for open requests as no limit: a stalled request would hold the stop
    ("server: {open_requests_at_stop_seconds: 0}\ncameras: {a: {source: webcam:0}}\n",
     "field 'server.open_requests_at_stop_seconds': Input should be greater than 0"),
])
def test_a_bad_file_says_what_is_wrong(tmp_path, text, expected):
    with pytest.raises(SiteConfigError, match=expected):
        load_site_config(write(tmp_path, text), environ={})


def test_a_yaml_error_says_its_line_not_the_password_on_it(tmp_path):
    """PyYAML's message quotes the line it stopped on: a camera URL's password was printed."""
    path = write(tmp_path, "cameras:\n  door: {source: rtsp://viewer:hunter2@cam/s, fps: 5\n")
    with pytest.raises(SiteConfigError) as err:
        load_site_config(path, environ={})
    assert err.value.problems == ["not valid YAML: while parsing a flow mapping (line 2, column 9); "
                                  "expected ',' or '}', but got '<stream end>' (line 3, column 1)"]


def test_an_indentation_slip_is_said_as_one(tmp_path):
    """PyYAML's "expected <block end>, but found '<block mapping start>'" named no indentation, and a
    camera indented too little was "field 'till': unknown setting (a typo?)"."""
    camera = "cameras:\n  door:\n    source: webcam:0\n"
    problems = {}
    for slip, text in (("tab", camera + "\tfps: 5\n"), ("between", camera + "   fps: 5\n"),
                       ("top", camera + "till:\n    source: webcam:1\n")):
        with pytest.raises(SiteConfigError) as err:
            load_site_config(write(tmp_path, text), environ={})
        problems[slip] = err.value.problems
    assert problems["tab"] == ["not valid YAML: while scanning for the next token; found character '\\t' that cannot "
                               "start any token (line 4, column 1); YAML indents with spaces, not tabs"]
    assert problems["between"] == ["not valid YAML: while parsing a block mapping (line 2, column 3); expected <block end>, "
                                  "but found '<block mapping start>' (line 4, column 4); check the indentation there and "
                                  "on the line above: the settings of one thing line up under it, indented more than its "
                                  "name (and a value holding ': ' goes in quotes); a setting's name is followed by ': ' "
                                  "(fps: 5, not fps 5)"]
    assert problems["top"] == ["field 'till': unknown section (a typo?); a site's are cameras, defaults, server, storage, "
                               "alerts, mqtt, runtime, models, reports, timezone; a camera goes under cameras:, indented"]


@pytest.mark.parametrize("text, said", [
    ("cameras:\n  door:\n    name Front door\n    source: webcam:0\n",
     "not valid YAML: mapping values are not allowed here (line 4, column 11); check the indentation there and on "
     "the line above"),
    ("cameras:\n  door:\n    source: webcam:0\n    fps 8\n",
     "not valid YAML: while scanning a simple key (line 4, column 5); could not find expected ':' (line 5, column 1)"),
])
def test_a_setting_missing_its_colon_is_said_so(tmp_path, text, said):
    """`name Front door` was told as the next line's indentation, and `fps 8` on the last line had no hint."""
    with pytest.raises(SiteConfigError) as err:
        load_site_config(write(tmp_path, text), environ={})
    (problem,) = err.value.problems
    assert problem.startswith(said) and problem.endswith("; a setting's name is followed by ': ' (fps: 5, not fps 5)")


def test_a_file_not_in_utf8_is_named_as_such(tmp_path):
    path = tmp_path / "site.yaml"
    path.write_bytes("cameras: {a: {source: caméra.mp4}}\n".encode("utf-16"))
    with pytest.raises(SiteConfigError, match="not UTF-8 text"):
        load_site_config(path, environ={})


@pytest.mark.parametrize("storage", ["", "storage: {privacy: true}\n", "storage: {database: events.db}\n"])
def test_storage_paths_not_given_are_beside_the_config_file_too(tmp_path, storage):
    (tmp_path / "clip.mp4").write_bytes(b"")
    config = load_site_config(write(tmp_path, storage + "cameras:\n  a: {source: clip.mp4}\n"), environ={})
    database = "events.db" if "database" in storage else "maskwatch.db"
    assert config.storage.database == str(tmp_path / database)
    assert config.storage.snapshots == str(tmp_path / "snapshots")


def test_run_check_prints_one_line_per_error_and_exits_1(tmp_path):
    path = write(tmp_path, "cameras:\n  a: {source: webcam:x}\n  b: {source: webcam:0, fps: 0}\n")
    result = CliRunner().invoke(app, ["run", "--config", str(path), "--check"])
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 2 and "camera 'a', field 'source'" in errors[0] and "camera 'b', field 'fps'" in errors[1]


def test_run_check_accepts_the_example(monkeypatch):
    monkeypatch.setenv("CAM_PASSWORD", "x")
    monkeypatch.setenv("WEBHOOK_SECRET", "0123456789")
    result = CliRunner().invoke(app, ["run", "--config", str(EXAMPLE), "--check"])
    assert result.exit_code == 0, result.output
    assert "3 cameras" in result.output and "entrance" in result.output


@pytest.mark.system
@pytest.mark.parametrize("check", ["--check", "--probe"])
def test_run_check_that_cannot_print_fails_naming_standard_output(tmp_path, check):
    """`run --check > check.txt` on a full disk said its answer was lost and that "the server goes
    on" (the start lines' rule), and exited 0: a check that printed nothing passed."""
    import subprocess
    import sys

    path = write(tmp_path, "cameras:\n  a: {source: webcam:0}\n")
    with open("/dev/full", "w") as full:
        said = subprocess.run([sys.executable, "-m", "maskwatch.cli", "run", "--config", str(path), check],
                              stdout=full, stderr=subprocess.PIPE, text=True, timeout=120)
    assert said.returncode == 1 and said.stderr == "error: standard output: No space left on device\n", said.stderr


@pytest.mark.system
def test_run_init_that_cannot_print_says_the_file_was_written(tmp_path):
    """`run --init > out` on a full disk said a bare `error: No space left on device` after the
    example was written: read as nothing written, though the next --init is refused."""
    import subprocess
    import sys

    path = tmp_path / "site.yaml"
    with open("/dev/full", "w") as full:
        said = subprocess.run([sys.executable, "-m", "maskwatch.cli", "run", "--config", str(path), "--init"],
                              stdout=full, stderr=subprocess.PIPE, text=True, timeout=120)
    assert said.returncode == 1 and said.stderr == (
        f"error: standard output: No space left on device; {path} was written all the same: set its cameras' "
        f"sources, then: maskwatch run --config {path} --check\n"), said.stderr
    assert path.read_bytes() == EXAMPLE.read_bytes()


def test_run_init_writes_the_shipped_example_where_no_file_is(tmp_path):
    """A user of the wheel has no checkout's examples/ to copy: `run --init` writes the example that
    ships in the package, and never over a file; a missing --config file says so."""
    path = tmp_path / "site.yaml"
    missing = CliRunner().invoke(app, ["run", "--config", str(path)])
    assert missing.exit_code == 1 and f"maskwatch run --config {path} --init writes a commented example" in missing.output
    result = CliRunner().invoke(app, ["run", "--config", str(path), "--init"])
    assert result.exit_code == 0, result.output
    assert path.read_bytes() == EXAMPLE.read_bytes()
    assert path.stat().st_mode & 0o777 == 0o600  # the cameras' passwords go into it: 644 under the usual umask
    path.write_text("cameras: {}\n")
    again = CliRunner().invoke(app, ["run", "--config", str(path), "--init"])
    assert again.exit_code == 1 and f"error: {path}: already there" in again.output
    assert path.read_text() == "cameras: {}\n" and list(tmp_path.iterdir()) == [path]


@pytest.mark.parametrize("alerts, expected", [
    ("{webhooks: [{url: 'http://h/x', secret: '12345678', labels: [masked]}]}",
     "field 'alerts.webhooks.0.labels': unknown labels ['masked']"),
    ("{webhooks: [{url: 'ftp://h/x', secret: '12345678'}]}", "field 'alerts.webhooks.0.url': webhook URLs start with"),
    ("{webhooks: [{url: 'http://h:99999/x', secret: '12345678'}]}", "field 'alerts.webhooks.0.url': webhook URL 'http://h:99999/…': the port"),
    ("{webhooks: [{url: 'https://me:pw@h/x', secret: '12345678'}]}", "field 'alerts.webhooks.0.url': webhook URL 'https://h/…': a user and"),
    ("{webhooks: [{url: 'http://h/a b', secret: '12345678'}]}", "field 'alerts.webhooks.0.url': webhook URL 'http://h/…' holds a space"),
    ("{webhooks: [{url: 'http://h[/x', secret: '12345678'}]}",  # urlsplit's ValueError was said as it was
     "field 'alerts.webhooks.0.url': webhook URL 'http://h[/…': the host is neither a name nor an [IPv6] address"),
    ("{webhooks: [{url: 'http:///x', secret: '12345678'}]}", "field 'alerts.webhooks.0.url': webhook URL 'http:///…' names no host"),
    ("{webhooks: [{url: 'http://h/x', secret: 'short'}]}", "field 'alerts.webhooks.0.secret': String should have at least 8"),
    ("{webhooks: [{url: 'http://h/x', secret: '12345678', cameras: [nope]}]}",
     "field 'alerts.webhooks.0.cameras': no such cameras ['nope']; cameras: a"),
    ("{webhooks: [{url: 'http://h/x', secret: '12345678', zones: [nozone]}]}",  # it never fired
     "field 'alerts.webhooks.0.zones': no camera has the zones ['nozone']"),
    ("{webhooks: [{url: 'http://h/x', secret: '12345678', labels: []}]}", "field 'alerts.webhooks.0.labels': List should"),
    ("{compliance: [{below: 0.8, minutes: 15}]}", "field 'alerts.compliance.0.below': below is a percentage (80 for 80 %)"),
])
def test_bad_webhooks_are_named(tmp_path, alerts, expected):
    path = write(tmp_path, f"cameras:\n  a: {{source: webcam:0}}\nalerts: {alerts}\n")
    with pytest.raises(SiteConfigError) as err:
        load_site_config(path, environ={})
    assert len(err.value.problems) == 1 and err.value.problems[0].startswith(expected), err.value.problems


def test_what_the_alerts_name_is_checked_with_the_fields_not_a_round_later(tmp_path):
    """A webhook naming no camera was said only once the file's other fields passed: two rounds."""
    path = write(tmp_path, "cameras:\n  a: {source: webcam:0, fps: 0, zones: {q: [[0, 0], [1, 0], [1, 1]]}}\n"
                           "alerts: {webhooks: [{url: 'http://h/x', secret: short, cameras: [a, b], zones: [q, r]}],\n"
                           "         compliance: [{below: 80, minutes: 15, camera: a, zone: s}]}\n")
    with pytest.raises(SiteConfigError) as err:
        load_site_config(path, environ={})
    assert [p.split(":")[0] for p in err.value.problems] == [
        "camera 'a', field 'fps'", "field 'alerts.webhooks.0.secret'", "field 'alerts.webhooks.0.cameras'",
        "field 'alerts.webhooks.0.zones'", "field 'alerts.compliance.0.zone'"], err.value.problems


def test_the_example_has_opening_hours_a_timezone_and_compliance_rules():
    config = load_site_config(EXAMPLE, environ={"CAM_PASSWORD": "s3cret", "WEBHOOK_SECRET": "0123456789"})
    assert config.timezone == "Europe/Berlin" and str(config.tz()) == "Europe/Berlin"
    assert config.cameras["entrance"].hours == ["mon-fri 08:00-20:00", "sat 09:00-18:00"]
    assert config.cameras["office"].hours == []  # its own: no hours, always open
    door, site_wide = config.alerts.compliance
    assert (door.camera, door.zone, door.below, door.minutes, door.cooldown) == ("entrance", "door", 80, 15, 900)
    assert site_wide.camera is None and site_wide.min_people == 20


@pytest.fixture()
def local_tz(monkeypatch):
    """set(TZ) for this process's local time (the C library reads it at tzset), put back after."""
    def set_tz(value):
        monkeypatch.setenv("TZ", value)
        time.tzset()
    yield set_tz
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize("tz, named", [
    ("Asia/Tokyo", "Asia/Tokyo"), (":Europe/Berlin", "Europe/Berlin"),
    (":/usr/share/zoneinfo/America/New_York", "America/New_York"), ("", "UTC"),
    ("JST-9", None), ("Mars/Olympus", None),  # a POSIX rule, a name the C library reads as UTC: no name
    ("utc", "UTC"), (":zulu", "UTC"),  # UTC named in lower case: no zone file, UTC to the C library (the page had none)
])
def test_the_dashboards_clock_is_the_sites_timezone_else_the_machines_by_name(tmp_path, local_tz, tz, named):
    """The dashboard shows every time in the site's clock, which a browser's Intl takes by name:
    `timezone`, else the machine's local time that the chart's hours keep, named where TZ or
    /etc/localtime name it; no name (null: the browser's own clock, said so) rather than a wrong one."""
    local_tz(tz)
    assert load_site_config(write(tmp_path, "cameras:\n  a: {source: webcam:0}\n"), environ={}).clock() == named
    lisbon = write(tmp_path, "cameras:\n  a: {source: webcam:0}\ntimezone: Europe/Lisbon\n")
    assert load_site_config(lisbon, environ={}).clock() == "Europe/Lisbon"


def test_a_tz_naming_a_zone_file_by_its_path_or_link_names_the_zone_it_leads_to(tmp_path, local_tz, monkeypatch):
    """TZ=:/etc/localtime (a unit's or a container's way to spare the C library a look at the disk)
    left the dashboard on the browser's clock, no name found; TZ=posixrules or TZ=localtime, links
    among the zone files, named the page's clock 'posixrules', which a browser's Intl refuses (the
    page fell back to the browser's clock, as `timezone: posixrules`, which the file refuses)."""
    path = write(tmp_path, "cameras:\n  a: {source: webcam:0}\n")
    monkeypatch.delenv("TZ", raising=False)
    time.tzset()
    machine = load_site_config(path, environ={}).clock()  # /etc/localtime's, as read with no TZ
    local_tz(":/etc/localtime")
    assert load_site_config(path, environ={}).clock() == machine
    zones = tmp_path / "zones"  # a TZDIR whose links lead where the system's may not
    zones.mkdir()
    for link, zone in (("localtime", "Asia/Tokyo"), ("posixrules", "America/New_York"), ("berlin", "Europe/Berlin")):
        (zones / link).symlink_to(f"/usr/share/zoneinfo/{zone}")
    monkeypatch.setenv("TZDIR", str(zones))  # the C library's zone folder; put back with TZ
    for tz, named in (("localtime", "Asia/Tokyo"), (":posixrules", "America/New_York"),
                      (f":{zones / 'berlin'}", "Europe/Berlin")):
        local_tz(tz)
        assert load_site_config(path, environ={}).clock() == named, tz


@pytest.mark.parametrize("env, said", [
    ({"TZ": "Mars/Olympus"}, "TZ='Mars/Olympus' (the environment): no such time zone on this machine (no zone file "
                             "/usr/share/zoneinfo/Mars/Olympus), so its local time is UTC, and the site's days, opening "
                             "hours and reports would be UTC's; write `timezone:` in the site's file, an IANA name such "
                             "as Europe/Berlin, or set TZ to a zone this machine has"),
    # a zone the system's zone files lack (an old tzdata, a slim container) that Python's tzdata has
    ({"TZ": "Europe/Berlin", "TZDIR": "EMPTY"}, "Python knows it: write `timezone: Europe/Berlin` in the site's file"),
])
def test_a_tz_naming_no_zone_this_machine_has_stops_the_site_s_commands_where_the_file_sets_none(tmp_path, env, said):
    """The C library reads a TZ it has no zone file for as UTC and says so nowhere: a site with no
    `timezone` ran its days, opening hours and reports on UTC, the dashboard on the browser's clock,
    and `run --check` passed, its reports "in the local time, which has no IANA name"."""
    (tmp_path / "EMPTY").mkdir()
    env = {name: str(tmp_path / value) if name == "TZDIR" else value for name, value in env.items()}
    path = write(tmp_path, "cameras:\n  a: {source: webcam:0}\n")
    # every command on the site's clock: `events delete --since '2026-12-01 14:00'` erased 14:00 UTC's people
    for command in (["run", "--check"], ["events", "list", "--since", "2026-12-01 14:00", "--until", "2026-12-01 15:00"],
                    ["report", "--csv"]):
        checked = CliRunner().invoke(app, [*command, "--config", str(path)], env=env)
        assert checked.exit_code == 1 and said.replace("/usr/share/zoneinfo", env.get("TZDIR", "/usr/share/zoneinfo")) \
            in " ".join(checked.output.split()), (command, checked.output)
    path.write_text(path.read_text() + "timezone: Europe/Lisbon\n")  # the file's clock: TZ is no part of the site's times
    assert CliRunner().invoke(app, ["run", "--config", str(path), "--check"], env=env).exit_code == 0
    path.write_text("cameras:\n  a: {source: webcam:0}\n")
    # UTC in lower case has no zone file and is the UTC it names to the C library (refused, as Mars/Olympus)
    for fine in ("Europe/Berlin", ":Europe/Berlin", "JST-9", "EST5EDT,M3.2.0,M11.1.0", "<+0530>-5:30", "UTC", "", "utc"):
        result = CliRunner().invoke(app, ["run", "--config", str(path), "--check"], env={"TZ": fine})
        assert result.exit_code == 0, (fine, result.output)
    # UTC by any of its names is UTC on a machine with no zone files at all (a container's TZ=Etc/UTC)
    for utc in ("Etc/UTC", ":UTC", "Zulu", ":/etc/localtime"):
        result = CliRunner().invoke(app, ["run", "--config", str(path), "--check"],
                                    env={"TZ": utc, "TZDIR": str(tmp_path / "EMPTY")})
        assert result.exit_code == 0, (utc, result.output)


def test_a_tz_set_but_empty_is_utc_said_as_a_warning_where_the_file_sets_no_timezone(tmp_path):
    """TZ= (set, empty: a compose file's `TZ: ${TZ}` on a host without TZ) or TZ=: is UTC to POSIX and
    the C library: no error, since it may be meant, but a site with no `timezone` ran its days,
    opening hours and reports on UTC with nothing said. Said by each command on the site's clock;
    `timezone: UTC` in the file says it is meant."""
    path = write(tmp_path, "cameras:\n  a: {source: webcam:0}\n")
    said = ("warning: " + str(path) + ": TZ='' (the environment) is set but empty, which the C library reads as UTC: the "
            "site's days, opening hours and reports are UTC's; if that is meant, write `timezone: UTC` in the site's "
            "file, else `timezone:` an IANA name such as Europe/Berlin, or unset TZ")
    for command in (["run", "--check"], ["events", "list", "--since", "2026-12-01 14:00", "--until", "2026-12-01 15:00"],
                    ["report", "--csv"]):
        checked = CliRunner().invoke(app, [*command, "--config", str(path)], env={"TZ": ""})
        assert said in " ".join(checked.output.split()), (command, checked.output)
    colon = CliRunner().invoke(app, ["run", "--check", "--config", str(path)], env={"TZ": ":"})
    assert colon.exit_code == 0 and "TZ=':' (the environment) is set but empty" in colon.output, colon.output
    path.write_text(path.read_text() + "timezone: UTC\n")
    meant = CliRunner().invoke(app, ["run", "--check", "--config", str(path)], env={"TZ": ""})
    assert meant.exit_code == 0 and "warning" not in meant.output, meant.output


def test_a_machine_with_no_time_zone_data_is_told_to_install_it(tmp_path, monkeypatch):
    """A slim container has no /usr/share/zoneinfo, and maskwatch does not pull Python's tzdata:
    `timezone: Europe/Berlin` was "unknown timezone 'Europe/Berlin'; use an IANA name such as
    Europe/Berlin or UTC", the name it gave refused."""
    import sys
    import zoneinfo

    for name in [name for name in sys.modules if name == "tzdata" or name.startswith("tzdata.")] + ["tzdata"]:
        monkeypatch.setitem(sys.modules, name, None)  # no tzdata package
    (tmp_path / "none").mkdir()
    zoneinfo.reset_tzpath(to=[str(tmp_path / "none")])
    zoneinfo.ZoneInfo.clear_cache()
    try:
        with pytest.raises(SiteConfigError) as err:
            load_site_config(write(tmp_path, "cameras:\n  a: {source: webcam:0}\ntimezone: Europe/Berlin\n"), environ={})
    finally:
        zoneinfo.reset_tzpath()
        zoneinfo.ZoneInfo.clear_cache()
    assert err.value.problems == [f"field 'timezone': timezone 'Europe/Berlin': this machine has no time zone data (no "
                                  f"zone files in {tmp_path / 'none'}, no Python tzdata package): install it (apt-get "
                                  "install tzdata, or pip install tzdata into maskwatch's environment)"]


@pytest.mark.parametrize("camera, expected", [
    ("{source: webcam:0, hours: ['weekdays 08:00-18:00']}", "camera 'c', field 'hours': days are mon, tue"),
    ("{source: webcam:0, hours: ['mon 8-18']}", "camera 'c', field 'hours': opening hours are written like"),
    ("{source: webcam:0, hours: 'mon 08:00-18:00'}", "camera 'c', field 'hours': Input should be a valid list"),
    ("{source: webcam:0, hours: ['fri 24:00-02:00']}", "camera 'c', field 'hours': an opening time is 00:00 to 23:59"),
])
def test_bad_opening_hours_name_the_camera_and_the_field(tmp_path, camera, expected):
    path = write(tmp_path, f"cameras:\n  c: {camera}\n")
    with pytest.raises(SiteConfigError) as err:
        load_site_config(path, environ={})
    assert len(err.value.problems) == 1 and err.value.problems[0].startswith(expected), err.value.problems


def test_opening_hours_in_defaults_apply_to_every_camera(tmp_path):
    path = write(tmp_path, "defaults: {hours: ['mon-fri 09:00-17:00']}\ncameras:\n  a: {source: webcam:0}\n"
                           "  b: {source: webcam:1, hours: []}\ntimezone: UTC\n")
    config = load_site_config(path, environ={})
    assert config.cameras["a"].hours == ["mon-fri 09:00-17:00"] and config.cameras["b"].hours == []


@pytest.mark.parametrize("extra, expected", [
    ("timezone: Mars/Olympus", "field 'timezone': unknown timezone 'Mars/Olympus'"),
    # zone files Python reads but a browser's Intl refuses: the page showed the browser's clock instead
    ("timezone: posix/Europe/Berlin", "field 'timezone': timezone 'posix/Europe/Berlin': the system's copy of "
                                      "Europe/Berlin under posix/, which browsers do not know; write Europe/Berlin"),
    ("timezone: right/America/New_York", "field 'timezone': timezone 'right/America/New_York': the system's copy "
                                         "of America/New_York counting leap seconds, which Python misreads"),
    ("timezone: localtime", "field 'timezone': timezone 'localtime': a link of this machine's zone files"),
    ("alerts: {compliance: [{below: 80}]}", "field 'alerts.compliance.0.minutes': missing (required)"),
    ("alerts: {compliance: [{below: 180, minutes: 5}]}",
     "field 'alerts.compliance.0.below': Input should be less than or equal to 100"),
    ("alerts: {compliance: [{below: 80, minutes: 5, camera: nope}]}",
     "field 'alerts.compliance.0.camera': no camera 'nope'; cameras: a"),
    ("alerts: {compliance: [{below: 80, minutes: 5, camera: a, zone: dor}]}",
     "field 'alerts.compliance.0.zone': camera 'a' has no zone 'dor'; zones: door"),
    ("alerts: {compliance: [{below: 80, minutes: 5, zone: dor}]}", "field 'alerts.compliance.0.zone': no camera has"),
    ("alerts: {compliance: [{below: 80, minutes: 5, cooldwn: 9}]}",
     "field 'alerts.compliance.0.cooldwn': unknown setting (a typo?)"),
])
def test_bad_compliance_rules_and_timezones_are_named(tmp_path, extra, expected):
    """right/ zones were taken, and an hour off all winter: ZoneInfo("right/Europe/Berlin") reads
    2026-11-15 12:00 UTC as 14:00 +02:00."""
    path = write(tmp_path, f"cameras:\n  a: {{source: webcam:0, zones: {{door: [[0, 0], [1, 0], [1, 1]]}}}}\n{extra}\n")
    with pytest.raises(SiteConfigError) as err:
        load_site_config(path, environ={})
    assert len(err.value.problems) == 1 and err.value.problems[0].startswith(expected), err.value.problems


def test_every_bad_compliance_rule_is_reported(tmp_path):
    path = write(tmp_path, "cameras:\n  a: {source: webcam:0}\nalerts: {compliance: [\n"
                           "  {below: 80, minutes: 5, camera: x}, {below: 80, minutes: 5, camera: a, zone: z}]}\n")
    with pytest.raises(SiteConfigError) as err:
        load_site_config(path, environ={})
    assert [p.split(":")[0] for p in err.value.problems] == ["field 'alerts.compliance.0.camera'",
                                                             "field 'alerts.compliance.1.zone'"]


def test_run_check_shows_a_cameras_upscale_and_a_moving_camera(tmp_path):
    path = write(tmp_path, "cameras:\n  far: {source: webcam:0, upscale: 1.5, moving: true}\n  near: {source: webcam:1}\n")
    result = CliRunner().invoke(app, ["run", "--config", str(path), "--check"])
    assert result.exit_code == 0, result.output
    far, near = [line for line in result.output.splitlines() if line.strip().startswith(("far", "near"))]
    assert "detect every 2 at 1.5x, moving camera," in far and "detect every 2," in near


def test_run_check_warns_of_cameras_that_share_a_name_naming_their_ids(tmp_path):
    """Two cameras named alike (ids differ, or one's name is the other's id) read the same on the
    dashboard, the report and Home Assistant: --check and the start lines warn, naming the ids; the site runs."""
    path = write(tmp_path, "cameras:\n  door: {source: webcam:0, name: Front}\n  door2: {source: webcam:1, name: 'front '}\n"
                           "  till: {source: webcam:2}\n  back: {source: webcam:3, name: till}\n")
    result = CliRunner().invoke(app, ["run", "--config", str(path), "--check"])
    assert result.exit_code == 0, result.output
    warnings = [line.strip() for line in result.output.splitlines() if "warning" in line]
    assert warnings == ["warning: cameras door, door2 share the name 'Front': the dashboard, the report and Home "
                        "Assistant show them alike; give each a name: of its own",
                        "warning: cameras till, back share the name 'till': the dashboard, the report and Home "
                        "Assistant show them alike; give each a name: of its own"]


def test_the_users_commands_view_needs_only_the_storage_secrets(tmp_path):
    from maskwatch.site.config import load_site_users_view

    path = write(tmp_path, "cameras:\n  door: {source: '${DOOR_URL}'}\n  till: {source: webcam:0, fps: nonsense}\n"
                           "mqtt: {host: b, port: '${PORT}'}\nstorage: {database: 'postgresql://u:${PG}@db/m'}\n")
    with pytest.raises(SiteConfigError, match="field 'storage.database': environment variable PG is not set"):
        load_site_users_view(path, environ={})
    view = load_site_users_view(path, environ={"PG": "secret"})
    assert view.cameras == ("door", "till") and view.storage.database == "postgresql://u:secret@db/m"
    local = write(tmp_path, "cameras: {door: {source: webcam:0}}\n")
    assert load_site_users_view(local, environ={}).storage.database == str(tmp_path / "maskwatch.db")


def test_the_users_commands_view_reads_require_two_step_with_its_variable_set(tmp_path):
    """server.require_two_step: ${VAR} runs the site, but the users commands' view checked the
    text unset, so every `users`/`tokens` command with --config refused the file."""
    from maskwatch.site.config import load_site_users_view

    path = write(tmp_path, "cameras: {door: {source: webcam:0}}\nserver: {require_two_step: '${RULE}', "
                           "host: '${HOST}'}\n")
    assert load_site_users_view(path, environ={"RULE": "admins"}).require_two_step == "admins"
    with pytest.raises(SiteConfigError, match="field 'server.require_two_step': environment variable RULE is not set"):
        load_site_users_view(path, environ={})


@pytest.mark.parametrize("storage, blurred", [("{}", False), ("{blur_live: true}", True), ("{privacy: true}", True)])
def test_live_frames_are_blurred_on_asking_and_in_privacy_mode(tmp_path, storage, blurred):
    """Live frames showed faces sharp unless the site kept no snapshots at all: a site could not
    keep blurred snapshots and blur what its viewers watch."""
    from maskwatch.detection.detector import Detector
    from maskwatch.site.events import EventStore
    from maskwatch.site.runner import camera_worker

    path = tmp_path / "site.yaml"
    path.write_text(f"cameras: {{door: {{source: 'rtsp://127.0.0.1:1/door'}}}}\nstorage: {storage}\n")
    config = load_site_config(path, environ={})
    assert config.storage.live_blurred is blurred
    store = EventStore(str(tmp_path / "site.db"), privacy=True)
    try:
        _, live = camera_worker("door", config.cameras["door"], Detector.load(), store,
                                blur_live=config.storage.live_blurred)
        assert live.annotator.blur is blurred
    finally:
        store.close()


def test_a_secret_is_never_repeated_in_an_error(tmp_path):
    """A webhook secret too short was printed whole: 'String should have at least 8 characters (got ...)'."""
    path = write(tmp_path, "cameras:\n  a: {source: webcam:0}\n"
                           "alerts: {webhooks: [{url: 'http://h/x', secret: '${HOOK_SECRET}'}]}\n"
                           "mqtt: {host: broker, password: 123456}\n")
    with pytest.raises(SiteConfigError) as err:
        load_site_config(path, environ={"HOOK_SECRET": "hunter2"})
    text = str(err.value)
    assert "alerts.webhooks.0.secret" in text and "mqtt.password" in text
    assert "hunter2" not in text and "123456" not in text


@pytest.mark.parametrize("text", [
    "cameras:\n  - name: door\n    source: rtsp://viewer:hunter2@10.0.0.5/s\n",  # a list, Frigate's old shape
    "cameras:\n  a: {source: webcam:0}\nmqtt: [{host: broker, password: hunter2}]\n",
    "cameras:\n  a: {source: webcam:0}\nalerts: {webhooks: {url: 'http://h/x', secret: hunter2xyz}}\n",
])
def test_a_section_of_the_wrong_shape_is_not_quoted_with_its_secrets(tmp_path, text):
    """A section given as a list where a mapping goes (or the reverse) was quoted whole, 'Input
    should be a valid dictionary (got [{... 'source': 'rtsp://viewer:hunter2@...'}])'."""
    with pytest.raises(SiteConfigError) as err:
        load_site_config(write(tmp_path, text))
    text = str(err.value)
    assert "valid dictionary" in text or "valid list" in text or "expected a mapping" in text, text
    assert "hunter2" not in text, text


@pytest.mark.parametrize(("text", "said"), [
    ("cameras:\n  - {name: door, source: webcam:0}\n", "cameras: expected a mapping of camera id -> settings"),
    ("cameras:\ndoor: {source: webcam:0}\n", "cameras: missing; list the cameras under 'cameras:'"),
])
def test_cameras_missing_or_of_the_wrong_shape_is_said_once(tmp_path, text, said):
    """Each was followed by pydantic's "field 'cameras': Input should be a valid dictionary": one
    problem, two lines."""
    with pytest.raises(SiteConfigError) as err:
        load_site_config(write(tmp_path, text))
    text = str(err.value)
    assert said in text and "field 'cameras'" not in text, text


@pytest.mark.parametrize("url", ["http://u:hun[ter2@h/x", "https://u:hun]ter2@h:8443/x", "http://u:h[unt]er2@h/x",
                                 "htp://u:hun[ter2@h/x", "u:hun[ter2@h/x", "http://u:hun/ter2@h/x"])
def test_a_webhook_password_holding_a_bracket_is_refused_unrepeated(tmp_path, url):
    """urlsplit raised on a [ outside an IPv6 host: 'Invalid IPv6 URL', or "'unt' does not appear
    to be an IPv4 or IPv6 address", part of the password in the error."""
    path = write(tmp_path, f"cameras:\n  a: {{source: webcam:0}}\nalerts: {{webhooks: [{{url: '{url}', secret: '12345678'}}]}}\n")
    with pytest.raises(SiteConfigError) as err:
        load_site_config(path, environ={})
    assert len(err.value.problems) == 1 and "alerts.webhooks.0.url" in err.value.problems[0], err.value.problems
    assert not {"hun", "ter2", "unt"} & set(re.split(r"[^a-z0-9]+", str(err.value))), err.value.problems


def test_shown_webhook_urls_and_redirects_never_raise():
    from maskwatch.site.alerts import redirect_target, shown_url

    assert shown_url("http://u:pa[ss@hooks.example:8443/t/ok?x=1") == "http://hooks.example:8443/…"
    assert shown_url("http://[::1]:8080") == "http://[::1]:8080"
    assert shown_url(redirect_target("https://h/x", "http://a:b[c@evil/y")) == "http://evil/…"
    assert shown_url(redirect_target("https://h/x", "/y")) == "https://h/…"


@pytest.mark.parametrize("password", ["hun[ter2", "hun]ter2", "hun/ter2", "hun%ter2", "hun?ter#2"])
def test_database_and_broker_passwords_may_hold_url_characters(tmp_path, password):
    from sqlalchemy.engine import make_url

    path = write(tmp_path, f"cameras: {{a: {{source: webcam:0}}}}\nmqtt: {{host: b, username: u, password: '{password}'}}\n"
                           f"storage: {{database: 'postgresql://u:{password}@db:5432/m'}}\n")
    config = load_site_config(path, environ={})
    assert config.mqtt.password == password
    url = make_url(config.storage.database)
    assert (url.password, url.host, url.port, url.database) == (password, "db", 5432, "m")


@pytest.mark.parametrize("database, expected", [
    ("postgresql://u:hun@ter2@db/m", "the URL's user or password holds an @: write it %40"),  # host read as ter2@db
    ("postgresql://u:hunter2@db:x/m", "not a database URL"),  # a traceback at the start
])
def test_a_database_url_read_otherwise_is_refused_unrepeated(tmp_path, database, expected):
    path = write(tmp_path, f"cameras: {{a: {{source: webcam:0}}}}\nstorage: {{database: '{database}'}}\n")
    with pytest.raises(SiteConfigError) as err:
        load_site_config(path, environ={})
    assert err.value.problems == [f"field 'storage.database': {err.value.problems[0].split(': ', 1)[1]}"]
    assert expected in err.value.problems[0] and "hun" not in str(err.value) and "ter2" not in str(err.value)


def test_a_stream_url_without_its_scheme_is_refused_without_its_password(tmp_path):
    """`viewer:pw@host/...` (rtsp:// left out or mistyped) was read as a file: 'no such video file:
    .../viewer:hunter2@10.0.0.5/stream1', the password in the error."""
    path = write(tmp_path, "cameras:\n  a: {source: 'viewer:hunter2@10.0.0.5/stream1'}\n"
                           "  b: {source: webcam:0, detect_source: 'rtsp:/viewer:hunter2@10.0.0.5/stream2'}\n"
                           # a password in the query (Foscam's MJPEG), its scheme mistyped: it was repeated
                           "  c: {source: 'http:/10.0.0.6:88/cgi-bin/CGIStream.cgi?cmd=GetMJStream&usr=a&pwd=hunter2'}\n")
    with pytest.raises(SiteConfigError) as err:
        load_site_config(path, environ={})
    assert [p.split(":")[0] for p in err.value.problems] == ["camera 'a', field 'source'",
                                                             "camera 'b', field 'detect_source'",
                                                             "camera 'c', field 'source'"]
    assert all("neither a video file nor a stream URL" in p for p in err.value.problems)
    assert "hunter2" not in str(err.value)


def test_a_cameras_own_settings_in_defaults_are_named_as_such(tmp_path):
    """They were 'unknown setting (a typo?)', of settings every camera has."""
    path = write(tmp_path, "defaults: {source: webcam:0, zones: {}, fps: 2}\ncameras:\n  a: {source: webcam:1}\n")
    with pytest.raises(SiteConfigError) as err:
        load_site_config(path, environ={})
    assert err.value.problems == ["field 'defaults.source': a camera's own setting; set it under each camera",
                                  "field 'defaults.zones': a camera's own setting; set it under each camera"]


@pytest.mark.parametrize("text, expected", [
    ("cameras:\n  a: {source: webcam:0}\n  a: {source: webcam:1}\n", "'a' is given twice in one mapping"),
    ("cameras:\n  true: {source: webcam:0}\n  007: {source: webcam:1}\n", "YAML reads this id as a bool"),
    ("cameras:\n  a: {source: webcam:0, min_face: .inf}\n", "camera 'a', field 'min_face': Input should be a finite number"),
    ("cameras:\n  a: {source: webcam:0}\nmqtt: {host: 'mqtt://broker:1883'}\n",
     "field 'mqtt.host': 'mqtt://broker:1883' is not a broker's name or address: write it alone, without a scheme"),
    ("cameras:\n  a: {source: webcam:0}\nmqtt: {host: broker, prefix: /maskwatch/}\n",
     "field 'mqtt.prefix': '/maskwatch/' is no topic prefix maskwatch publishes under: letters, digits, _ and -, in "
     "levels joined by / (none empty"),
])
def test_yaml_that_would_mean_something_else_is_refused(tmp_path, text, expected):
    """Duplicate keys kept the last in silence; `true:` became camera True; .inf faces counted none;
    a scheme in the MQTT host retried for ever; an empty topic level."""
    with pytest.raises(SiteConfigError) as err:
        load_site_config(write(tmp_path, text), environ={})
    assert any(expected in problem for problem in err.value.problems), err.value.problems


@pytest.mark.parametrize("prefix, problem", [
    ("''", "empty; Home Assistant's default is homeassistant"),
    ("home/+", "'home/+' holds an MQTT wildcard (+ or #); write the prefix itself, e.g. homeassistant"),
    ("'#'", "'#' holds an MQTT wildcard (+ or #); write the prefix itself, e.g. homeassistant"),
    ("/homeassistant", "'/homeassistant' has an empty topic level (a / at the start, the end or twice); write it "
                       "as homeassistant or ha/discovery"),
    ("homeassistant/", "'homeassistant/' has an empty topic level (a / at the start, the end or twice); write it "
                       "as homeassistant or ha/discovery"),
])
def test_a_discovery_prefix_that_is_no_topic_to_publish_under_is_refused(tmp_path, prefix, problem):
    """Home Assistant's discovery configs under a wildcard or an empty level would reach no one."""
    path = write(tmp_path, f"cameras:\n  a: {{source: webcam:0}}\nmqtt: {{host: b, discovery: true, "
                           f"discovery_prefix: {prefix}}}\n")
    with pytest.raises(SiteConfigError) as err:
        load_site_config(path, environ={})
    assert err.value.problems == [f"field 'mqtt.discovery_prefix': {problem}"]
    default = load_site_config(write(tmp_path, "cameras:\n  a: {source: webcam:0}\nmqtt: {host: b}\n"), environ={})
    assert (default.mqtt.discovery, default.mqtt.discovery_prefix) == (False, "homeassistant")


def test_yaml_merge_keys_share_settings_and_a_camera_key_replaces_a_merged_one(tmp_path):
    """The duplicate-key check read `<<: *defaults` as a key and refused every merge."""
    config = load_site_config(write(tmp_path, "cameras:\n  a: &camera {source: webcam:0, fps: 3, detect_every: 1}\n"
                                              "  b: {<<: *camera, source: webcam:1}\n"
                                              "  c: {source: webcam:2, fps: 2, <<: *camera}\n"), environ={})
    assert [(c.source, c.fps, c.detect_every) for c in config.cameras.values()] == [
        ("webcam:0", 3, 1), ("webcam:1", 3, 1), ("webcam:2", 2, 1)]


def billion_laughs(depth: int = 8) -> str:
    """Nine aliases of nine, `depth` deep: a few hundred bytes standing for 9 ** depth strings."""
    lines, previous = ['l0: &l0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]'], "l0"
    for level in range(1, depth + 1):
        lines.append(f"l{level}: &l{level} [{', '.join([f'*{previous}'] * 9)}]")
        previous = f"l{level}"
    return "\n".join(lines) + f"\ncameras:\n  a: {{source: webcam:0, zones: {{q: {{polygon: *{previous}}}}}}}\n"


@pytest.mark.parametrize("text, expected", [
    (billion_laughs(), "entries (at most 100,000); write the values out"),
    ("loop: &loop [*loop]\ncameras:\n  a: {source: webcam:0}\n", "an alias inside its own anchor (line 1)"),
    ("cameras:\n  a: {source: webcam:0}\n" + "#" * 1_100_000 + "\n", "1.0 MB, too large for a site's config"),
])
def test_a_config_that_would_take_the_check_forever_is_refused_at_once(tmp_path, text, expected):
    """Nine aliases of nine held `run --check` for minutes; a list holding itself was a RecursionError."""
    with pytest.raises(SiteConfigError) as err:
        load_site_config(write(tmp_path, text), environ={})
    assert any(expected in problem for problem in err.value.problems), err.value.problems


def test_nesting_past_50_levels_is_said_not_a_recursion_error(tmp_path):
    """PyYAML composes nested lists by recursion: 20,000 '[' (40 KB, inside POST .../zones/check's
    64 KB) were a RecursionError, a 500 there and a traceback from `run --check`; anchors of 45
    levels each aliased in the next one, the same past the alias count's check."""
    deep = write(tmp_path, "cameras:\n  a: {source: webcam:0, zones: {q: " + "[" * 20_000 + "]" * 20_000 + "}}\n")
    with pytest.raises(SiteConfigError) as err:
        load_site_config(deep, environ={})
    assert err.value.problems == ["not valid YAML: nested more than 50 levels deep (line 2, column 82)"]
    anchors = ["a0: &a0 " + "[" * 45 + "0" + "]" * 45] + [
        f"a{i}: &a{i} " + "[" * 45 + f"*a{i - 1}" + "]" * 45 for i in range(1, 40)]
    chained = write(tmp_path, "\n".join(anchors) + "\ncameras:\n  a: {source: webcam:0, zones: {q: *a39}}\n")
    with pytest.raises(SiteConfigError) as err:
        load_site_config(chained, environ={})
    assert err.value.problems == ["nested more than 50 levels deep with its aliases written out (an alias of "
                                  "the anchor on line 1); write the values out"]
    nested = write(tmp_path, "cameras:\n  a:\n    source: webcam:0\n    motion: {masks: [[[0, 0], [1, 0], [1, 1]]]}\n")
    assert load_site_config(nested, environ={}).cameras["a"].motion.masks == [[(0, 0), (1, 0), (1, 1)]]


def circle(corners: int) -> str:
    """A zone of `corners` corners round a circle: an area, crossing nowhere."""
    return "[" + ", ".join(f"[{0.5 + 0.4 * math.cos(2 * math.pi * i / corners):.4f}, "
                           f"{0.5 + 0.4 * math.sin(2 * math.pi * i / corners):.4f}]" for i in range(corners)) + "]"


def line(corners: int) -> str:
    """A shape of `corners` corners in one line: checked, it has no area (polygon_problem says so
    after checking each corner against every other)."""
    return "[" + ", ".join(f"[{i / (corners - 1):.4f}, 0.5]" for i in range(corners)) + "]"


@pytest.mark.parametrize("camera, expected", [
    (f"zones: {{big: {line(101)}}}", "camera 'a', field 'zones': zone 'big' has 101 corners; at most 100: draw it "
                                     "with fewer"),
    ("zones: {big: [&p [0.1, 0.2]" + ", *p" * 20_000 + "]}", "camera 'a', field 'zones': zone 'big' has 20001 "
                                                             "corners; at most 100: draw it with fewer"),
    ("zones: {" + ", ".join(f"z{i}: {line(3)}" for i in range(51)) + "}",
     "camera 'a', field 'zones': 51 zones; a camera has at most 50"),
    (f"motion: {{masks: [{line(101)}]}}", "camera 'a', field 'motion.masks': mask 0 has 101 corners; at most 100: "
                                          "draw it with fewer"),
    ("motion: {masks: [" + ", ".join([line(3)] * 51) + "]}",
     "camera 'a', field 'motion.masks': 51 motion masks; a camera has at most 50"),
])
def test_zones_and_masks_are_bounded_before_their_corners_are_checked(tmp_path, camera, expected):
    """Each corner is checked against every other (a shape crossing itself): a zone of 20,000
    corners, 60 KB in POST .../zones/check or 3 bytes a corner with an alias, held a worker thread
    for a minute. At most 100 corners a shape and 50 zones and 50 masks a camera, refused at once.
    Every shape here has no area: had its corners been checked, that would be among the problems
    (the order proven without a wall-clock bound, which a busy neighbour process could break)."""
    path = write(tmp_path, f"cameras:\n  a: {{source: webcam:0, {camera}}}\n")
    with pytest.raises(SiteConfigError) as err:
        load_site_config(path, environ={})
    assert err.value.problems == [expected]


def test_a_value_quoted_in_an_error_is_cut_at_100_characters(tmp_path):
    """A list aliased in itself a few times (359 bytes to POST .../zones/check) was quoted whole in
    each of its errors: 274 KB of one line for the page to show."""
    nines = ", ".join(["123456789.123456789"] * 9)
    path = write(tmp_path, f"l0: &l0 [{nines}]\nl1: &l1 [{', '.join(['*l0'] * 9)}]\n"
                           "cameras:\n  a: {source: webcam:0, zones: {q: [*l1, *l1, *l1]}}\n")
    with pytest.raises(SiteConfigError) as err:
        load_site_config(path, environ={})
    problems = [p for p in err.value.problems if p.startswith("camera 'a', field 'zones.q.")]
    assert len(problems) == 3 and problems[0] == (
        "camera 'a', field 'zones.q.0': Tuple should have at most 2 items after validation, not 9 (got "
        "[[123456789.12345679, 123456789.12345679, 123456789.12345679, 123456789.12345679, 123456789.12345679...)")


def test_the_most_corners_and_shapes_are_taken(tmp_path):
    zones = ", ".join(f"z{i}: {circle(100)}" for i in range(50))
    masks = ", ".join([circle(100)] * 50)
    config = load_site_config(write(tmp_path, f"cameras:\n  a: {{source: webcam:0, zones: {{{zones}}}, "
                                              f"motion: {{masks: [{masks}]}}}}\n"), environ={})
    camera = config.cameras["a"]
    assert (len(camera.zones), len(camera.zones["z49"]), len(camera.motion.masks)) == (50, 100, 50)


@pytest.mark.parametrize("user", ["", "username: ''", "username: '${MQTT_USER:-}'"])
def test_an_mqtt_password_without_a_user_name_is_refused_without_repeating_it(tmp_path, user):
    """MQTT sends a password only with a user name: `password:` alone (the user's line commented out,
    or its variable empty) was dropped, and the site connected as nobody with no word said."""
    path = write(tmp_path, f"cameras:\n  a: {{source: webcam:0}}\nmqtt: {{host: broker, {user}{', ' if user else ''}"
                           "password: hunter2}\n")
    with pytest.raises(SiteConfigError) as err:
        load_site_config(path, environ={"MQTT_USER": ""})
    assert err.value.problems == ["field 'mqtt.password': a password without mqtt.username: MQTT sends it only with "
                                  "a user name; set username: (or drop the password for a broker open to all)"]


def test_an_mqtt_host_with_its_password_is_refused_without_repeating_it(tmp_path):
    """A URL pasted as mqtt.host (user:password@broker) was quoted whole in the error, which `run`
    writes to the journal at its start."""
    path = write(tmp_path, "cameras:\n  a: {source: webcam:0}\nmqtt: {host: 'mqtt://maskwatch:s3cret@broker:1883'}\n")
    with pytest.raises(SiteConfigError) as err:
        load_site_config(path, environ={})
    assert err.value.problems == ["field 'mqtt.host': a broker's address with a user name or password in it "
                                  "(user:password@host); write the host alone, and the rest as username: and password:"]
    assert "s3cret" not in str(err.value)


def test_storage_paths_a_site_cannot_use_are_said_by_the_check(tmp_path):
    """A snapshots path that is a file passed --check and failed at the start, the database made."""
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "data").mkdir()
    path = write(tmp_path, "cameras:\n  a: {source: webcam:0}\nstorage: {snapshots: notes.txt, database: data}\n")
    with pytest.raises(SiteConfigError) as err:
        load_site_config(path, environ={})
    assert [p.split(":")[0] for p in err.value.problems] == ["field 'storage.database'", "field 'storage.snapshots'"]
    assert (tmp_path / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("zone, expected", [
    ("[[0, 0], [1, 1], [1, 0], [0, 1]]", "crosses itself"),  # a bow-tie
    ("[[0, 0], [0.5, 0.5], [1, 1]]", "has no area"),
    ("[[0.2, 0.2], [0.2, 0.2], [0.2, 0.2]]", "has no area"),
])
def test_a_zone_that_is_no_area_or_crosses_itself_is_refused(tmp_path, zone, expected):
    path = write(tmp_path, f"cameras:\n  a: {{source: webcam:0, zones: {{door: {zone}}}}}\n")
    with pytest.raises(SiteConfigError, match=expected):
        load_site_config(path, environ={})
    from maskwatch.site.config import polygon_problem

    assert polygon_problem([(0, 0), (1, 0), (1, 1), (0, 1)]) is None  # a square, either way round
    assert polygon_problem([(0, 0), (0, 1), (1, 1), (1, 0)]) is None
    assert polygon_problem([(0, 0), (1, 0), (0.5, 0.5), (1, 1), (0, 1)]) is None  # concave


def test_a_list_or_section_left_blank_reads_as_not_written(tmp_path):
    (tmp_path / "clip.mp4").write_bytes(b"")
    path = write(tmp_path, """
defaults:
  hours: ["mon-fri 08:00-18:00"]
cameras:
  door:
    source: clip.mp4
    zones:
    #  left: [[0, 0], [0.5, 0], [0.5, 1]]
    hours:
    motion:
      masks:
server:
alerts:
  webhooks:
""")
    config = load_site_config(path, environ={})  # every line under them commented out: "got None" before
    door = config.cameras["door"]
    assert door.zones == {} and door.motion.masks == [] and config.alerts.webhooks == []
    assert door.hours == ["mon-fri 08:00-18:00"]  # a blank list of a camera's is the defaults', as if not written


def test_a_single_setting_left_blank_is_still_refused(tmp_path):
    (tmp_path / "clip.mp4").write_bytes(b"")
    path = write(tmp_path, "cameras:\n  door:\n    source: clip.mp4\n    stall_timeout:\n")
    with pytest.raises(SiteConfigError) as err:
        load_site_config(path, environ={})
    assert err.value.problems == ["camera 'door', field 'stall_timeout': Input should be a valid number (got None)"]


def test_a_disabled_camera_is_checked_but_left_out_of_the_site(tmp_path):
    """`enabled: false` (Frigate's) was 'unknown setting (a typo?)': a camera could only be deleted."""
    path = write(tmp_path, "cameras:\n  door: {source: webcam:0}\n  till: {source: webcam:1, enabled: false}\n"
                           "alerts: {webhooks: [{url: 'http://h/x', secret: '12345678', cameras: [till]}],\n"
                           "         compliance: [{below: 80, minutes: 15, camera: till}, {below: 80, minutes: 15}]}\n")
    config = load_site_config(path, environ={})
    assert list(config.cameras) == ["door"] and config.disabled_cameras == ("till",)
    assert config.alerts.webhooks[0].cameras == ["till"]  # kept: emptied, it would alert for every camera
    assert [rule.camera for rule in config.alerts.compliance] == [None]
    result = CliRunner().invoke(app, ["run", "--config", str(path), "--check"])
    assert result.exit_code == 0, result.output
    # "1 cameras" until 2026-12-05
    assert f"{path}: 1 camera\n" in result.output and "disabled (enabled: false): till" in result.output


def test_a_disabled_cameras_mistakes_are_still_said(tmp_path):
    path = write(tmp_path, "cameras:\n  door: {source: webcam:0}\n  till: {source: webcam:x, enabled: false}\n"
                           "alerts: {compliance: [{below: 80, minutes: 15, camera: gone}]}\n")
    with pytest.raises(SiteConfigError) as err:
        load_site_config(path, environ={})
    assert [p.split(":")[0] for p in err.value.problems] == ["camera 'till', field 'source'",
                                                             "field 'alerts.compliance.0.camera'"]
    assert "cameras: door, till" in err.value.problems[1]  # a disabled camera may be named


def test_defaults_may_disable_every_camera_but_one_must_run(tmp_path):
    path = write(tmp_path, "defaults: {enabled: false}\ncameras:\n  door: {source: webcam:0, enabled: true}\n"
                           "  till: {source: webcam:1}\n")
    config = load_site_config(path, environ={})
    assert list(config.cameras) == ["door"] and config.disabled_cameras == ("till",)
    path = write(tmp_path, "defaults: {enabled: false}\ncameras:\n  door: {source: webcam:0}\n")
    with pytest.raises(SiteConfigError) as err:
        load_site_config(path, environ={})
    assert err.value.problems == ["cameras: every camera has enabled: false; at least one must run"]


def test_the_users_commands_accept_a_disabled_camera(tmp_path):
    """A viewer's list may name a disabled camera, as a webhook's may: it may come back."""
    from maskwatch.site.config import load_site_users_view

    path = write(tmp_path, "cameras:\n  door: {source: webcam:0}\n  till: {source: webcam:1, enabled: false}\n")
    assert load_site_users_view(path, environ={}).cameras == ("door", "till")


def test_mqtt_tls_ca_file_is_beside_the_config_and_needs_tls(tmp_path):
    from tests.test_security_deploy import self_signed

    self_signed(tmp_path)[0].rename(tmp_path / "broker-ca.pem")
    (tmp_path / "clip.mp4").write_bytes(b"")
    mqtt = "mqtt: {host: broker.example, port: 8883, tls: true, ca_file: broker-ca.pem}\n"
    config = load_site_config(write(tmp_path, "cameras:\n  a: {source: clip.mp4}\n" + mqtt), environ={})
    assert (config.mqtt.tls, config.mqtt.ca_file) == (True, str(tmp_path / "broker-ca.pem"))
    for text, said in (("{host: b, ca_file: broker-ca.pem}", "add tls: true"),
                       ("{host: b, tls: true, ca_file: missing.pem}", "no such file")):
        with pytest.raises(SiteConfigError, match=said):
            load_site_config(write(tmp_path, f"cameras:\n  a: {{source: clip.mp4}}\nmqtt: {text}\n"), environ={})


@pytest.mark.parametrize("content", [b"", b"a CA", b"0\x82\x01\x0a"])  # empty, text, a DER certificate's start
def test_a_ca_file_tls_cannot_read_is_named_by_the_check(tmp_path, content):
    """mqtt.ca_file holding no PEM certificate (a DER .crt, the key, an empty file) passed `run
    --check`, which only looked for the file; the connection then failed at the start."""
    (tmp_path / "broker-ca.crt").write_bytes(content)
    (tmp_path / "clip.mp4").write_bytes(b"")
    text = "cameras:\n  a: {source: clip.mp4}\nmqtt: {host: b, port: 8883, tls: true, ca_file: broker-ca.crt}\n"
    with pytest.raises(SiteConfigError) as err:
        load_site_config(write(tmp_path, text), environ={})
    assert f"field 'mqtt.ca_file': {tmp_path / 'broker-ca.crt'} cannot be read as PEM CA certificates (" in str(err.value), \
        str(err.value)


def test_mqtt_tls_without_a_port_speaks_to_8883(tmp_path):
    """tls: true alone went to 1883, the plain listener, and said only "cannot reach the broker"."""
    (tmp_path / "clip.mp4").write_bytes(b"")
    ports = []
    for mqtt in ("{host: b, tls: true}", "{host: b, tls: true, port: 1884}", "{host: b}", "{host: b, tls: false}"):
        ports.append(load_site_config(write(tmp_path, f"cameras:\n  a: {{source: clip.mp4}}\nmqtt: {mqtt}\n"),
                                      environ={}).mqtt.port)
    assert ports == [8883, 1884, 1883, 1883]


def test_a_site_names_its_own_models_beside_the_file_and_check_loads_them(tmp_path):
    """A classifier retrained on the site's photos could be named only on `run`'s command line (a
    service unit's ExecStart), not in the site's file with the rest of the site."""
    import shutil

    from maskwatch.classifier import SHIPPED_CLOSEUP

    (tmp_path / "clip.mp4").write_bytes(b"")
    (tmp_path / "models").mkdir()
    shutil.copy(SHIPPED_CLOSEUP, tmp_path / "models" / "store.onnx")  # a classifier other than the shipped one
    path = write(tmp_path, "cameras:\n  a: {source: clip.mp4}\nmodels: {classifier: models/store.onnx}\n")
    config = load_site_config(path, environ={})
    assert (config.models.classifier, config.models.detector) == (str(tmp_path / "models" / "store.onnx"), None)
    checked = CliRunner().invoke(app, ["run", "-c", str(path), "--check"])
    assert checked.exit_code == 0, checked.output
    assert f"  models: classifier {tmp_path / 'models' / 'store.onnx'}, detector shipped\n" in checked.output
    over = CliRunner().invoke(app, ["run", "-c", str(path), "--check", "--classifier", str(SHIPPED_CLOSEUP)])
    assert f"  models: classifier {SHIPPED_CLOSEUP}, detector shipped\n" in over.output, over.output  # the command line wins
    with pytest.raises(SiteConfigError, match=re.escape(f"field 'models.detector': no such file: {tmp_path / 'd.json'}")):
        load_site_config(write(tmp_path, "cameras:\n  a: {source: clip.mp4}\nmodels: {detector: d.json}\n"), environ={})
    (tmp_path / "models" / "store.onnx").write_bytes(b"not a model")  # --check loads it as the start would
    broken = CliRunner().invoke(app, ["run", "-c", str(write(tmp_path, "cameras:\n  a: {source: clip.mp4}\n"
                                                                       "models: {classifier: models/store.onnx}\n")),
                                      "--check"])
    assert broken.exit_code == 1 and "store.onnx: not a model ONNX Runtime can load" in broken.output, broken.output

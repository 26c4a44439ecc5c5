"""A camera's outage as a store manager reads it: since when it is down and for how long, one that
never connected told from one that went down, and what to do about it, by role; the same times in
/v1/cameras (with the site's offset) and the last frame's time in /metrics. A real site, a real
RTSP camera stopped, a refused one, and Chromium."""

import re
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import VIEWER, log_in
from tests.rtsp import RtspServer, refused_port
from tests.test_bad_links import still_frames
from tests.test_cameras import wait_until
from tests.test_dashboard import page  # noqa: F401  (headless Chromium)
from tests.test_prometheus_examples import promtool
from tests.test_security import login, session_of
from tests.test_site import SiteProcess

ZONE = ZoneInfo("Asia/Kolkata")  # +05:30 all year: an offset that is neither UTC nor a whole hour


@pytest.fixture(scope="module")
def site(tmp_path_factory, sample_dir):
    """A site on Kolkata's clock: `bus` (an RTSP camera, stopped once it sent frames: down after
    its offline_after, 2 s) and `never` (its port refused from the start; its substream, with a
    password, the stream it reads); the viewer sees `never`."""
    folder = tmp_path_factory.mktemp("offline")
    port = refused_port()
    rtsp = RtspServer(still_frames(folder / "frames", sample_dir, (320, 240)), folder / "rtsp.log", fps=5).start()
    site = SiteProcess(folder, f'  bus: {{name: Bus, source: "{rtsp.url}"}}\n'
                               f'  never: {{name: Side door, source: "rtsp://127.0.0.1:{port}/main", '
                               f'detect_source: "rtsp://cam:s3cret@127.0.0.1:{port}/live"}}\n',
                       extra="timezone: Asia/Kolkata\n", viewer_cameras=["never"])
    try:
        assert wait_until(lambda: site.camera("bus")["connected"], 60), site.camera("bus")
        site.up = {camera["id"]: camera for camera in site.get("/v1/cameras").json()}
        site.metrics = site.get("/metrics").text
        rtsp.stop()
        assert wait_until(lambda: not site.camera("bus")["connected"], 30), site.camera("bus")
        yield site
    finally:
        site.stop()
        rtsp.stop()


def on_site(iso: str) -> datetime:
    moment = datetime.fromisoformat(iso)
    assert moment.utcoffset() == timedelta(hours=5, minutes=30), iso  # the site's offset, not UTC
    return moment


def test_the_api_says_since_when_a_camera_counts_as_down_on_the_site_s_clock(site):
    """/v1/cameras had `last_frame_at` (in UTC) only: a camera never connected and one down since
    07:12 could not be told apart, nor for how long one had been down."""
    up, never = site.up["bus"], site.up["never"]
    assert up["offline_since"] is None and on_site(up["last_frame_at"])
    assert never["last_frame_at"] is None and not never["connected"]
    assert on_site(never["offline_since"]).timestamp() <= time.time()  # the site's (its reader's) start
    down = site.camera("bus")
    # counted as down offline_after (stall_timeout, 2 s) after its last frame: the same clock, no second one
    assert on_site(down["offline_since"]) - on_site(down["last_frame_at"]) == timedelta(seconds=2)
    assert site.camera("never")["offline_since"] == never["offline_since"]  # since the start, still
    assert never["detect_source"] == never["source"].replace("/main", "/live").replace("//", "//cam:***@")
    assert up["detect_source"] is None
    viewer = httpx.get(site.base + "/v1/cameras", headers=session_of(login(site.base, VIEWER)), timeout=10).json()
    assert [(camera["source"], camera["detect_source"]) for camera in viewer] == [("rtsp://***", "rtsp://***")]


def test_metrics_give_the_last_frame_s_time(site):
    """/metrics had maskwatch_camera_up and no time of the last frame: an alert or a graph could not
    say how long a camera had sent nothing. None for a camera that sent no frame yet."""
    checked = promtool("check", "metrics", given=site.metrics)
    assert checked.returncode == 0 and not checked.stdout.strip(), checked.stdout + checked.stderr
    samples = [sample for family in text_string_to_metric_families(site.metrics)
               for sample in family.samples if sample.name == "maskwatch_camera_last_frame_timestamp_seconds"]
    assert [sample.labels for sample in samples] == [{"camera": "bus"}]
    assert abs(samples[0].value - on_site(site.up["bus"]["last_frame_at"]).timestamp()) < 1.0


def card_text(tab, camera: str, part: str) -> str:
    selector = f'.camera[data-camera="{camera}"] .{part}'
    tab.wait_for_function(f"() => document.querySelector('{selector}')?.textContent", timeout=20_000)
    return tab.inner_text(selector)


def test_an_offline_card_says_since_when_for_how_long_and_what_to_do_by_role(site, page):  # noqa: F811
    """An offline card said "offline" and the raw error: down since the morning or never connected
    read alike, with nothing on what to do. It says since when (the site's clock) and how long,
    keeps the error, and one line of what to do: an admin is pointed at the camera's problem, as
    `run --probe` says it; a viewer to whoever runs the site."""
    log_in(page, site.base)
    page.wait_for_function("() => document.querySelector('.camera[data-camera=\"bus\"]')?.dataset.connected "
                           "=== 'false'", timeout=20_000)
    down, never = site.camera("bus"), site.camera("never")
    went = on_site(down["offline_since"]).strftime("%H:%M")
    detail = card_text(page, "bus", "detail")
    assert re.fullmatch(rf"offline since {went} \(\d+ min\): .+; the picture is from .+", detail), detail
    started = on_site(never["offline_since"]).strftime("%H:%M")
    detail = card_text(page, "never", "detail")
    assert detail.startswith(f"not connected since the site started at {started}: cannot reach 127.0.0.1:"), detail
    assert "retrying in" in detail  # the error as it is, for the admin
    todo = card_text(page, "never", "todo")
    # the substream it reads, not `source`, which is never opened (the line named `source`)
    assert todo == f"What to do: mend what the error above says at {never['detect_source']} (its detect_source); " \
                   "`maskwatch run --probe` tries it again.", todo
    assert page.inner_text('.camera[data-camera="never"] .state') == "offline"
    log_in(page, site.base, VIEWER)
    assert card_text(page, "never", "todo") == "What to do: tell whoever runs the site."
    assert card_text(page, "never", "detail").startswith(f"not connected since the site started at {started}: ")

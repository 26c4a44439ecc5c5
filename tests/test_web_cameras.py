"""Cheap cameras over HTTP, for real on loopback: MJPEG streams as ESP32-CAMs and phone apps send
them, snapshot URLs (one JPEG per GET), a login page where a picture was expected."""

from __future__ import annotations

import urllib.request
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler

import numpy as np
import pytest

from maskwatch.site.config import load_site_config
from maskwatch.site.events import EventStore
from maskwatch.site.probe import probe_camera
from maskwatch.site.runner import camera_worker
from maskwatch.video.cameras import CameraReader, live_frames
from maskwatch.video.rtsp_probe import web_request
from maskwatch.video.snapshot_url import NoPicture, fetch_picture
from tests.rtsp import mute_server
from tests.test_cameras import wait_until
from tests.test_security_deploy import self_signed
from tests.web_camera import PASSWORD, USER, loopback_http, web_camera


@pytest.fixture(scope="module")
def camera():
    with web_camera() as (where, asked):
        yield where


@pytest.fixture(scope="module")
def locked_camera():
    with web_camera(login="basic") as (where, asked):
        yield where


@pytest.fixture(scope="module")
def digest_camera():
    with web_camera(login="digest") as (where, asked):
        yield where


@pytest.mark.parametrize("path", ["/stream", "/stream?nolength", "/stream?nodash"])
def test_an_mjpeg_stream_opens_with_or_without_lengths_and_dashes(camera, path):
    probe = probe_camera("camera door", f"http://{camera}{path}", 3.0)
    assert probe.ok, probe.detail
    # (it said `25 fps reported`, FFmpeg's default: MJPEG's parts carry no times)
    assert probe.detail.startswith(f"http://{camera}{path}: 160x120, no frame rate reported, first frame in ")


def test_an_mjpeg_stream_behind_basic_auth_opens_and_a_wrong_password_is_said(locked_camera):
    right = probe_camera("camera door", f"http://{USER}:{PASSWORD}@{locked_camera}/stream", 3.0)
    wrong = probe_camera("camera door", f"http://{USER}:wrong@{locked_camera}/stream", 3.0)
    assert right.ok, right.detail
    assert (wrong.ok, wrong.detail) == (False, f"http://{USER}:***@{locked_camera}/stream: the camera refused the "
                                               "user name or password (401)")


def test_a_login_page_where_a_stream_was_expected_is_said_as_a_web_page(camera):
    """It read `cannot open`: a camera that logs in by a form, or its home page's path, told nothing."""
    probe = probe_camera("camera door", f"http://{camera}/login.html", 3.0)
    assert (probe.ok, probe.detail) == (False, f"http://{camera}/login.html: the camera answers with a web page "
                                               "(text/html), not a video stream or a picture: its login page, or its "
                                               "web page's path instead of its MJPEG stream's or snapshot's (see its "
                                               "manual)")


def test_a_snapshot_url_is_asked_at_the_cameras_fps_without_counting_as_a_drop_each_time(camera):
    """Each GET's one picture ended the 'stream': it was reopened a second later (retry_first)
    whatever the camera's fps, reconnects counting every picture and last_error `stream ended or
    stalled` for as long as the camera ran."""
    reader = CameraReader(f"http://{camera}/shot.jpg", stall_timeout=3.0, name="till", decode_on_request=True,
                          poll_interval=0.05).start()
    try:
        assert wait_until(lambda: reader.state().frames >= 4)
        state = reader.state()
        assert (state.connected, state.reconnects, state.last_error) == (True, 0, None)
        assert reader.snapshot and reader.stream_fps is None
        assert reader.latest()[1].shape == (120, 160, 3)  # each picture converted, none asked for
    finally:
        reader.stop()


def test_a_snapshot_url_asked_less_often_than_offline_after_stays_up_between_pictures(camera):
    """fps: 0.1 with the default offline_after (10 s): the next picture is asked 10 s after the last
    was, and came a little later: the camera counted as down, and its people as gone, between
    any two pictures (its first 10 s of a picture every 2.5 s with offline_after 1 s here)."""
    reader = CameraReader(f"http://{camera}/shot.jpg", stall_timeout=1.0, name="till", poll_interval=2.5).start()
    try:
        assert wait_until(lambda: reader.state().frames >= 1)
        looks = []  # (connected, offline_since) at each look between the first picture and the next

        def next_picture() -> bool:
            state = reader.state()
            if state.frames >= 2:
                return True
            looks.append((state.connected, state.offline_since))
            return False

        # Up at every look, the 1.5 s past offline_after's 1 s included, until the next picture (asked
        # 2.5 s after the first was). One look 1.5 s after the picture ran into the next (frames 2)
        # where a busy machine's sleep woke a second late.
        assert wait_until(next_picture, 30)
        assert looks and set(looks) == {(True, None)}, set(looks)
        assert reader.offline_after == 3.5  # the next picture's ask and stall_timeout for it to come
    finally:
        reader.stop()


def test_a_snapshot_url_ended_by_closing_the_connection_is_read(camera):
    """FFmpeg opened it and read no frame (`opened but sent no frame`, for ever): a picture without
    a Content-Length, its end told by `Connection: close` (a CGI script's way), at a URL ending in .jpg
    (FFmpeg then reads it as an image file, whose length it must be told; `?` after it hid that)."""
    reader = CameraReader(f"http://{camera}/closing/shot.jpg", stall_timeout=3.0, name="till", poll_interval=0.05,
                          decode_on_request=True).start()
    try:
        assert wait_until(lambda: reader.state().frames >= 3)
        assert (reader.snapshot, reader.state().reconnects, reader.state().last_error) == (True, 0, None)
        assert reader.latest()[1].shape == (120, 160, 3)
    finally:
        reader.stop()


def test_a_sites_snapshot_camera_is_asked_at_its_fps(tmp_path):
    (tmp_path / "site.yaml").write_text("cameras:\n  till: {source: 'http://cam/shot.jpg', fps: 2}\n")
    config = load_site_config(tmp_path / "site.yaml")
    store = EventStore(str(tmp_path / "site.db"), tmp_path / "snaps")
    try:
        worker, _ = camera_worker("till", config.cameras["till"], detector=None, store=store)
    finally:
        store.close()
    assert worker.reader.poll_interval == 0.5


@pytest.mark.parametrize("login", ["basic", "digest"])
def test_a_snapshot_url_behind_basic_or_digest_auth_opens_and_a_wrong_password_is_said(
        locked_camera, digest_camera, login):
    """(Hikvision's ISAPI picture asks for Digest.)"""
    where = locked_camera if login == "basic" else digest_camera
    right = probe_camera("camera till", f"http://{USER}:{PASSWORD}@{where}/shot.jpg", 3.0)
    wrong = probe_camera("camera till", f"http://{USER}:wrong@{where}/shot.jpg", 3.0)
    assert (right.ok, right.detail.split(": ", 1)[1].split(", first frame")[0]) == (
        True, "160x120, a snapshot URL, one picture per request: asked at the camera's fps"), right.detail
    assert (wrong.ok, wrong.detail) == (False, f"http://{USER}:***@{where}/shot.jpg: the camera refused "
                                               "the user name or password (401)")
    reader = CameraReader(f"http://{USER}:{PASSWORD}@{where}/shot.jpg", name="till", poll_interval=0.05).start()
    try:  # the pictures after the first, fetched directly, signed as FFmpeg signed the first
        assert wait_until(lambda: reader.state().frames >= 3)
        assert (reader.snapshot, reader.state().reconnects) == (True, 0)
    finally:
        reader.stop()


def test_an_api_error_where_a_picture_was_expected_is_said_as_one(camera):
    """Reolink's Snap answers a wrong password with a 200 and JSON: it read `cannot open`."""
    probe = probe_camera("camera till", f"http://{camera}/cgi-bin/api.cgi?cmd=Snap&channel=0&user=admin&password=x",
                         3.0)
    assert (probe.ok, probe.detail.split(": ", 1)[1]) == (
        False, "the camera answers with text (text/html), not a video stream or a picture: its API's error, such as a "
               "wrong user or password in the URL's query (Reolink's Snap says so with a 200), or a wrong command or "
               "path (see its manual)")
    assert probe.detail.startswith(f"http://{camera}/cgi-bin/api.cgi?cmd=Snap&channel=0&user=admin&password=***: ")


@pytest.mark.parametrize("how", ["ends", "stalls"])
def test_an_mjpeg_stream_that_ends_or_stalls_is_reopened(camera, how):
    reader = CameraReader(f"http://{camera}/stream?{how}", stall_timeout=1.0, retry_max=0.5, retry_first=0.25,
                          name="door").start()
    try:
        assert wait_until(lambda: reader.state().reconnects >= 1 and reader.state().frames > 5)
        assert not reader.snapshot
    finally:
        reader.stop()


def test_detect_reads_a_snapshot_url_as_one_view_not_a_stream_lost_at_every_picture(camera):
    """`detect http://.../shot.jpg` said `stream lost after frame N; reconnecting` at every picture,
    and ended its tracks there: nobody was followed from one picture to the next."""
    errors, lost = [], []
    frames = live_frames(f"http://{camera}/shot.jpg", errors, name="till", stall_timeout=3.0,
                         on_lost=lambda: lost.append(1))
    try:
        shapes = [next(frames).image.shape for _ in range(4)]
    finally:
        frames.close()
    assert (shapes, errors, lost) == ([(120, 160, 3)] * 4, [], [])


def test_an_https_camera_with_its_own_certificate_is_said_untrusted_and_opens_once_told_not_to_check(
        tmp_path, monkeypatch):
    """A camera's self-signed certificate read `cannot open`, with the right password as with a wrong one."""
    from maskwatch.video.cameras import FFMPEG_OPTIONS

    with web_camera(login="basic", tls=self_signed(tmp_path)) as (where, asked):
        checked = [probe_camera("camera door", f"https://{USER}:{password}@{where}/shot.jpg", 3.0)
                   for password in (PASSWORD, "wrong")]
        monkeypatch.setenv("OPENCV_FFMPEG_CAPTURE_OPTIONS", FFMPEG_OPTIONS + "|tls_verify;0")
        right, wrong = (probe_camera("camera door", f"https://{USER}:{password}@{where}/shot.jpg", 3.0)
                        for password in (PASSWORD, "wrong"))
    assert {(probe.ok, probe.detail.split(": ", 1)[1]) for probe in checked} == {(
        False, "the camera's certificate is not trusted (self-signed certificate): a camera's own, self-signed one "
               "is refused as a browser refuses it; use its http:// URL on a network you trust, or add tls_verify;0 "
               "to OPENCV_FFMPEG_CAPTURE_OPTIONS (docs/site.md, Web cameras)")}
    assert right.ok, right.detail
    assert (wrong.ok, wrong.detail.split(": ", 1)[1]) == (False, "the camera refused the user name or password (401)")


def test_a_web_camera_busy_with_another_viewer_is_said_so_not_as_an_rtsp_open():
    """An ESP32-CAM streams to one viewer at a time: a second one's connection is taken and never
    answered. It read `... an RTSP open takes 4 round trips and a second of frames ...` of an http:// URL."""
    with mute_server(answers_options=False) as port:
        probe = probe_camera("camera door", f"http://127.0.0.1:{port}/stream", 1.0)
    assert (probe.ok, probe.detail) == (False, f"http://127.0.0.1:{port}/stream: the camera took the connection and "
                                               "sent nothing within stall_timeout (1 s): it may serve one viewer at a "
                                               "time (an ESP32-CAM's stream: is another app or browser watching it?), "
                                               "hang, or be behind a slow link (a longer stall_timeout)")


def test_an_mjpeg_stream_that_once_ended_at_its_first_frame_is_a_stream_again_once_it_streams(camera):
    """(Taken for a snapshot URL once, it would have kept converting each open's first frame.)"""
    reader = CameraReader(f"http://{camera}/stream?once", stall_timeout=2.0, name="door").start()
    try:
        assert wait_until(lambda: reader.state().frames > 3)
        assert not reader.snapshot
    finally:
        reader.stop()


def test_a_snapshot_camera_whose_password_is_changed_says_its_refusal_in_the_log(caplog):
    def said() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name == "maskwatch.video.cameras"]

    passwords = [PASSWORD]
    with web_camera(login="digest", passwords=passwords) as (where, asked):
        reader = CameraReader(f"http://{USER}:{PASSWORD}@{where}/shot.jpg", stall_timeout=1.0, retry_max=0.5,
                              retry_first=0.25, name="till", poll_interval=0.05).start()
        try:
            assert wait_until(lambda: reader.snapshot and reader.state().frames >= 2)
            passwords.append("changed")
            assert wait_until(lambda: not reader.state().connected)
            assert reader.state().last_error.startswith("the camera refused the user name or password (401); retrying")
            # state() counts the camera down at offline_after; the reader's thread says so when its
            # wait for that moment ends: stopped before it woke (a busy machine), nothing was said.
            assert wait_until(said)
        finally:
            reader.stop()
    assert said() == [f"till (http://{USER}:***@{where}/shot.jpg): the camera refused the user name or password (401); "
                    "retrying, at most 0.5 s apart"]


def test_a_snapshot_that_trickles_in_is_given_up_at_stall_timeout_not_read_for_as_long_as_it_drips(camera):
    """The timeout was a read's: a picture whose bytes came each within it (a slow link, a hung
    camera's) held the reader for as long as it dripped, its camera counted neither up nor down."""
    with pytest.raises(NoPicture, match=rf"^{camera} sent no picture within 0.5 s$"):
        fetch_picture(f"http://{camera}/drip/shot.jpg", timeout=0.5)  # its 40 slow bytes take 2 s


def test_a_snapshot_whose_header_claims_too_many_pixels_is_no_picture_not_the_readers_end(camera):
    """OpenCV's pixel limit (OPENCV_IO_MAX_IMAGE_PIXELS) raised cv2.error through fetch_picture: the
    reader's thread ended there, its camera never asked again."""
    with pytest.raises(NoPicture, match=r"^the camera's picture claims more than 100000000 pixels in its header: not decoded$"):
        fetch_picture(f"http://{camera}/bomb/shot.jpg", timeout=3.0)


def test_an_infrared_cameras_16_bit_grey_snapshot_is_read_at_its_full_range_not_nearly_black(camera):
    """A 12-bit sensor's 16-bit grey PNG was decoded as photos were before to_8_bits: OpenCV's 1/256
    scaling left its brightest pixel at 15 of 255, a night camera's faces lost in black, unsaid.
    Read as `detect` and /v1/detect read the same file: BGR, 0-255, R = G = B."""
    image = fetch_picture(f"http://{camera}/grey16/shot.png", timeout=3.0)
    assert image.shape == (120, 160, 3) and image.dtype == np.uint8
    assert int(image.max()) == 255 and (image[..., 0] == image[..., 2]).all()


def test_a_snapshot_redirected_to_an_address_no_resolver_takes_is_no_picture_not_the_readers_end(camera):
    """urllib raised UnicodeError (a ValueError, not an OSError) for `Location: http://a..b/`: out of
    fetch_picture, it ended the reader's thread, the camera never asked again."""
    with pytest.raises(NoPicture, match=r"^the camera redirected the request to an address that is no valid URL$"):
        fetch_picture(f"http://{camera}/moved/shot.jpg", timeout=3.0)


@contextmanager
def proxy():
    """A proxy on loopback that reaches no camera (502), as a company's proxy does a camera on the LAN."""
    asked = []

    class Proxy(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            self.send_response(502)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    with loopback_http(Proxy) as port:
        yield f"http://127.0.0.1:{port}", asked


def test_a_snapshot_is_fetched_through_ffmpegs_proxy_only_not_one_ffmpeg_ignores(locked_camera, monkeypatch):
    """urllib took HTTP_PROXY (upper case), which FFmpeg ignores: the camera's first picture came
    (FFmpeg, directly), every next one went, with its password, to the proxy, which answered 502."""
    for name in ("http_proxy", "https_proxy", "no_proxy", "NO_PROXY", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
    source = f"http://{USER}:{PASSWORD}@{locked_camera}/shot.jpg"
    with proxy() as (address, asked):
        monkeypatch.setenv("HTTP_PROXY", address)
        assert fetch_picture(source, timeout=3.0).shape == (120, 160, 3)
        assert asked == []
        monkeypatch.setenv("http_proxy", address)  # FFmpeg's: it goes there too
        with pytest.raises(NoPicture, match=r"502 Bad Gateway$"):
            fetch_picture(source, timeout=3.0)
        monkeypatch.setenv("no_proxy", "127.0.0.1")
        assert fetch_picture(source, timeout=3.0).shape == (120, 160, 3)
    assert asked == [f"http://{locked_camera}/shot.jpg"]


def test_an_https_cameras_password_is_not_given_to_http_after_a_redirect():
    """urllib's password manager matches a host without its port or scheme: an https:// camera
    that redirects to http://the-same-host/the-same-path (then asks for a password) got it in the clear."""
    opener, _, _ = web_request("https://admin:pw@cam.example/snap.jpg")
    passwords = next(h.passwd for h in opener.handlers if isinstance(h, urllib.request.HTTPBasicAuthHandler))
    assert passwords.find_user_password("camera", "https://cam.example/snap.jpg") == ("admin", "pw")
    assert passwords.find_user_password("camera", "http://cam.example/snap.jpg") == (None, None)
    assert passwords.find_user_password("camera", "http://cam.example:443/snap.jpg") == (None, None)


def test_a_snapshot_said_as_octet_stream_is_a_picture_not_a_stream(camera):
    """A JPEG without an image/ type (application/octet-stream, or none) was taken for a stream:
    the camera went back to FFmpeg's open, its one picture, then the direct fetch again, an outage
    counted at every second picture."""
    assert fetch_picture(f"http://{camera}/untyped/shot.jpg", timeout=3.0).shape == (120, 160, 3)


def test_a_wrong_digest_password_is_tried_once_a_fetch_not_six_times():
    """urllib's Digest handler signed again after each 401 (a new cnonce each time), up to 6 tries:
    a camera that locks its user after 5 failed logins (Hikvision's default) was locked by one fetch."""
    with web_camera(login="digest") as (where, asked):
        with pytest.raises(NoPicture, match=r"^the camera refused the user name or password \(401\)$"):
            fetch_picture(f"http://{USER}:wrong@{where}/shot.jpg", timeout=3.0)
        assert asked == ["/shot.jpg", "/shot.jpg"]  # unsigned, then signed once

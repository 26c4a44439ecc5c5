"""Cameras on a bad mobile link (a bus's 4G): the real RTSP server behind a proxy that delays,
stalls, drops or throttles (tests/link_proxy.py), and a camera that comes back at another
resolution. What a user sees: the camera's state, its people, its rate and the log."""

import functools
import logging
import re
import threading
from pathlib import Path

import cv2
import pytest

from maskwatch import Detector
from maskwatch.video import cameras, pipeline
from maskwatch.video.cameras import CameraReader, CameraWorker
from maskwatch.video.motion import MotionDetector, MotionSettings
from maskwatch.video.pipeline import run_detect
from maskwatch.video.process import FrameProcessor
from maskwatch.video.sources import Frame
from maskwatch.video.tracker import FaceTracker
from tests.link_proxy import LinkProxy
from tests.rtsp import RtspServer, rtsp_server  # noqa: F401  (fixture)
from tests.conftest import log_in
from tests.scenes import empty_view, sample_photos
from tests.test_cameras import Collect, wait_until
from tests.test_dashboard import page  # noqa: F401  (headless Chromium)
from tests.test_site import SiteProcess


@pytest.fixture(scope="module")
def detector():
    return Detector.load()


def still_frames(folder: Path, sample_dir: Path, size: tuple[int, int], count: int = 10) -> Path:
    """`count` copies of one sample photo (three faces) at `size`, named for RtspServer's fps: a still view."""
    folder.mkdir(parents=True, exist_ok=True)
    image = cv2.resize(cv2.imread(str(sorted(sample_dir.glob("images/*.png"))[0])), size)
    for i in range(count):
        cv2.imwrite(str(folder / f"frame{i:04d}.jpg"), image)
    return folder


class Sizes(Collect):
    """Collect, keeping each frame's width and the track ids of the faces it shows."""

    def write(self, frame, faces, detected):
        self.frames.append((frame.image.shape[1], sorted(f.track_id for f in faces if not f.missed), detected))


def test_a_link_that_drops_and_is_reopened_within_stall_timeout_never_counts_as_offline(rtsp_server,  # noqa: F811
                                                                                        caplog):
    """A 4G link drops the connection and the camera is reached again a second later: it read
    `connected: false` (MQTT `offline`, the page's offline, maskwatch_camera_up 0) until it was
    reopened, though `stall_timeout` says how long without a frame counts as down; and the log
    said an outage and its end at every drop (two warnings a drop, all day on a bus)."""
    caplog.set_level(logging.INFO, logger="maskwatch.video.cameras")
    proxy = LinkProxy(rtsp_server.port)
    reader = CameraReader(proxy.url(), stall_timeout=8.0, retry_max=0.5, retry_first=0.25, name="bus").start()
    try:
        assert wait_until(lambda: reader.state().frames > 0), reader.state()
        frames = reader.state().frames
        proxy.drop()
        seen = []  # the state, looked at through the outage until frames flow again

        def back() -> bool:
            seen.append(reader.state())
            return seen[-1].reconnects >= 1 and seen[-1].frames > frames + 5

        assert wait_until(back, 20), seen[-1]
        assert all(state.connected for state in seen), [state for state in seen if not state.connected][0]
        assert proxy.connections >= 3  # it was reopened: the first check and open, then the new ones
    finally:
        reader.stop()
        proxy.close()
    said = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "maskwatch.video.cameras"]
    assert said == [(logging.INFO, f"bus ({proxy.url()}): frames again within offline_after (8 s) after: "
                                   "stream ended or stalled")], said


def test_a_camera_back_at_another_resolution_keeps_its_people(tmp_path, sample_dir, detector):
    """A camera whose substream is reconfigured (or that reboots at another resolution) and is
    back within `stall_timeout`: the people in view were lost at their old pixels and started
    again at the new ones, each counted twice."""
    small = still_frames(tmp_path / "small", sample_dir, (320, 240))
    server = RtspServer(small, tmp_path / "server.log", fps=5).start()
    sink = Sizes()
    processor = FrameProcessor(detector, FaceTracker(), detect_every=2,
                               motion=MotionDetector(MotionSettings(full_check=1.0)))
    reader = CameraReader(server.url, stall_timeout=10.0, retry_max=0.5, retry_first=0.25, name="bus",
                          decode_on_request=True)
    worker = CameraWorker("bus", reader, processor, [sink], fps=5).start()
    try:
        def people_at(width: int) -> list[list[int]]:
            return [ids for shown, ids, detected in sink.frames if shown == width and detected and ids]

        assert wait_until(lambda: len(people_at(320)) >= 3, 30), sink.frames[-5:]
        before = people_at(320)[-1]
        server.stop()
        server.frames = still_frames(tmp_path / "big", sample_dir, (640, 480))
        server.start()  # on the same port
        # Three detections at the new size: past the tracker's lost_after (2 s) with full_check 1 s
        assert wait_until(lambda: len(people_at(640)) >= 3, 30), sink.frames[-5:]
        assert people_at(640)[-1] == before and not sink.people, (people_at(640), sink.people)
    finally:
        worker.stop()
        server.stop()
    assert sorted(person.track_id for person in sink.people) == before


def test_a_slow_link_rate_is_said_as_frames_per_second_not_a_burst(tmp_path, sample_dir):
    """A link so slow the camera sends 1 frame a second: the frames FFmpeg holds while it opens
    the stream arrive together, and the rate read 1,000 frames per second (maskwatch_camera_fps
    beside its fps_target of 5) until the next frame came."""
    server = RtspServer(still_frames(tmp_path / "frames", sample_dir, (320, 240), 2), tmp_path / "server.log",
                        fps=1).start()
    proxy = LinkProxy(server.port, delay=0.3)
    reader = CameraReader(proxy.url(), stall_timeout=10.0, name="bus").start()
    try:
        rates = []  # the rate, looked at from the first frame on

        def three_frames() -> bool:
            state = reader.state()
            if state.frames:
                rates.append(state.fps)
            return state.frames >= 4

        assert wait_until(three_frames, 30), reader.state()
        assert max(rates) <= 2.0, rates
    finally:
        reader.stop()
        proxy.close()
        server.stop()


def test_a_link_back_with_dead_connections_is_reopened_soon_while_the_camera_stays_up(tmp_path, sample_dir, detector):
    """A bus's 4G link back after a stall with a new address: its old connection is dead and says
    nothing. stall_timeout 30 to ride out the stalls kept OpenCV on the dead connection for 22 s
    (its read timeouts) while the link was up; offline_after 30 with stall_timeout 2 reopens it
    in seconds, and the camera stays up with the same people meanwhile."""
    server = RtspServer(still_frames(tmp_path / "frames", sample_dir, (320, 240)), tmp_path / "server.log", fps=5).start()
    proxy = LinkProxy(server.port)
    sink = Sizes()
    processor = FrameProcessor(detector, FaceTracker(), detect_every=2,
                               motion=MotionDetector(MotionSettings(full_check=1.0)))
    reader = CameraReader(proxy.url(), stall_timeout=2.0, offline_after=30.0, retry_max=0.5, retry_first=0.25,
                          name="bus", decode_on_request=True)
    worker = CameraWorker("bus", reader, processor, [sink], fps=5).start()
    try:
        def detected() -> list[list[int]]:
            return [ids for _, ids, was_detected in sink.frames if was_detected and ids]

        assert wait_until(lambda: len(detected()) >= 3, 30), sink.frames[-5:]
        before, shown = detected()[-1], len(detected())
        proxy.freeze()  # the connection open now passes nothing again, and is not closed
        seen = []

        def back() -> bool:
            seen.append((worker.state()["connected"], len(sink.people)))
            return reader.state().reconnects >= 1 and len(detected()) >= shown + 3

        assert wait_until(back, 30), (reader.state(), sink.frames[-5:])
        assert all(up and not people for up, people in seen), seen  # up, and nobody left, all along
        assert detected()[-1] == before
    finally:
        worker.stop()
        proxy.close()
        server.stop()
    assert sorted(person.track_id for person in sink.people) == before


def test_a_link_too_slow_to_open_within_stall_timeout_says_so(rtsp_server):  # noqa: F811
    """An RTSP open over 4G (400 ms each way) takes 5 s: with a shorter stall_timeout (OpenCV's
    open timeout) the camera never opened and said only `cannot open; retrying`, for ever."""
    proxy = LinkProxy(rtsp_server.port, delay=0.4)
    reader = CameraReader(proxy.url(), stall_timeout=2.0, retry_max=0.5, retry_first=0.25, name="bus").start()
    try:
        assert wait_until(lambda: reader.state().reconnects >= 2, 30), reader.state()
        assert reader.state().last_error.startswith(
            "the stream did not open within stall_timeout (2 s), though its host answers: a slow link needs a "
            "longer stall_timeout"), reader.state()
    finally:
        reader.stop()
        proxy.close()


def test_people_who_left_during_a_stall_are_not_seen_at_the_frame_after_it(detector):
    """A camera kept up through a stall (offline_after) whose people left meanwhile (a bus's stop).
    The first frame back fell between detections (detect_every) half the time, and the tracker
    counted everyone where they were before the stall as seen on it: their events' last_seen, and
    their minute, moved to the stall's end (up to offline_after, an hour, later than they were seen)."""
    photo, empty = sample_photos(1)[0][0], empty_view(0)
    processor = FrameProcessor(detector, FaceTracker(), detect_every=2)
    frames = [Frame(i, i * 0.2, photo, f"f{i}") for i in range(11)]  # 2 s of people; the first frame back falls between detections
    frames += [Frame(11 + i, 60.0 + i * 0.2, empty, f"f{11 + i}") for i in range(15)]  # a minute later: gone
    people, shown = [], []
    for frame in frames:
        shown.append(processor(frame)[0])
        people += processor.take_finished_people()
    assert people and all(person.last_seen <= 2.0 for person in people), [p.last_seen for p in people]
    assert len(shown[11]) == len(people)  # shown where they were until a detection says otherwise: no flap to 0


def test_the_page_says_why_a_camera_kept_up_through_a_stall_has_no_new_frame(tmp_path, sample_dir, page):  # noqa: F811
    """A camera kept up by offline_after while its stream is away: its card said `online` over a
    frozen picture and nothing more for up to offline_after (an hour), where /v1/cameras had the
    reason (`last_error`), and the same drop had said `offline` with it before offline_after came."""
    rtsp = RtspServer(still_frames(tmp_path / "frames", sample_dir, (320, 240)), tmp_path / "rtsp.log", fps=5).start()
    site = SiteProcess(tmp_path, f'  bus: {{name: Bus, source: "{rtsp.url}", offline_after: 600}}\n')
    try:
        assert wait_until(lambda: site.camera("bus")["connected"], 60), site.camera("bus")
        log_in(page, site.base)
        page.wait_for_function("() => document.querySelector('.camera[data-camera=\"bus\"]')?.dataset.connected "
                               "=== 'true'", timeout=20_000)
        rtsp.stop()
        assert wait_until(lambda: site.camera("bus")["last_error"], 30), site.camera("bus")
        page.wait_for_function("() => document.querySelector('.camera[data-camera=\"bus\"] .detail').textContent",
                               timeout=20_000)
        card = page.query_selector('.camera[data-camera="bus"]')
        assert card.get_attribute("data-connected") == "true"
        detail = card.query_selector(".detail").inner_text()
        # the reason as last_error has it when the page read it: the stream's end, then the refused port
        assert re.fullmatch(r"no frame since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d( \(UTC.+\))?, reconnecting: .+; retrying in [\d.]+ s", detail), detail
    finally:
        site.stop()
        rtsp.stop()


@pytest.fixture(scope="module")
def one_face_server(tmp_path_factory):
    """The RTSP server looping one still view of one person (a sample photo with one face), 5 fps."""
    folder = tmp_path_factory.mktemp("one-face")
    photo, faces = sample_photos(2)[1]
    assert faces == 1
    for i in range(10):
        cv2.imwrite(str(folder / f"frame{i:04d}.jpg"), photo)
    server = RtspServer(folder, folder.parent / "one-face-server.log", fps=5).start()
    yield server
    server.stop()


def detect_through_a_drop(server, out: Path, detector, frames: int = 20, drop_at: int = 8):
    """`detect URL` of one person standing still, through the proxy, whose link drops at frame
    `drop_at` and is away for 3 s (the connections closed, and new ones held until it is back)."""
    proxy = LinkProxy(server.port)
    back = threading.Timer(3.0, proxy.flow)

    def on_frame(frame, faces) -> None:
        if frame.index == drop_at:
            proxy.stall()
            proxy.drop()
            back.start()

    try:
        return run_detect(proxy.url(), out, detector, save_media=False, progress=False, max_frames=frames,
                          on_frame=on_frame)
    finally:
        back.cancel()
        proxy.close()


def tracked(result) -> int:
    return result.summary["totals"]["people"] + result.summary["totals"]["unassessable"]


def test_detect_of_a_stream_keeps_its_person_through_a_short_drop(one_face_server, tmp_path, detector):
    """A 4G link drops for 3 s and is back well within the 10 s a site's camera (offline_after)
    waits: `detect URL` ended every track at each reopen, and the one person standing in view
    through it was two people (two in summary.json, counted twice)."""
    result = detect_through_a_drop(one_face_server, tmp_path / "out", detector)
    assert tracked(result) == 1, result.summary
    assert len(result.errors) == 1 and re.fullmatch(
        r"127\.0\.0\.1_\d+_clip: stream lost after frame \d+ and back within 10 s: the people in view kept",
        result.errors[0]), result.errors
    assert result.summary["errors"] == result.errors  # summary.json says it too


def test_detect_of_a_stream_ends_its_people_at_a_drop_longer_than_the_limit(one_face_server, tmp_path, detector,
                                                                             monkeypatch):
    """The same 3 s drop with a limit of 2 s (stall_timeout, and so offline_after, of 2 s): an
    outage, and the person in view before it is another person after it, as at a site's camera."""
    monkeypatch.setattr(pipeline, "live_frames", functools.partial(cameras.live_frames, stall_timeout=2.0))
    result = detect_through_a_drop(one_face_server, tmp_path / "out", detector)
    assert tracked(result) == 2, result.summary
    assert len(result.errors) == 1 and re.fullmatch(
        r"127\.0\.0\.1_\d+_clip: stream lost after frame \d+, no frame for 2 s: the people in view counted "
        r"as gone; reconnecting", result.errors[0]), result.errors

"""Cameras that never give up, against a real RTSP server on loopback that is stopped and restarted."""

import logging
import threading
import time

import pytest

from maskwatch import Detector
from maskwatch.video.cameras import CameraReader, CameraState, CameraWorker, live_frames
from maskwatch.video.process import FrameProcessor
from maskwatch.video.tracker import FaceTracker
from tests.rtsp import RtspServer, mute_server, make_frames, refused_port, rtsp_server  # noqa: F401  (fixture)
from tests.test_detection import make_video


def wait_until(condition, limit: float = 30.0) -> bool:
    """Poll `condition` until it holds; the limit only keeps a broken test from hanging."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def fast_reader(source: str, name: str = "cam") -> CameraReader:
    return CameraReader(source, stall_timeout=2.0, retry_max=0.5, retry_first=0.25, name=name)


class Collect:
    """A sink that keeps what it is given."""

    def __init__(self):
        self.frames, self.people, self.closed = [], [], False

    def write(self, frame, faces, detected):
        self.frames.append((frame.index, faces, detected))

    def write_people(self, people):
        self.people.extend(people)

    def close(self):
        self.closed = True


def test_the_wait_between_tries_doubles_up_to_its_most_however_long_the_outage():
    from maskwatch.video.cameras import retry_delay

    assert [retry_delay(n, 1.0, 10.0) for n in (1, 2, 3, 4, 5)] == [1.0, 2.0, 4.0, 8.0, 10.0]
    assert retry_delay(1025, 1.0, 10.0) == retry_delay(10**6, 1.0, 10.0) == 10.0  # 2 ** 1024 overflowed


def test_a_host_name_no_lookup_takes_is_said_and_retried():
    """cam..local made the connection check raise UnicodeError: the reader's thread died, the camera
    offline for good with no error said."""
    reader = fast_reader("rtsp://u:pw@cam..local/live").start()
    try:
        assert wait_until(lambda: reader.state().reconnects >= 2, 10)
        assert reader._thread.is_alive()
        assert reader.state().last_error.startswith("cam..local:554 is not a valid host name")
    finally:
        reader.stop()


def test_a_host_name_that_does_not_resolve_is_said_so_in_the_site_and_its_log(caplog):
    """A running site's camera whose name no DNS knows (a typo, a camera not in DNS) said `cannot
    open` in /v1/cameras and the log, where `run --probe` said the name does not resolve."""
    caplog.set_level(logging.WARNING, logger="maskwatch.video.cameras")
    reader = fast_reader("rtsp://u:pw@no-such-camera.invalid/live").start()
    try:
        assert wait_until(lambda: reader.state().reconnects >= 1, 10)
        assert reader.state().last_error.startswith("no such host (no-such-camera.invalid does not resolve)")
        assert "no such host (no-such-camera.invalid does not resolve); retrying" in caplog.text
    finally:
        reader.stop()


def test_a_video_file_removed_while_it_plays_is_said_gone_and_played_again_once_back(tmp_path, sample_dir):
    """A site's file camera whose file was removed (or moved) said `cannot open`, where `run
    --probe` and `run --check` say the file is not there."""
    path = tmp_path / "door.mp4"
    make_video(path, sample_dir, frames=10)
    reader = fast_reader(str(path)).start()
    try:
        assert wait_until(lambda: reader.state().frames > 0), reader.state()
        moved = path.rename(tmp_path / "moved.mp4")
        assert wait_until(lambda: reader.state().reconnects >= 1, 10), reader.state()
        assert reader.state().last_error.startswith(f"no such video file: {path}; retrying")
        moved.rename(path)
        assert wait_until(lambda: reader.state().connected, 10), reader.state()
    finally:
        reader.stop()


def test_a_file_camera_of_sound_alone_says_so_not_cannot_open(tmp_path):
    """A site camera given a phone's sound recording (an MP4 with no video track) said `cannot
    open`, where `detect` names it an audio file."""
    from tests.test_detection import sound_only_mp4

    path = tmp_path / "door.mp4"
    path.write_bytes(sound_only_mp4())
    reader = fast_reader(str(path)).start()
    try:
        assert wait_until(lambda: reader.state().reconnects >= 1, 10), reader.state()
        assert reader.state().last_error.startswith("an audio file: it holds sound and no video track; retrying")
    finally:
        reader.stop()


def test_a_file_camera_plays_past_frames_that_do_not_decode(tmp_path):
    """A file whose frames 1-39 do not decode: the camera showed its grey frame 0 and reopened
    the file at once, for ever, never reaching frame 40."""
    from tests.test_detection import broken_start_clip

    reader = fast_reader(str(broken_start_clip(tmp_path / "door.mp4"))).start()
    try:
        assert wait_until(lambda: (got := reader.latest()[1]) is not None and got.mean() > 150, 10)
    finally:
        reader.stop()


def test_a_port_that_is_no_rtsp_server_is_said_as_reached_not_unreachable():
    """A camera URL with another service's port (the MQTT broker's, say) was "cannot reach
    127.0.0.1:1883 (Connection reset by peer)": the port was reached, and that sent the reader to
    the network, not to the port. The camera's web port (it answers in HTTP) was `cannot open`."""
    import socket
    import struct
    import threading

    from maskwatch.video.rtsp_probe import rtsp_refusal

    web = RefusingCamera("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
    try:
        where = web.url.split("/")[2]
        assert rtsp_refusal(web.url.replace("//", "//viewer:pw@"), timeout=3.0) == (
            f"{where} answers in HTTP, not RTSP: a web page's port? (RTSP is most often 554; an MJPEG stream "
            "is written http://)")
    finally:
        web.stop()

    for reset in (True, False):  # a service that resets the connection at RTSP's first bytes, one that closes it
        listener = socket.create_server(("127.0.0.1", 0))
        port = listener.getsockname()[1]

        def serve(listener=listener, reset=reset):
            with listener:
                connection, _ = listener.accept()
                connection.recv(4096)  # all of the OPTIONS: one left unread is a reset
                if reset:
                    connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                connection.close()

        threading.Thread(target=serve, daemon=True).start()
        said = fast_reader(f"rtsp://127.0.0.1:{port}/live")._unreachable()
        assert said == (f"127.0.0.1:{port} closed the connection without an RTSP answer"
                        f"{' (Connection reset by peer)' if reset else ''}: is it the camera's RTSP port?"), said


def test_reader_refuses_nonpositive_timeouts():
    with pytest.raises(ValueError, match="positive seconds"):
        CameraReader("rtsp://127.0.0.1:1/x", stall_timeout=0)


def test_a_stopped_server_goes_offline_and_comes_back(rtsp_server, caplog):  # noqa: F811
    reader = fast_reader(rtsp_server.url).start()
    try:
        assert wait_until(lambda: reader.state().connected), reader.state()
        before = reader.state()
        assert before.frames > 0 and before.last_frame_at is not None and before.last_error is None
        rtsp_server.stop()
        assert wait_until(lambda: not reader.state().connected), reader.state()
        assert wait_until(lambda: reader.state().reconnects >= 2), reader.state()  # keeps trying
        assert "retrying" in reader.state().last_error
        rtsp_server.start()
        assert wait_until(lambda: reader.state().connected and reader.state().frames > before.frames), reader.state()
        assert wait_until(lambda: reader.state().fps > 0), reader.state()
    finally:
        reader.stop()
    # The outage is said once in the log, however many retries it took, and so is its end.
    said = [r.getMessage() for r in caplog.records if r.name == "maskwatch.video.cameras"]
    assert len(said) == 2 and "retrying" in said[0] and said[1].endswith(": frames again"), said


def test_a_camera_that_refuses_the_login_during_an_outage_is_said_in_the_log(tmp_path, sample_dir, caplog):
    """A camera whose password was changed (or a login set) drops its stream and then answers 401:
    the log said only the outage's first reason, `stream ended or stalled`, and never the 401."""
    caplog.set_level(logging.WARNING, logger="maskwatch.video.cameras")
    server = RtspServer(make_frames(tmp_path / "frames", sample_dir), tmp_path / "server.log").start()
    reader = fast_reader(server.url, "door").start()
    try:
        assert wait_until(lambda: reader.state().connected), reader.state()
        server.stop()
        server.auth = "digest:viewer:s3cret"
        server.start()
        assert wait_until(lambda: "(401)" in (reader.state().last_error or ""), 30), reader.state()
        # said once the camera counts as down (stall_timeout without a frame), then no more
        assert wait_until(lambda: "(401)" in caplog.text, 30), caplog.text
        assert wait_until(lambda: reader.state().reconnects >= 8, 30), reader.state()
    finally:
        reader.stop()
        server.stop()
    said = [r.getMessage() for r in caplog.records if r.name == "maskwatch.video.cameras"]
    assert [line for line in said if "the camera asks for a user name and password (401)" in line], said
    # the outage with its refusal, or the outage, then its refusal (where it came later): once, not at every retry
    assert len(said) <= 2 and sum("(401)" in line for line in said) == 1, said


@pytest.mark.parametrize("method", ["digest", "basic"])
def test_a_wrong_password_or_path_is_said_as_the_camera_refuses_it(tmp_path, sample_dir, method, caplog):
    """The most common setup mistake said only 'cannot open; retrying': the camera's own 401 or
    404 is told, with no part of the URL; the right password connects."""
    server = RtspServer(make_frames(tmp_path / "frames", sample_dir), tmp_path / "server.log",
                        auth=f"{method}:viewer:s3/cret").start()
    where = f"127.0.0.1:{server.port}"
    readers = {
        "refused": fast_reader(f"rtsp://viewer:guess@{where}/clip", "refused"),
        "asked": fast_reader(f"rtsp://{where}/clip", "asked"),
        "path": fast_reader(f"rtsp://viewer:s3%2Fcret@{where}/stream1", "path"),
        "right": fast_reader(f"rtsp://viewer:s3%2Fcret@{where}/clip", "right"),
    }
    try:
        for reader in readers.values():
            reader.start()
        errors = {name: lambda r=reader: r.state().last_error or "" for name, reader in readers.items()}
        assert wait_until(lambda: "refused the user name or password (401)" in errors["refused"]()), errors["refused"]()
        assert wait_until(lambda: "asks for a user name and password (401)" in errors["asked"]()), errors["asked"]()
        assert wait_until(lambda: "no stream at this path (404)" in errors["path"]()), errors["path"]()
        assert wait_until(lambda: readers["right"].state().frames > 0), readers["right"].state()
    finally:
        for reader in readers.values():
            reader.stop()
        server.stop()
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "refused the user name or password" in said and "guess" not in said and "s3" not in said


def test_a_stalled_stream_goes_offline_and_comes_back(rtsp_server):  # noqa: F811
    reader = fast_reader(rtsp_server.url).start()
    try:
        assert wait_until(lambda: reader.state().connected), reader.state()
        rtsp_server.pause()  # the connection stays open, no frame comes
        assert wait_until(lambda: not reader.state().connected), reader.state()
        frames = reader.state().frames
        rtsp_server.resume()
        assert wait_until(lambda: reader.state().connected and reader.state().frames > frames, 60), reader.state()
    finally:
        reader.stop()


def test_a_dead_camera_does_not_hold_up_a_live_one(rtsp_server):  # noqa: F811
    dead = fast_reader(f"rtsp://127.0.0.1:{refused_port()}/nothing", "dead").start()
    live = fast_reader(rtsp_server.url, "live").start()
    try:
        assert wait_until(lambda: live.state().frames >= 10), live.state()
        assert wait_until(lambda: dead.state().reconnects >= 3), dead.state()
        assert not dead.state().connected and dead.state().frames == 0
        frames = live.state().frames
        assert wait_until(lambda: live.state().frames > frames + 5)  # still flowing while the dead one retries
    finally:
        dead.stop()
        live.stop()


def test_a_camera_that_takes_connections_and_never_answers_holds_up_no_other(tmp_path, sample_dir):
    """OpenCV opens every capture under one lock: a mute camera's open (up to stall_timeout) held
    a file camera's first frame back by as long; it is now found mute before OpenCV is asked."""
    clip = make_video(tmp_path / "clip.mp4", sample_dir, frames=3)
    dialled = []  # the mute camera's connections as they come and go
    with mute_server(dialled, "mute", answers_options=False) as port:  # takes connections, never says a word
        silent = CameraReader(f"rtsp://127.0.0.1:{port}/live", stall_timeout=8.0, retry_max=0.5,
                              retry_first=0.25, name="mute").start()
        reader = None
        try:
            assert wait_until(lambda: dialled, 20)  # the mute camera is trying first
            reader = fast_reader(str(clip), "file").start()
            seen = []  # (the file's first frame in, the mute camera's first connection still open), in that order

            def first_frame_or_mute_let_go() -> bool:
                seen.append((reader.state().frames > 0, ("mute", "closed") not in dialled))
                return seen[-1] != (False, True)

            # The file's first frame came while the mute camera's first try (its check, up to 5 s)
            # still held its connection, not after it let go (OpenCV's open, 8 s): shown by their
            # order, not by a clock that a busy neighbour (the other xdist worker) could stretch.
            assert wait_until(first_frame_or_mute_let_go, 20)
            assert seen[-1] == (True, True), f"the file camera's first frame waited for the mute camera: {dialled}"
            assert wait_until(lambda: "does not answer" in (silent.state().last_error or ""), 20), silent.state()
        finally:
            if reader is not None:
                reader.stop()
            silent.stop()

def test_worker_tracks_people_and_hands_them_out_when_the_stream_drops(rtsp_server):  # noqa: F811
    detector = Detector.load()
    sink = Collect()
    processor = FrameProcessor(detector, FaceTracker(min_hits=2), detect_every=2)
    worker = CameraWorker("door", fast_reader(rtsp_server.url), processor, [sink], fps=4).start()
    try:
        assert wait_until(lambda: len(sink.frames) >= 6, 60), worker.state()
        assert [detected for _, _, detected in sink.frames[:4]] == [True, False, True, False]
        assert any(faces for _, faces, _ in sink.frames)
        rtsp_server.stop()
        assert wait_until(lambda: not worker.state()["connected"] and sink.people), worker.state()
        ids = [t.track_id for t in sink.people]
        assert len(ids) == len(set(ids)) and all(t.label for t in sink.people)
        assert all(t.last_seen > 1e9 for t in sink.people)  # Unix time, for events
        rtsp_server.start()
        analysed = worker.state()["analysed"]
        assert wait_until(lambda: worker.state()["connected"] and worker.state()["analysed"] > analysed, 60)
    finally:
        worker.stop()
    assert sink.closed


def test_a_video_file_is_looped(tmp_path, sample_dir):
    clip = make_video(tmp_path / "clip.mp4", sample_dir, frames=3)
    reader = fast_reader(str(clip)).start()
    try:
        assert wait_until(lambda: reader.state().frames > 6), reader.state()  # more than the file holds
        assert reader.state().connected and reader.state().reconnects == 0
    finally:
        reader.stop()


def test_a_camera_decodes_on_one_thread(tmp_path, sample_dir):
    """A site's cameras decode side by side; FFmpeg would give each one thread per core."""
    import cv2

    capture = fast_reader(str(make_video(tmp_path / "clip.mp4", sample_dir, frames=3)))._open()
    try:
        assert capture.isOpened() and capture.get(cv2.CAP_PROP_N_THREADS) == 1
    finally:
        capture.release()


def test_detect_reads_a_stream_with_the_cameras_reader_through_a_restart(rtsp_server):  # noqa: F811
    """`detect URL` reads with CameraReader: a lost stream is reopened, not the end of the run."""
    errors, losses = [], []
    frames = live_frames(rtsp_server.url, errors, name="door", stall_timeout=2.0, retry_max=0.5,
                         on_lost=lambda: losses.append(len(errors)))
    try:
        first = [next(frames) for _ in range(3)]
        rtsp_server.stop()
        time.sleep(3.0)  # longer than the stall timeout: the loss is noticed
        rtsp_server.start()
        more = [next(frames) for _ in range(3)]
    finally:
        frames.close()
    assert [f.index for f in first + more] == list(range(6))
    assert more[0].timestamp - first[-1].timestamp > 2.0
    # No frame for 2 s (stall_timeout, a site camera's offline_after) while the loop was away: an outage
    assert errors == ["door: stream lost after frame 2, no frame for 2 s: the people in view counted as gone; "
                      "reconnecting"]
    assert losses == [1]  # told once, before the frame after the loss: `detect` ends its tracks there


def test_detect_on_a_stream_writes_lines_and_a_summary(rtsp_server, tmp_path):  # noqa: F811
    import json

    from maskwatch.video.pipeline import run_detect

    result = run_detect(rtsp_server.url, tmp_path / "out", Detector.load(), progress=False, max_frames=6)
    assert result.frames == 6 and not result.errors
    assert len((tmp_path / "out" / "detections.jsonl").read_text().splitlines()) == 6
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["frames"] == 6 and summary["totals"] == result.summary["totals"]
    assert (tmp_path / "out" / f"127.0.0.1_{rtsp_server.port}_clip.mp4").exists()
    # A camera's password stays out of what is written (summary.json's source held the whole URL)
    signed = rtsp_server.url.replace("rtsp://", "rtsp://admin:s3cret@")
    run_detect(signed, tmp_path / "signed", Detector.load(), progress=False, max_frames=2)
    assert json.loads((tmp_path / "signed" / "summary.json").read_text())["source"] == signed.replace("s3cret", "***")
    assert not [p for p in (tmp_path / "signed").iterdir() if b"s3cret" in p.read_bytes()]


def test_a_sink_that_fails_is_said_once_and_the_camera_goes_on(tmp_path, sample_dir, caplog):
    class Failing(Collect):
        def write(self, frame, faces, detected):
            super().write(frame, faces, detected)
            raise OSError("disk full")

    class NoFaces:
        def detect(self, image, min_score=None):
            return []

    sink = Failing()
    clip = make_video(tmp_path / "clip.mp4", sample_dir, frames=3)
    worker = CameraWorker("till", fast_reader(str(clip)), FrameProcessor(NoFaces(), FaceTracker()), [sink],
                          fps=20).start()
    try:
        assert wait_until(lambda: len(sink.frames) >= 5), worker.state()  # it goes on analysing
        assert worker.state()["analysis_error"] == "OSError: disk full"
    finally:
        worker.stop()
    said = [r.getMessage() for r in caplog.records if r.name == "maskwatch.video.cameras"]
    assert said == ["camera till: analysing a frame failed: OSError: disk full"]


def test_a_database_error_is_one_log_line_and_its_end_is_said(tmp_path, sample_dir, caplog):
    """SQLAlchemy's error went on with its SQL statement: four lines in the log for one problem;
    and nothing said when it ended, so a log that said "database is locked" left it open."""
    import sqlite3

    import sqlalchemy

    class LockedAWhile(Collect):
        def write(self, frame, faces, detected):
            super().write(frame, faces, detected)
            if len(self.frames) <= 3:
                raise sqlalchemy.exc.OperationalError("INSERT INTO events (camera) VALUES (?)", None,
                                                      sqlite3.OperationalError("database is locked"))

    class NoFaces:
        def detect(self, image, min_score=None):
            return []

    sink = LockedAWhile()
    clip = make_video(tmp_path / "clip.mp4", sample_dir, frames=3)
    worker = CameraWorker("till", fast_reader(str(clip)), FrameProcessor(NoFaces(), FaceTracker()), [sink],
                          fps=20).start()
    try:
        assert wait_until(lambda: len(sink.frames) >= 6), worker.state()
    finally:
        worker.stop()
    said = [r.getMessage() for r in caplog.records if r.name == "maskwatch.video.cameras"]
    assert said == ["camera till: analysing a frame failed: OperationalError: (sqlite3.OperationalError) "
                    "database is locked", "camera till: frames analysed again"], said


def test_people_waiting_for_the_database_are_reported_while_they_wait_and_said_once(tmp_path, sample_dir, caplog):
    """A site on a full disk: analysis_error read null between hand-outs (24 of 30 polls) and
    the same failure was logged at each one."""
    import sqlalchemy

    from maskwatch.site.event_sink import EventSink
    from maskwatch.site.events import EventStore
    from tests.test_events import person

    class LeavingNow:  # a person leaves at every 4th frame: frames between go well
        detections, handed, frames = 0, 0, 0

        def __call__(self, frame):
            LeavingNow.frames += 1
            return [], True

        def take_started_people(self):
            return []

        def take_finished_people(self):
            if LeavingNow.frames % 4:
                return []
            LeavingNow.handed += 1
            return [person(LeavingNow.handed, (0.9, 0.05, 0.05))]

        def flush_people(self, ended=False):
            return []

    store = EventStore(str(tmp_path / "site.db"))

    def full(*args, **kwargs):
        raise sqlalchemy.exc.OperationalError("INSERT", {}, Exception("database or disk is full"))

    store.record = full
    sink = EventSink(store, "till")
    clip = make_video(tmp_path / "clip.mp4", sample_dir, frames=3)
    worker = CameraWorker("till", fast_reader(str(clip)), LeavingNow(), [sink], fps=20).start()
    try:
        assert wait_until(lambda: LeavingNow.handed >= 3 and sink.store_problem is not None)
        errors = []
        for _ in range(20):  # between hand-outs too
            errors.append(worker.state()["analysis_error"])
            time.sleep(0.02)
        assert all(error and "people wait to be stored: OperationalError" in error and "database or disk is full"
                   in error for error in errors), errors
        assert sink.writer.waiting("till") >= 3 and sink.store.events() == []
        assert worker.state()["people_waiting"] >= 3 and worker.state()["people_dropped"] == 0  # /v1/cameras, /metrics
    finally:
        worker.stop()
        store.close()
    said = [r.getMessage() for r in caplog.records if "people cannot be stored" in r.getMessage()]
    assert len(said) == 1, said  # once, by the writer: not at each hand-out, nor as a frame's failure
    assert not [r for r in caplog.records if "analysing a frame failed" in r.getMessage()]


def test_a_cameras_analysis_working_again_is_said_while_the_database_is_away(tmp_path, sample_dir, caplog):
    """The camera held back its `working again` line while any of its people waited for the
    database (a gate from when its own writes failed its frames): a sink that failed and then
    worked was said failed until the database came back, as long as that took."""
    import sqlalchemy

    from maskwatch.site.event_sink import EventSink
    from maskwatch.site.events import EventStore
    from tests.test_events import person

    class FailingAWhile(Collect):
        def write(self, frame, faces, detected):
            super().write(frame, faces, detected)
            if len(self.frames) <= 2:
                raise OSError("disk full")

    class NoFaces:
        def detect(self, image, min_score=None):
            return []

    store = EventStore(str(tmp_path / "site.db"))

    def away(*args, **kwargs):
        raise sqlalchemy.exc.OperationalError("INSERT", {}, Exception("connection refused"))

    store.record = away
    events, failing = EventSink(store, "till"), FailingAWhile()
    events.write_people([person(1, (0.9, 0.05, 0.05))])
    assert wait_until(lambda: events.store_problem is not None)  # one person waits: the database away
    clip = make_video(tmp_path / "clip.mp4", sample_dir, frames=3)
    worker = CameraWorker("till", fast_reader(str(clip)), FrameProcessor(NoFaces(), FaceTracker()),
                          [failing, events], fps=20).start()
    try:
        assert wait_until(lambda: len(failing.frames) >= 6), worker.state()
        assert "connection refused" in worker.state()["analysis_error"]  # the people waiting, still said
    finally:
        worker.stop()
        store.close()
    said = [r.getMessage() for r in caplog.records if r.name == "maskwatch.video.cameras"]
    assert said == ["camera till: analysing a frame failed: OSError: disk full", "camera till: frames analysed again"], said


class QuietReader:
    """A camera reader with no stream of its own, for a worker's tests: subclasses give the frames."""

    def start(self):
        return self

    def stopping(self):
        pass

    def stop(self):
        pass

    def request(self):
        pass

    def state(self):
        return CameraState(False, None, 0.0, 0, 0, None)


def test_a_sink_failing_as_a_stalled_camera_ends_its_tracks_does_not_end_the_camera(caplog):
    class StalledReader(QuietReader):
        stall_timeout = offline_after = 0.05

        def wait_for_frame(self, seen, timeout):
            time.sleep(timeout)
            return seen

    class SomeoneInView:
        def __init__(self):
            self.flushed = 0

        def flush_people(self, ended=False):
            self.flushed += 1
            return ["a person"]

    class DatabaseDown(Collect):
        def write_people(self, people):
            raise OSError("database is locked")

    processor = SomeoneInView()
    worker = CameraWorker("till", StalledReader(), processor, [DatabaseDown()], fps=20).start()
    try:
        assert wait_until(lambda: processor.flushed >= 3)  # the thread lives on through the failures
        assert worker.state()["analysis_error"] == "OSError: database is locked"
    finally:
        worker.stop()  # the same failure at the stop is logged, not raised
    assert any("handing out the people in view at the stop failed" in r.getMessage() for r in caplog.records)


def test_a_cameras_counters_are_read_together_not_mid_frame():
    """/v1/cameras read `detected` 47 with `analysed` 46: state() read the detector's count, raised
    as a frame reached it, before the frame was counted analysed. A frame is counted whole or not at all."""
    import threading

    import numpy as np

    class Frames(QuietReader):
        stall_timeout = offline_after = 1.0

        def wait_for_frame(self, seen, timeout):
            return seen + 1

        def latest(self):
            return 1, np.zeros((8, 8, 3), np.uint8)

    class Detecting:
        detections = 0

        def __call__(self, frame):
            self.detections += 1
            return [], True

        def take_started_people(self):
            return []

        def take_finished_people(self):
            return []

        def flush_people(self, ended=False):  # without `ended`, the stop's hand-out failed (logged)
            return []

    release = threading.Event()

    class Held(Collect):
        def write(self, frame, faces, detected):
            held.set()
            release.wait(10)

    held = threading.Event()
    worker = CameraWorker("door", Frames(), Detecting(), [Held()], fps=50).start()
    try:
        assert held.wait(10)  # the first frame detected, in its sinks, not yet counted
        assert (worker.state()["analysed"], worker.state()["detected"]) == (0, 0)
        release.set()
        assert wait_until(lambda: worker.state()["analysed"] >= 3)
        state = worker.state()
        assert state["detected"] == state["analysed"]
    finally:
        release.set()
        worker.stop()


def test_a_camera_stopped_after_one_frame_stores_no_face_seen_once():
    """A site's stop is no clip's end: a camera stopped one frame after its start (or a stall)
    stored the face of that frame as a person, one the tracker counts as no one (seen once)."""
    import threading

    import numpy as np

    from maskwatch.faces import Face

    stopped = threading.Event()

    class OneFrame(QuietReader):
        stall_timeout = offline_after = 30.0

        def wait_for_frame(self, seen, timeout):
            if seen == 0:
                return 1
            stopped.wait(timeout)  # no stall: nothing ends the tracks before the stop
            return seen

        def latest(self):
            return 1, np.zeros((240, 320, 3), np.uint8)

        def stopping(self):
            stopped.set()

    class OneFace:
        def detect(self, image):
            return [Face(box=(100, 100, 160, 160), label="with_mask", probabilities=(0.9, 0.05, 0.05), score=0.9)]

    sink = Collect()
    worker = CameraWorker("door", OneFrame(), FrameProcessor(OneFace(), FaceTracker()), [sink], fps=20).start()
    try:
        assert wait_until(lambda: worker.state()["analysed"] == 1)
        assert sink.frames[0][1], "the first frame's face is drawn at once"
    finally:
        worker.stop()
    assert sink.closed and sink.people == []


def test_a_cameras_frames_follow_a_clock_that_is_set_and_the_step_ends_the_tracks(monkeypatch):
    """The tracker counts seconds: a clock set back (NTP) kept lost tracks alive; a clock set
    forward after a boot must be followed, or every event would carry the boot's time."""
    import maskwatch.video.cameras as cameras

    class Reader:
        stall_timeout = offline_after = 1.0

    class Flushed:
        flushes = 0

        def flush_people(self, ended=False):
            Flushed.flushes += 1
            return []

    wall = [1_000_000.0]
    monkeypatch.setattr(cameras.time, "time", lambda: wall[0] + time.monotonic())
    worker = CameraWorker("door", Reader(), processor=Flushed(), sinks=[], fps=5)
    first = worker._stamp()
    wall[0] += 3600  # NTP sets the clock forward: followed, the tracks ended first
    assert worker._stamp() - first > 3599 and Flushed.flushes == 1
    wall[0] -= 60  # set back a minute: the same
    later = worker._stamp()
    assert 3539 < later - first < 3545 and Flushed.flushes == 2
    assert worker._stamp() >= later and Flushed.flushes == 2  # a steady clock: no more


def stopped_readers(tmp_path, sample_dir):
    """Two real readers, stopped: one that never connected (a refused port) and a clip that sent frames."""
    never = fast_reader(f"rtsp://127.0.0.1:{refused_port()}/live", name="never").start()
    clip = fast_reader(str(make_video(tmp_path / "clip.mp4", sample_dir, frames=3)), name="clip").start()
    try:
        assert wait_until(lambda: clip.state().frames > 0), clip.state()
    finally:
        clip.stop()
        never.stop()
    return never, clip


def test_a_cameras_outage_times_follow_a_clock_that_is_set(monkeypatch, tmp_path, sample_dir):
    """A small box with no real-time clock boots at 1970 (or its last shutdown) and NTP sets the
    clock days forward: a camera down since the boot read "offline since 1970-01-01", one whose
    last frame came before the step read days too long down. A clock set back 10 minutes put
    them in the future. Real readers: a refused port (never connected) and a clip, stopped."""
    import maskwatch.video.cameras as cameras

    step = [0.0]
    real_time = time.time
    monkeypatch.setattr(cameras.time, "time", lambda: real_time() + step[0])
    never, clip = stopped_readers(tmp_path, sample_dir)
    for jump in (3 * 86400.0, -600.0):  # NTP after a boot at the last shutdown; then set back
        step[0] += jump
        down, stopped = never.state(), clip.state()
        now = time.time()
        assert now - 60 < down.offline_since <= now, (jump, now - down.offline_since)
        assert now - 60 < stopped.last_frame_at <= stopped.offline_since <= now, (jump, now - stopped.last_frame_at)
        assert never.state().offline_since == down.offline_since  # two reads of a steady clock agree


def test_a_cameras_outage_times_stay_right_through_a_sleep(monkeypatch, tmp_path, sample_dir):
    """A machine that sleeps 10 hours (a laptop's site, a suspended box): the wall clock moves on,
    time.monotonic() stands still. Taken for a clock set, a camera's last frame before the sleep
    was said 10 hours late, just before the wake, and one down since its start as down since then."""
    import maskwatch.runtime as runtime
    import maskwatch.video.cameras as cameras

    asleep = [0.0]
    real_time, real_boot = time.time, cameras.boot_clock
    never, clip = stopped_readers(tmp_path, sample_dir)
    before = (never.state(), clip.state())
    monkeypatch.setattr(cameras.time, "time", lambda: real_time() + asleep[0])
    for module in (cameras, runtime):
        monkeypatch.setattr(module, "boot_clock", lambda: real_boot() + asleep[0])
    asleep[0] = 10 * 3600.0
    down, stopped = never.state(), clip.state()
    assert abs(down.offline_since - before[0].offline_since) < 1, down.offline_since - before[0].offline_since
    assert abs(stopped.last_frame_at - before[1].last_frame_at) < 1, stopped.last_frame_at - before[1].last_frame_at


@pytest.mark.parametrize("url, address", [
    ("rtsp://cam/live", ("cam", 554)),
    ("rtsp://u:pw@10.0.0.5:8554/s?x=1", ("10.0.0.5", 8554)),
    ("rtsp://cam:554/live?notify=a@b.example", ("cam", 554)),  # an @ in the query is not the host's
    ("http://cam/mjpg?user=me@corp.example", ("cam", 80)),
    ("rtsp://[::1]:8554/live", ("::1", 8554)),
    ("rtsps://cam/live", ("cam", 322)),
    ("webcam:0", None), ("/videos/door.mp4", None), ("rtsp://cam:abc/x", None),
])
def test_the_host_checked_before_opening_is_the_one_ffmpeg_opens(url, address):
    from maskwatch.video.sources import host_port, stream_address

    assert stream_address(url) == address
    if address is not None and ":" in address[0]:
        assert host_port(address) == "[::1]:8554"


class RefusingCamera:
    """A camera on loopback that answers each RTSP request with `answer` (its CSeq put in), sent
    `drip` bytes at a time, `pause` seconds apart; it keeps the requests it was sent."""

    def __init__(self, answer: str, drip: int = 0, pause: float = 0.0, delay: float = 0.0) -> None:
        import socket
        import threading

        self.answer, self.drip, self.pause, self.delay = answer, drip, pause, delay  # delay: before each answer
        self.requests: list[str] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"rtsp://127.0.0.1:{self.listener.getsockname()[1]}/stream"
        self._done = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        import threading

        self.listener.settimeout(0.2)
        while not self._done.is_set():
            try:
                connection, _ = self.listener.accept()
            except OSError:
                continue
            threading.Thread(target=self._talk, args=(connection,), daemon=True).start()

    def _talk(self, connection) -> None:
        import re

        connection.settimeout(10)
        with connection:
            data = b""
            while not self._done.is_set():
                try:
                    part = connection.recv(4096)
                except OSError:
                    return
                if not part:
                    return
                data += part
                while b"\r\n\r\n" in data:
                    head, data = data.split(b"\r\n\r\n", 1)
                    request = head.decode("latin-1")
                    self.requests.append(request)
                    cseq = re.search(r"CSeq: *(\d+)", request, re.I)
                    answer = self.answer.replace("CSEQ", cseq.group(1) if cseq else "1").encode()
                    time.sleep(self.delay)
                    try:
                        if not self.drip:
                            connection.sendall(answer)
                            continue
                        while not self._done.is_set():  # a byte now and then, never the answer's end
                            connection.sendall(answer[:self.drip])
                            answer = answer[self.drip:] or b"X-Slow: " + b"x" * self.drip
                            time.sleep(self.pause)
                    except OSError:
                        return

    def stop(self) -> None:
        self._done.set()
        self.listener.close()


def test_a_camera_that_answers_a_byte_at_a_time_does_not_hold_the_probe():
    """The probe's socket timeout was per recv: a camera sending a byte every second held the
    camera's reader (and its stop) for as long as it liked, 64 KiB of header at most."""
    from maskwatch.video.rtsp_probe import rtsp_refusal

    camera = RefusingCamera("RTSP/1.0 404 Not Found\r\nCSeq: CSEQ\r\n", drip=1, pause=0.2)
    told = []
    probing = threading.Thread(target=lambda: told.append(rtsp_refusal(camera.url, timeout=1.0)), daemon=True)
    try:
        probing.start()
        # A guard, not a speed bound (no step of the read is observable from here): the probe gives
        # up at its 1 s in all; reading on at a byte per 0.2 s, the old one took 64 KiB: 3.6 hours.
        probing.join(30)
        assert told == [None]  # no answer in time: nothing to tell
    finally:
        camera.stop()


def test_a_wrong_password_is_tried_by_the_probe_once_per_outage_not_at_every_retry():
    """Each probe with a wrong password is one more failed login on the camera, which locks the
    user out after a few (Hikvision: 5-7): asked at every retry, the probe doubled their rate."""
    camera = RefusingCamera('RTSP/1.0 401 Unauthorized\r\nCSeq: CSEQ\r\nWWW-Authenticate: Basic realm="cam"\r\n\r\n')
    reader = fast_reader(camera.url.replace("rtsp://", "rtsp://admin:guess@"), "locked")
    try:
        reader.start()
        assert wait_until(lambda: reader.state().reconnects >= 4, 20), reader.state()
        assert "refused the user name or password (401)" in reader.state().last_error
    finally:
        reader.stop()
        camera.stop()
    probes = [r for r in camera.requests if r.startswith("DESCRIBE") and "User-Agent: maskwatch" in r]
    assert len(probes) == 2, probes  # one unsigned, one signed: once in the outage


def test_a_cameras_status_line_is_said_printable_and_short():
    """The reason of a refusal is the camera's text, into the log and last_error: its \\r or
    terminal escapes went there as they came, and a reason of 60 KiB made a line of 60 KiB."""
    from maskwatch.video.rtsp_probe import rtsp_refusal

    camera = RefusingCamera("RTSP/1.0 403 Forbidden\r2026-12-05 WARNING forged\x1b[2K" + "x" * 60_000
                            + "\r\nCSeq: CSEQ\r\n\r\n")
    try:
        said = rtsp_refusal(camera.url, timeout=2.0)
    finally:
        camera.stop()
    assert said.startswith("the camera refused the stream: 403 Forbidden?2026-12-05 WARNING forged?[2K"), said[:200]
    assert len(said) < 150, len(said)


def test_a_password_with_brackets_is_sent_as_written_and_the_reader_goes_on():
    """FFmpeg takes `rtsp://admin:p[a]ss@host/...` as it is; the probe read the URL with urlsplit,
    whose ValueError ('Invalid IPv6 URL') ended the camera's reader thread: offline for good."""
    import base64

    from maskwatch.video.rtsp_probe import rtsp_refusal

    camera = RefusingCamera('RTSP/1.0 401 Unauthorized\r\nCSeq: CSEQ\r\nWWW-Authenticate: Basic realm="cam"\r\n\r\n')
    url = camera.url.replace("rtsp://", "rtsp://admin:p[a%5Dss@")
    reader = fast_reader(url, "brackets")
    try:
        assert rtsp_refusal(url, timeout=2.0) == "the camera refused the user name or password (401)"
        signed = [r for r in camera.requests if "Authorization: Basic " in r]
        sent = base64.b64decode(signed[0].split("Authorization: Basic ")[1].split("\r\n")[0]).decode()
        assert sent == "admin:p[a]ss" and signed[0].startswith(f"DESCRIBE {camera.url} RTSP/1.0")
        reader.start()
        assert wait_until(lambda: reader.state().reconnects >= 2, 20), reader.state()
        assert reader._thread.is_alive() and "refused the user name or password" in reader.state().last_error
    finally:
        reader.stop()
        camera.stop()


def test_the_probe_takes_its_timeout_in_all_not_per_request():
    """Two DESCRIBEs (unsigned, then signed) each had the whole timeout for their connection and
    answer: the camera's reader, and the site's stop, waited up to four times the 5 s."""
    from maskwatch.video.rtsp_probe import rtsp_refusal

    camera = RefusingCamera('RTSP/1.0 401 Unauthorized\r\nCSeq: CSEQ\r\nWWW-Authenticate: Basic realm="cam"\r\n\r\n',
                            delay=0.6)
    try:  # each answer in time on its own, not both
        assert rtsp_refusal(camera.url.replace("rtsp://", "rtsp://admin:guess@"), timeout=1.0) is None
    finally:
        camera.stop()


def test_a_digest_realm_with_a_comma_or_quote_is_read_and_sent_back_whole():
    """The challenge was split at every comma, quoted or not: a realm such as "Hall, east" was
    read as "Hall", so the signed DESCRIBE hashed the wrong realm and a right password was told
    as refused (401)."""
    import hashlib

    from maskwatch.video.rtsp_probe import _challenge, authorization

    scheme, params = _challenge(['Basic realm="cam"',
                                 r'Digest realm="Hall, east \"B\"", nonce="n,1", algorithm=MD5, stale=FALSE'])
    assert scheme == "digest"
    assert params == {"realm": 'Hall, east "B"', "nonce": "n,1", "algorithm": "MD5", "stale": "FALSE"}
    header = authorization(scheme, params, "admin", "pw", "rtsp://cam/s")
    echoed = _challenge([header])[1]  # what the camera reads back from the header
    assert echoed["realm"] == 'Hall, east "B"' and echoed["nonce"] == "n,1"

    def md5(text):
        return hashlib.md5(text.encode()).hexdigest()
    ha1 = md5('admin:Hall, east "B":pw')
    assert echoed["response"] == md5(f"{ha1}:n,1:{md5('DESCRIBE:rtsp://cam/s')}")

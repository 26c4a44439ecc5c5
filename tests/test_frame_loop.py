"""The one frame loop: FrameProcessor (detect every n-th frame, track, vote) and the sinks."""

import io
import json
import os
import signal
from typing import NamedTuple

import numpy as np
import pytest

from maskwatch import Detector
from maskwatch.video.pipeline import DEFAULT_DETECT_EVERY, DetectResult, run_detect, run_frames
from maskwatch.video.process import FrameProcessor
from maskwatch.video.sinks import CallbackSink, JsonLinesSink, LineEcho
from maskwatch.video.sources import read_frames
from maskwatch.video.tracker import FaceTracker
from tests.test_detection import make_video


@pytest.fixture(scope="module")
def detector():
    return Detector.load()


@pytest.fixture(scope="module")
def clip(tmp_path_factory, sample_dir):
    return make_video(tmp_path_factory.mktemp("clip") / "clip.mp4", sample_dir, frames=6)


def test_default_detect_every_is_two():
    assert DEFAULT_DETECT_EVERY == 2


def test_processor_detects_every_nth_frame_and_carries_tracks(detector, clip):
    processor = FrameProcessor(detector, FaceTracker(), detect_every=3)
    results = [processor(frame) for frame in read_frames(str(clip))]
    assert [detected for _, detected in results] == [True, False, False, True, False, False]
    shown, carried = results[0][0], results[1][0]
    assert shown and sorted(f.track_id for f in carried) == sorted(f.track_id for f in shown)


def test_processor_without_tracker_detects_every_frame(detector, sample_dir):
    processor = FrameProcessor(detector, tracker=None, detect_every=5)
    frames = list(read_frames(str(sample_dir / "images")))[:2]
    results = [processor(frame) for frame in frames]
    assert all(detected for _, detected in results)
    assert all(face.track_id is None for faces, _ in results for face in faces)
    assert processor.flush_people() == [] and processor.take_finished_people() == []


def test_processor_refuses_detect_every_below_one(detector):
    with pytest.raises(ValueError, match="detect_every must be at least 1, got 0"):
        FrameProcessor(detector, FaceTracker(), detect_every=0)


@pytest.mark.parametrize("tracker", [None, FaceTracker()], ids=["photos", "video"])
def test_processor_given_a_bare_image_says_it_takes_a_frame(detector, clip, tracker):
    """processor(image) failed in an AttributeError on `index` (or `image`), naming no Frame."""
    image = next(read_frames(str(clip))).image
    with pytest.raises(TypeError, match=r"takes a maskwatch.video.sources.Frame\(index.*got ndarray; one image alone: "
                                        r"detector.detect\(image\)"):
        FrameProcessor(detector, tracker)(image)


def test_processor_takes_a_frame_of_ones_own_alike(detector, clip):
    """docs/python.md: frames of one's own, made alike Frame(index, timestamp, image, name), are taken."""
    class MyFrame(NamedTuple):
        index: int
        timestamp: float
        image: np.ndarray
        name: str

    frame = next(read_frames(str(clip)))
    faces, detected = FrameProcessor(detector, FaceTracker())(MyFrame(0, 0.0, frame.image, "mine"))
    assert detected and faces == FrameProcessor(detector, FaceTracker())(frame)[0]


def test_a_path_is_a_source_as_its_text_is(detector, clip, tmp_path):
    """read_frames(Path(...)) and run_detect(Path(...), ...) failed in str.startswith."""
    assert [f.name for f in read_frames(clip)] == [f.name for f in read_frames(str(clip))]
    result = run_detect(clip, tmp_path / "out", detector, progress=False, max_frames=2, save_media=False)
    assert result.frames == 2 and result.summary["source"] == str(clip)


def test_a_one_frame_clip_counts_the_people_it_draws(detector, sample_dir, tmp_path):
    """A one-frame clip drew three faces and its summary.json said 0 people: no track had the
    two detections a person needs. At the clip's end they count, unassessable on one frame."""
    one = make_video(tmp_path / "one.mp4", sample_dir, frames=1)
    result = run_detect(one, tmp_path / "out", detector, progress=False, save_media=False)
    drawn = json.loads((tmp_path / "out" / "detections.jsonl").read_text())["faces"]
    totals = json.loads((tmp_path / "out" / "summary.json").read_text())["totals"]
    assert drawn and totals["unassessable"] == len(drawn) and result.summary["totals"] == totals


def test_finished_people_are_handed_out_once(detector, clip):
    tracker = FaceTracker(lost_after=0, min_hits=1)
    processor = FrameProcessor(detector, tracker, detect_every=1)
    for frame in read_frames(str(clip)):
        processor(frame)
    ended = processor.take_finished_people() + tracker.flush()
    ids = [t.track_id for t in ended]
    assert ids and len(ids) == len(set(ids))
    assert processor.take_finished_people() == [] and tracker.flush() == []
    assert all(t.label is not None for t in ended)


def test_run_frames_writes_every_sink_in_order_and_closes_them(detector, clip):
    calls, stream = [], io.StringIO()
    result = DetectResult(out=clip.parent)
    written = JsonLinesSink(stream)
    sinks = [written, LineEcho(written, lambda r: calls.append(("line", r["frame"]))),
             CallbackSink(lambda frame, faces: calls.append(("frame", frame.index)))]
    run_frames(read_frames(str(clip)), FrameProcessor(detector, FaceTracker(), 2), sinks, result, max_frames=4)
    assert result.frames == 4
    assert calls == [(kind, i) for i in range(4) for kind in ("line", "frame")]
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["detected"] for line in lines] == [True, False, True, False]


def test_a_sink_failing_to_close_leaves_the_others_closed(detector, clip, tmp_path):
    """A full disk failed the lines' last flush, and the sinks after it were never closed: no
    summary.json, the video left unfinished under its temp name."""
    from maskwatch.video.sinks import SummarySink

    class FullDisk(io.StringIO):
        def flush(self):
            raise OSError(28, "No space left on device")

    result = DetectResult(out=tmp_path)
    sinks = [JsonLinesSink(FullDisk()), SummarySink(tmp_path / "summary.json", str(clip), result)]
    with pytest.raises(OSError, match="No space left"):
        run_frames(read_frames(str(clip)), FrameProcessor(detector, FaceTracker(), 2), sinks, result)
    assert json.loads((tmp_path / "summary.json").read_text())["failed"] == "[Errno 28] No space left on device"


def test_a_line_the_disk_refused_is_not_counted_as_a_frame(detector, clip, tmp_path):
    """The frames were counted before the line was written: a run stopped by a full disk said
    in summary.json one frame more than detections.jsonl holds."""
    class FillsAfterTwoLines(io.StringIO):
        def write(self, text):
            if self.getvalue().count("\n") == 2:
                raise OSError(28, "No space left on device")
            return super().write(text)

    stream, result = FillsAfterTwoLines(), DetectResult(out=tmp_path)
    with pytest.raises(OSError, match="No space left"):
        run_frames(read_frames(str(clip)), FrameProcessor(detector, FaceTracker(), 2), [JsonLinesSink(stream)], result)
    assert result.frames == len(stream.getvalue().splitlines()) == 2


def test_a_long_runs_summary_is_written_as_people_are_decided(tmp_path):
    """summary.json was written only when the run ended: a stream killed outright (a reboot) a day
    in left no person's label at all."""
    from maskwatch.video.sinks import SummarySink
    from maskwatch.video.tracker import Track

    clock = [0.0]
    summary = SummarySink(tmp_path / "summary.json", "rtsp://cam", DetectResult(out=tmp_path), every=60,
                          clock=lambda: clock[0])
    summary.write_people([Track(track_id=1, box=(0, 0, 40, 40), first_seen=0.0, last_seen=5.0)])
    assert not (tmp_path / "summary.json").exists()  # not at every person
    clock[0] = 61.0
    summary.write_people([Track(track_id=2, box=(0, 0, 40, 40), first_seen=30.0, last_seen=61.0)])
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert saved["running"] is True and [p["track_id"] for p in saved["people"]] == [1, 2]
    summary.close()
    assert json.loads((tmp_path / "summary.json").read_text())["running"] is False
    summary.people *= 1000  # 2000 people: two minutes between writings
    clock[0] += 61.0
    summary.write_people([])
    assert json.loads((tmp_path / "summary.json").read_text())["running"] is False
    clock[0] += 60.0
    summary.write_people([])
    assert json.loads((tmp_path / "summary.json").read_text())["running"] is True


def test_faces_the_frame_does_not_show_are_blurred_too():
    """A face not shown (an unsure one continuing no track, a new one before its track's second
    detection) is still a face: --blur and a site's privacy mode blur it like the shown ones."""
    import numpy as np

    from maskwatch.faces import Face
    from maskwatch.render import FaceAnnotator
    from maskwatch.video.loop import analyse
    from maskwatch.video.sinks import CallbackSink, unshown_blurred
    from maskwatch.video.sources import Frame

    unsure = Face(box=(20, 20, 60, 60), label="without_mask", probabilities=(0.1, 0.8, 0.1), score=0.3)

    class Finds:
        def detect(self, image, min_score=None):
            return [unsure]

    processor = FrameProcessor(Finds(), FaceTracker())
    image = np.random.default_rng(0).integers(0, 255, (100, 100, 3), np.uint8)
    seen = []
    shown = analyse(processor, Frame(0, 0.0, image, "f0"), [CallbackSink(lambda f, faces: seen.append(f))])
    assert shown == [] and seen[0].hidden.tolist() == [list(unsure.box)]  # under the start line: not shown
    blurred = unshown_blurred(seen[0], FaceAnnotator(blur=True))
    assert blurred[30:50, 30:50].std() < image[30:50, 30:50].std() / 3
    assert (unshown_blurred(seen[0], FaceAnnotator(blur=False)) == image).all()


def test_a_line_whose_echo_fails_is_counted_as_written(detector, clip, tmp_path):
    """`detect --json | head -1`: the second line was in detections.jsonl when printing it found the
    pipe closed, and detect said 'stopped after 1 frame'."""
    from maskwatch.video.pipeline import DetectFailed

    printed = []

    def closed_after_one(record):
        if printed:
            raise BrokenPipeError(32, "Broken pipe")
        printed.append(record)

    with pytest.raises(DetectFailed, match="stopped after 2 frames by an error") as failed:
        run_detect(clip, tmp_path / "out", detector, progress=False, save_media=False, on_line=closed_after_one)
    written = (tmp_path / "out" / "detections.jsonl").read_text().splitlines()
    assert failed.value.result.frames == len(written) == 2
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["frames"] == 2


def test_a_blurred_live_frame_never_shows_a_face_that_came_into_view_since_the_last_detection(detector, sample_dir):
    """A site's privacy mode (or blur_live) showed on the page and /frame.jpg the newest frame
    analysed, a frame the detector did not read among them (every other one at detect_every 2, and
    every one the motion gate let by): a person who had come into view since the last detection
    was in no box, and their face went out sharp. The blurred live frame is now the newest the
    detector read, its faces in their boxes."""
    import cv2

    from maskwatch.video.loop import analyse
    from maskwatch.video.sinks import LatestFrameSink
    from maskwatch.video.sources import Frame

    photo = cv2.imread(str(sample_dir / "images" / "maksssksksss132.png"))
    x0, y0, x1, y1 = (round(v) for v in detector.detect(photo)[0].box)
    empty = np.full_like(photo, 128)  # a plain wall before the person walks in
    processor, live = FrameProcessor(detector, FaceTracker(), detect_every=2), LatestFrameSink(blur=True)

    def face_shown_sharp() -> bool:
        shown = cv2.imdecode(np.frombuffer(live.jpeg(), np.uint8), cv2.IMREAD_COLOR)
        return np.abs(shown[y0:y1, x0:x1].astype(int) - photo[y0:y1, x0:x1]).mean() < 12  # JPEG's noise only

    analyse(processor, Frame(0, 0.0, empty, "f0"), [live])  # detected: nobody
    analyse(processor, Frame(1, 0.2, photo, "f1"), [live])  # carried: the face in no box yet
    assert not face_shown_sharp()
    analyse(processor, Frame(2, 0.4, photo, "f2"), [live])  # detected: the face found, blurred
    assert not face_shown_sharp()
    assert LatestFrameSink(blur=False).jpeg() is None
    sharp = LatestFrameSink(blur=False)  # a CCTV monitor's (blur_live false): every frame, as it is
    analyse(FrameProcessor(detector, FaceTracker(), detect_every=2), Frame(1, 0.2, photo, "f1"), [sharp])
    assert sharp.jpeg() is not None


def test_a_blurred_video_is_read_by_the_detector_on_every_frame(detector, sample_dir, tmp_path):
    """`detect --blur` on a video ran the detector on every 2nd frame and drew the others from the
    tracks: a face that came into view on a frame between was in no box, and went into the
    blurred copy sharp. Every frame of a blurred copy is now one the detector read."""
    import cv2

    photo = cv2.resize(cv2.imread(str(sample_dir / "images" / "maksssksksss132.png")), (640, 480))
    x0, y0, x1, y1 = (round(v) for v in detector.detect(photo)[0].box)
    writer = cv2.VideoWriter(str(tmp_path / "door.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (640, 480))
    for index in range(4):  # a plain wall, then the person in view
        writer.write(np.full_like(photo, 128) if index == 0 else photo)
    writer.release()
    run_detect(str(tmp_path / "door.avi"), tmp_path / "out", detector, progress=False, blur=True)
    saved = cv2.VideoCapture(str(tmp_path / "out" / "door.mp4"))
    differences = []
    while (read := saved.read())[0]:
        differences.append(np.abs(read[1][y0:y1, x0:x1].astype(int) - photo[y0:y1, x0:x1]).mean())
    saved.release()
    assert len(differences) == 4 and min(differences) > 20, differences  # sharp was within ~4 levels (codecs' noise)
    lines = [json.loads(line) for line in (tmp_path / "out" / "detections.jsonl").read_text().splitlines()]
    assert [line["detected"] for line in lines] == [True] * 4
    assert json.loads((tmp_path / "out" / "detect-run.json").read_text())["settings"]["detect_every"] == 1


def test_a_stop_as_a_line_is_written_waits_until_it_is_counted(detector, clip, tmp_path):
    """SIGTERM (maskwatch.cli makes it Ctrl-C) between a line's write and its count left
    detect-run.json a frame short of detections.jsonl (seen once in make test)."""
    from maskwatch.cli.common import _sigterm_as_ctrl_c

    class StoppedAtTheThirdLine(io.StringIO):
        def write(self, text):
            written = super().write(text)
            if self.getvalue().count("\n") == 3:
                os.kill(os.getpid(), signal.SIGTERM)  # its handler runs before this returns
            return written

    stream, result = StoppedAtTheThirdLine(), DetectResult(out=tmp_path)
    with _sigterm_as_ctrl_c() as taken:
        run_frames(read_frames(str(clip)), FrameProcessor(detector, FaceTracker(), 2), [JsonLinesSink(stream)], result)
    assert taken == [signal.SIGTERM] and result.interrupted
    assert result.frames == len(stream.getvalue().splitlines()) == 3

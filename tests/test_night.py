"""Night cameras: grey (infrared) frames are told from colour ones and said, by `detect` and by a
site's camera, since the shipped classifier is often wrong on grey faces and as sure as in colour
(benchmarks/night_frames.py)."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
from typer.testing import CliRunner

from maskwatch.cli import app
from maskwatch.video.cameras import CameraWorker
from maskwatch.data.grey import is_grey
from maskwatch.video.night import GREY_HOLD_S, GREY_WORDS, GreyWatch
from maskwatch.video.process import FrameProcessor
from maskwatch.video.sources import Frame
from maskwatch.video.tracker import FaceTracker
from tests.test_cameras import Collect, fast_reader, wait_until


def sample_photos(sample_dir, count: int) -> list[np.ndarray]:
    return [cv2.resize(cv2.imread(str(p)), (640, 480)) for p in sorted(sample_dir.glob("images/*.png"))[:count]]


def grey(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)


def clip(path, photos: list[np.ndarray], each: int = 10):
    """A 10 fps clip holding each photo for `each` frames, through a codec's 4:2:0 chroma."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (640, 480))
    for photo in photos:
        for _ in range(each):
            writer.write(photo)
    writer.release()
    return path


def grey_16_bit_clip(path, photo: np.ndarray):
    """3 frames of a grey photo as a 12-bit sensor's 16-bit values (0-4080), in FFV1."""
    writer = cv2.VideoWriter(str(path), cv2.CAP_FFMPEG, cv2.VideoWriter_fourcc(*"FFV1"), 5.0, (640, 480),
                             [cv2.VIDEOWRITER_PROP_DEPTH, cv2.CV_16U, cv2.VIDEOWRITER_PROP_IS_COLOR, 0])
    for _ in range(3):
        writer.write(photo.astype(np.uint16) * 16)
    writer.release()
    return path


def test_grey_frames_are_told_from_colour_ones_after_a_codec(tmp_path, sample_dir):
    photos = sample_photos(sample_dir, 12)
    capture = cv2.VideoCapture(str(clip(tmp_path / "both.mp4", photos + [grey(p) for p in photos], each=1)))
    decoded = [capture.read()[1] for _ in range(24)]
    assert [is_grey(f) for f in decoded] == [False] * 12 + [True] * 12


class NoFaces:
    def detect(self, image, min_score=None):
        return []


def test_detect_says_when_photos_are_grey_and_not_when_they_are_colour(tmp_path, sample_dir):
    """A grey photo's labels were written as a colour one's, with nothing said (on grey copies of
    held-out photos the classifier named 14 % of faces wrongly, 2 % in colour)."""
    photos = sample_photos(sample_dir, 2)
    (tmp_path / "colour").mkdir()
    (tmp_path / "night").mkdir()
    for i, photo in enumerate(photos):
        cv2.imwrite(str(tmp_path / "colour" / f"{i}.png"), photo)
    cv2.imwrite(str(tmp_path / "night" / "ir.png"), cv2.cvtColor(photos[0], cv2.COLOR_BGR2GRAY))  # 1 channel
    cv2.imwrite(str(tmp_path / "night" / "day.png"), photos[1])
    runner = CliRunner()
    colour = runner.invoke(app, ["detect", str(tmp_path / "colour"), "--out", str(tmp_path / "o1"), "--quiet"])
    night = runner.invoke(app, ["detect", str(tmp_path / "night"), "--out", str(tmp_path / "o2"), "--quiet"])
    assert colour.exit_code == 0 and night.exit_code == 0, (colour.output, night.output)
    assert "grey" not in colour.output.replace(str(tmp_path), "TMP")  # the folder's own name may hold "grey"
    assert f"warning: {tmp_path / 'night'}: 1 of 2 photos were grey (infrared): their faces judged by the night model" in night.output
    assert "docs/site.md#night-and-infrared-cameras" in night.output


def test_a_camera_says_when_its_frames_turn_grey_and_colour_again(tmp_path, sample_dir, caplog, monkeypatch):
    monkeypatch.setattr("maskwatch.video.night.GREY_HOLD_S", 0.0)  # said at the first frame of each turn
    caplog.set_level(logging.INFO, logger="maskwatch.video.cameras")
    photo = sample_photos(sample_dir, 1)[0]
    source = clip(tmp_path / "dusk.mp4", [photo, grey(photo)])  # looped: colour, grey, colour ...
    sink = Collect()
    worker = CameraWorker("platform", fast_reader(str(source)), FrameProcessor(NoFaces(), FaceTracker()), [sink],
                          fps=20).start()

    def said() -> list[str]:
        return [r.getMessage()[:45] for r in caplog.records if r.name == "maskwatch.video.cameras"]

    try:
        assert wait_until(lambda: "camera platform: colour frames again" in said()), said()
    finally:
        worker.stop()
    assert said()[:2] == ["camera platform: grey frames (infrared): thei", "camera platform: colour frames again"]
    # both turns at the default level (WARNING): an INFO "colour frames again" was never shown, and a night
    # camera's log said each evening that its frames turned grey and never that they turned back
    levels = [r.levelname for r in caplog.records if r.name == "maskwatch.video.cameras" and "frames" in r.getMessage()]
    assert levels[:2] == ["WARNING", "WARNING"], levels


def test_a_frame_without_a_picture_is_not_called_grey():
    """A black frame (a lens cap, a colour camera's night without light) or one flat level is R = G = B
    too: the warning is for infrared pictures, and a test clip's blank frames were warned of."""
    assert not any(is_grey(np.full((48, 64, 3), level, np.uint8)) for level in (0, 128, 255))


def test_a_16_bit_grey_video_is_read_at_its_full_range_not_nearly_black(tmp_path, sample_dir):
    """An infrared camera's 16-bit grey export (FFV1, a 12-bit sensor's values): OpenCV scaled its
    frames by 1/256, 0-15 of 255, and `detect` found no face in them, saying nothing."""
    from maskwatch.video.sources import read_frames

    photo = cv2.cvtColor(sample_photos(sample_dir, 1)[0], cv2.COLOR_BGR2GRAY)
    path = grey_16_bit_clip(tmp_path / "ir16.mkv", photo)
    errors = []
    frames = list(read_frames(str(path), errors))
    assert len(frames) == 3 and errors == []
    image = frames[0].image
    assert image.shape == (480, 640, 3) and image.dtype == np.uint8 and (image[..., 0] == image[..., 2]).all()
    assert np.abs(image[..., 0].astype(int) - photo).max() <= 1  # 0-4095 read back as the 0-255 it was made of


def test_a_site_camera_playing_a_16_bit_grey_video_reads_it_at_its_full_range(tmp_path, sample_dir):
    photo = cv2.cvtColor(sample_photos(sample_dir, 1)[0], cv2.COLOR_BGR2GRAY)
    reader = fast_reader(str(grey_16_bit_clip(tmp_path / "ir16.mkv", photo))).start()
    try:
        assert wait_until(lambda: reader.latest()[1] is not None), reader.state()
        image = reader.latest()[1]
    finally:
        reader.stop()
    assert image.shape == (480, 640, 3) and np.abs(image[..., 0].astype(int) - photo).max() <= 1  # was 0-15


def test_detect_of_a_grey_video_says_so_in_summary_json_too(tmp_path, sample_dir):
    """The grey warning was added after summary.json was written: a night camera's recording said
    it on the terminal only, and summary.json's errors (what a report is made from) said nothing."""
    import json

    photo = sample_photos(sample_dir, 1)[0]
    source = clip(tmp_path / "night.mp4", [grey(photo)], each=3)
    run = CliRunner().invoke(app, ["detect", str(source), "--out", str(tmp_path / "out"), "--no-media", "--quiet"])
    assert run.exit_code == 0, run.output
    said = [line.removeprefix("warning: ") for line in run.output.splitlines() if "were grey (infrared)" in line]
    assert len(said) == 1 and said[0].startswith(f"{source}: ") and said[0].endswith(GREY_WORDS), run.output
    errors = json.loads((tmp_path / "out" / "summary.json").read_text())["errors"]
    assert errors == said


def test_detect_with_a_classifier_of_one_s_own_says_no_night_model_judged_the_grey_faces(tmp_path, sample_dir):
    """A classifier of one's own comes without a night model: the warning said the night model had
    judged the grey faces, which none had."""
    import shutil

    from maskwatch.classifier import SHIPPED_MODEL
    from maskwatch.video.night import NO_NIGHT_WORDS

    own = Path(shutil.copy(SHIPPED_MODEL, tmp_path / "mine.onnx"))
    source = clip(tmp_path / "night.mp4", [grey(sample_photos(sample_dir, 1)[0])], each=3)
    run = CliRunner().invoke(app, ["detect", str(source), "--out", str(tmp_path / "out"), "--no-media", "--quiet",
                                   "--classifier", str(own)])
    assert run.exit_code == 0, run.output
    said = [line for line in run.output.splitlines() if "were grey (infrared)" in line]
    assert len(said) == 1 and said[0].endswith(NO_NIGHT_WORDS), run.output


def tinted(image: np.ndarray, cb: int, cr: int) -> np.ndarray:
    """A grey frame as an infrared camera in black-and-white mode sends it with its chroma a few
    levels off neutral: a slight purple (cb, cr > 0) or green (< 0) cast over the whole frame."""
    ycrcb = cv2.cvtColor(image, cv2.COLOR_BGR2YCrCb).astype(np.int16) + np.array([0, cr, cb], np.int16)
    return cv2.cvtColor(np.clip(ycrcb, 0, 255).astype(np.uint8), cv2.COLOR_YCrCb2BGR)


def test_an_infrared_frame_with_a_slight_purple_or_green_cast_is_grey(sample_dir):
    """A chroma 3 levels off neutral put R, G and B 9 levels apart across the frame: over the 8
    allowed, such a camera's night frames were never called grey, and nothing was said."""
    photos = sample_photos(sample_dir, 6)
    for cb, cr in ((4, 4), (-4, -4), (3, 0), (0, -5)):
        assert [is_grey(tinted(grey(p), cb, cr)) for p in photos] == [True] * 6, (cb, cr)
    assert not any(is_grey(tinted(p, 4, 4)) for p in photos)  # a colour frame with the same cast is colour


def test_a_camera_flickering_between_grey_and_colour_at_dusk_floods_no_log(tmp_path, sample_dir, caplog):
    """A scene on the edge (dusk, a light flickering, the camera's day/night switch hunting) turned
    grey and colour at every analysed frame, and each turn was a log line: at 2 frames a second
    7200 lines an hour. A turn is now said once the frames have stayed so for GREY_HOLD_S."""
    caplog.set_level(logging.INFO, logger="maskwatch.video.cameras")
    photo = sample_photos(sample_dir, 1)[0]
    source = clip(tmp_path / "flicker.mp4", [photo, grey(photo)] * 5, each=1)  # looped: colour, grey, colour ...
    processor = FrameProcessor(NoFaces(), FaceTracker())
    worker = CameraWorker("platform", fast_reader(str(source)), processor, [Collect()], fps=20).start()
    try:
        assert wait_until(lambda: processor.detections >= 20 and 0 < processor.grey_detections < processor.detections)
    finally:
        worker.stop()
    assert [r.getMessage() for r in caplog.records if "frames" in r.getMessage()] == []
    assert worker.state()["grey_frames"] is False  # /v1/cameras and the card: no turn said, none shown


def test_a_camera_s_state_says_its_frames_are_grey_once_the_turn_is_said(tmp_path, sample_dir, monkeypatch):
    """Only the log said a camera's frames were grey now; its state (/v1/cameras' `grey_frames`, a
    Ray actor's poll) says it too, as the log's last turn."""
    monkeypatch.setattr("maskwatch.video.night.GREY_HOLD_S", 0.0)  # said at the first grey frame
    photo = sample_photos(sample_dir, 1)[0]
    source = clip(tmp_path / "night.mp4", [grey(photo)], each=3)
    worker = CameraWorker("platform", fast_reader(str(source)), FrameProcessor(NoFaces(), FaceTracker()), [Collect()],
                          fps=20)
    assert worker.state()["grey_frames"] is False
    worker.start()
    try:
        assert wait_until(lambda: worker.state()["grey_frames"]), worker.state()
    finally:
        worker.stop()


def test_a_turn_to_grey_or_colour_is_said_once_it_has_held_for_a_while():
    watch = GreyWatch()
    flicker = [watch.seen(i % 2 == 0, i * 0.5) for i in range(7200)]  # an hour of every frame flipping
    assert not any(flicker) and not watch.grey
    steady = [watch.seen(True, 3600 + i * 0.5) for i in range(2 * int(GREY_HOLD_S) + 10)]
    assert steady.count(True) == 1 and steady.index(True) == 2 * GREY_HOLD_S and watch.grey
    # the worst a scene can do: each reading held just long enough, a turn per GREY_HOLD_S
    turns = sum(watch.seen(int(t // GREY_HOLD_S) % 2 == 0, 7200 + t) for t in np.arange(0, 3600, 0.5))
    assert turns <= 3600 / GREY_HOLD_S


def test_a_colour_camera_looking_down_a_grey_corridor_is_not_called_grey_when_its_faces_are_colour(sample_dir):
    """A colour camera's 1080p view of a grey corridor, bare concrete, with one colour face of 80
    px: the face is under 1 % of the frame, so the whole frame's test called it grey (infrared),
    and `detect` and the site warned that the labels were unreliable. The faces found tell."""
    from maskwatch.data.photos import annotated_faces, annotated_photos
    from maskwatch.faces import Face

    ann = next(a for a in annotated_photos(sample_dir) if annotated_faces(a))
    photo = cv2.imread(str(sample_dir / "images" / ann.filename))
    x0, y0, x1, y1 = (int(v) for v in annotated_faces(ann)[0].box)
    face = cv2.resize(photo[y0:y1, x0:x1], (80, 80))
    corridor = cv2.resize(grey(photo), (1920, 1080))
    corridor[500:580, 900:980] = face

    class FindsTheFace:
        def detect(self, image, min_score=None):
            return [Face((900.0, 500.0, 980.0, 580.0), score=0.9)]

    processor = FrameProcessor(FindsTheFace())
    processor(Frame(0, 0.0, corridor, "corridor"))
    assert processor.grey is False and processor.grey_detections == 0
    ir = cv2.resize(grey(photo), (1920, 1080))  # the same view from an infrared camera: its face grey too
    processor(Frame(1, 0.1, ir, "ir"))
    assert processor.grey is True and processor.grey_detections == 1


def test_people_seen_on_grey_frames_are_counted_infrared_where_the_site_keeps_its_counts(tmp_path, sample_dir):
    """A night camera's people went into the counts as any other's: its hours' 95 % masked (two bare
    faces in three passed as masked on grey frames) read, in every figure the site keeps, as a day
    camera's. The same photo's faces, on grey frames at 23:00 and in colour at 12:00."""
    from maskwatch import Detector
    from maskwatch.site.event_sink import EventSink
    from maskwatch.site.events import EventStore
    from maskwatch.video.loop import analyse, end_tracks

    photo = sample_photos(sample_dir, 1)[0]
    store = EventStore(str(tmp_path / "site.db"), privacy=True)
    processor, sink = FrameProcessor(Detector.load(), FaceTracker(min_hits=2)), EventSink(store, "platform")
    night, noon = 1_790_031_600.0, 1_790_074_800.0  # whole hours, 12 apart
    for start, image in ((night, grey(photo)), (noon, photo)):
        for i in range(4):
            analyse(processor, Frame(i, start + i * 0.2, image, f"f{i}"), [sink])
        end_tracks(processor, [sink], ended=True)
    assert sink.writer.settle()
    hours = {row["minute"]: row for row in store.counts(every=3600)}
    seen = {hour: row["people"] + row["unassessable"] for hour, row in hours.items()}
    assert set(hours) == {night, noon} and seen[night] > 0 and seen[noon] > 0
    assert (hours[night]["infrared"], hours[noon]["infrared"]) == (seen[night], 0)
    assert [row["infrared"] for row in store.counts()] == [seen[night], 0]  # the minutes too
    # and each person's event says which they were (/v1/events, events.csv, MQTT, the webhooks)
    marks = {(event["last_seen"] >= noon, event["infrared"]) for event in store.events()}
    assert marks == {(False, True), (True, False)}, marks
    store.close()


def test_detects_summary_json_says_which_people_were_seen_on_grey_frames(tmp_path, sample_dir):
    """A site marks each person seen on grey frames more often than not `infrared` (events, counts);
    `detect` of the same night camera's clip said only "N of M frames were grey": its people, judged
    by the night model, read in summary.json as a colour clip's. The same photo, mostly grey, then colour."""
    import json

    photo = sample_photos(sample_dir, 1)[0]
    runs = {}
    for name, frames in (("night", [photo] * 3 + [grey(photo)] * 7), ("day", [photo] * 10)):
        source = clip(tmp_path / f"{name}.mp4", frames, each=1)
        run = CliRunner().invoke(app, ["detect", str(source), "--out", str(tmp_path / name), "--no-media", "--quiet"])
        assert run.exit_code == 0, run.output
        runs[name] = json.loads((tmp_path / name / "summary.json").read_text())
    night, day = runs["night"], runs["day"]
    assert night["people"] and day["people"]
    assert [p["infrared"] for p in night["people"]] == [True] * len(night["people"])
    assert night["totals"]["infrared"] == len(night["people"])
    assert [p["infrared"] for p in day["people"]] == [False] * len(day["people"]) and day["totals"]["infrared"] == 0


def test_an_infrared_cameras_dark_empty_platform_is_not_read_as_colour_frames_again(tmp_path, sample_dir, caplog,
                                                                                    monkeypatch):
    """At night an infrared camera's empty platform, lit only near the camera (all under 24 of 255,
    no face to tell by), was read as colour: a minute of it and the site logged `colour frames again`
    while the camera was still infrared, then `grey frames` at the next passer-by. Such a frame tells
    nothing now: the camera stays grey until a frame that tells says colour."""
    from maskwatch.data.grey import grey_reading

    monkeypatch.setattr("maskwatch.video.night.GREY_HOLD_S", 0.0)  # each turn said at its first frame
    caplog.set_level(logging.INFO, logger="maskwatch.video.cameras")
    night = grey(sample_photos(sample_dir, 1)[0])
    empty = night // 12  # the same view, the illuminator off its far end: 0-21 of 255
    assert grey_reading(empty) is None and grey_reading(night) is True
    source = clip(tmp_path / "night.mp4", [night, empty], each=2)  # looped: grey, dark, grey, dark ...
    processor = FrameProcessor(NoFaces(), FaceTracker())
    worker = CameraWorker("platform", fast_reader(str(source)), processor, [Collect()], fps=20).start()
    try:
        assert wait_until(lambda: processor.detections >= 12)
    finally:
        worker.stop()
    said = [r.getMessage()[:36] for r in caplog.records if "frames" in r.getMessage()]
    assert said == ["camera platform: grey frames (infrar"], said

"""Motion gating: a still scene runs no detection, a person who walks in is recorded, the
periodic full check fires, a global light change recalibrates; skipped frames are grabbed only."""


import cv2
import pytest

from maskwatch import Detector
from maskwatch.video.cameras import CameraReader
from maskwatch.video.motion import MotionDetector, MotionSettings
from maskwatch.video.process import FrameProcessor
from maskwatch.video.sources import Frame
from maskwatch.video.tracker import FaceTracker
from tests.scenes import empty_view, face_crop
from tests.test_cameras import wait_until
from tests.test_detection import make_video

STEP = 0.5  # seconds between analysed frames: a camera analysed at 2 FPS


@pytest.fixture(scope="module")
def detector():
    return Detector.load()


@pytest.fixture(scope="module")
def background():
    return empty_view(0)


def frames_of(images, start: int = 0):
    return [Frame(start + i, (start + i) * STEP, image, f"f{start + i}") for i, image in enumerate(images)]


def walk_in(background, crop, path):
    """The background with `crop` pasted with its top-left corner at each (x, y) of `path`."""
    side = crop.shape[0]
    out = []
    for x, y in path:
        frame = background.copy()
        frame[y:y + side, x:x + side] = crop
        out.append(frame)
    return out


def run(processor, frames):
    tracker = processor.tracker
    for frame in frames:
        processor(frame)
    return processor.take_finished_people() + tracker.flush()


def test_still_frames_show_no_motion_and_a_moving_square_does(background):
    motion = MotionDetector()
    assert motion.detect(background) == []  # the first frame only sets the average
    assert all(motion.detect(background) == [] for _ in range(5))
    moved = background.copy()
    cv2.rectangle(moved, (300, 200), (380, 300), (255, 255, 255), -1)
    boxes = motion.detect(moved)
    assert boxes, "a white square appearing is motion"
    x0, y0, x1, y1 = boxes[0]
    assert x0 <= 300 and y0 <= 200 and x1 >= 380 and y1 >= 300  # the box covers it
    assert x1 - x0 < 200 and y1 - y0 < 200  # and not much more


def test_motion_inside_a_mask_is_ignored(background):
    motion = MotionDetector(MotionSettings(masks=(((0.4, 0.3), (0.7, 0.3), (0.7, 0.7), (0.4, 0.7)),)))
    motion.detect(background)
    moved = background.copy()
    cv2.rectangle(moved, (300, 200), (380, 300), (255, 255, 255), -1)  # inside the mask
    assert motion.detect(moved) == []
    cv2.rectangle(moved, (20, 20), (80, 80), (255, 255, 255), -1)  # outside it
    assert motion.detect(moved)


def test_a_global_light_change_recalibrates_instead_of_counting_as_motion(background):
    motion = MotionDetector()
    motion.detect(background)
    brighter = cv2.convertScaleAbs(background, alpha=1.0, beta=80)  # the lights come on
    assert motion.detect(brighter) == [] and motion.recalibrations == 1
    assert motion.detect(brighter) == []  # the new light is the new normal at once
    moved = brighter.copy()
    cv2.rectangle(moved, (300, 200), (380, 300), (0, 0, 0), -1)
    assert motion.detect(moved), "after recalibrating, motion is seen again"


@pytest.mark.parametrize("settings, problem", [
    (MotionSettings(threshold=0), "threshold must be 1-255"),
    (MotionSettings(alpha=0), "alpha must be in"),
    (MotionSettings(recalibrate=1.5), "recalibrate must be in"),
    (MotionSettings(height=4), "height must be at least 8"),
])
def test_bad_motion_settings_are_named(settings, problem):
    with pytest.raises(ValueError, match=problem):
        MotionDetector(settings)


def test_a_still_scene_runs_no_detection(detector, background):
    processor = FrameProcessor(detector, FaceTracker(), motion=MotionDetector(MotionSettings(full_check=3600)))
    run(processor, frames_of([background] * 20))
    assert processor.detections == 1  # the first frame only: nothing moved after it
    assert processor.gated == 19


def test_the_periodic_full_check_fires_on_a_still_scene(detector, background):
    settings = MotionSettings(full_check=2.0, empty_check=4.0)
    processor = FrameProcessor(detector, FaceTracker(), motion=MotionDetector(settings))
    run(processor, frames_of([background] * 21))  # 0 ... 10 s, 0.5 s apart, nobody in view
    assert processor.detections == 3  # at 0, 4 and 8 s: the empty view's check
    assert processor.detections + processor.gated == 21
    # With a person standing still in view, every full_check.
    standing = walk_in(background, face_crop(2), [(300, 160)] * 21)
    processor = FrameProcessor(detector, FaceTracker(), motion=MotionDetector(settings))
    run(processor, frames_of(standing))
    assert processor.detections >= 6  # 0, 2, 4, 6, 8, 10 s (and the frames that confirm the face)


def test_a_lost_stream_s_first_frame_back_is_checked(detector, background):
    processor = FrameProcessor(detector, FaceTracker(), motion=MotionDetector(MotionSettings(empty_check=3600)))
    run(processor, frames_of([background] * 4))
    assert processor.detections == 1
    processor.flush_people()  # the stream was lost: what comes back may be another view
    run(processor, frames_of([background] * 4, start=4))
    assert processor.detections == 2  # its first frame, then the gate as before


def test_a_light_change_checks_the_new_view_once(detector, background):
    processor = FrameProcessor(detector, FaceTracker(), motion=MotionDetector(MotionSettings(full_check=3600)))
    brighter = cv2.convertScaleAbs(background, alpha=1.0, beta=80)
    run(processor, frames_of([background] * 5 + [brighter] * 5))
    assert processor.motion.recalibrations == 1
    assert processor.detections == 2  # the first frame, and the first in the new light; not the 4 after


def test_a_person_who_walks_in_is_recorded_as_without_gating(detector, background):
    crop = face_crop(2)
    entering = [(x, 160) for x in range(0, 300, 60)]  # five frames walking in from the left
    images = ([background] * 6 + walk_in(background, crop, entering)
              + walk_in(background, crop, [(300, 160)] * 16)  # standing still for 8 s
              + [background] * 10)  # gone for 5 s: past the tracker's lost_after (2 s), so their track ends
    results = {}
    for gated in (False, True):
        motion = MotionDetector(MotionSettings(full_check=5.0)) if gated else None
        processor = FrameProcessor(detector, FaceTracker(), motion=motion)
        for frame in frames_of(images):
            processor(frame)
        people = processor.take_finished_people()  # ended on the still frames after they left
        assert processor.tracker.flush() == []
        results[gated] = (people, processor.detections)
    (plain, plain_calls), (gated_people, gated_calls) = results[False], results[True]
    assert len(plain) == 1, "the scene holds one person"
    assert len(gated_people) == len(plain) and gated_people[0].label == plain[0].label
    assert gated_people[0].hits >= 16  # the track was kept across the still frames
    assert gated_calls < plain_calls == len(images)


def test_skipped_frames_are_grabbed_not_converted(tmp_path, sample_dir):
    clip = make_video(tmp_path / "clip.mp4", sample_dir, frames=20)  # 10 fps, looped
    reader = CameraReader(str(clip), stall_timeout=2.0, name="cam", decode_on_request=True).start()
    try:
        assert wait_until(lambda: reader.state().frames >= 5)
        assert reader.decoded == 0 and reader.latest() == (0, None)
        seen = 0
        for _ in range(3):
            reader.request()
            seen = reader.wait_for_frame(seen, timeout=2.0)
        _, image = reader.latest()
        assert reader.decoded == 3 and seen == 3 and image.shape == (480, 640, 3)
        grabbed = reader.state().frames
        assert wait_until(lambda: reader.state().frames >= grabbed + 5)
        assert reader.decoded == 3  # frames kept coming, none converted
    finally:
        reader.stop()


def test_a_reader_without_requests_converts_every_frame(tmp_path, sample_dir):
    clip = make_video(tmp_path / "clip.mp4", sample_dir, frames=20)
    reader = CameraReader(str(clip), stall_timeout=2.0, name="cam").start()
    try:
        assert wait_until(lambda: reader.state().frames >= 5)
        state = reader.state()
        assert abs(reader.decoded - state.frames) <= 1
    finally:
        reader.stop()


def test_the_quiet_store_records_the_same_people_gated_and_ungated(detector):
    from collections import Counter

    from tests.scenes import sample_photos

    photos = sample_photos(5)
    images = []
    for i in (0, 2, 3, 4):  # 8 s empty, then 2 s of the crowd, at 2 FPS
        images += [empty_view(i)] * 16 + [photos[i][0]] * 4
    results = {}
    for gated in (False, True):
        processor = FrameProcessor(detector, FaceTracker(), detect_every=2,
                                   motion=MotionDetector() if gated else None)
        people = run(processor, frames_of(images))
        results[gated] = (Counter(t.label for t in people), processor.detections)
    (plain, plain_calls), (gated, gated_calls) = results[False], results[True]
    assert sum(plain.values()) >= 15 and gated == plain  # the same people, with the same votes
    assert gated_calls <= 0.5 * plain_calls


class OnceDetector:
    """Finds one face on its first call only: a detector's one-frame ghost."""

    def __init__(self):
        self.calls = 0

    def detect(self, image):
        from maskwatch.faces import Face

        self.calls += 1
        return [Face(box=(100, 100, 140, 140), score=0.5)] if self.calls == 1 else []


def test_a_face_seen_once_does_not_become_a_person_on_still_frames(background):
    for motion in (None, MotionDetector(MotionSettings(full_check=3600))):
        processor = FrameProcessor(OnceDetector(), FaceTracker(), detect_every=2, motion=motion)
        assert run(processor, frames_of([background] * 12)) == []  # as without gating: no person

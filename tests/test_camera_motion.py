"""Camera motion: the view's shift is measured from the frames, and a hand-held camera's shake
no longer splits a small face into several people when the tracks follow it."""

import cv2
import numpy as np
import pytest

from maskwatch.faces import Face
from maskwatch.video.camera_motion import CameraMotion
from maskwatch.video.process import FrameProcessor
from maskwatch.video.sources import Frame
from maskwatch.video.tracker import FaceTracker

FPS = 25.0
WIDTH, HEIGHT = 640, 360


def scene(seed=0):
    """A textured view larger than the frame (corners to follow everywhere)."""
    rng = np.random.default_rng(seed)
    noise = cv2.resize(rng.integers(0, 255, (60, 100), dtype=np.uint8), (WIDTH + 200, HEIGHT + 200),
                       interpolation=cv2.INTER_NEAREST)
    return cv2.GaussianBlur(cv2.cvtColor(noise, cv2.COLOR_GRAY2BGR), (3, 3), 0)


def view(world, dx, dy):
    """The frame a camera sees when the world moves by (dx, dy) in it."""
    return cv2.warpAffine(world, np.float32([[1, 0, dx - 100], [0, 1, dy - 100]]), (WIDTH, HEIGHT))


def test_the_shift_between_two_frames_is_measured():
    world, camera = scene(), CameraMotion()
    assert np.allclose(camera.estimate(view(world, 0, 0)), np.eye(2, 3))  # nothing before the first frame
    affine = camera.estimate(view(world, 13, -7))
    assert affine[:, 2] == pytest.approx([13, -7], abs=0.5)
    assert affine[:, :2] == pytest.approx(np.eye(2), abs=0.01)


def test_a_remembered_frame_is_where_the_next_estimate_starts():
    world, camera = scene(), CameraMotion()
    camera.remember(view(world, 0, 0))  # no track to move: nothing measured
    camera.remember(view(world, 4, 2))
    assert camera.estimate(view(world, 10, -3))[:, 2] == pytest.approx([6, -5], abs=0.5)


def test_what_cannot_be_told_is_no_motion():
    camera = CameraMotion()
    flat = np.full((HEIGHT, WIDTH, 3), 128, np.uint8)
    camera.estimate(flat)
    assert np.allclose(camera.estimate(flat), np.eye(2, 3))  # no corners on a flat view
    camera.estimate(view(scene(), 0, 0))
    small = cv2.resize(view(scene(), 5, 0), (320, 180))
    assert np.allclose(camera.estimate(small), np.eye(2, 3))  # a new frame size: another stream
    with pytest.raises(ValueError, match="width"):
        CameraMotion(width=8)


def test_warp_moves_tracks_and_their_speed():
    tracker = FaceTracker()
    tracker.update([Face(box=(100, 100, 120, 120), score=0.9)], 0.0)
    tracker.update([Face(box=(104, 100, 124, 120), score=0.9)], 2 / FPS)
    before = tracker.active[0].mean.copy()
    tracker.warp(np.array([[2.0, 0.0, 10.0], [0.0, 2.0, -5.0]]))
    after = tracker.active[0].mean
    assert after[:2] == pytest.approx(before[:2] * 2 + [10, -5])
    assert after[2:4] == pytest.approx(before[2:4] * 2)
    assert after[4] == pytest.approx(before[4] * 2)


class Shaken:
    """A detector for the shaken clip: the face's true box on each frame, by frame index."""

    def __init__(self, boxes):
        self.boxes, self.index = boxes, 0

    def detect(self, image, min_score=None):
        return [Face(box=self.boxes[self.index], score=0.9, probabilities=(0.9, 0.05, 0.05), label="with_mask")]


@pytest.mark.parametrize("follow", [True, False])
def test_a_shaking_camera_keeps_a_still_face_one_person_only_when_followed(follow):
    """A 14 px face standing still while the camera jumps 20 px between detections, back and
    forth: no box overlaps the last, so only tracks moved with the camera keep one id."""
    world, size = scene(1), 14
    shifts = [(20 * ((t // 2) % 2), 10 * ((t // 4) % 2)) for t in range(40)]
    boxes = [(300 + dx, 150 + dy, 300 + dx + size, 150 + dy + size) for dx, dy in shifts]
    detector = Shaken(boxes)
    processor = FrameProcessor(detector, FaceTracker(), detect_every=2,
                               camera_motion=CameraMotion() if follow else None)
    seen = set()
    for i, (dx, dy) in enumerate(shifts):
        detector.index = i
        faces, _ = processor(Frame(i, i / FPS, view(world, dx, dy), str(i)))
        seen |= {f.track_id for f in faces}
    if follow:
        assert seen == {1}
        assert len(processor.flush_people()) == 1
    else:
        assert len(seen) > 1  # the same face, split

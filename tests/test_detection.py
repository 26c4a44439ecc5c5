"""Detection on whole photos and videos, with the shipped detector settings and classifier."""

import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from maskwatch import Detector, Face
from maskwatch.cli import app
from maskwatch.data.voc import load_voc_annotation
from maskwatch.detection.boxes import BoxMapping
from maskwatch.detection.detector import DetectorConfig
from maskwatch.geometry import greedy_match, iou_matrix
from maskwatch.faces import CLASSES, PERSON_LABELS
from maskwatch.render import FaceAnnotator, blur_faces
from maskwatch.video.sources import SourceError, describe_source, read_frames
from maskwatch.video.sinks import per_minute_counts
from maskwatch.video.tracker import FaceTracker
from tests.conftest import usage_error


@pytest.fixture(scope="module")
def detector():
    return Detector.load()


def test_iou_and_matching():
    a = np.array([[0, 0, 10, 10], [20, 20, 30, 30]])
    b = np.array([[0, 0, 10, 5], [21, 21, 31, 31], [100, 100, 110, 110]])
    ious = iou_matrix(a, b)
    assert ious[0, 0] == pytest.approx(0.5)
    assert ious[0, 2] == 0
    assert greedy_match(a, b, 0.5) == [(1, 1), (0, 0)]
    assert greedy_match(a, np.zeros((0, 4)), 0.5) == []


def test_box_mapping_fit_recovers_a_known_shift():
    detected = np.array([[10, 10, 30, 40], [50, 60, 60, 80], [0, 0, 8, 8]], dtype=float)
    truth = BoxMapping(dx=0.1, dy=-0.05, sw=1.2, sh=0.9).apply(detected)
    fitted = BoxMapping.fit(detected, truth)
    assert fitted.dx == pytest.approx(0.1) and fitted.sh == pytest.approx(0.9)
    np.testing.assert_allclose(fitted.apply(detected), truth)


def test_detector_finds_most_annotated_faces_of_a_sample_photo(detector, sample_dir):
    found = total = 0
    for xml in sorted(sample_dir.glob("annotations/*.xml"))[:8]:
        ann = load_voc_annotation(xml)
        image = cv2.imread(str(sample_dir / "images" / ann.filename))
        faces = detector.detect(image)
        assert all(isinstance(f, Face) and f.label in PERSON_LABELS and f.score >= detector.config.min_score
                   for f in faces)
        truth = np.array([o.box for o in ann.objects])
        found += len(greedy_match(truth, np.array([f.box for f in faces]).reshape(-1, 4), 0.5))
        total += len(truth)
    assert found / total > 0.6, f"{found}/{total}"


def test_detect_on_a_blank_frame_returns_no_faces(detector):
    assert detector.detect(np.full((240, 320, 3), 127, np.uint8)) == []
    with pytest.raises(ValueError, match="HxWx3"):
        detector.detect(np.zeros((10, 10), np.uint8))


BLANK = np.full((60, 80, 3), 127, np.uint8)


@pytest.mark.parametrize("image, message", [
    (None, "image is None \\(cv2.imread returns None"),
    (BLANK.astype(np.uint16) * 257, "must be 8-bit \\(uint8, 0-255\\), got uint16"),  # was hundreds of faces
    (BLANK.astype(np.float32) / 255, "got float32"),  # was no face, whatever the photo
    (BLANK.astype(np.float64), "got float64; its values reach 127, so not 0-1: for 0-255, "
                               "np.clip\\(image, 0, 255\\).astype\\(np.uint8\\)$"),  # an OpenCV traceback;
    # then the fix it named, to_8_bits, took them as 0-1 and made the frame white
    (np.zeros((0, 0, 3), np.uint8), "image is empty: shape \\(0, 0, 3\\)"),  # an OpenCV traceback
    (BLANK[:, :, :1], "got shape \\(60, 80, 1\\); grey: cv2.cvtColor"),
    (np.dstack([BLANK, BLANK[:, :, :1]]), "got shape \\(60, 80, 4\\); with alpha: cv2.cvtColor.*BGRA2BGR\\) from OpenCV, "
                                           "cv2.COLOR_RGBA2BGR from PIL or imageio$"),
    (BLANK.tolist(), "must be a NumPy array .* got list"),  # an AttributeError
    ("store.jpg", "must be a NumPy array .* got str; for a file: maskwatch.data.images.read_image\\(path\\), "
                  "which reads it as maskwatch detect does$"),
    (Path("store.jpg"), "got PosixPath; for a file: maskwatch.data.images.read_image\\(path\\)"),
], ids=["None", "uint16", "float-0-1", "float64", "empty", "1-channel", "BGRA", "list", "path", "Path"])
def test_a_frame_the_networks_cannot_read_is_refused_by_what_it_is(detector, image, message):
    for call in (detector.detect, detector.find_faces,
                 lambda image: detector.classifier.predict_boxes(image, [(0, 0, 10, 10)])):
        with pytest.raises(ValueError, match=message):
            call(image)


@pytest.mark.parametrize("box, message", [
    ((1000, 1000, 1100, 1100), "box (1000.0, 1000.0, 1100.0, 1100.0) has no area inside the 80x60 image"),
    ((50, 10, 20, 40), "box must be 4 finite numbers (xmin, ymin, xmax, ymax) with xmin <= xmax and ymin <= ymax, "
                       "got (50, 10, 20, 40)"),
    ((float("nan"), 10, 20, 40), "box must be 4 finite numbers (xmin, ymin, xmax, ymax) with xmin <= xmax and "
                                 "ymin <= ymax, got (nan, 10, 20, 40)"),
])
def test_a_box_outside_the_photo_is_named_as_given(detector, box, message):
    """The error named the box clipped to the photo, (80.0, 60.0, 80.0, 60.0), or said "cannot
    convert float NaN to integer"; a box that is no box (NaN, xmax < xmin) Face itself refuses."""
    with pytest.raises(ValueError, match=re.escape(message)):
        detector.classifier.predict_boxes(BLANK, [(10, 10, 30, 30), box])


def test_one_box_given_without_a_list_is_refused_by_name(detector):
    with pytest.raises(ValueError, match=re.escape("got one box (10.0, 10.0, 30.0, 30.0); for one box: predict_boxes(image, [box])")):
        detector.classifier.predict_boxes(BLANK, (10, 10, 30, 30))  # was "'int' object is not iterable"


@pytest.mark.parametrize("min_score", [30, -0.1])
def test_a_cut_off_that_is_no_score_is_refused(detector, min_score):
    """min_score=30, meant as a percent, returned no face on every photo, without a word."""
    with pytest.raises(ValueError, match=f"min_score is a detector score, between 0 and 1; got {min_score}"):
        detector.detect(BLANK, min_score=min_score)


@pytest.mark.parametrize("min_score", ["0.5", True])
def test_a_cut_off_that_is_no_number_is_refused_by_name(detector, min_score):
    """min_score="0.5" raised "'<=' not supported between instances of 'int' and 'str'"; True (a
    flag meant as "the fitted cut-off") kept no face, without a word."""
    with pytest.raises(TypeError, match=re.escape(f"min_score is a detector score, a number between 0 and 1; got {min_score!r}")):
        detector.detect(BLANK, min_score=min_score)


def test_tracker_keeps_one_id_and_votes_the_label():
    tracker = FaceTracker(min_hits=2)
    probs = [(0.6, 0.3, 0.1), (0.2, 0.7, 0.1), (0.7, 0.2, 0.1)]
    ids = set()
    for i, p in enumerate(probs):
        label = CLASSES[int(np.argmax(p))]
        (face,) = tracker.update([Face(box=(10 + i, 10, 40 + i, 40), label=label, probabilities=p)], i * 20.0)
        ids.add(face.track_id)
        assert face.label == tracker.active[0].label
    assert len(ids) == 1
    (person,) = tracker.people()
    assert person.label == "with_mask"  # mean probabilities beat the one "without" frame
    counts = per_minute_counts(tracker.people())
    assert [c["minute"] for c in counts] == [0] and counts[0]["compliant"] == 1


def test_blur_changes_only_the_face_and_a_margin_round_it():
    """The boxes are as tight as the training annotations: forehead, chin and ears stayed sharp."""
    frame = np.random.default_rng(0).integers(0, 255, (60, 60, 3), dtype=np.uint8)
    out = blur_faces(frame, [Face(box=(10.4, 10.4, 39.6, 39.6))])
    changed = np.flatnonzero((out != frame).any(axis=(0, 2)))  # columns; rows alike
    assert changed.min() == 4 and changed.max() == 45  # 20 % of the side each way, whole pixels out
    assert np.array_equal(out[47:, :], frame[47:, :])
    drawn = FaceAnnotator(blur=True).annotate(frame, [Face(box=(10, 10, 40, 40), label="with_mask")])
    assert drawn.shape == frame.shape


def test_a_grey_frame_is_blurred_alike_with_or_without_its_channel_axis():
    """A greyscale camera's frame kept as H x W x 1 was a broadcast error (OpenCV's resize drops the
    axis); it blurs as H x W does, and as each channel of H x W x 3."""
    grey = np.random.default_rng(0).integers(0, 255, (60, 60), dtype=np.uint8)
    face = [Face(box=(10.4, 10.4, 39.6, 39.6))]
    flat, kept, colour = (blur_faces(frame, face) for frame in (grey, grey[:, :, None], np.dstack([grey] * 3)))
    assert flat.shape == grey.shape and kept.shape == (60, 60, 1) and colour.shape == (60, 60, 3)
    assert np.array_equal(kept[:, :, 0], flat) and all(np.array_equal(colour[:, :, c], flat) for c in range(3))
    assert not np.array_equal(flat, grey) and np.array_equal(flat[47:, :], grey[47:, :])


def test_a_greyscale_clip_is_detected_and_blurred_end_to_end(tmp_path, sample_dir):
    """A greyscale camera's recording (OpenCV writes it one channel a frame): read as BGR, its faces
    found and blurred as a colour clip's. A grey frame given to the frame loop from Python is refused
    at its entry in one line with the fix (an H x W x 1 one was OpenCV's channel error from the motion gate)."""
    from maskwatch.video.camera_motion import CameraMotion
    from maskwatch.video.process import FrameProcessor
    from maskwatch.video.sources import Frame

    photos = [cv2.cvtColor(cv2.resize(cv2.imread(str(p)), (640, 480)), cv2.COLOR_BGR2GRAY)
              for p in sorted(sample_dir.glob("images/*.png"))[:2]]
    clip = tmp_path / "grey.mp4"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (640, 480), isColor=False)
    for i in range(6):
        writer.write(photos[i // 3])
    writer.release()
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["detect", str(clip), "--out", str(out), "--blur", "--moving-camera", "--quiet"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in (out / "detections.jsonl").read_text().splitlines()]
    assert len(lines) == 6 and sum(len(line["faces"]) for line in lines) > 0
    ok, frame = cv2.VideoCapture(str(out / "grey.mp4")).read()
    assert ok and frame.shape == (480, 640, 3)
    x0, y0, x1, y1 = (int(v) for v in lines[0]["faces"][0]["box"])
    assert frame[y0:y1, x0:x1].std() < photos[0][y0:y1, x0:x1].std()  # blurred
    for image in (photos[0][:, :, None], photos[0]):
        processor = FrameProcessor(Detector.load(), FaceTracker(), camera_motion=CameraMotion())
        with pytest.raises(ValueError) as refused:
            processor(Frame(0, 0.0, image, "grey-0"))
        assert str(refused.value) == (f"frame 'grey-0' must be HxWx3 BGR, got shape {image.shape}; "
                                      "grey: cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)")


def test_a_blurred_face_holds_nothing_but_its_eighth_size_copy():
    """The blur's privacy argument: the output is a function of the region shrunk to 1/8 alone, so two
    faces alike at 1/8 but not at full size blur to the same pixels. Each 8 x 8 block of the second
    differs by +40 on half its pixels, -40 on the others (a plain Gaussian of the region tells them apart)."""
    rng = np.random.default_rng(0)
    frame = rng.integers(60, 190, (80, 80, 3), dtype=np.uint8)
    signs = rng.permuted(np.tile(np.repeat([40, -40], 32), (49, 1)), axis=1)  # one row per block
    change = signs.reshape(7, 7, 8, 8).swapaxes(1, 2).reshape(56, 56, 1)
    other = frame.copy()  # the box below grown by 20 % is 8:64 both ways
    other[8:64, 8:64] = (other[8:64, 8:64] + change).astype(np.uint8)

    def shrunk(image):
        return cv2.resize(image[8:64, 8:64], (7, 7), interpolation=cv2.INTER_AREA)

    assert np.array_equal(shrunk(frame), shrunk(other)) and not np.array_equal(frame, other)
    face = [Face(box=(16, 16, 56, 56))]
    assert np.array_equal(blur_faces(frame, face)[8:64, 8:64], blur_faces(other, face)[8:64, 8:64])
    plain = [cv2.GaussianBlur(image[8:64, 8:64], (29, 29), 0) for image in (frame, other)]
    assert not np.array_equal(*plain)


def make_video(path, sample_dir, frames=12):
    """A 640x480 clip: three sample photos, each held for a few frames."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (640, 480))
    # Each photo read and scaled once: read again for every frame, they took most of a long clip's time.
    photos = [cv2.resize(cv2.imread(str(p)), (640, 480)) for p in sorted(sample_dir.glob("images/*.png"))[:3]]
    for i in range(frames):
        writer.write(photos[i * len(photos) // frames])
    writer.release()
    return path

def detect_in_background(folder, out, lines: int = 3, output: bool = False):
    """`maskwatch detect FOLDER --out OUT --quiet` in a process of its own, returned once it has
    written `lines` whole lines (or ended, or after 60 s): to be killed or stopped part-way.
    output: its stdout and stderr as text, for communicate(); else they are dropped."""
    import subprocess
    import sys
    import time

    command = [str(Path(sys.executable).with_name("maskwatch")), "detect", str(folder), "--out", str(out), "--quiet"]
    streams = ({"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT, "text": True} if output
               else {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL})
    process = subprocess.Popen(command, **streams)
    written = Path(out) / "detections.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None and not (
            written.is_file() and written.read_text().count("\n") >= lines):
        time.sleep(0.05)
    return process



def test_video_end_to_end(tmp_path, sample_dir):
    video = make_video(tmp_path / "clip.mp4", sample_dir)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["detect", str(video), "--out", str(out), "--blur", "--quiet"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("12 frames, ")
    lines = [json.loads(line) for line in (out / "detections.jsonl").read_text().splitlines()]
    assert [line["frame"] for line in lines] == list(range(12))
    assert sum(len(line["faces"]) for line in lines) > 0
    for line in lines:
        assert sum(line["counts"].values()) == len(line["faces"])
        for face in line["faces"]:
            assert face["label"] in CLASSES and "track_id" in face and 0 < face["score"] <= 1
    annotated = cv2.VideoCapture(str(out / "clip.mp4"))
    assert annotated.isOpened()
    assert int(annotated.get(cv2.CAP_PROP_FRAME_COUNT)) == 12
    ok, frame = annotated.read()
    assert ok and frame.shape == (480, 640, 3)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"] == 12 and summary["people"]
    per_minute, totals = summary["per_minute"][0], summary["totals"]
    assert per_minute["people"] + per_minute["unassessable"] == len(summary["people"])
    assert totals["people"] + totals["unassessable"] == len(summary["people"])  # unassessable apart
    assert totals["compliant"] == sum(p["label"] == "with_mask" for p in summary["people"])
    for person in summary["people"]:  # a decided person's probabilities are the ones decided on
        assert person["label"] == "unassessable" or CLASSES[np.argmax(person["probabilities"])] == person["label"]
    assert not list(out.glob(".*partial*"))


def test_a_blurred_photo_blurs_the_candidates_under_the_cut_off_too(tmp_path, detector):
    """--blur blurred only the faces it reported: a 61 px face scoring 0.12 stayed sharp."""
    from dataclasses import replace

    from maskwatch.video.pipeline import run_detect

    class Candidates:  # what the network found, with scores either side of the cut-off
        def detect(self, image):
            return [Face(box=(10, 10, 70, 70), score=0.9), Face(box=(110, 10, 170, 70), score=0.15),
                    Face(box=(210, 10, 270, 70), score=0.06)]

    from maskwatch.detection.boxes import BoxMapping

    finder = Detector(Candidates(), detector.classifier, replace(detector.config, box_mapping=BoxMapping()))
    faces, unsure = finder.detect_and_unsure(np.zeros((100, 300, 3), np.uint8))
    assert len(faces) == 1 and unsure.tolist() == [[110, 10, 170, 70]]  # 0.06 is under BLUR_FLOOR
    photo = tmp_path / "noise.png"
    cv2.imwrite(str(photo), np.random.default_rng(0).integers(0, 255, (100, 300, 3), dtype=np.uint8))
    run_detect(str(photo), tmp_path / "out", finder, blur=True, progress=False)
    out = cv2.imread(str(tmp_path / "out" / "noise.jpg")).astype(float)
    spread = [out[25:55, x:x + 30].std() for x in (25, 125, 225)]
    assert spread[0] < 20 and spread[1] < 20 and spread[2] > 50  # reported and unsure blurred, noise not


def test_images_folder_with_a_corrupt_file(tmp_path, sample_dir):
    folder = tmp_path / "in"
    folder.mkdir()
    photo = next(sample_dir.glob("images/*.png"))
    (folder / "a.png").write_bytes(photo.read_bytes())
    (folder / "b.png").write_bytes(b"\x89PNG broken")
    errors = []
    frames = list(read_frames(str(folder), errors))
    assert [f.name for f in frames] == ["a"]
    assert "b.png" in errors[0]
    result = CliRunner().invoke(app, ["detect", str(folder), "--out", str(tmp_path / "o"), "--json", "--quiet"])
    assert result.exit_code == 1 and "1 of 2 photos could not be read" in result.output, result.output  # as batch
    assert (tmp_path / "o" / "a.jpg").is_file()
    record = json.loads(result.stdout.splitlines()[0])
    assert record["name"] == "a" and set(record["counts"]) == set(PERSON_LABELS)


def test_photos_of_one_name_in_a_folder_keep_their_own_outputs(tmp_path, sample_dir):
    """a.jpg and a.png were both "a": the annotated a.png replaced a.jpg's, and two lines said "a"."""
    folder = tmp_path / "in"
    folder.mkdir()
    first, second = sorted(sample_dir.glob("images/*.png"))[:2]
    cv2.imwrite(str(folder / "a.jpg"), cv2.imread(str(first)))
    (folder / "a.png").write_bytes(second.read_bytes())
    (folder / "b.png").write_bytes(second.read_bytes())
    out = tmp_path / "o"
    result = CliRunner().invoke(app, ["detect", str(folder), "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("3 photos, ")  # photos are counted as photos ("3 frames" before), video as frames
    names = [json.loads(line)["name"] for line in (out / "detections.jsonl").read_text().splitlines()]
    assert names == ["a.jpg", "a.png", "b"] and {p.name for p in out.glob("*.jpg")} == {"a.jpg.jpg", "a.png.jpg", "b.jpg"}
    result = CliRunner().invoke(app, ["detect", str(folder), "--out", str(out), "--quiet"])  # its own copies: replaced
    assert result.exit_code == 0, result.output


def test_every_photo_of_a_folder_gets_a_name_of_its_own(tmp_path):
    from maskwatch.video.sources import describe_source, photo_files

    for name in ("a.jpg", "a.png", "a.jpg.png", "b.png"):
        (tmp_path / name).write_bytes(b"")
    names = photo_files(str(tmp_path), describe_source(str(tmp_path)))
    assert len(set(names.values())) == 4 and names[tmp_path / "b.png"] == "b" and names[tmp_path / "a.png"] == "a.png"


def test_sigterm_stops_detect_as_ctrl_c_does(tmp_path, sample_dir):
    """timeout, docker stop and systemd send SIGTERM: detect left only hidden .partial files."""
    import os
    import signal

    video = make_video(tmp_path / "clip.mp4", sample_dir, frames=600)
    out = tmp_path / "out"
    # Some frames in (the first one's copy drawn before the second's line), waited for: a second's
    # sleep once the first .partial came is no frame at all where a busy machine takes longer.
    process = detect_in_background(video, out, lines=2, output=True)
    os.kill(process.pid, signal.SIGTERM)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 130 and "stopped by Ctrl-C or SIGTERM" in output, output
    assert json.loads((out / "summary.json").read_text())["interrupted"] is True
    lines = (out / "detections.jsonl").read_text().splitlines()
    assert 0 < len(lines) < 600 and (out / "clip.mp4").is_file() and not list(out.glob(".*partial*"))


def test_a_killed_run_keeps_its_lines_and_a_rerun_into_its_folder_goes_on(tmp_path, sample_dir):
    """kill -9 (memory, power, a CI limit) mid-folder left detections.jsonl only as a hidden
    .partial, and its annotated copies unlisted: every rerun into --out was refused."""
    import os
    import signal

    photo = cv2.resize(cv2.imread(str(next(sample_dir.glob("images/*.png")))), (160, 120))
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(400):
        cv2.imwrite(str(folder / f"p{i:03d}.jpg"), photo)
    out = tmp_path / "out"
    process = detect_in_background(folder, out)
    lines = out / "detections.jsonl"
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    kept = [json.loads(line) for line in lines.read_text().splitlines()]  # whole lines only
    assert 3 <= len(kept) < 400 and [k["name"] for k in kept] == [f"p{i:03d}" for i in range(len(kept))]
    result = CliRunner().invoke(app, ["detect", str(folder), "--out", str(out), "--quiet", "--max-frames", "2"])
    assert result.exit_code == 0, result.output


def test_progress_counts_to_max_frames_and_goes_on_without_a_known_length(tmp_path, sample_dir, detector,
                                                                           capsys):
    """--max-frames 3 of 12 frames ended at "3/12 (25%)", its time left reckoned for 12; a video of
    no known length (an IP camera's .mjpeg, as a stream) showed no progress at all."""
    from maskwatch.video.pipeline import run_detect

    run_detect(str(make_video(tmp_path / "clip.mp4", sample_dir)), tmp_path / "a", detector, max_frames=3)
    assert "detect: 3/3 frame (100%) done in" in capsys.readouterr().err
    ok, jpeg = cv2.imencode(".jpg", cv2.imread(str(next(sample_dir.glob("images/*.png")))))
    (tmp_path / "cam.mjpeg").write_bytes(jpeg.tobytes() * 4)
    run_detect(str(tmp_path / "cam.mjpeg"), tmp_path / "b", detector, save_media=False)
    assert "detect: 4 frame done in" in capsys.readouterr().err


def test_a_folder_says_which_videos_it_passes_over(tmp_path, sample_dir):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "clip.mp4").write_bytes(b"not read")
    with pytest.raises(SourceError, match="folder holds no images .*; `maskwatch batch` reads the videos it holds"):
        describe_source(str(folder))
    (folder / "a.png").write_bytes(next(sample_dir.glob("images/*.png")).read_bytes())
    result = CliRunner().invoke(app, ["detect", str(folder), "--out", str(tmp_path / "o"), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "1 video passed over (clip.mp4): a folder is read as photos" in result.output
    assert (tmp_path / "o" / "a.jpg").is_file()


def test_a_folder_detect_wrote_into_is_read_without_its_annotated_copies(tmp_path, sample_dir):
    """`detect photos --out photos` put a.jpg beside a.png; the folder read again (into another
    --out, or the same) counted each photo twice, its annotated copy as a photo of its own."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for photo in sorted(sample_dir.glob("images/*.png"))[:2]:
        (folder / photo.name).write_bytes(photo.read_bytes())
    result = CliRunner().invoke(app, ["detect", str(folder), "--out", str(folder), "--quiet"])
    assert result.exit_code == 0, result.output
    assert len(list(folder.glob("*.jpg"))) == 2
    for out in (tmp_path / "o", folder):
        result = CliRunner().invoke(app, ["detect", str(folder), "--out", str(out), "--quiet"])
        assert result.exit_code == 0, result.output
        assert "2 files an earlier detect wrote here passed over" in result.output
        names = [json.loads(line)["name"] for line in (out / "detections.jsonl").read_text().splitlines()]
        assert sorted(names) == sorted(p.stem for p in folder.glob("*.png"))


def test_a_photo_whose_header_claims_too_many_pixels_is_refused_before_decoding(tmp_path):
    """A decompression bomb: a PNG header of 20000 x 20000 (1.2 GB decoded) over a few bytes."""
    import struct
    import subprocess
    import sys
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0)
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    # A fresh interpreter: OpenCV takes its pixel limit when it loads, which importing maskwatch sets.
    script = "from maskwatch.data.images import read_image; read_image(__import__('sys').argv[1])"
    result = subprocess.run([sys.executable, "-c", script, str(bomb)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "bomb.png: its header claims more than 100000000 pixels; not decoded" in result.stderr



def test_a_png_cut_short_is_said_once_without_libpngs_own_line(sample_dir, capfd):
    """libpng wrote "libpng error: PNG input buffer is incomplete" to stderr itself (no log level of
    OpenCV's reaches it) beside our own line; a whole PNG with bytes after its end still reads."""
    from maskwatch.data.images import ImageError, decode_image

    data = next(sample_dir.glob("images/*.png")).read_bytes()
    with pytest.raises(ImageError, match=r"cut\.png: not a readable image \(a PNG cut short"):
        decode_image(data[:len(data) // 2], source="cut.png")
    assert "libpng" not in capfd.readouterr().err
    assert decode_image(data + b"trailing bytes").shape == decode_image(data).shape

def test_a_source_with_no_readable_frame_fails_and_keeps_what_the_folder_held(tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG broken")
    folder = tmp_path / "photos"  # every photo broken, and a video the folder passes over
    folder.mkdir()
    for name in ("a.png", "b.png", "clip.mp4"):
        (folder / name).write_bytes(b"\x89PNG broken")
    out = tmp_path / "out"
    out.mkdir()
    (out / "detections.jsonl").write_text('{"an earlier run": true}\n')
    for source, message in ((broken, "broken.png: not a readable image"),
                            (folder, "photos: no frame could be read (2 problems; the last: ")):
        result = CliRunner().invoke(app, ["detect", str(source), "--out", str(out), "--quiet"])
        assert result.exit_code == 1 and message in result.output, result.output
    assert "b.png: not a readable image" in result.output
    assert (out / "detections.jsonl").read_text() == '{"an earlier run": true}\n'
    assert sorted(p.name for p in out.iterdir()) == ["detections.jsonl"]


@pytest.mark.parametrize("source, message", [
    ("webcam:x", "webcam:N"),
    ("/no/such/file.mp4", "no such file"),
    ("0", r"no such file or folder \(a webcam is webcam:0\)"),  # OpenCV's habit of a bare device number
    ("webcam", r"no such file or folder \(a webcam is webcam:N, N its device number: webcam:0\)"),
])
def test_bad_sources(source, message):
    with pytest.raises(SourceError, match=message):
        describe_source(source)


@pytest.mark.parametrize("source, shown", [
    ("rtsp://admin:s3cret@cam/live", "rtsp://admin:***@cam/live"),
    ("rtsp://admin:p@ss/w0rd@cam:554/live", "rtsp://admin:***@cam:554/live"),  # FFmpeg takes these unescaped
    ("rtsp://admin:Pa#ss1@cam/live", "rtsp://admin:***@cam/live"),
    ("postgresql+psycopg://u:p?w@db/maskwatch", "postgresql+psycopg://u:***@db/maskwatch"),
    ("http://cam/videostream.cgi?user=admin&pwd=s3cret&channel=1", "http://cam/videostream.cgi?user=admin&pwd=***&channel=1"),
    ("rtsp://cam/live?token=s3cret", "rtsp://cam/live?token=***"),
    ("http://cam/x?API_KEY=s3cret#top", "http://cam/x?API_KEY=***#top"),
    ("http://cam/x?accessToken=s3cret&channel=1", "http://cam/x?accessToken=***&channel=1"),
    # an MJPEG camera's (Foscam's) login and a bare pw= were shown whole, in the log, --check and the API
    ("http://cam/videostream.cgi?loginuse=admin&loginpas=s3cret", "http://cam/videostream.cgi?loginuse=admin&loginpas=***"),
    ("http://cam/mjpg?user=admin&pw=s3cret", "http://cam/mjpg?user=admin&pw=***"),
    # XMEye DVRs put the login in the path: shown whole
    ("rtsp://cam:554/user=admin_password=s3cret_channel=1_stream=0.sdp?real_stream",
     "rtsp://cam:554/user=admin_password=***"),
    ("rtsp://cam:554/user=admin&password=s3cret&channel=1&stream=0.sdp", "rtsp://cam:554/user=admin&password=***&channel=1&stream=0.sdp"),
    ("rtsp://cam:554/Streaming/Channels/101?transportmode=unicast", "rtsp://cam:554/Streaming/Channels/101?transportmode=unicast"),
    ("rtsp://cam:554/stream1", "rtsp://cam:554/stream1"),
    # psw= (Instar's and other OEM cameras' spelling) and a user-info part that is a password or
    # token alone were shown whole; a plain user name alone and the path stay
    ("http://cam/tmpfs/auto.jpg?usr=admin&psw=s3cret&ch=1", "http://cam/tmpfs/auto.jpg?usr=admin&psw=***&ch=1"),
    ("http://cam/cgi-bin/CGIProxy.fcgi?cmd=snapPicture2&usr=admin&pwd=s3cret",
     "http://cam/cgi-bin/CGIProxy.fcgi?cmd=snapPicture2&usr=admin&pwd=***"),
    ("rtmp://cam/bcs/channel0_main.bcs?channel=0&stream=0&user=admin&password=s3cret",
     "rtmp://cam/bcs/channel0_main.bcs?channel=0&stream=0&user=admin&password=***"),
    ("http://cam/ISAPI/Streaming/channels/101/picture?auth=YWRtaW46czNjcmV0",
     "http://cam/ISAPI/Streaming/channels/101/picture?auth=***"),
    ("http://cam/x?passwd=a&secret=b&key=c&sessionid=d&p=e&pin=f&videocodec=h264",
     "http://cam/x?passwd=***&secret=***&key=***&sessionid=***&p=***&pin=***&videocodec=h264"),
    ("rtsp://s3cret99@cam/live", "rtsp://***@cam/live"),
    ("rtsp://a1b2@c3@cam/live/ch1", "rtsp://***@cam/live/ch1"),
    ("rtsp://:s3cret@cam/live", "rtsp://:***@cam/live"),
    ("rtsp://admin@cam/cam/realmonitor?channel=1&subtype=0", "rtsp://admin@cam/cam/realmonitor?channel=1&subtype=0"),
    ("rtsp://cam/live?email=ana@example.org", "rtsp://cam/live?email=ana@example.org"),
    # a token alone, a port and an @ in the query: the @ taken as the password's end showed the token
    ("rtsp://tok3n@cam:554/live?notify=ops@example.org", "rtsp://***@cam:554/live?notify=ops@example.org"),
    ("rtsp://admin@cam:554/live?notify=ops@example.org", "rtsp://admin@cam:554/live?notify=ops@example.org"),
    # the user-info's @ is the authority's last (RFC 3986): the query's @ was taken for it, the host,
    # port and path hidden, example.org shown as the host and a URL with no password given a ***
    ("rtsp://admin:pw@cam:554/x?to=ops@example.org", "rtsp://admin:***@cam:554/x?to=ops@example.org"),
    ("rtsp://cam:554/x?to=ops@example.org", "rtsp://cam:554/x?to=ops@example.org"),
    ("rtsp://[::1]:554/x?to=a@b", "rtsp://[::1]:554/x?to=a@b"),
    ("rtsp://admin:pw@[::1]:554/x?to=a@b&pwd=s3cret", "rtsp://admin:***@[::1]:554/x?to=a@b&pwd=***"),
    # a password holding a / ? or # before an @ in the query still ends at the last @
    ("rtsp://admin:1234#5@cam/live", "rtsp://admin:***@cam/live"),
    ("rtsp://admin:12?34@cam/live?to=a@b", "rtsp://admin:***@b"),
    ("webcam:0", "webcam:0"),
])
def test_a_sources_password_and_secret_parameters_are_never_shown(source, shown):
    from maskwatch.video.sources import redact_source

    assert redact_source(source) == shown


def test_a_stream_that_never_sends_a_frame_fails_by_name(tmp_path, monkeypatch):
    import functools

    from maskwatch.video import cameras, pipeline

    # The wait is 10 s; 2 s here, the same path (the suite's time).
    monkeypatch.setattr(pipeline, "live_frames", functools.partial(cameras.live_frames, stall_timeout=2.0))
    result = CliRunner().invoke(app, ["detect", "rtsp://user:secret@127.0.0.1:1/none", "--out", str(tmp_path / "out"),
                                      "--quiet"])
    assert result.exit_code == 1
    assert "rtsp://user:***@127.0.0.1:1/none: no frame within 2 s (cannot reach 127.0.0.1:1 (Connection refused))" \
        in result.output
    assert "secret" not in result.output
    assert not list((tmp_path / "out").glob("*"))  # nothing started, nothing half-written


def test_a_stream_url_with_a_bad_port_is_refused_by_name(tmp_path):
    result = CliRunner().invoke(app, ["detect", "rtsp://user:secret@cam:99999/x", "--out", str(tmp_path / "o")])
    assert result.exit_code == 1 and "rtsp://user:***@cam:99999/x: not a valid port" in result.output
    assert "secret" not in result.output


def test_a_stream_whose_password_holds_brackets_is_named_by_its_host_and_path():
    """FFmpeg takes `p[a]ss` as written; urlsplit raised ValueError ("'a' does not appear to be an
    IPv4 or IPv6 address"): `detect URL` ended in a traceback quoting part of the password."""
    from maskwatch.video.sources import describe_source

    assert describe_source("rtsp://admin:p[a]ss@10.0.0.5:554/Streaming/Channels/101").name == \
        "10.0.0.5_554_Streaming_Channels_101"
    assert describe_source("rtsp://admin:p[ss@cam/live?channel=1").name == "cam__live"


@pytest.mark.parametrize("camera", ["--fixed-camera", "--moving-camera"])
def test_detect_every_second_frame_carries_tracked_faces(tmp_path, sample_dir, camera):
    video = make_video(tmp_path / "clip.mp4", sample_dir, frames=6)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["detect", str(video), "--out", str(out), "--detect-every", "2",
                                      "--upscale", "1", "--no-media", "--quiet", camera])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in (out / "detections.jsonl").read_text().splitlines()]
    assert [line["detected"] for line in lines] == [True, False] * 3
    assert not list(out.glob("*.mp4"))
    assert any(line["faces"] for line in lines[::2])  # else the check below compares nothing
    for shown, carried in zip(lines[::2], lines[1::2]):
        assert sorted(f["track_id"] for f in carried["faces"]) == sorted(f["track_id"] for f in shown["faces"])


def test_ctrl_c_keeps_and_closes_what_was_processed(tmp_path, sample_dir, detector):
    from maskwatch.video.pipeline import run_detect

    video = make_video(tmp_path / "clip.mp4", sample_dir, frames=10)

    def interrupt_after_three(frame, faces):
        if frame.index == 2:
            raise KeyboardInterrupt

    result = run_detect(str(video), tmp_path / "out", detector, progress=False, on_frame=interrupt_after_three)
    assert result.interrupted and result.frames == 3
    assert len((tmp_path / "out" / "detections.jsonl").read_text().splitlines()) == 3
    capture = cv2.VideoCapture(str(tmp_path / "out" / "clip.mp4"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 2  # the third frame stopped before drawing
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["interrupted"] is True


class FailingDetector:
    """The detector, raising at its n-th call (a broken model, memory running out)."""

    def __init__(self, detector, fail_at):
        self.detector, self.fail_at, self.calls = detector, fail_at, 0

    def detect(self, image, min_score=None):
        self.calls += 1
        if self.calls == self.fail_at:
            raise RuntimeError("the detector broke")
        return self.detector.detect(image, min_score)


def test_a_run_stopped_by_an_error_keeps_its_frames_consistent_and_says_so(tmp_path, sample_dir, detector,
                                                                          monkeypatch):
    from maskwatch.video import pipeline

    video = make_video(tmp_path / "clip.mp4", sample_dir, frames=8)
    out = tmp_path / "out"
    pipeline.run_detect(str(video), out, detector, progress=False)  # a full run first
    # A rerun whose detector breaks at its third call (frame 4, detecting every second frame).
    monkeypatch.setattr("maskwatch.detection.detector.Detector.load",
                        classmethod(lambda cls, *a, **k: FailingDetector(detector, fail_at=3)))
    result = CliRunner().invoke(app, ["detect", str(video), "--out", str(out), "--quiet"])
    assert result.exit_code == 1
    assert "clip.mp4: stopped after 4 frames by an error: RuntimeError: the detector broke" in result.output
    assert "Traceback" not in result.output
    # Every output says the same four frames: none is left from the earlier run, none lost.
    assert len((out / "detections.jsonl").read_text().splitlines()) == 4
    assert int(cv2.VideoCapture(str(out / "clip.mp4")).get(cv2.CAP_PROP_FRAME_COUNT)) == 4
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"] == 4 and summary["failed"] == "RuntimeError: the detector broke"
    assert not list(out.glob(".*partial*"))


def test_a_video_that_cannot_be_written_leaves_the_earlier_one(tmp_path, sample_dir, detector, monkeypatch):
    from maskwatch.video import pipeline, sinks

    video = make_video(tmp_path / "clip.mp4", sample_dir, frames=4)
    out = tmp_path / "out"
    pipeline.run_detect(str(video), out, detector, progress=False)
    earlier = (out / "clip.mp4").read_bytes()

    class ClosedWriter:
        def __init__(self, *args):
            pass

        def isOpened(self):
            return False

        def release(self):
            pass

    monkeypatch.setattr(sinks.cv2, "VideoWriter", ClosedWriter)
    with pytest.raises(pipeline.DetectFailed, match="OpenCV cannot write an mp4 video here"):
        pipeline.run_detect(str(video), out, detector, progress=False)
    assert (out / "clip.mp4").read_bytes() == earlier
    assert not list(out.glob(".*partial*"))


def test_a_video_the_writer_could_not_finish_leaves_the_earlier_one(tmp_path, sample_dir, detector, monkeypatch):
    """OpenCV's writer says nothing when the disk fills: its mp4, without an index, replaced the
    earlier run's good one."""
    from maskwatch.video import pipeline, sinks

    video = make_video(tmp_path / "clip.mp4", sample_dir, frames=4)
    out = tmp_path / "out"
    pipeline.run_detect(str(video), out, detector, progress=False)
    earlier = (out / "clip.mp4").read_bytes()

    class FullDiskWriter:  # opens, then writes nothing a player can read
        def __init__(self, path, *args):
            Path(path).write_bytes(b"\0\0\0\x18ftypmp42")

        def isOpened(self):
            return True

        def write(self, image):
            pass

        def release(self):
            pass

    monkeypatch.setattr(sinks.cv2, "VideoWriter", FullDiskWriter)
    with pytest.raises(pipeline.DetectFailed, match="annotated video could not be finished"):
        pipeline.run_detect(str(video), out, detector, progress=False)
    assert (out / "clip.mp4").read_bytes() == earlier
    assert len((out / "detections.jsonl").read_text().splitlines()) == 4  # the lines of the frames done
    assert not list(out.glob(".*partial*"))


def test_unfinished_files_a_killed_run_left_are_named_and_a_running_ones_kept(tmp_path, sample_dir):
    """A run killed outright leaves its video under a hidden temp name (an hour's: a gigabyte), and
    nothing said it was there; two runs at once into one --out wrote one detections.jsonl."""
    video = make_video(tmp_path / "clip.mp4", sample_dir, frames=2)
    out = tmp_path / "out"
    out.mkdir()
    (out / ".clip.x1y2.partial.mp4").write_bytes(b"\0" * 1000)
    result = CliRunner().invoke(app, ["detect", str(video), "--out", str(out), "--quiet", "--no-media"])
    assert result.exit_code == 0, result.output
    assert "1 unfinished file of a run stopped outright (kill -9, memory, power) (.clip.x1y2.partial.mp4): " \
           "they may be deleted" in result.output
    # ... which is no running one's: a second run into a folder a run is writing waits its turn
    import fcntl
    import os

    folder = os.open(out, os.O_RDONLY)
    try:
        fcntl.flock(folder, fcntl.LOCK_EX)  # as a running detect holds it
        before = sorted(p.name for p in out.iterdir())
        result = CliRunner().invoke(app, ["detect", str(video), "--out", str(out), "--quiet"])
        assert result.exit_code == 1 and "another maskwatch detect is writing here" in result.output
        assert sorted(p.name for p in out.iterdir()) == before
    finally:
        os.close(folder)


def test_detect_holds_its_folder_until_its_last_file_is_written(tmp_path, sample_dir, detector, monkeypatch):
    """The lock was given back before the list of outputs was written at the end: a second run let
    in then had that list replaced by the first's."""
    import fcntl
    import os

    from maskwatch.video import pipeline

    video = make_video(tmp_path / "clip.mp4", sample_dir, frames=2)
    out = tmp_path / "out"
    unlocked_at = []
    replace = os.replace

    def replace_and_try_the_lock(src, dst):
        folder = os.open(out, os.O_RDONLY)
        try:
            fcntl.flock(folder, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another run coming in now
            unlocked_at.append(Path(dst).name)
        except BlockingIOError:
            pass
        finally:
            os.close(folder)
        replace(src, dst)

    monkeypatch.setattr(os, "replace", replace_and_try_the_lock)
    pipeline.run_detect(str(video), out, detector, progress=False)
    assert (out / pipeline.WRITTEN).is_file()
    assert unlocked_at == []


def test_detect_runs_where_there_is_no_fcntl(tmp_path, sample_dir, monkeypatch):
    """The folder lock imported fcntl, which Windows has not: every detect there failed with
    "No module named 'fcntl'", where it ran before the lock."""
    import sys

    monkeypatch.setitem(sys.modules, "fcntl", None)  # import fcntl: ImportError
    video = make_video(tmp_path / "clip.mp4", sample_dir, frames=2)
    result = CliRunner().invoke(app, ["detect", str(video), "--out", str(tmp_path / "out"), "--quiet", "--no-media"])
    assert result.exit_code == 0, result.output
    assert len((tmp_path / "out" / "detections.jsonl").read_text().splitlines()) == 2


def test_photo_split_matches_the_training_split(prepared_sample, sample_dir):
    from maskwatch.data.prepare import read_faces_csv
    from maskwatch.data.split import read_split_csv
    from maskwatch.data.photos import photo_split

    assignment, _, _ = read_split_csv(prepared_sample / "split.csv")
    rows = read_faces_csv(prepared_sample / "faces.csv")
    val_photos = {r["image"] for r in rows if assignment[r["face_id"]] == "val"}
    split = photo_split(sample_dir, seed=0)
    assert {a.filename for a in split.val} == val_photos
    assert not {a.filename for a in split.train} & val_photos


def test_a_rescaled_detector_finds_far_faces_the_default_misses(detector, sample_dir):
    """The sample's most crowded photo at half size on a 1280x720 frame (faces about 10 px): frames
    that large are never enlarged by default; at 1.5 most faces are found, on the same networks."""
    ann = load_voc_annotation(sample_dir / "annotations" / "maksssksksss296.xml")
    photo = cv2.imread(str(sample_dir / "images" / ann.filename))
    small = cv2.resize(photo, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    frame = np.full((720, 1280, 3), 120, np.uint8)
    frame[:small.shape[0], :small.shape[1]] = small
    truth = np.array([o.box for o in ann.objects]) * 0.5
    far = detector.rescaled(1.5)
    assert far.finder.session is detector.finder.session and far.classifier is detector.classifier
    assert (far.config.upscale, detector.config.upscale) == (1.5, None)

    def found(d):
        return len(greedy_match(truth, np.array([f.box for f in d.detect(frame)]).reshape(-1, 4), 0.5))
    assert found(detector) <= 10 and found(far) >= 20, (found(detector), found(far), len(truth))
    with pytest.raises(ValueError, match="upscale must be more than 0, got 0"):
        detector.rescaled(0)


@pytest.mark.parametrize("option, value, message", [
    ("--upscale", "-1", "must be more than 0 and at most 4, got -1.0"),
    ("--upscale", "40", "must be more than 0 and at most 4, got 40.0"),
    ("--upscale", "0", "must be more than 0 and at most 4, got 0.0"),
    ("--min-score", "3", "a detector score, between 0 and 1; got 3.0"),
    ("--max-frames", "0", "must be at least 1, got 0"),
    ("--detect-every", "0", "must be at least 1, got 0"),
])
def test_detect_refuses_a_setting_out_of_range_by_name(tmp_path, sample_dir, option, value, message):
    # Accepted, -1 shrank every photo to 32 px, 3 kept nothing ("0 faces", no word why), and
    # --max-frames 0 ran one frame. A usage error as click's own (--seed -1): exit 2, the option
    # as typed (it was exit 1, and --min-score was named min_score).
    result = CliRunner().invoke(app, ["detect", str(sample_dir / "images"), "--out", str(tmp_path / "out"),
                                      option, value])
    assert result.exit_code == 2
    assert usage_error(result.output) == f"Invalid value for '{option}': {message}"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("text, message", [
    ("{bad", "Expecting property name"),
    ("[0.3]", "not detector settings (no 'backend'"),
    ('{"model": "run/gate-cnn", "epochs": 12}', "not detector settings (no 'backend'; a run's config.json?"),
    ('{"backend": "maskwatch", "model": "m.onnx", "min_scroe": 0.9}', "unknown settings ['min_scroe']"),
    ('{"backend": "maskwatch", "box_mapping": {"dz": 1}}', "unexpected keyword argument 'dz'"),
    ('{"backend": "maskwatch", "nms_iou": 0}', "nms_iou must be more than 0 and at most 1, got 0"),
])
def test_a_bad_detector_settings_file_is_named_in_its_error(tmp_path, text, message):
    settings = tmp_path / "detector.json"
    settings.write_text(text)
    with pytest.raises(ValueError, match="detector.json: not valid detector settings") as err:
        DetectorConfig.from_json(settings)
    assert message in str(err.value)


def test_a_shipped_detector_named_alone_is_pointed_to_where_it_lies():
    """python.md names the shipped alternatives by file name; given so, the error was Errno 2."""
    from maskwatch.detection.detector import WEIGHTS

    with pytest.raises(FileNotFoundError, match=r"detector-int8.json: no detector settings file there; "
                                                r"the shipped ones \(centerface.json, detector-int8.json, detector.json\)"):
        Detector.load(config="detector-int8.json")
    assert Detector.load(config=WEIGHTS / "detector-int8.json").config.model.endswith("detector-int8.onnx")


def test_a_detector_and_its_classifier_say_which_files_they_run(detector):
    """Both showed only <... object at 0x7f...>: a log line could not tell the int8 detector or a gate apart."""
    assert repr(detector).startswith("Detector(backend='maskwatch', model='detector.onnx', upscale=None, min_score=")
    assert repr(detector).endswith("classifier=Classifier('classifier.onnx', gate='gate.onnx', closeup='closeup.onnx', "
                                   "night='night.onnx'))")
    assert repr(Detector(detector.finder, detector.classifier.closeup, detector.config)).endswith(
        "classifier=Classifier('closeup.onnx'))")


def test_a_camera_with_upscale_detects_on_the_rescaled_networks(detector, tmp_path):
    from maskwatch.site.config import CameraConfig
    from maskwatch.site.events import EventStore
    from maskwatch.site.runner import camera_worker

    store = EventStore(str(tmp_path / "site.db"))
    try:
        far, _ = camera_worker("door", CameraConfig(source="webcam:0", upscale=1.5, moving=True), detector, store)
        near, _ = camera_worker("hall", CameraConfig(source="webcam:0"), detector, store)
    finally:
        store.close()
    assert far.processor.camera_motion is not None and near.processor.camera_motion is None  # `moving: true`
    assert far.processor.detector.config.upscale == 1.5
    assert far.processor.detector.finder.session is detector.finder.session
    assert near.processor.detector is detector


def test_annotated_copies_are_never_written_over_their_photos(tmp_path, sample_dir):
    photos = tmp_path / "photos"
    photos.mkdir()
    cv2.imwrite(str(photos / "a.jpg"), cv2.imread(str(next(sample_dir.glob("images/*.png")))))
    original = (photos / "a.jpg").read_bytes()
    for source in (photos, photos / "a.jpg"):
        result = CliRunner().invoke(app, ["detect", str(source), "--out", str(photos), "--blur", "--quiet"])
        assert result.exit_code == 1 and "the annotated copy of a.jpg would be written over it" in result.output
    assert (photos / "a.jpg").read_bytes() == original and sorted(p.name for p in photos.iterdir()) == ["a.jpg"]
    result = CliRunner().invoke(app, ["detect", str(photos), "--out", str(photos), "--no-media", "--quiet"])
    assert result.exit_code == 0 and (photos / "a.jpg").read_bytes() == original  # JSON lines only: nothing clashes


@pytest.mark.parametrize("reported, used", [(25.0, 25.0), (29.97, 29.97), (0.5, 0.5), (0.05, None), (0.0, None),
                                            (float("nan"), None), (1000.0, None), (90000.0, None), (-1.0, None)])
def test_a_frame_rate_no_video_has_is_not_taken_for_one(reported, used):
    """Frame times are index / fps and the tracker counts in seconds: 1000 fps (some WebM files)
    would keep every track alive 40 times too long."""
    from maskwatch.video.sources import plausible_fps

    assert plausible_fps(reported) == used


class FakeCapture:
    """A video as OpenCV would read it: `frames` images (None: unreadable) with their times in ms."""

    def __init__(self, frames, times, fps=3.53):
        self.frames, self.times, self.fps, self.at = frames, times, fps, -1

    def isOpened(self):  # noqa: N802  (OpenCV's name)
        return True

    def get(self, prop):
        return {cv2.CAP_PROP_FPS: self.fps, cv2.CAP_PROP_FRAME_COUNT: len(self.frames),
                cv2.CAP_PROP_POS_MSEC: self.times[self.at] if self.at >= 0 else 0.0}.get(prop, 0.0)

    def read(self):
        self.at += 1
        if self.at >= len(self.frames) or self.frames[self.at] is None:
            return False, None
        return True, self.frames[self.at]

    def grab(self):  # a site's file camera grabs, then decodes the frames it is asked for
        ok, self.grabbed = self.read()
        return ok

    def retrieve(self):
        return self.grabbed is not None, self.grabbed

    def release(self):
        pass


def fake_video(monkeypatch, tmp_path, frames, times, fps=3.53):
    from maskwatch.video import sources

    monkeypatch.setattr(sources.cv2, "VideoCapture", lambda *args: FakeCapture(frames, times, fps))
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"a video")
    return str(path)


def test_a_variable_frame_rate_video_is_timed_by_its_frames_own_times(monkeypatch, tmp_path):
    """A clip of a minute of still grey then a face at 30 fps reports 3.53 fps on average: frame
    times of index / fps put the face at 17 s where it was at 60 s."""
    from maskwatch.video.sources import read_frames

    image = np.zeros((8, 8, 3), np.uint8)
    times = [0.0, 30_000.0, 60_000.0, 60_033.3, 60_066.7, float("nan"), 60_000.0]  # then no time, then one back
    source = fake_video(monkeypatch, tmp_path, [image] * 7, [t + 10_000 for t in times])  # the file starts at 10 s
    got = [round(f.timestamp, 3) for f in read_frames(source)]
    assert got[:5] == [0.0, 30.0, 60.0, 60.033, 60.067]  # from the first frame, as before
    assert got[5] > got[4] and got[6] > got[5]  # index / fps where no time is given; never backwards


def test_scattered_bad_frames_are_skipped_and_a_file_that_ends_early_is_said_once(monkeypatch, tmp_path):
    from maskwatch.video.sources import read_frames

    image = np.zeros((8, 8, 3), np.uint8)
    scattered = [image if i % 3 else None for i in range(1, 91)]  # one in three bad, 60 good in all
    errors = []
    frames = list(read_frames(fake_video(monkeypatch, tmp_path, scattered, [40.0 * i for i in range(90)]), errors))
    assert len(frames) == 60  # to the end (the last bad one is the end); it stopped at 26
    # 29 bad frames apart (the last is the end): 20 named, the rest counted (a line a frame before)
    assert errors[:2] == ["clip: frame 2 unreadable, skipped", "clip: frame 5 unreadable, skipped"]
    assert len(errors) == 21 and errors[-1] == "clip: 9 more frames unreadable, in 9 stretches, skipped"
    errors = []  # and a file that ends early after them: its end said, not counted among them
    frames = list(read_frames(fake_video(monkeypatch, tmp_path, scattered + [None] * 40, [40.0 * i for i in range(130)]),
                              errors))
    assert len(frames) == 60 and len(errors) == 22
    assert errors[-2:] == ["clip: no frame could be read from frame 89 on, of the 130 its header promises (a truncated file?)",
                           "clip: 9 more frames unreadable, in 9 stretches, skipped"]
    truncated = [image] * 40 + [None] * 40  # the header promises 80; the file ends at 40
    errors = []
    frames = list(read_frames(fake_video(monkeypatch, tmp_path, truncated, [40.0 * i for i in range(80)]), errors))
    assert len(frames) == 40
    assert errors == ["clip: no frame could be read from frame 40 on, of the 80 its header promises (a truncated file?)"]
    errors = []  # cut closer to its end: 21 of the 40 promised, under 25 bad in a row (a line each before)
    frames = list(read_frames(fake_video(monkeypatch, tmp_path, [image] * 21 + [None] * 19, [40.0 * i for i in range(40)]),
                              errors))
    assert len(frames) == 21
    assert errors == ["clip: no frame could be read from frame 21 on, of the 40 its header promises (a truncated file?)"]


def broken_start_clip(clip):
    """A 10 fps clip of 60 grey frames (frame i at 40 + 3i) whose frames 1-39 do not decode, as a
    phone clip whose frames before a key frame are broken (cut or copied badly)."""
    import struct

    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 10, (160, 120))
    for i in range(60):  # a key frame every 12 (OpenCV's MPEG-4 writer)
        writer.write(np.full((120, 160, 3), 40 + 3 * i, np.uint8))
    writer.release()
    data = bytearray(clip.read_bytes())
    at = data.find(b"stsz")
    sizes = struct.unpack_from(">60I", data, at + 16)
    start = struct.unpack_from(">I", data, data.find(b"stco") + 12)[0]  # the one chunk: samples in a row
    header = 40  # the first frame's stream header kept, its picture and the 39 frames after it zeroed
    data[start + header:start + sum(sizes[:40])] = bytes(sum(sizes[:40]) - header)
    clip.write_bytes(data)
    return clip


# Display matrices (a, b, c, d of tkhd) and the stored picture each shows upright: turned a
# quarter to the right (a phone's portrait clip), mirrored (a front camera's, some apps'), and
# mirrored across the diagonal (both).
TURNED_90 = ((0, 1, -1, 0), lambda upright: cv2.rotate(upright, cv2.ROTATE_90_COUNTERCLOCKWISE))
MIRRORED = ((-1, 0, 0, 1), lambda upright: cv2.flip(upright, 1))
TRANSPOSED = ((0, 1, 1, 0), cv2.transpose)


def phone_clip(clip, upright, display=TURNED_90):
    """A phone's clip of the picture `upright`: its pixels stored as `display` says, and its
    track's display matrix (tkhd) showing them upright, as phones write it."""
    import struct

    matrix, stored = display[0], display[1](upright)
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 10, stored.shape[1::-1])
    for _ in range(3):
        writer.write(stored)
    writer.release()
    data = bytearray(clip.read_bytes())
    at = data.find(b"tkhd") + 4 + 4 + 20 + 16  # version 0: its times, ids and layer before the matrix
    a, b, c, d = (v * 0x10000 for v in matrix)
    struct.pack_into(">9i", data, at, a, b, 0, c, d, 0, 0, 0, 0x40000000)
    clip.write_bytes(data)
    return clip


def test_a_portrait_or_mirrored_phone_clip_is_read_upright_by_detect_and_a_site_camera(tmp_path, sample_dir):
    """Faces on their side or upside down go unfound: a clip stored landscape with a rotation is
    read turned upright (OpenCV's CAP_PROP_ORIENTATION_AUTO), and a mirrored one (which OpenCV
    turned 180 or 90 degrees by its matrix's angle) mirrored back, here and by a site's file
    camera, so boxes, lines and the annotated video are the upright picture's."""
    import time

    from maskwatch.video.cameras import CameraReader
    from maskwatch.video.sources import read_frames

    upright = cv2.resize(cv2.imread(str(min(sample_dir.glob("images/*.png")))), (120, 160))
    for i, display in enumerate((TURNED_90, MIRRORED, TRANSPOSED)):
        clip = phone_clip(tmp_path / f"IMG_000{i}.MOV", upright, display)
        frames = list(read_frames(clip))
        assert len(frames) == 3 and frames[0].image.shape == (160, 120, 3), display[0]
        # not mirrored, nor turned the other way: a mirrored one was shown turned 180 or 90 degrees
        assert np.abs(frames[0].image.astype(int) - upright).mean() < 8, display[0]
        reader = CameraReader(str(clip), name="door").start()
        try:
            deadline = time.monotonic() + 30
            while reader.latest()[1] is None and time.monotonic() < deadline:
                time.sleep(0.05)
            assert np.abs(reader.latest()[1].astype(int) - upright).mean() < 8, display[0]
        finally:
            reader.stop()


def test_a_site_camera_looping_a_file_reads_its_index_once(monkeypatch, tmp_path, sample_dir):
    """A file camera loops its file, and every loop read the file's index again (up to 64 MB) to
    learn whether it is mirrored: now once for the file as it is, again when it changes."""
    import os
    import time

    from maskwatch.video import sources
    from maskwatch.video.cameras import CameraReader
    from maskwatch.video.iso_media import mirror

    upright = cv2.resize(cv2.imread(str(min(sample_dir.glob("images/*.png")))), (120, 160))
    clip = phone_clip(tmp_path / "IMG_0100.MOV", upright, MIRRORED)
    real_capture, opened, read = cv2.VideoCapture, [], []
    monkeypatch.setattr(sources.cv2, "VideoCapture", lambda *args: opened.append(args) or real_capture(*args))
    monkeypatch.setattr(sources, "mirror", lambda path: read.append(path) or mirror(path))

    def loops(count: int) -> None:
        deadline = time.monotonic() + 20
        while len(opened) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(opened) >= count

    reader = CameraReader(str(clip), name="door").start()
    try:
        loops(3)
        assert read == [str(clip)]
        assert np.abs(reader.latest()[1].astype(int) - upright).mean() < 8  # still mirrored back
        os.utime(clip, ns=(clip.stat().st_atime_ns, clip.stat().st_mtime_ns + 10**9))  # the file changed
        loops(len(opened) + 2)
        assert read == [str(clip)] * 2
    finally:
        reader.stop()


def test_a_clip_whose_first_seconds_do_not_decode_is_read_from_where_they_do(tmp_path):
    """26 unreadable frames in a row were taken for the file's end, and nothing after them was
    read ("no frame could be read from frame 1 on ... a truncated file?"), one line a frame."""
    from maskwatch.video.sources import read_frames

    clip = broken_start_clip(tmp_path / "phone.mp4")
    errors = []
    frames = list(read_frames(clip, errors))
    assert errors == ["phone: frames 1-39 unreadable, skipped"]  # OpenCV gives frame 0, grey
    assert [f.index for f in frames[1:]] == list(range(40, 60))
    assert [round(f.timestamp, 1) for f in frames[1:3]] == [4.0, 4.1]  # the file's own times


def test_the_annotated_video_holds_a_frame_per_line_at_even_sides_readable_by_others(tmp_path):
    from maskwatch.video.sinks import MediaSink
    from maskwatch.video.sources import Frame, SourceInfo

    out = tmp_path / "out"
    out.mkdir()
    sink = MediaSink(out, SourceInfo("video", "clip", 10.0, 4), blur=False)
    image = np.full((359, 641, 3), 128, np.uint8)
    for index in (0, 1, 3):  # frame 2 could not be read: its line is missing, its picture held
        sink.write(Frame(index, index / 10, image, f"clip-{index:06d}"), [])
    sink.close()
    video = cv2.VideoCapture(str(out / "clip.mp4"))
    shape = (int(video.get(cv2.CAP_PROP_FRAME_HEIGHT)), int(video.get(cv2.CAP_PROP_FRAME_WIDTH)))
    count = int(video.get(cv2.CAP_PROP_FRAME_COUNT))
    video.release()
    assert shape == (360, 642) and count == 4  # 641x359 was cut to 640x358; frame 3 was the video's 2
    assert (out / "clip.mp4").stat().st_mode & 0o777 == 0o666 & ~current_umask()  # not mkstemp's 0600


def test_the_annotated_video_of_a_variable_frame_rate_clip_plays_at_its_own_speed(tmp_path):
    """Frames placed by count at the container's rate played 2 s of a phone clip in 0.5 s; now
    the video's frame k is the newest picture at k / fps, and an outage is held 10 s at most."""
    from maskwatch.video.sinks import LONGEST_HOLD_S, MediaSink
    from maskwatch.video.sources import Frame, SourceInfo

    out = tmp_path / "out"
    out.mkdir()
    sink = MediaSink(out, SourceInfo("video", "clip", 10.0, 6), blur=False)
    times = [5.0, 5.1, 7.0, 7.02, 7.1, 107.1]  # a still stretch, two frames in one slot, an outage
    for index, at in enumerate(times):
        sink.write(Frame(index, at, np.full((64, 64, 3), 40 * index, np.uint8), f"clip-{index:06d}"), [])
    sink.close()
    video = cv2.VideoCapture(str(out / "clip.mp4"))
    pictures = []
    while (got := video.read())[0]:
        pictures.append(int(round(got[1].mean() / 40)))
    video.release()
    held = int(LONGEST_HOLD_S * 10)
    assert pictures == [0] + [1] * 19 + [3] + [4] * held + [5]  # 7.0 s is slot 20, and 7.02's picture (3) wins it


def test_the_annotated_video_of_a_stream_back_at_another_resolution_goes_on_at_its_first_size(tmp_path):
    """`detect URL` of a camera that came back from a drop at another resolution (rebooted, its
    substream reconfigured): OpenCV's writer takes its first size only, and every later frame was
    dropped with a warning on the terminal, the annotated video frozen at the drop for the rest of
    the run. The frames after it are scaled to the video's size."""
    from maskwatch.video.sinks import MediaSink
    from maskwatch.video.sources import Frame, SourceInfo

    out = tmp_path / "out"
    out.mkdir()
    sink = MediaSink(out, SourceInfo("stream", "bus", None, None), blur=False)  # 25 fps: a slot per 0.04 s
    sizes = [(240, 320)] * 3 + [(480, 640)] * 2  # back after the third frame at twice the size
    for index, (height, width) in enumerate(sizes):
        sink.write(Frame(index, index * 0.2, np.full((height, width, 3), 40 * (index + 1), np.uint8),
                         f"bus-{index:06d}"), [])
    sink.close()
    video = cv2.VideoCapture(str(out / "bus.mp4"))
    pictures = []
    while (got := video.read())[0]:
        pictures.append((got[1].shape[:2], int(round(got[1].mean() / 40))))
    video.release()
    assert pictures == [((240, 320), level) for level in (1, 2, 3, 4) for _ in range(5)] + [((240, 320), 5)]


def current_umask() -> int:
    import os

    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_detect_does_not_write_over_a_file_of_the_users_named_as_its_copy(tmp_path, sample_dir):
    """The annotated copy of clip.mkv is OUT/clip.mp4: the user's own clip.mp4 there was replaced."""
    (tmp_path / "src").mkdir()
    video = make_video(tmp_path / "src" / "clip.mp4", sample_dir, frames=4)  # what is checked is the files
    out = tmp_path / "out"
    out.mkdir()
    (out / "clip.mp4").write_bytes(b"the user's own video")
    result = CliRunner().invoke(app, ["detect", str(video), "--out", str(out), "--quiet"])
    assert result.exit_code == 1 and "no earlier detect wrote" in result.output, result.output
    assert (out / "clip.mp4").read_bytes() == b"the user's own video"
    (out / "clip.mp4").unlink()
    for _ in range(2):  # its own copy, from an earlier run, is replaced as before
        result = CliRunner().invoke(app, ["detect", str(video), "--out", str(out), "--quiet"])
        assert result.exit_code == 0, result.output
    # ... also when that run's first frames were unreadable (its lines start at clip-000003)
    (out / "detections.jsonl").write_text('{"frame": 3, "name": "clip-000003"}\n')
    result = CliRunner().invoke(app, ["detect", str(video), "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output


def test_detect_runs_into_one_folder_replace_their_own_copies_and_no_stale_summary(tmp_path, sample_dir):
    """one.jpg, then two.png, then one.jpg again into one --out: the third was refused as "a file no
    earlier detect wrote" (only the last detections.jsonl was asked), and a video's summary.json
    stayed beside a later photo run's lines."""
    first, second = sorted(sample_dir.glob("images/*.png"))[:2]
    (tmp_path / "p").mkdir()
    cv2.imwrite(str(tmp_path / "p" / "one.jpg"), cv2.imread(str(first)))
    (tmp_path / "p" / "two.png").write_bytes(second.read_bytes())
    video = make_video(tmp_path / "clip.mp4", sample_dir, frames=3)  # what is checked is the files
    out = tmp_path / "out"
    for source in (video, tmp_path / "p" / "one.jpg", tmp_path / "p" / "two.png", tmp_path / "p" / "one.jpg", video):
        result = CliRunner().invoke(app, ["detect", str(source), "--out", str(out), "--quiet"])
        assert result.exit_code == 0, (source, result.output)
        assert (out / "summary.json").exists() == (source == video)
    (out / "mine.jpg").write_bytes(b"the user's own")  # still refused: no detect wrote it
    (tmp_path / "p" / "mine.png").write_bytes(second.read_bytes())
    result = CliRunner().invoke(app, ["detect", str(tmp_path / "p" / "mine.png"), "--out", str(out), "--quiet"])
    assert result.exit_code == 1 and "no earlier detect wrote" in result.output


def test_a_run_killed_outright_leaves_no_earlier_runs_summary_beside_its_lines(tmp_path, sample_dir, detector):
    """detections.jsonl is written in place from the start, but an earlier run's summary.json stayed
    until the end: a run killed outright (kill -9, power) left the earlier run's summary, "running":
    false, beside its own lines (and after a video, `annotations` refused the photo run's)."""
    from maskwatch.video import pipeline

    video = make_video(tmp_path / "clip.mp4", sample_dir, frames=3)
    photo = tmp_path / "one.png"
    photo.write_bytes(next(sample_dir.glob("images/*.png")).read_bytes())
    out = tmp_path / "out"
    pipeline.run_detect(str(video), out, detector, progress=False)
    for source in (video, photo):  # what a kill -9 at each frame would leave
        seen = []
        pipeline.run_detect(str(source), out, detector, progress=False,
                            on_frame=lambda frame, faces: seen.append((out / "summary.json").exists()))
        assert seen and not any(seen), source


def test_a_photo_named_like_a_video_is_read_as_a_photo(tmp_path, sample_dir):
    """A JPEG saved as .mp4 was a one-frame video: its face labelled, but "0 people tracked"."""
    from maskwatch.video.sources import describe_source

    photo = tmp_path / "door.mp4"
    photo.write_bytes(next(sample_dir.glob("images/*.png")).read_bytes())
    assert describe_source(str(photo)).kind == "image"
    result = CliRunner().invoke(app, ["detect", str(photo), "--out", str(tmp_path / "out"), "--quiet"])
    assert result.exit_code == 0 and (tmp_path / "out" / "door.jpg").is_file() and not (tmp_path / "out" / "door.mp4").exists()


def test_a_large_still_photo_is_read_at_a_larger_side_than_a_video_frame(tmp_path, detector, sample_dir,
                                                                         monkeypatch):
    """A 4000 x 3000 phone photo was shrunk to 800 px like a video frame: its 40 px faces went to
    8 px and most were missed (benchmarks/photo_side.py: 0.613 of a mosaic's faces found, 0.783 at
    1280). Video frames keep 800 px for speed; a fixed --upscale is kept as asked."""
    from maskwatch.detection.detector import Detector
    from maskwatch.video.pipeline import run_detect

    photos = detector.for_photos()
    assert photos.finder.scale.main_scale(4000, 3000) == 1280 / 4000
    assert detector.finder.scale.main_scale(4000, 3000) == 800 / 4000  # frames of a video, as before
    assert photos.finder.scale.main_scale(1000, 750) == 1.0  # over 800: never enlarged
    for side in range(100, 801, 25):  # photos of at most 800 px are read as ever (every Kaggle photo)
        assert photos.finder.scale.main_scale(side, side) == detector.finder.scale.main_scale(side, side), side
    assert detector.rescaled(1.5).for_photos().finder.scale.main_scale(4000, 3000) == 1.5
    chosen = []
    original = Detector.for_photos
    monkeypatch.setattr(Detector, "for_photos", lambda self: chosen.append(original(self)) or chosen[-1])
    cv2.imwrite(str(tmp_path / "big.jpg"), cv2.resize(cv2.imread(str(min(sample_dir.glob("images/*.png")))), (2400, 1800)))
    run_detect(str(tmp_path / "big.jpg"), tmp_path / "out", detector, progress=False, save_media=False)
    assert [d.finder.scale.main_scale(2400, 1800) for d in chosen] == [1280 / 2400]


def test_a_phones_3gp_clip_in_a_folder_is_a_video_for_batch_and_named_by_detect(tmp_path):
    """An older Android phone's .3gp clips were no input of `batch` ("folder holds no photos or
    videos") and passed over unsaid by `detect FOLDER` ("folder holds no images", no word of them)."""
    from maskwatch.scale.files import find_files

    folder = tmp_path / "phone"
    folder.mkdir()
    writer = cv2.VideoWriter(str(folder / "VID_0001.3gp"), cv2.VideoWriter_fourcc(*"mp4v"), 5, (64, 64))
    writer.write(np.zeros((64, 64, 3), np.uint8))
    writer.release()
    assert [(f.key, f.kind) for f in find_files([folder])] == [("VID_0001.3gp", "video")]
    with pytest.raises(SourceError, match="folder holds no images .*; `maskwatch batch` reads the videos it holds"):
        describe_source(str(folder))
    assert describe_source(str(folder / "VID_0001.3gp")).kind == "video"


def test_odd_photo_and_video_files_are_read_as_what_they_hold(tmp_path, sample_dir):
    """From a review with real users' files: an iPhone's HEIC became a one-frame video; HEIC, GIF
    and AVIF in a folder were passed over in silence; an IP camera's .mjpeg (JPEGs in a row) was
    one photo."""
    from maskwatch.video.sources import describe_source

    photo = cv2.imread(str(min(sample_dir.glob("images/*.png"))))
    (tmp_path / "phone.heic").write_bytes(b"\x00\x00\x00\x18ftypheic")
    with pytest.raises(SourceError, match="HEIC/HEIF photos .* convert them to JPEG"):
        describe_source(str(tmp_path / "phone.heic"))
    ok, jpeg = cv2.imencode(".jpg", photo)
    (tmp_path / "camera.mjpeg").write_bytes(jpeg.tobytes() * 5)
    (tmp_path / "one.mjpeg").write_bytes(jpeg.tobytes())
    assert describe_source(str(tmp_path / "camera.mjpeg")).kind == "video"
    assert describe_source(str(tmp_path / "one.mjpeg")).kind == "image"
    folder = tmp_path / "photos"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.gif"), photo)
    (folder / "b.heic").write_bytes(b"\x00\x00\x00\x18ftypheic")
    result = CliRunner().invoke(app, ["detect", str(folder), "--out", str(tmp_path / "out"), "--quiet", "--no-media"])
    assert result.exit_code == 0 and "1 photo passed over (b.heic)" in result.output, result.output
    assert json.loads((tmp_path / "out" / "detections.jsonl").read_text())["name"] == "a"


def test_a_variable_rate_webms_end_is_no_truncation(monkeypatch, tmp_path):
    """WebM gives no frame count; OpenCV's is its duration x nominal rate (111 for 12 frames): a
    whole file was said to be truncated."""
    from maskwatch.video.sources import read_frames

    image = np.zeros((8, 8, 3), np.uint8)
    times = [0, 33, 66, 1000, 1033, 1066, 2000, 2033, 2066, 3300, 3333, 3366]
    errors = []
    frames = list(read_frames(fake_video(monkeypatch, tmp_path, [image] * 12 + [None] * 99, times + [0] * 99,
                                         fps=30.0), errors))
    assert len(frames) == 12 and errors == []
    errors = []  # one reporting 1000 fps (its count made with that rate)
    frames = list(read_frames(fake_video(monkeypatch, tmp_path, [image] * 12 + [None] * 99, times + [0] * 99,
                                         fps=1000.0), errors))
    assert len(frames) == 12 and not any("truncated" in e for e in errors), errors


def test_a_frame_count_made_with_a_rate_that_is_none_is_no_length_for_progress(monkeypatch, tmp_path, detector,
                                                                              capsys):
    """A browser's WebM reporting 1000 fps counts its duration x 1000 (111 for these 12 frames):
    its progress ended "12/111 (11%)", and a long one's time left was reckoned for 10 times its length."""
    from maskwatch.video.pipeline import run_detect
    from maskwatch.video.sources import describe_source

    image = np.zeros((64, 64, 3), np.uint8)
    source = fake_video(monkeypatch, tmp_path, [image] * 12 + [None] * 99, [33.0 * i for i in range(111)], fps=1000.0)
    assert describe_source(source).frames is None
    result = run_detect(source, tmp_path / "out", detector, save_media=False)
    assert "detect: 12 frame done in" in capsys.readouterr().err
    times = [json.loads(line)["time"] for line in (tmp_path / "out" / "detections.jsonl").read_text().splitlines()]
    assert times[:3] == [0.0, 0.033, 0.066]  # its frames' own times, not 1 / 25 s apart
    # it said "frame times assume 25 fps" of these
    assert result.errors == ["clip: frame rate 1000 is not one; frames are timed by their own times (25 fps where "
                             "they give none), the annotated video at 25 fps"]


def test_a_site_camera_ends_a_file_whose_rate_is_none_where_detect_does(monkeypatch, tmp_path):
    """A frame count made with a rate that is none (a browser's WebM at "1000 fps") is none to
    detect, which ends such a file at its first frame that does not decode; a site's file camera
    took the count, read past the frames that did not decode and showed what detect never read."""
    import time

    from maskwatch.video import sources
    from maskwatch.video.cameras import CameraReader

    image = np.zeros((8, 8, 3), np.uint8)
    opened = []

    def capture(*args):
        opened.append(FakeCapture([image] * 3 + [None] * 3 + [image] * 3, [0.0] * 9, fps=1000.0))
        return opened[-1]

    monkeypatch.setattr(sources.cv2, "VideoCapture", capture)
    clip = tmp_path / "clip.webm"
    clip.write_bytes(b"a video")
    assert len(list(sources.read_frames(clip))) == 3
    opened.clear()
    reader = CameraReader(str(clip), name="door").start()
    try:
        deadline = time.monotonic() + 30
        while len(opened) < 2 and time.monotonic() < deadline:  # the file's end: looped
            time.sleep(0.02)
    finally:
        reader.stop()
    assert opened[0].at == 3  # the fourth frame's grab failed, and the file looped there


def test_a_detect_list_that_cannot_be_read_leaves_a_folder_read_whole(tmp_path, sample_dir):
    """A folder copied from elsewhere may hold any .maskwatch-detect.json: one nested too deep for
    json raised RecursionError, a traceback for detect and batch reading the folder; one that is
    not a list, or not JSON, passes nothing over."""
    from maskwatch.video.sources import IMAGE_SUFFIXES, WRITTEN, folder_files

    photo = min(sample_dir.glob("images/*.png"))
    for i, text in enumerate(("[" * 100_000, "{}", "not json", '["a.png"')):
        folder = tmp_path / f"f{i}"
        folder.mkdir()
        (folder / "a.png").write_bytes(photo.read_bytes())
        (folder / WRITTEN).write_text(text)
        assert folder_files(folder, IMAGE_SUFFIXES) == [folder / "a.png"]
    result = CliRunner().invoke(app, ["detect", str(tmp_path / "f0"), "--out", str(tmp_path / "o"), "--quiet"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "o" / "a.jpg").is_file()


def test_a_photo_put_in_place_of_an_annotated_copy_is_read_and_never_written_over(tmp_path, sample_dir):
    """`detect photos --out photos` wrote a.jpg, the copy of a.png; the user put a photo of their
    own named a.jpg there. Each later run passed it over as detect's copy, then wrote a.png's
    copy over it: now it is read as a photo, and left as it is."""
    import hashlib

    from maskwatch.video.sources import IMAGE_SUFFIXES, written_files

    folder = tmp_path / "photos"
    folder.mkdir()
    first, second = sorted(sample_dir.glob("images/*.png"))[:2]
    (folder / "a.png").write_bytes(first.read_bytes())
    run = ["detect", str(folder), "--out", str(folder), "--quiet"]
    assert CliRunner().invoke(app, run).exit_code == 0
    cv2.imwrite(str(folder / "a.jpg"), cv2.imread(str(second)))
    own = hashlib.sha256((folder / "a.jpg").read_bytes()).hexdigest()
    for _ in range(2):
        result = CliRunner().invoke(app, run)
        assert result.exit_code == 0, result.output
        assert folder / "a.jpg" not in written_files(folder, IMAGE_SUFFIXES)
        assert hashlib.sha256((folder / "a.jpg").read_bytes()).hexdigest() == own
        names = [json.loads(line)["name"] for line in (folder / "detections.jsonl").read_text().splitlines()]
        assert sorted(names) == ["a.jpg", "a.png"]


def test_a_heic_or_a_clip_given_as_a_photo_is_named_as_what_it_is(tmp_path, sample_dir):
    """A HEIC saved as .jpg (some phone transfer apps), a HEIC crop in a folder for `classify` and a
    clip given to `classify` were "corrupt, truncated or unsupported format", or passed over."""
    heic = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64)
    (tmp_path / "phone.jpg").write_bytes(heic)
    result = CliRunner().invoke(app, ["detect", str(tmp_path / "phone.jpg"), "--out", str(tmp_path / "out"), "--quiet"])
    assert result.exit_code == 1 and "phone.jpg: HEIC/HEIF photos" in result.output, result.output
    crops = tmp_path / "crops"
    crops.mkdir()
    (crops / "face.heic").write_bytes(heic)
    cv2.imwrite(str(crops / "face.png"), cv2.imread(str(min(sample_dir.glob("images/*.png"))))[:64, :64])
    result = CliRunner().invoke(app, ["classify", str(crops)])
    assert result.exit_code == 1 and "face.heic: HEIC/HEIF photos" in result.output and "face.png: " in result.output
    clip = tmp_path / "door.mp4"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 5, (64, 64))
    writer.write(np.zeros((64, 64, 3), np.uint8))
    writer.release()
    result = CliRunner().invoke(app, ["classify", str(clip)])
    assert result.exit_code == 1 and "door.mp4: a video (MP4" in result.output, result.output
    from maskwatch.data.images import not_a_photo

    assert not_a_photo(b"\x00\x00\x00\x18ftypcrx \x00\x00\x00\x01crx isom") is None  # a Canon raw photo: no video


def test_an_empty_file_or_an_mp4_cut_short_is_named_as_such(tmp_path):
    """A phone's recording stopped part-way (an MP4 with no index yet) and a zero-byte file were
    both "not an image or a video that OpenCV can open"."""
    clip = tmp_path / "door.mp4"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 5, (64, 64))
    for _ in range(10):
        writer.write(np.zeros((64, 64, 3), np.uint8))
    writer.release()
    data = clip.read_bytes()
    clip.write_bytes(data[:len(data) // 2])
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(SourceError, match="door.mp4: a video that cannot be opened: cut short"):
        describe_source(str(clip))
    with pytest.raises(SourceError, match="empty.mp4: empty file"):
        describe_source(str(tmp_path / "empty.mp4"))
    (tmp_path / "song.mp4").write_bytes(b"\x00\x00\x00\x18ftypM4A \x00\x00\x00\x00M4A mp42" + bytes(64))
    with pytest.raises(SourceError, match="song.mp4: an audio file"):  # not "a video ... cut short"
        describe_source(str(tmp_path / "song.mp4"))


def sound_only_mp4() -> bytes:
    """An MP4 of one sound track (AAC, brand isom) and no video, as a phone's recorder writes
    one (an Android voice recording; not an iPhone's M4A brand): its boxes built here."""
    import struct

    def box(kind: bytes, *parts: bytes) -> bytes:
        payload = b"".join(parts)
        return struct.pack(">I4s", 8 + len(payload), kind) + payload

    matrix = struct.pack(">9i", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
    mvhd = box(b"mvhd", bytes(12), struct.pack(">IIIH", 1000, 1000, 0x10000, 0x100), bytes(10), matrix,
               bytes(24), struct.pack(">I", 2))
    tkhd = box(b"tkhd", b"\x00\x00\x00\x07", bytes(8), struct.pack(">IIIH", 1, 0, 1000, 0), bytes(10),
               struct.pack(">H", 0x100), bytes(2), matrix, bytes(8))
    mdhd = box(b"mdhd", bytes(12), struct.pack(">IIHH", 44100, 44100, 0x55C4, 0))
    hdlr = box(b"hdlr", bytes(8), b"soun", bytes(12), b"SoundHandler\x00")
    mp4a = box(b"mp4a", bytes(6), struct.pack(">H", 1), bytes(8), struct.pack(">HHHHI", 2, 16, 0, 0, 44100 << 16))
    stbl = box(b"stbl", box(b"stsd", bytes(4), struct.pack(">I", 1), mp4a), box(b"stts", bytes(8)),
               box(b"stsc", bytes(8)), box(b"stsz", bytes(12)), box(b"stco", bytes(8)))
    minf = box(b"minf", box(b"smhd", bytes(8)), box(b"dinf", box(b"dref", bytes(4), struct.pack(">I", 1),
                                                                  box(b"url ", b"\x00\x00\x00\x01"))), stbl)
    moov = box(b"moov", mvhd, box(b"trak", tkhd, box(b"mdia", mdhd, hdlr, minf)))
    return box(b"ftyp", b"isom", struct.pack(">I", 0x200), b"isomiso2mp41") + moov + box(b"mdat")


def test_an_mp4_of_sound_alone_is_named_an_audio_file_not_a_video_cut_short(tmp_path):
    """A phone's sound recording saved as .mp4 or .m4a with the brand isom (not M4A) was "a
    video that cannot be opened: cut short ... or corrupt": it is whole, and holds no video."""
    from maskwatch.video.iso_media import track_kinds

    for name in ("voice.mp4", "voice.m4a"):
        (tmp_path / name).write_bytes(sound_only_mp4())
        with pytest.raises(SourceError, match=f"{name}: an audio file: it holds sound and no video track"):
            describe_source(str(tmp_path / name))
    assert track_kinds(tmp_path / "voice.mp4") == ["soun"]
    clip = tmp_path / "door.mp4"  # a video's track is one, and a video cut short has none to read
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 5, (64, 64))
    for _ in range(10):
        writer.write(np.zeros((64, 64, 3), np.uint8))
    writer.release()
    assert track_kinds(clip) == ["vide"]
    clip.write_bytes(clip.read_bytes()[:-100])
    assert track_kinds(clip) is None
    writer = cv2.VideoWriter(str(tmp_path / "stopped.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 5, (64, 64))
    writer.release()  # a recording stopped before its first frame: an index of no track, no sound either
    with pytest.raises(SourceError, match=r"stopped.mp4: a video file that holds no video track: no track at all"):
        describe_source(str(tmp_path / "stopped.mp4"))


def test_a_box_sized_past_any_file_is_a_video_cut_short_or_corrupt_not_a_traceback(tmp_path):
    """An MP4 whose box after its file type says a 64-bit size no file has (bytes gone bad):
    reading its boxes raised ValueError ("cannot fit 'int' into an offset-sized integer"), out of
    detect and out of a site camera's reader thread, which ended on it."""
    import struct

    from maskwatch.video.iso_media import mirror, no_video
    from maskwatch.video.sources import unopened_file

    bad = tmp_path / "bad.mp4"
    bad.write_bytes(struct.pack(">I4s4sI", 16, b"ftyp", b"isom", 0x200) + struct.pack(">I4sQ", 1, b"free", 2**64 - 1)
                    + bytes(100))
    cut = "a video that cannot be opened: cut short"
    with pytest.raises(SourceError, match=f"bad.mp4: {cut}"):
        describe_source(str(bad))
    assert no_video(bad) is None and mirror(bad) is None and unopened_file(str(bad)).startswith(cut)


def test_a_folder_of_heic_photos_or_of_subfolders_says_what_it_holds(tmp_path, sample_dir):
    """An iPhone's folder of HEIC photos and a dataset's root (its photos in images/) were a bare
    "folder holds no images", with no word of the HEIC to convert or of the folder to name."""
    phone = tmp_path / "phone"
    phone.mkdir()
    (phone / "IMG_0001.heic").write_bytes(b"\x00\x00\x00\x18ftypheic")
    with pytest.raises(SourceError, match=r"holds 1 HEIC photo \(IMG_0001.heic\): HEIC/HEIF photos .* convert them"):
        describe_source(str(phone))
    with pytest.raises(SourceError, match=r"subfolders are not read: name one, such as .*face-mask-detection/images "):
        describe_source(str(sample_dir))
    result = CliRunner().invoke(app, ["classify", str(sample_dir)])
    assert result.exit_code == 1 and "name one, such as" in result.output, result.output


@pytest.mark.system
def test_an_unwritable_out_folder_is_named_not_a_temp_file_in_it(tmp_path, sample_dir, monkeypatch, capsys):
    """`detect --out` a folder that takes no file said `OUT/..maskwatch-detect.json.qkpr5d9e.partial:
    Permission denied`, a file the user never named. The command's main() (what `python -m maskwatch`
    runs: its OSError line) in this process: a process of its own cost its imports, 2-4 s."""
    import os
    import subprocess
    import sys

    from maskwatch.cli import main

    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o555)
    if os.access(out, os.W_OK) and subprocess.run(["chattr", "+i", str(out)], capture_output=True).returncode:
        out.chmod(0o755)
        pytest.skip("root writes in a read-only folder, and this filesystem makes none immutable")
    monkeypatch.setattr(sys, "argv", ["maskwatch", "detect", str(min(sample_dir.glob("images/*.png"))),
                                      "--out", str(out), "--quiet"])
    try:
        with pytest.raises(SystemExit) as ended:
            main()
    finally:
        subprocess.run(["chattr", "-i", str(out)], capture_output=True)
        out.chmod(0o755)
    stderr = capsys.readouterr().err
    assert ended.value.code == 1 and f"error: {out}: cannot write in this folder (" in stderr, stderr
    assert list(out.iterdir()) == []


def test_the_last_progress_line_of_a_stopped_run_counts_the_frames_done(tmp_path, sample_dir, detector, capsys):
    """Ctrl-C in the detector's third photo: the log's last line said 3/5 (the photo handed out),
    then "2 photos": the bar counted a frame no line was written for."""
    from maskwatch.video.pipeline import run_detect

    class StoppedAtThird:
        def __init__(self):
            self.calls = 0

        def __getattr__(self, name):
            return getattr(detector, name)

        def for_photos(self):
            return self

        def detect_and_unsure(self, image, **options):
            self.calls += 1
            if self.calls == 3:
                raise KeyboardInterrupt
            return detector.for_photos().detect_and_unsure(image, **options)

    photos = tmp_path / "photos"
    photos.mkdir()
    for photo in sorted((sample_dir / "images").glob("*.png"))[:5]:
        (photos / photo.name).write_bytes(photo.read_bytes())
    result = run_detect(str(photos), tmp_path / "out", StoppedAtThird(), progress=True, save_media=False)
    assert result.interrupted and result.frames == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("detect: 2/5 photo (40%) stopped after ")


def test_a_folder_of_photos_with_folders_of_photos_within_says_they_are_passed_over(tmp_path, sample_dir):
    """`detect Trip` read Trip's own photos and passed over Trip/Day1's in silence."""
    photos = sorted((sample_dir / "images").glob("*.png"))
    (tmp_path / "trip" / "day1").mkdir(parents=True)
    (tmp_path / "trip" / photos[0].name).write_bytes(photos[0].read_bytes())
    (tmp_path / "trip" / "day1" / photos[1].name).write_bytes(photos[1].read_bytes())
    result = CliRunner().invoke(app, ["detect", str(tmp_path / "trip"), "--out", str(tmp_path / "out"), "--quiet",
                                      "--no-media"])
    assert result.exit_code == 0, result.output
    assert "1 folder of photos within passed over (day1): a folder is read as its own photos" in result.output


def test_a_subfolder_that_cannot_be_listed_does_not_end_detect_of_its_folder(tmp_path, sample_dir):
    """The look for folders of photos within (to warn of them, or name one) listed every subfolder:
    one this user cannot read (an external disk's lost+found, another user's) ended `detect FOLDER`
    with its PermissionError, photos of the folder's own or not."""
    import os
    import shutil
    import subprocess
    import sys

    photo = sorted((sample_dir / "images").glob("*.png"))[0]
    for name in ("trip", "card"):
        (tmp_path / name / "lost+found").mkdir(parents=True)
        (tmp_path / name / "lost+found").chmod(0)
    (tmp_path / "trip" / photo.name).write_bytes(photo.read_bytes())
    (tmp_path / "card" / "DCIM").mkdir()
    (tmp_path / "card" / "DCIM" / photo.name).write_bytes(photo.read_bytes())
    code = ("import sys; from pathlib import Path\n"
            "from maskwatch.video.sources import SourceError, describe_source, photo_subfolders\n"
            "print(describe_source(sys.argv[1]).kind, photo_subfolders(Path(sys.argv[1])))  # as run_detect asks\n"
            "try:\n    describe_source(sys.argv[2])\nexcept SourceError as err:\n    print(err)\n")
    # root reads a folder whatever its mode: the check runs without that power
    if os.geteuid() == 0 and shutil.which("setpriv") is None:
        pytest.skip("root reads any folder, and setpriv is not here to run the check without that power")
    unprivileged = ["setpriv", "--bounding-set=-dac_override,-dac_read_search",
                    "--inh-caps=-dac_override,-dac_read_search"] if os.geteuid() == 0 else []
    try:
        ran = subprocess.run([*unprivileged, sys.executable, "-c", code, str(tmp_path / "trip"), str(tmp_path / "card")],
                             capture_output=True, text=True, timeout=60)
    finally:
        for name in ("trip", "card"):
            (tmp_path / name / "lost+found").chmod(0o700)
    assert ran.returncode == 0, ran.stderr
    kind, said = ran.stdout.splitlines()
    assert kind == "folder []" and said.endswith(f"name one, such as {tmp_path / 'card' / 'DCIM'} (`maskwatch batch` reads them all)")

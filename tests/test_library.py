"""maskwatch called from a user's own code, as docs/python.md shows it: Faces built from NumPy values
written as JSON, and a Detector handed to a worker process."""

from __future__ import annotations

import copy
import json
import multiprocessing
import pickle
import re
import shutil
from pathlib import Path
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

import maskwatch.data.images
from maskwatch import Classifier, Detector, Face, FrameRecord
from maskwatch.classifier import SHIPPED_CLOSEUP, SHIPPED_MODEL
from maskwatch.data.images import read_image, to_8_bits
from maskwatch.detection.detector import WEIGHTS, DetectorConfig
from maskwatch.faces import frame_record


def test_a_face_of_numpy_values_writes_json_of_plain_numbers():
    # A detector of one's own gives NumPy scores and ids: to_dict's json.dumps raised "Object of
    # type float32 is not JSON serializable" (int64 for the track id).
    face = Face(np.array([1, 2, 30, 40], np.float32), label="with_mask",
                probabilities=np.array([0.7, 0.2, 0.1], np.float32), score=np.float32(0.5),
                track_id=np.int64(3), missed=np.bool_(False))
    assert (type(face.score), type(face.track_id), face.missed) == (float, int, False)
    line = json.dumps(frame_record([face], np.int64(64), np.int64(48), frame=np.int64(7), name="a.jpg",
                                   time=np.float32(0.25)))
    assert json.loads(line)["faces"] == [{"box": [1.0, 2.0, 30.0, 40.0], "label": "with_mask", "probabilities": {
        "with_mask": 0.7, "without_mask": 0.2, "mask_weared_incorrect": 0.1}, "score": 0.5, "track_id": 3}]
    assert (json.loads(line)["frame"], json.loads(line)["time"]) == (7, 0.25)
    assert Face.from_dict(json.loads(json.dumps(face.to_dict()))) == Face(
        (1, 2, 30, 40), "with_mask", (0.7, 0.2, 0.1), 0.5, 3)


@pytest.mark.parametrize("field, value, message", [
    # each was kept, and to_dict raised "type str doesn't define __round__ method" or wrote NaN,
    # which JSON has no word for (a browser's JSON.parse refuses the line)
    ("score", "0.5", "score must be a finite number, got '0.5'"),
    ("score", float("nan"), "score must be a finite number, got nan"),
    ("probabilities", ("0.7", "0.2", "0.1"), "probabilities must be finite numbers, got '0.7'"),
    ("probabilities", (float("nan"), 0.5, 0.5), "probabilities must be finite numbers, got nan"),
    ("track_id", 2.5, "track_id must be a whole number, got 2.5"),
    ("track_id", "3", "track_id must be a whole number, got '3'"),
    ("missed", "no", "missed must be True or False, got 'no'"),  # was True
])
def test_a_face_field_that_is_no_number_is_refused_naming_it(field, value, message):
    with pytest.raises(ValueError) as raised:
        Face((1, 2, 30, 40), **{field: value})
    assert str(raised.value) == message


@pytest.fixture(scope="module")
def detector_here():
    return Detector.load()


@pytest.fixture(scope="module")
def photo(sample_dir):
    return cv2.imread(str(sample_dir / "images" / "maksssksksss129.png"))


def detect_in_a_worker(detector: Detector, image: np.ndarray) -> list[Face]:
    return detector.detect(image)


def test_a_detector_sent_to_a_fresh_worker_process_answers_as_it_does_here(photo):
    # multiprocessing's spawn (the default on macOS and Windows), ProcessPoolExecutor and Ray
    # pickle what they send: a Detector raised "cannot pickle 'InferenceSession' object".
    detector = Detector.load().for_photos()
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        assert pool.submit(detect_in_a_worker, detector, photo).result() == detector.detect(photo)


@pytest.mark.parametrize("settings", ["for_photos", "rescaled", "gate_off", "threads"])
def test_an_unpickled_detector_keeps_its_settings_and_answers(photo, settings):
    detector = {"for_photos": lambda: Detector.load().for_photos(),
                "rescaled": lambda: Detector.load().rescaled(1.5),
                "gate_off": lambda: Detector.load(gate=False, closeup=False),
                "threads": lambda: Detector.load(threads=1)}[settings]()
    twin = pickle.loads(pickle.dumps(detector))
    assert repr(twin) == repr(detector)
    assert (twin.finder.scale, twin.classifier.threads) == (detector.finder.scale, detector.classifier.threads)
    assert twin.detect(photo) == detector.detect(photo)


def test_a_detector_for_photos_shares_the_sessions_it_was_made_from():
    # Nothing is loaded again for another scale: the copy holds the same session.
    detector = Detector.load()
    assert detector.for_photos().finder.session is detector.finder.session
    assert detector.rescaled(1.5).finder.session is detector.finder.session
    assert copy.copy(detector.classifier).session is detector.classifier.session


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint32])
def test_the_fix_a_whole_number_frame_is_told_gives_its_pixels_back(photo, detector_here, dtype):
    # np.asarray(pil_image).astype(int): the error names to_8_bits, which took the values as 0-1
    # floats and made every pixel over 0 white (no face found, no word said).
    wide = photo.astype(dtype)
    with pytest.raises(ValueError, match=f"got {np.dtype(dtype)}; maskwatch.data.images.to_8_bits converts"):
        detector_here.detect(wide)
    assert np.array_equal(to_8_bits(wide), photo)


def test_a_frame_record_of_a_generator_counts_the_faces_it_lists():
    # faces were written from the generator, then counted from the spent one: all counts 0
    faces = [Face((1, 2, 30, 40), "with_mask"), Face((40, 2, 70, 40), "without_mask")]
    record = frame_record((face for face in faces if face.label), 80, 60)
    assert (len(record["faces"]), record["counts"]) == (2, {
        "with_mask": 1, "without_mask": 1, "mask_weared_incorrect": 0, "unassessable": 0})


def test_the_fix_a_pil_image_is_told_gives_the_pixels_cv2_imread_reads(photo, detector_here, tmp_path):
    # A phone photo's pixels lie as the sensor stored them, its EXIF saying how to turn them; cv2.imread
    # (and maskwatch detect) turn them, PIL does not: the fix the error named gave the photo on its side.
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: turn 90 degrees clockwise
    Image.fromarray(photo[:, :, ::-1]).save(tmp_path / "phone.jpg", exif=exif.tobytes(), quality=95)
    pil_image = Image.open(tmp_path / "phone.jpg")
    with pytest.raises(ValueError, match="got JpegImageFile; ") as raised:
        detector_here.detect(pil_image)
    fix = str(raised.value).split("; ", 1)[1].split(" makes a PIL image")[0]
    pixels = eval(fix, {"np": np, "ImageOps": ImageOps, "pil_image": pil_image})
    upright = cv2.imread(str(tmp_path / "phone.jpg"))
    assert pixels.shape == upright.shape == (400, 295, 3)  # was (295, 400, 3)
    assert np.abs(pixels.astype(int) - upright).mean() < 1  # the two JPEG decoders may differ by a level


def test_the_fix_a_path_is_told_reads_the_photo_as_maskwatch_detect_does(photo, detector_here, tmp_path):
    # A 12-bit sensor's photo in a 16-bit PNG: the fix the error named, cv2.imread(path), scaled it
    # by 1/256 (nearly black, no face found); detect reads it at its own depth.
    path = tmp_path / "sensor.png"
    cv2.imwrite(str(path), photo.astype(np.uint16) * 16)
    with pytest.raises(ValueError, match="got PosixPath; for a file: ") as raised:
        detector_here.detect(path)
    fix = str(raised.value).split("for a file: ", 1)[1].split(", which")[0]
    pixels = eval(fix, {"maskwatch": maskwatch, "cv2": cv2, "path": str(path)})
    assert np.abs(pixels.astype(int) - photo).max() <= 1
    assert detector_here.detect(pixels) == detector_here.detect(read_image(path))


@pytest.mark.parametrize("place", [{"frame": 0}, {"frame": 0, "time": 0.5}, {"name": "a.jpg"},
                                   {"frame": 0, "name": Path("a.jpg"), "time": 0.0}])
def test_a_frame_record_placed_in_part_is_refused_naming_what_came(place):
    # frame alone wrote "name": null, which frame_schema() and read_detections refuse ("a frame has
    # all of frame, name and time"); name alone was left out; a Path name failed json.dumps.
    with pytest.raises(ValueError, match="frame, name and time place a frame in its source: give all three .* "
                                         + re.escape(f"got frame={place.get('frame')!r}, name={place.get('name')!r}")):
        frame_record([], 64, 48, **place)
    record = frame_record([], 64, 48, frame=0, name="a", time=0.5)
    assert FrameRecord.from_dict(json.loads(json.dumps(record))).to_dict() == record


def test_a_classifier_unpickled_where_its_file_is_not_names_the_file(tmp_path):
    # Ray on another machine: ONNX Runtime's "[ONNXRuntimeError] : 3 : NO_SUCHFILE" as "not a model
    # ONNX Runtime can load (corrupt, truncated or not ONNX)".
    model = tmp_path / "mine.onnx"
    shutil.copyfile(SHIPPED_MODEL, model)
    pickled = pickle.dumps(Classifier.load(model))
    model.unlink()
    with pytest.raises(FileNotFoundError, match=f"^{model}: classifier model not found where this Classifier was "
                                                "unpickled; its model files must lie at the same paths$"):
        pickle.loads(pickled)


def test_a_classifier_unpickled_after_its_file_was_replaced_is_refused_naming_the_file(tmp_path):
    # A model exported again to the same path (or a maskwatch upgrade's new shipped model) between the
    # pickling and a worker's unpickling: the worker ran the new weights with the pickled crop spec,
    # temperature and doubt threshold, and answered unlike the Classifier sent, without a word.
    model = tmp_path / "mine.onnx"
    shutil.copyfile(SHIPPED_MODEL, model)
    pickled = pickle.dumps(Classifier.load(model))
    shutil.copyfile(SHIPPED_CLOSEUP, model)
    with pytest.raises(ValueError, match=f"^{model}: not the model this Classifier was pickled with"):
        pickle.loads(pickled)


def test_a_detector_unpickled_after_its_model_was_replaced_is_refused_naming_the_file(tmp_path):
    # The same for the face finder: another detector exported to the path ran with the settings
    # (box mapping, cut-offs) fitted to the one pickled.
    model = tmp_path / "detector.onnx"
    shutil.copyfile(WEIGHTS / "detector.onnx", model)
    config = DetectorConfig.from_json(WEIGHTS / "detector.json")
    pickled = pickle.dumps(Detector.load(config=DetectorConfig(**{**vars(config), "model": str(model)}), gate=False))
    shutil.copyfile(WEIGHTS / "detector-int8.onnx", model)
    with pytest.raises(ValueError, match=f"^{model}: not the model this detector was pickled with"):
        pickle.loads(pickled)


@pytest.mark.parametrize("threads", [0, 1])
def test_threads_sharing_one_detector_get_the_answers_one_at_a_time_gives(photo, threads):
    # docs/python.md: several threads may share one Detector (a web app's handlers, a site's cameras)
    detector = Detector.load(threads=threads).for_photos()
    photos = [photo, np.ascontiguousarray(photo[:, ::-1]), photo[40:, 60:], cv2.resize(photo, (600, 443))]
    alone = [detector.detect(image) for image in photos]
    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(detector.detect, photos * 3)) == alone * 3


@pytest.mark.parametrize("upscale", ["1.5", True])
def test_a_resize_factor_that_is_no_number_is_refused_by_name(detector_here, upscale):
    # "1.5" raised "'>' not supported between instances of 'str' and 'int'"; True was a factor of 1
    with pytest.raises(TypeError, match=re.escape(f"upscale is a resize factor, a number more than 0; got {upscale!r}")):
        detector_here.rescaled(upscale)

"""maskwatch's faces as supervision's Detections (maskwatch.interop), on real supervision."""

import re
import subprocess
import sys

import cv2
import numpy as np
import pytest
import supervision as sv

from maskwatch import Detector
from maskwatch.faces import PERSON_LABELS, Face
from maskwatch.extras import package_line, pip_command
from maskwatch.interop import CLASS_IDS, SUPERVISION, SUPERVISION_IN_CHECKOUT, from_detections, to_detections
from tests.conftest import ROOT, SAMPLE


@pytest.fixture(scope="module")
def photo_faces():
    image = cv2.imread(str(SAMPLE / "images" / "maksssksksss129.png"))
    faces = Detector.load().for_photos().detect(image)
    assert len(faces) >= 2 and len({f.label for f in faces}) >= 2, faces  # two labels: class ids are checked
    return image, faces


def test_detections_of_a_sample_photo_carry_every_field_and_come_back_the_same(photo_faces):
    image, faces = photo_faces
    detections = to_detections(faces)
    assert len(detections) == len(faces)
    np.testing.assert_array_equal(detections.xyxy, [f.box for f in faces])
    np.testing.assert_array_equal(detections.confidence, [f.score for f in faces])
    assert detections.class_id.tolist() == [PERSON_LABELS.index(f.label) for f in faces]
    assert detections["class_name"].tolist() == [f.label for f in faces]
    np.testing.assert_array_equal(detections["probabilities"], [f.probabilities for f in faces])
    assert detections.tracker_id is None and not detections["missed"].any()
    assert from_detections(detections) == faces
    # supervision's own tools take them: a filter by class, a zone, the box and label annotators
    masked = detections[detections.class_id == CLASS_IDS["with_mask"]]
    assert from_detections(masked) == [f for f in faces if f.label == "with_mask"]
    height, width = image.shape[:2]
    left_half = sv.PolygonZone(np.array([[0, 0], [width // 2, 0], [width // 2, height], [0, height]]))
    inside = left_half.trigger(detections)
    assert inside.tolist() == [(f.box[0] + f.box[2]) / 2 < width // 2 for f in faces]  # bottom centre anchor
    annotated = sv.LabelAnnotator().annotate(sv.BoxAnnotator().annotate(image.copy(), detections), detections)
    x0, y0, x1, _ = (int(v) for v in faces[0].box)
    assert (annotated[y0, x0:x1] != image[y0, x0:x1]).any()  # the box's top edge is drawn


def test_tracked_faces_keep_their_ids_and_what_they_lack():
    """Video faces: track ids, `unassessable`, a track not voted yet (no label, no probabilities)
    and one the detector missed; an annotation without a score."""
    faces = [Face((10.25, 20.5, 40.0, 60.0), "unassessable", (0.5, 0.1, 0.4), score=0.9, track_id=7),
             Face((50.0, 20.0, 80.0, 60.0), None, None, score=0.3, track_id=8, missed=True),
             Face((90.0, 20.0, 120.0, 60.0), "mask_weared_incorrect", (0.1, 0.1, 0.8), track_id=9)]
    detections = to_detections(faces)
    assert detections.class_id.tolist() == [3, -1, 2]
    assert detections.tracker_id.tolist() == [7, 8, 9]
    assert detections["class_name"].tolist() == ["unassessable", None, "mask_weared_incorrect"]
    assert np.isnan(detections.confidence[2]) and np.isnan(detections["probabilities"][1]).all()
    assert detections["missed"].tolist() == [False, True, False]
    assert from_detections(detections) == faces
    assert to_detections([Face((0, 0, 5, 5), "with_mask")]).confidence is None  # annotations: no scores at all


def test_an_empty_frame_gives_empty_detections_that_supervision_handles(photo_faces):
    image, faces = photo_faces
    empty = to_detections([])
    assert len(empty) == 0 and empty.is_empty()
    assert empty.xyxy.shape == (0, 4) and empty["probabilities"].shape == (0, 3)
    assert from_detections(empty) == []
    np.testing.assert_array_equal(sv.BoxAnnotator().annotate(image.copy(), empty), image)
    assert from_detections(sv.Detections.merge([empty, to_detections(faces)])) == faces


def test_detections_of_another_model_are_refused_by_class_id():
    other = sv.Detections(xyxy=np.array([[0.0, 0.0, 5.0, 5.0]]), class_id=np.array([7]))
    with pytest.raises(ValueError, match="class_id 7 is not a maskwatch label"):
        from_detections(other)


def test_what_is_no_list_of_faces_is_refused_naming_what_it_takes():
    """A list of bare boxes raised "AttributeError: 'tuple' object has no attribute 'score'"."""
    with pytest.raises(TypeError, match=re.escape("takes a list of maskwatch Faces, got a tuple among them; for bare "
                                                  "boxes: supervision.Detections(xyxy=np.array(boxes, dtype=float))")):
        to_detections([Face((0, 0, 5, 5)), (10, 10, 20, 20)])
    with pytest.raises(TypeError, match=re.escape("got one Face; for one: to_detections([face])")):
        to_detections(Face((0, 0, 5, 5)))
    assert len(to_detections(iter([Face((0, 0, 5, 5))]))) == 1  # an iterator was used up by its first column


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"})


def test_importing_maskwatch_does_not_import_supervision():
    result = run_python("import sys, maskwatch, maskwatch.interop\n"
                        "print(sorted(m for m in sys.modules if m.partition('.')[0] == 'supervision'))")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_without_supervision_the_error_names_the_install_line():
    """As every missing extra's line: this interpreter's pip (a plain `pip` may be another
    environment's), in a checkout held to constraints.txt as the Makefile installs it."""
    result = run_python("import sys\nsys.modules['supervision'] = None  # as if not installed\n"
                        "from maskwatch.faces import Face\nfrom maskwatch.interop import to_detections\n"
                        "to_detections([Face((0, 0, 5, 5))])")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "ImportError: maskwatch.interop needs supervision, which is not installed: "
        f"{pip_command(ROOT)} install -c constraints.txt --no-deps supervision pydeprecate")


def test_outside_a_checkout_the_supervision_line_asks_for_a_release_without_opencv(tmp_path):
    assert package_line(SUPERVISION, SUPERVISION_IN_CHECKOUT, root=tmp_path, cwd=tmp_path) == (
        f"{pip_command(tmp_path)} install 'supervision>=0.30'")

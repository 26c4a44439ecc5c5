"""Labels stay readable in crowds: no two drawn labels overlap, on the sample's most crowded photo."""

import itertools

import cv2
import numpy as np
import pytest

from maskwatch import Detector
from maskwatch.data.voc import load_voc_annotation
from maskwatch.faces import CLASSES, Face
from maskwatch.render import COLOURS, FaceAnnotator, blur_faces, full_text, layout_labels, overlaps


@pytest.fixture(scope="module")
def crowded(sample_dir):
    """The sample photo with the most annotated faces, and its faces (labelled, as the detector gives)."""
    anns = [load_voc_annotation(p) for p in sample_dir.glob("annotations/*.xml")]
    ann = max(anns, key=lambda a: len(a.objects))
    assert len(ann.objects) >= 30
    faces = []
    for i, obj in enumerate(ann.objects):
        probs = [0.05] * 3
        probs[CLASSES.index(obj.label)] = 0.9
        faces.append(Face(box=obj.box, label=obj.label, probabilities=tuple(probs), score=0.9, track_id=100 + i))
    return cv2.imread(str(sample_dir / "images" / ann.filename)), faces


def check_layout(layout, faces, width, height):
    rects = [label.rect for label in layout.labels] + [part.rect for part in layout.banner]
    for a, b in itertools.combinations(rects, 2):
        assert not overlaps(a, b), (a, b)
    for x0, y0, x1, y1 in rects:
        assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height
    assert len({label.face for label in layout.labels}) == len(layout.labels)


@pytest.mark.parametrize("source", ["annotated", "detected"])
def test_labels_on_the_most_crowded_photo_do_not_overlap(crowded, source):
    image, faces = crowded
    if source == "detected":
        faces = Detector.load().detect(image)
    height, width = image.shape[:2]
    layout = layout_labels(faces, width, height)
    check_layout(layout, faces, width, height)
    assert layout.compact  # 30+ full labels do not fit in 400x226: numbers instead
    assert len(layout.labels) == len(faces)  # and every face still gets one
    if source == "annotated":
        assert sorted(label.text for label in layout.labels) == sorted(str(f.track_id) for f in faces)
    # what annotate draws is this layout: each label's box is filled with its class colour
    drawn = FaceAnnotator().annotate(image, faces)
    for label in layout.labels:
        x0, y0, x1, y1 = label.rect
        colour = np.array(COLOURS[faces[label.face].label])
        assert (np.abs(drawn[y0:y1, x0:x1].astype(int) - colour).sum(axis=2) == 0).mean() > 0.4


def test_a_few_faces_get_full_labels_next_to_their_boxes():
    faces = [Face(box=(100, 100, 150, 160), label="with_mask", probabilities=(0.93, 0.05, 0.02)),
             Face(box=(300, 120, 340, 170), label="without_mask", probabilities=(0.1, 0.8, 0.1))]
    layout = layout_labels(faces, 640, 480)
    check_layout(layout, faces, 640, 480)
    assert not layout.compact
    assert [label.text for label in layout.labels] == [full_text(f) for f in faces] == ["mask 0.93", "no mask 0.80"]
    for label in layout.labels:
        assert label.rect[3] == faces[label.face].box[1]  # just above its box
    assert [part.text for part in layout.banner] == ["mask: 1", "no mask: 1", "incorrect: 0"]


def test_tiny_frames_and_no_faces_do_not_break():
    assert layout_labels([], 20, 10).labels == ()
    layout = layout_labels([Face(box=(0, 0, 5, 5), label="with_mask")], 8, 8)
    check_layout(layout, [], 8, 8)
    assert FaceAnnotator().annotate(np.zeros((8, 8, 3), np.uint8), [Face(box=(0, 0, 5, 5))]).shape == (8, 8, 3)


@pytest.mark.parametrize("blur", [False, True])
def test_a_frame_that_is_no_array_is_named(blur):
    """annotate(cv2.imread("a wrong path"), faces) failed in an AttributeError on `copy`."""
    with pytest.raises(ValueError, match="frame is None"):
        FaceAnnotator(blur=blur).annotate(None, [Face(box=(0, 0, 5, 5))])
    with pytest.raises(ValueError, match="frame must be a NumPy array"):
        blur_faces([[0, 0, 0]], [Face(box=(0, 0, 5, 5))])


@pytest.mark.parametrize("frame, message", [
    (np.full((40, 60, 3), 0.5, np.float32), "frame must be 8-bit \\(uint8, 0-255\\) to draw on, got float32; "
                                            "maskwatch.data.images.to_8_bits converts"),
    (np.full((40, 60, 3), 127, np.float64), "got float64; its values reach 127, so not 0-1: for 0-255, np.clip"),
    (np.zeros((40, 60), np.uint16), "got uint16; maskwatch.data.images.to_8_bits converts"),
])
def test_a_frame_too_deep_to_draw_on_is_named(frame, message):
    """A float or 16-bit frame failed in OpenCV's putText: "(-215:Assertion failed) img.depth() == CV_8U"."""
    with pytest.raises(ValueError, match=message):
        FaceAnnotator().annotate(frame, [Face(box=(0, 0, 5, 5), label="with_mask")])


@pytest.mark.parametrize("draw", [FaceAnnotator().annotate, FaceAnnotator(blur=True).annotate, blur_faces])
def test_faces_that_are_no_faces_are_named_and_a_generator_of_faces_is_drawn_whole(draw):
    frame, faces = np.zeros((60, 80, 3), np.uint8), [Face(box=(10, 10, 30, 30), label="with_mask")]
    with pytest.raises(TypeError, match="takes a list of maskwatch Faces, got a tuple among them; for bare boxes: "
                                        "maskwatch.render.blur_boxes"):
        draw(frame, [face.box for face in faces])  # was "'tuple' object has no attribute 'box'"
    with pytest.raises(TypeError, match="got one Face; for one: \\[face\\]"):
        draw(frame, faces[0])  # was "'Face' object is not iterable"
    # With blur, the boxes were blurred from the generator and then drawn from the spent one: none.
    assert np.array_equal(draw(frame, (face for face in faces)), draw(frame, faces))

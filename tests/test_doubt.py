"""An answer that admits doubt: a face the classifier is unsure of is `unassessable`."""

import numpy as np

from maskwatch.classifier import _prediction
from maskwatch.faces import UNASSESSABLE, Face, count_labels
from maskwatch.render import FaceAnnotator
from maskwatch.training.classifier.calibration import doubt_threshold


def test_an_unsure_face_is_unassessable_and_keeps_its_probabilities():
    unsure = np.array([0.45, 0.15, 0.40])
    assert _prediction(unsure, doubt=0.6).label == UNASSESSABLE
    assert _prediction(unsure, doubt=0.6).probabilities == tuple(float(v) for v in unsure)
    assert _prediction(unsure, doubt=0.0).label == "with_mask"  # a model exported without a doubt threshold
    assert _prediction(np.array([0.05, 0.9, 0.05]), doubt=0.6).label == "without_mask"


def test_the_threshold_declines_the_least_sure_share_of_held_out_faces():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(1000, 3)) * 3
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    labels = probs.argmax(1)
    labels[:100] = (labels[:100] + 1) % 3  # some wrong answers
    doubt = doubt_threshold(probs, labels, share=0.05)
    declined = probs.max(1) < doubt["threshold"]
    assert doubt["declined"] == declined.sum() and 40 <= declined.sum() <= 50
    assert doubt["wrong_among_declined"] + doubt["wrong_among_answered"] == 100
    assert doubt["faces"] == 1000


def test_unassessable_faces_are_counted_and_drawn():
    faces = [Face(box=(10, 10, 40, 40), label=UNASSESSABLE, probabilities=(0.4, 0.3, 0.3)),
             Face(box=(50, 10, 80, 40), label="with_mask", probabilities=(0.9, 0.05, 0.05))]
    assert count_labels(faces) == {"with_mask": 1, "without_mask": 0, "mask_weared_incorrect": 0, UNASSESSABLE: 1}
    frame = np.zeros((120, 200, 3), np.uint8)
    drawn = FaceAnnotator().annotate(frame, faces)
    assert (drawn[10, 10:40] == (150, 150, 150)).all()  # the unsure face's box, in grey


def test_held_out_faces_all_answered_right_fit_no_temperature():
    """A few dozen validation faces from a trained start (`train --init shipped`), all answered
    right: the search ran down to T 0.07, and the export answered every face 1.0 sure, its doubt
    threshold 1.0 (a face not exactly 1.0 sure declined)."""
    from maskwatch.training.classifier.calibration import calibrate_on_validation, fit_temperature

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 40)
    logits = rng.normal(size=(40, 3))
    logits[np.arange(40), labels] += 4.0
    assert (logits.argmax(1) == labels).all()
    calibration = calibrate_on_validation(logits, labels, [f"photo{i // 2}" for i in range(40)])
    assert calibration["temperature"] == 1.0 and calibration["fitted"] is False
    assert calibration["doubt"]["threshold"] < 0.99
    labels[0] = logits[0].argsort()[1]  # one answered wrong: a temperature fits again
    assert fit_temperature(logits, labels) != 1.0
    assert calibrate_on_validation(logits, labels, [f"photo{i // 2}" for i in range(40)])["fitted"] is True

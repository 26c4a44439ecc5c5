import re

import numpy as np
import pytest

from maskwatch.data.prepare import read_faces_csv
from maskwatch.data.split import read_split_csv, split_faces, write_split_csv


@pytest.fixture(scope="module")
def faces(prepared_sample):
    rows = read_faces_csv(prepared_sample / "faces.csv")
    return [r["label"] for r in rows], [r["image"] for r in rows], [r["face_id"] for r in rows]


def photos_on_both_sides(photos, is_val):
    val = {p for p, v in zip(photos, is_val) if v}
    train = {p for p, v in zip(photos, is_val) if not v}
    return val & train


def test_split_by_photo_never_shares_a_photo(faces):
    labels, photos, _ = faces
    for seed in range(5):
        is_val = split_faces(labels, photos, by="photo", seed=seed)
        assert photos_on_both_sides(photos, is_val) == set()
        assert 0.1 < is_val.mean() < 0.35


def test_split_by_photo_is_stratified_and_seeded(faces):
    labels, photos, _ = faces
    a = split_faces(labels, photos, by="photo", seed=3)
    assert np.array_equal(a, split_faces(labels, photos, by="photo", seed=3))
    assert not np.array_equal(a, split_faces(labels, photos, by="photo", seed=4))
    # All three classes reach the validation side, the rare one included.
    assert {l for l, v in zip(labels, a) if v} == set(labels)


def test_split_by_face_leaks_photos(faces):
    labels, photos, _ = faces
    is_val = split_faces(labels, photos, by="face", seed=0)
    assert abs(is_val.mean() - 0.2) < 0.02
    assert len(photos_on_both_sides(photos, is_val)) > 5


def test_split_round_trips_through_csv(tmp_path, faces):
    labels, photos, ids = faces
    is_val = split_faces(labels, photos, by="photo", seed=1)
    write_split_csv(tmp_path / "s.csv", ids, is_val, by="photo", seed=1)
    assignment, by, seed = read_split_csv(tmp_path / "s.csv")
    assert (by, seed) == ("photo", 1)
    assert [assignment[i] == "val" for i in ids] == is_val.tolist()


@pytest.mark.parametrize("text, message", [
    ("face_id,split\na-001,train\na-002,test\n", "line 3: split is train or val, got 'test'"),
    ("face_id,split,by,seed\na-001,Val,photo,0\n", "line 2: split is train or val, got 'Val'"),
    ("id,fold\na-001,train\n", "a split file has the columns face_id and split"),
])
def test_a_split_file_of_ones_own_says_what_it_cannot_read(tmp_path, text, message):
    """"test" was read as training (the held-out faces trained on, validation empty); a file
    without by and seed columns was a KeyError traceback."""
    (tmp_path / "s.csv").write_text(text)
    with pytest.raises(ValueError, match=re.escape(message)):
        read_split_csv(tmp_path / "s.csv")


def test_a_split_file_without_how_it_was_made_reads(tmp_path):
    (tmp_path / "s.csv").write_text("face_id,split\na-001,train\na-002,val\n")
    assert read_split_csv(tmp_path / "s.csv") == ({"a-001": "train", "a-002": "val"}, None, None)


def test_bad_split_arguments(faces):
    labels, photos, _ = faces
    with pytest.raises(ValueError, match="by must be one of"):
        split_faces(labels, photos, by="camera")
    with pytest.raises(ValueError, match="val_fraction"):
        split_faces(labels, photos, val_fraction=1.5)
    with pytest.raises(ValueError, match="val_fraction 0.4 is not 1/k; choose 0.5"):  # it held out half
        split_faces(labels, photos, val_fraction=0.4)
    with pytest.raises(ValueError, match="needs at least 5 photos, got 1"):
        split_faces(labels[:2], ["one.png"] * 2)
    with pytest.raises(ValueError, match="no faces to split"):
        split_faces([], [], by="face")
    few = ["with_mask"] * 4 + ["without_mask"] * 4 + ["mask_weared_incorrect"] * 2  # 2 held out, 3 classes
    with pytest.raises(ValueError, match="10 faces cannot be split 0.2 for validation"):
        split_faces(few, [f"p{i}" for i in range(10)], by="face")


def test_first_cv_fold_is_the_standard_split(faces):
    from maskwatch.data.split import grouped_folds

    labels, photos, _ = faces
    _, val_idx = next(grouped_folds(labels, photos, folds=5, seed=0))
    is_val = split_faces(labels, photos, by="photo", val_fraction=0.2, seed=0)
    assert sorted(val_idx.tolist()) == np.flatnonzero(is_val).tolist()


def test_a_class_too_rare_to_stratify_is_split_without_scikit_learns_warning():
    """A site's 50 photos with 4 wrongly worn masks: `prepare` printed scikit-learn's "The least
    populated class in y has only 4 members, which is less than n_splits=5" with its file and line."""
    import warnings

    from maskwatch.data.split import grouped_folds

    labels = ["with_mask"] * 40 + ["mask_weared_incorrect"] * 4
    photos = [f"p{i}" for i in range(44)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning fails the test
        assert split_faces(labels, photos, by="photo", seed=0).sum() == 9
        assert len(list(grouped_folds(labels, photos, folds=5))) == 5

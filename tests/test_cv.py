import json

from typer.testing import CliRunner

from maskwatch.cli import app
from maskwatch.faces import CLASSES


def test_cv_reports_mean_and_spread_and_keeps_fold_models(prepared_sample, tmp_path):
    out = tmp_path / "cv"
    # One epoch a fold: what is checked is how the folds are scored and kept, not how far they learn.
    result = CliRunner().invoke(app, ["cv", str(prepared_sample), "--out", str(out), "--folds", "3",
                                      "--model", "seed-cnn", "--epochs", "1", "--save-models", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "accuracy" in result.output and "±" in result.output
    cv = json.loads((out / "cv.json").read_text())
    assert len(cv["per_fold"]) == 3
    accs = [f["accuracy"] for f in cv["per_fold"]]
    assert abs(cv["summary"]["accuracy"]["mean"] - sum(accs) / 3) < 1e-9
    assert set(cv["summary"]["recall"]) == set(CLASSES)
    # Every face is held out exactly once.
    assert sum(sum(f["support"].values()) for f in cv["per_fold"]) == cv["faces"]
    assert 0 <= cv["calibration"]["ece_after"] <= 1 and len(cv["calibration"]["temperatures"]) == 3
    # Size-binned recall, pooled over the held-out folds: every face counted once, in one bin.
    by_size = cv["recall_by_size"]
    assert sum(v["faces"] for row in by_size.values() for v in row.values()) == cv["faces"]
    assert set(by_size["with_mask"]) == {"<10", "10-20", "20-40", ">=40"}
    assert "recall by true class and face size" in result.output
    for k in (1, 2, 3):
        assert (out / f"fold-{k}" / "model.safetensors").is_file()
        assert json.loads((out / f"fold-{k}" / "config.json").read_text())["split"]["fold"] == k
    # Flip test-time augmentation is scored on the same folds, and the held-out logits are kept.
    assert len(cv["flip_tta"]["per_fold"]) == 3 and "flip test-time augmentation" in result.output
    import numpy as np

    oof = np.load(out / "oof-logits.npz")
    assert oof["logits"].shape == oof["flip"].shape == (cv["faces"], len(CLASSES))
    assert sorted(set(oof["fold"].tolist())) == [0, 1, 2]
    for k, fold in enumerate(cv["per_fold"]):
        held = oof["fold"] == k
        assert abs((oof["logits"][held].argmax(1) == oof["labels"][held]).mean() - fold["accuracy"]) < 1e-9


def test_cv_of_a_dataset_says_what_its_prepare_skipped(sample_dir, tmp_path):
    """`cv DATA` prepares DATA itself: a face it skipped (a label typed otherwise) was said nowhere."""
    import shutil

    import cv2
    import numpy as np

    from tests.conftest import voc_xml

    data = tmp_path / "data"
    shutil.copytree(sample_dir, data)
    (data / "annotations" / "typo.xml").write_text(voc_xml("typo.png", 50, 50, [("Without_Mask", (1, 1, 20, 20))]))
    cv2.imwrite(str(data / "images" / "typo.png"), np.full((50, 50, 3), 128, np.uint8))
    result = CliRunner().invoke(app, ["cv", str(data), "--out", str(tmp_path / "cv"), "--folds", "2", "--size", "16",
                                      "--model", "seed-cnn", "--epochs", "1", "--quiet"])
    assert result.exit_code == 0, result.output
    assert (f"1 input skipped:\n  {data / 'annotations' / 'typo.xml'} object 0: unknown label 'Without_Mask', "
            "expected one of with_mask, without_mask, mask_weared_incorrect; did you mean 'without_mask'?\n"
            f"  (all in {tmp_path / 'cv' / 'work'}/skipped.csv)") in result.output

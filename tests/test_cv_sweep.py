"""maskwatch.training.classifier.sweep: folds run as separate jobs give what `maskwatch cv`
gives; packed patches rebuild the crops; training refuses a device this machine does not have."""

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from maskwatch.cli import app
from maskwatch.training.classifier import sweep
from maskwatch.training.classifier.crossval import cross_validate
from maskwatch.training.classifier.dataset import load_crop_dataset
from maskwatch.training.classifier.recipes import recipe


def test_packed_patches_rebuild_the_crops_exactly(prepared_sample, sample_dir, tmp_path):
    packed = tmp_path / "patches"  # no .npz: the file is still written where asked
    sweep.pack(prepared_sample, sample_dir, packed)
    original, rebuilt = load_crop_dataset(prepared_sample), sweep.unpack(packed)
    assert np.array_equal(rebuilt.images, original.images)
    assert rebuilt.face_ids == original.face_ids and rebuilt.photos == original.photos
    assert np.array_equal(rebuilt.labels, original.labels) and np.array_equal(rebuilt.sides, original.sides)


def test_sweep_of_fold_jobs_gives_what_cross_validate_gives(prepared_sample, tmp_path):
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps([{"name": "cnn", "model": "seed-cnn", "seeds": [3], "train": {"epochs": 1}}]))
    out = tmp_path / "sweep"
    sweep.run(plan, prepared_sample, out, device="cpu", workers=1, threads=1, folds=2, budget_s=600)
    swept = json.loads((out / "cnn-seed3" / "cv.json").read_text())
    swept_oof = np.load(out / "cnn-seed3" / "oof-logits.npz")

    cfg, _ = recipe("seed-cnn", epochs=1, seed=3)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the sweep's worker trained
    try:
        direct = cross_validate(load_crop_dataset(prepared_sample), cfg, folds=2, seed=3, progress=False,
                                oof_path=tmp_path / "direct.npz")
    finally:
        torch.set_num_threads(threads)
    direct_oof = np.load(tmp_path / "direct.npz")
    assert np.array_equal(swept_oof["fold"], direct_oof["fold"])  # the same per-photo folds
    assert np.allclose(swept_oof["logits"], direct_oof["logits"], atol=1e-4)
    assert [f["accuracy"] for f in swept["per_fold"]] == pytest.approx([f["accuracy"] for f in direct["per_fold"]])
    assert swept["seed"] == 3 and swept["train"]["seed"] == 3 and swept["folds"] == 2


def test_sweep_merge_leaves_unfinished_cvs_alone(prepared_sample, tmp_path, capsys):
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps([{"name": "cnn", "model": "seed-cnn", "seeds": [0], "train": {"epochs": 1}}]))
    out = tmp_path / "sweep"
    sweep.run(plan, prepared_sample, out, device="cpu", workers=1, threads=1, folds=3, budget_s=-1)
    assert "skipped (deadline)" in capsys.readouterr().out
    assert not (out / "cnn-seed0" / "cv.json").exists()


def test_a_plan_may_name_the_folds_to_run(tmp_path):
    plan = [{"name": "a", "seeds": [0], "folds": [2]}, {"name": "b", "seeds": [1]}]
    assert [(c["name"], seed, k) for c, seed, k in sweep.jobs_of(plan, 3)] == \
        [("a", 0, 2), ("b", 1, 1), ("b", 1, 2), ("b", 1, 3)]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
@pytest.mark.parametrize("device, problem", [("cuda", "no CUDA GPU"), ("tpu", "unknown device"),
                                             ("meta", "only 'cpu' and 'cuda'")])
def test_training_refuses_a_device_it_cannot_use(prepared_sample, tmp_path, device, problem):
    result = CliRunner().invoke(app, ["train", str(prepared_sample), "--out", str(tmp_path / "run"),
                                      "--model", "seed-cnn", "--epochs", "1", "--device", device, "--quiet"])
    assert result.exit_code != 0
    assert problem in result.output and device in result.output
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("plan, problem", [([{"name": "x"}], "'name' and a list of 'seeds'"),
                                           ([{"name": "x", "seeds": [0], "train": {"epochs": 0}}], "epochs must be at least 1"),
                                           ([{"name": "x", "seeds": [0], "train": {"nonsense": 1}}], "nonsense"),
                                           ([{"name": "x", "seeds": [0], "folds": [4]}], "'folds' must list folds 1 to 3")])
def test_a_bad_plan_is_refused_by_name_before_any_training(prepared_sample, tmp_path, plan, problem):
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan))
    with pytest.raises(SystemExit, match=problem):
        sweep.run(path, prepared_sample, tmp_path / "sweep", device="cpu", workers=1, threads=1, folds=3, budget_s=60)
    assert not (tmp_path / "sweep").exists()


def test_a_fold_made_by_another_plan_is_neither_resumed_nor_merged(prepared_sample, tmp_path, capsys):
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps([{"name": "cnn", "model": "seed-cnn", "seeds": [0], "train": {"epochs": 1}}]))
    out = tmp_path / "sweep"
    (out / "cnn-seed0").mkdir(parents=True)
    for k in (1, 2, 3):  # left by a run with another recipe
        np.savez(out / "cnn-seed0" / f"fold-{k}.npz", val_idx=np.arange(3), logits=np.zeros((3, 3)),
                 flip=np.zeros((3, 3)), train_seconds=1.0, job="another plan")
    sweep.run(plan, prepared_sample, out, device="cpu", workers=1, threads=1, folds=3, budget_s=-1)
    said = capsys.readouterr().out
    assert said.count("made by another plan, --folds or --data") == 3
    assert "0 of 3 folds done by this plan; not put together" in said
    assert not (out / "cnn-seed0" / "cv.json").exists()

"""Many 5-fold CVs at once: every (candidate, fold seed, fold) is one job in a pool of processes.

    python -m maskwatch.training.classifier.sweep pack WORK DATASET --out patches.npz
    python -m maskwatch.training.classifier.sweep run PLAN.json --data WORK|patches.npz --out OUT
                                                  [--device cuda] [--workers 8]
    python -m maskwatch.training.classifier.sweep merge OUT --data WORK|patches.npz

`maskwatch cv` runs one candidate's folds one after the other, which suits 2 cores. On a machine
with a GPU and many cores the same folds run side by side: this module trains each fold with the
same code (crossval.run_fold) and puts each CV together with the same code (crossval.assemble_cv),
so OUT/<name>-seed<S>/ holds the cv.json, cv.txt and oof-logits.npz that `maskwatch cv --seed S`
writes. PLAN.json is a list of candidates, run in the order given (put the ones that decide
something first: a deadline skips the jobs not yet started):

    [{"name": "today", "seeds": [1]}, {"name": "R", "seeds": [1], "train": {"rendered": 0.25}}]

"train" overrides TrainConfig fields of the recipe of "model" (default effnet-lite0); "folds"
(a list such as [2]) runs only those folds, for a comparison that cannot wait for all five.
`--seed S` of `maskwatch cv` sets both the folds and the training seed; so does a plan's seed here.

`pack` keeps every face's pixels at their own resolution (face_patch, as PNG: 15 MB where the
96 px crops take 63). The crops are rebuilt from them where the dataset is not at hand, and
checked against the crops' checksums taken here (another OpenCV may resize a few differently).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
import zlib
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from maskwatch.atomic import atomic_path
from maskwatch.data.crops import CropSpec, face_patch, resize_patch
from maskwatch.data.images import read_image
from maskwatch.data.prepare import read_faces_csv
from maskwatch.faces import CLASSES
from maskwatch.training.classifier.dataset import CropDataset, crop_dataset, load_crop_dataset


def pack(work: Path, dataset: Path, out: Path) -> None:
    data = load_crop_dataset(work)
    rows = read_faces_csv(work / "faces.csv")
    encoded, images = [], {}
    for row in rows:
        if row["image"] not in images:
            images = {row["image"]: read_image(dataset / "images" / row["image"])}
        box = tuple(float(row[k]) for k in ("xmin", "ymin", "xmax", "ymax"))
        ok, png = cv2.imencode(".png", face_patch(images[row["image"]], box, data.spec),
                               [cv2.IMWRITE_PNG_COMPRESSION, 9])
        if not ok:
            raise SystemExit(f"{row['face_id']}: could not encode its patch")
        encoded.append(png.reshape(-1))
    with atomic_path(out) as tmp, open(tmp, "wb") as fh:  # a file handle: numpy adds no ".npz"
        np.savez(fh, png=np.concatenate(encoded), ends=np.cumsum([len(e) for e in encoded]),
                 checksums=np.array([zlib.crc32(c.tobytes()) for c in data.images], dtype=np.uint32),
                 meta=np.frombuffer(json.dumps({"rows": rows, "spec": data.spec.to_dict()}).encode(), dtype=np.uint8))
    rebuilt = unpack(out)
    same = int((rebuilt.images == data.images).all(axis=(1, 2, 3)).sum())
    print(f"{out}: {len(rows)} faces, {out.stat().st_size / 1e6:.1f} MB; {same} of {len(rows)} crops rebuilt exactly here")


def unpack(path: Path) -> CropDataset:
    with np.load(path) as z:  # each z[key] reads the file again: read each once
        png, ends, checksums = z["png"], z["ends"], z["checksums"]
        meta = json.loads(z["meta"].tobytes())
    spec, rows = CropSpec(**meta["spec"]), meta["rows"]
    images = np.empty((len(rows), spec.size, spec.size, spec.channels), dtype=np.uint8)
    for i, (start, end) in enumerate(zip(np.concatenate([[0], ends[:-1]]), ends)):
        patch = cv2.imdecode(png[start:end], cv2.IMREAD_COLOR)
        images[i] = resize_patch(patch, spec).reshape(images.shape[1:])
    differ = sum(zlib.crc32(c.tobytes()) != s for c, s in zip(images, checksums))
    if differ:
        print(f"{path}: {differ} of {len(rows)} rebuilt crops differ from the originals (another OpenCV?)")
    return crop_dataset(path, spec, rows, images)


def load_data(source: Path) -> CropDataset:
    return unpack(source) if source.suffix == ".npz" else load_crop_dataset(source)


def candidate_config(candidate: dict, seed: int):
    from maskwatch.training.classifier.recipes import recipe

    cfg, _ = recipe(candidate.get("model", "effnet-lite0"), **candidate.get("train", {}))
    return replace(cfg, seed=seed)


def job_key(candidate: dict, seed: int, folds: int, faces: int) -> str:
    """What a fold file was made by: its recipe, the number of folds and of faces. A file made by
    another is not this job's (an edited plan, another --folds or --data), resumed or merged."""
    from dataclasses import asdict

    return json.dumps({"train": asdict(candidate_config(candidate, seed)), "folds": folds, "faces": faces},
                      sort_keys=True, default=str)


def _made_by(part: Path, key: str) -> bool:
    """Whether a fold file is this job's: its key matches, or it predates keys (2026-12-05) and
    is taken on trust, as it was before."""
    try:
        with np.load(part) as z:
            return "job" not in z.files or str(z["job"]) == key
    except (OSError, ValueError):  # unreadable: not a finished fold
        return False


def jobs_of(plan: list[dict], folds: int) -> list[tuple[dict, int, int]]:
    return [(c, seed, k) for c in plan for seed in c["seeds"] for k in c.get("folds", range(1, folds + 1))]


_DATA: CropDataset | None = None


def _init_worker(source: str, threads: int) -> None:
    global _DATA
    import torch

    torch.set_num_threads(threads)
    _DATA = load_data(Path(source))


def _run_job(args) -> str:
    from maskwatch.training.classifier.crossval import cv_folds, run_fold

    candidate, seed, fold, folds, out, device, deadline = args
    target = Path(out) / f"{candidate['name']}-seed{seed}" / f"fold-{fold}.npz"
    key = job_key(candidate, seed, folds, len(_DATA.labels))
    if target.exists():
        if _made_by(target, key):
            return f"{target}: done earlier"
        return f"{target}: FAILED (made by another plan, --folds or --data; name a new output folder)"
    if time.time() > deadline:
        return f"{target}: skipped (deadline)"
    started = time.perf_counter()
    try:
        cfg = candidate_config(candidate, seed)
        train_idx, val_idx = cv_folds(_DATA, folds, seed)[fold - 1]
        fold_result = run_fold(_DATA, cfg, train_idx, val_idx, fold=fold, folds=folds, seed=seed, progress=False,
                               device=device)
    except Exception as err:  # one failed job must not stop the others: its CV stays unmerged
        return f"{target}: FAILED ({type(err).__name__}: {err})"
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")  # written whole, then renamed: merge sees no half file
    with open(part, "wb") as fh:
        np.savez(fh, val_idx=fold_result["val_idx"], logits=fold_result["logits"], flip=fold_result["flip"],
                 train_seconds=fold_result["train_seconds"], job=key)
    os.replace(part, target)
    rare = _DATA.labels[fold_result["val_idx"]] == CLASSES.index("mask_weared_incorrect")
    caught = int((fold_result["logits"][rare].argmax(1) == CLASSES.index("mask_weared_incorrect")).sum())
    return f"{target}: {time.perf_counter() - started:.0f} s, {caught} of {int(rare.sum())} wrongly worn masks caught"


def run(plan_path: Path, source: Path, out: Path, device: str, workers: int, threads: int,
        folds: int, budget_s: float) -> None:
    plan = json.loads(plan_path.read_text())
    for candidate in plan:  # a bad plan fails here, by name, before any process starts
        if not isinstance(candidate, dict) or not isinstance(candidate.get("name"), str) \
                or not isinstance(candidate.get("seeds"), list) or not candidate["seeds"]:
            raise SystemExit(f"{plan_path}: each candidate needs a 'name' and a list of 'seeds': {candidate!r}")
        chosen = candidate.get("folds", [1])
        if not isinstance(chosen, list) or not chosen or not all(isinstance(k, int) and 1 <= k <= folds for k in chosen):
            raise SystemExit(f"{plan_path}: candidate {candidate['name']!r}: 'folds' must list folds 1 to {folds}")
        try:
            candidate_config(candidate, candidate["seeds"][0])
        except (TypeError, ValueError) as err:
            raise SystemExit(f"{plan_path}: candidate {candidate['name']!r}: {err}") from None
    out.mkdir(parents=True, exist_ok=True)
    (out / "plan.json").write_text(json.dumps(plan, indent=2))
    deadline = time.time() + budget_s
    jobs = [(c, s, k, folds, str(out), device, deadline) for c, s, k in jobs_of(plan, folds)]
    print(f"{len(jobs)} fold jobs, {workers} workers on {device}, new jobs start for {budget_s:.0f} s", flush=True)
    ctx = mp.get_context("spawn")  # CUDA cannot be forked
    with ctx.Pool(workers, initializer=_init_worker, initargs=(str(source), threads)) as pool:
        for line in pool.imap(_run_job, jobs):  # in plan order, so priorities finish first
            print(line, flush=True)
    merge(out, source, folds)


def merge(out: Path, source: Path, folds: int = 5) -> None:
    from maskwatch.atomic import write_text
    from maskwatch.training.classifier.crossval import assemble_cv, format_summary

    data = load_data(source)
    plan = json.loads((out / "plan.json").read_text())
    for candidate in plan:
        for seed in candidate["seeds"]:
            folder = out / f"{candidate['name']}-seed{seed}"
            key = job_key(candidate, seed, folds, len(data.labels))
            parts = [folder / f"fold-{k}.npz" for k in range(1, folds + 1)]
            done = [p for p in parts if p.is_file() and _made_by(p, key)]
            if len(done) < folds:
                print(f"{folder}: {len(done)} of {folds} folds done by this plan; not put together")
                continue
            results = []
            for part in parts:
                saved = np.load(part)
                results.append({"fold": int(part.stem.split("-")[1]), "val_idx": saved["val_idx"],
                                "logits": saved["logits"], "flip": saved["flip"],
                                "train_seconds": float(saved["train_seconds"])})
            result = assemble_cv(data, candidate_config(candidate, seed), results, seed=seed,
                                 oof_path=folder / "oof-logits.npz")
            write_text(folder / "cv.json", json.dumps(result, indent=2))
            write_text(folder / "cv.txt", format_summary(result) + "\n")
            summary = result["summary"]
            rare = summary["recall"]["mask_weared_incorrect"]
            print(f"{folder.name}: accuracy {summary['accuracy']['mean']:.4f} ± {summary['accuracy']['std']:.4f}, "
                  f"macro-F1 {summary['macro_f1']['mean']:.4f}, rare-class recall "
                  + ("- (no such faces)" if rare["mean"] is None else f"{rare['mean']:.4f} ± {rare['std']:.4f}"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    pack_args = sub.add_parser("pack", help="every face's pixels at their own resolution, for another machine")
    pack_args.add_argument("work", type=Path)
    pack_args.add_argument("dataset", type=Path)
    pack_args.add_argument("--out", type=Path, required=True)
    run_args = sub.add_parser("run", help="run a plan's fold jobs in a pool of processes, then merge")
    run_args.add_argument("plan", type=Path)
    run_args.add_argument("--data", type=Path, required=True, help="a prepared work folder or a packed .npz")
    run_args.add_argument("--out", type=Path, required=True)
    run_args.add_argument("--device", default="cpu")
    run_args.add_argument("--workers", type=int, default=1)
    run_args.add_argument("--threads", type=int, default=1, help="PyTorch CPU threads per worker")
    run_args.add_argument("--folds", type=int, default=5)
    run_args.add_argument("--budget", type=float, default=1e9, help="seconds after which no new fold job starts")
    merge_args = sub.add_parser("merge", help="put finished folds together into cv.json, cv.txt, oof-logits.npz")
    merge_args.add_argument("out", type=Path)
    merge_args.add_argument("--data", type=Path, required=True)
    merge_args.add_argument("--folds", type=int, default=5)
    args = parser.parse_args(argv)
    if args.command == "pack":
        pack(args.work, args.dataset, args.out)
    elif args.command == "run":
        run(args.plan, args.data, args.out, args.device, args.workers, args.threads, args.folds, args.budget)
    else:
        merge(args.out, args.data, args.folds)


if __name__ == "__main__":
    sys.exit(main())

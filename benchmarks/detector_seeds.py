"""Detector recipes over several training seeds: is a difference bigger than the seed's spread?

    python benchmarks/detector_seeds.py ../shared/datasets/face-mask-detection --out RUNS \\
        --recipe 'R05={"lr": 5e-4}' --seeds 0,1,2 [--jobs 15] [--steps 1000] [--fit 300]

Every recipe (the shipped one, named A, comes first unless --no-shipped) is trained once per
seed, several runs at once (`--jobs`, each on one core and the GPU when there is one; a run
stopped part way resumes). Each run is then exported to ONNX and scored with the shipped settings on the held-out
photos and their close-ups, recall and precision at the shipped cut-off: the cut-off each run
would fit for itself (best F1 on the first `--fit` training photos, as `maskwatch export-detector`
fits it, reported beside) lands on one step or the next of its 0.05 grid from seed to seed, which
made "recall at its own cut-off" swing by 0.05 (docs/bench-tracking.md). Prints each
recipe's mean, standard deviation and range, and each recipe's differences from the first over
the same seeds. A single run against the shipped model decides nothing smaller than this spread.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

METRICS = ("map50", "face_recall", "recall_cut", "precision_cut", "closeups", "fitted_min_score")


def recipe_from(spec: dict, seed: int, steps: int):
    from maskwatch.training.detector.train import DetectorRecipe

    base = DetectorRecipe()
    spec = dict(spec)
    sampler = {**base.sampler.__dict__, **spec.pop("sampler", {})}
    fields = {k: v for k, v in base.__dict__.items() if k != "sampler"}
    return DetectorRecipe.from_dict({**fields, **spec, "sampler": sampler, "seed": seed, "steps": steps})


def train_run(data: Path, run: Path, spec: dict, seed: int, steps: int) -> None:
    from maskwatch.runtime import single_threaded
    from maskwatch.training.detector.train import train_detector

    train_detector(data, run, recipe_from(spec, seed, steps), progress=False, threads=single_threaded())


def score_run(data: Path, run: Path, fit: int, closeups: int) -> dict:
    """Export, fit the cut-off on training photos, score the held-out photos (one core)."""
    from dataclasses import replace

    from maskwatch.classifier import Classifier
    from maskwatch.data.photos import photo_split
    from maskwatch.detection.closeups import closeup_set, closeups_found
    from maskwatch.detection.detector import SHIPPED_CONFIG, Detector, DetectorConfig, build_face_finder
    from maskwatch.detection.evaluate import evaluate_detection
    from maskwatch.detection.fit import fit_min_score
    from maskwatch.runtime import single_threaded
    from maskwatch.training.detector.export import write_onnx

    threads = single_threaded()
    onnx_path = run / "detector.onnx"
    config = write_onnx(run, onnx_path)
    split = photo_split(data, seed=config["split"]["seed"])  # the photos this run never trained on
    settings = replace(DetectorConfig.from_json(SHIPPED_CONFIG), model=str(onnx_path))
    fitted, _ = fit_min_score(data, split.train[:fit], settings, progress=False, threads=threads)
    # Scored at the shipped cut-off: the fitted one moves by a grid step from seed to seed.
    detector = Detector(build_face_finder(settings, threads), Classifier.load(threads=threads), settings)
    m = evaluate_detection(data, detector, split.val, progress=False, resamples=0)
    hits = closeups_found(detector, closeup_set(data, split.val, count=closeups))
    return {"fitted_min_score": fitted.min_score, "min_score": settings.min_score,
            "map50": m["map50"], "face_recall": m["face_recall_iou50"],
            "recall_cut": m["default_cutoff"]["recall_iou50"],
            "precision_cut": m["default_cutoff"]["precision_iou50"],
            "closeups": int(hits.sum()), "closeups_of": len(hits), "found_rate": m["found_rate"]}


def run_all(commands: list[list[str]], jobs: int, logs: list[Path]) -> list[int]:
    """Run the commands, at most `jobs` at a time, each on one thread; their return codes."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    pending, running, codes = list(enumerate(commands)), {}, [0] * len(commands)
    while pending or running:
        while pending and len(running) < jobs:
            i, cmd = pending.pop(0)
            with logs[i].open("w") as log:  # the child keeps its own copy of the file
                running[i] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        time.sleep(1)
        for i, proc in list(running.items()):
            if proc.poll() is None:
                continue
            codes[i] = running.pop(i).returncode
            if codes[i]:
                print(f"failed (see {logs[i]}): {logs[i].read_text()[-400:]}", flush=True)
    return codes


def describe(values: list[float]) -> str:
    if len(values) < 2:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f} ({min(values):.3f}-{max(values):.3f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--recipe", action="append", default=[], help='NAME=JSON of DetectorRecipe fields')
    parser.add_argument("--no-shipped", action="store_true", help="leave out the shipped recipe (A)")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--fit", type=int, default=300, help="training photos the cut-off is fitted on")
    parser.add_argument("--closeups", type=int, default=60)
    parser.add_argument("--one", nargs=3, metavar=("TASK", "NAME", "SEED"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    recipes = {} if args.no_shipped else {"A": {}}
    for item in args.recipe:
        name, _, spec = item.partition("=")
        if name in recipes or not name.replace("-", "").replace("_", "").isalnum():
            parser.error(f"--recipe {item!r}: each needs a new name of letters, digits, - or _ (A is the shipped one)")
        try:
            recipes[name] = json.loads(spec or "{}")
            recipe_from(recipes[name], 0, args.steps)  # a typo in a field fails here, not in every run
        except (ValueError, TypeError) as err:
            parser.error(f"--recipe {item!r}: {err}")
    if args.jobs < 1 or args.steps < 1 or not recipes:
        parser.error("--jobs and --steps must be at least 1, and there must be a recipe")
    seeds = [int(s) for s in args.seeds.split(",")]
    if args.one:  # one task of the sweep, in its own process
        task, name, seed = args.one
        run = args.out / f"{name}-s{seed}"
        if task == "train":
            train_run(args.data, run, recipes[name], int(seed), args.steps)
        else:
            (run / "scores.json").write_text(json.dumps(score_run(args.data, run, args.fit, args.closeups)))
        return

    args.out.mkdir(parents=True, exist_ok=True)
    runs = [(name, seed) for name in recipes for seed in seeds]
    failed = 0
    for task in ("train", "score"):
        todo = [(n, s) for n, s in runs if not (args.out / f"{n}-s{s}" / ("model.pt" if task == "train" else "scores.json")).is_file()]
        commands = [[sys.executable, __file__, str(args.data), "--out", str(args.out), "--steps", str(args.steps),
                     "--seeds", args.seeds, "--fit", str(args.fit), "--closeups", str(args.closeups),
                     *[f"--recipe={r}" for r in args.recipe], *(["--no-shipped"] if args.no_shipped else []),
                     "--one", task, n, str(s)] for n, s in todo]
        print(f"{task}: {len(todo)} runs, {args.jobs} at a time", flush=True)
        logs = [args.out / f"{n}-s{s}.{task}.log" for n, s in todo]
        failed += sum(bool(code) for code in run_all(commands, args.jobs, logs))

    scores = {f"{n}-s{s}": json.loads(p.read_text()) for n, s in runs
              if (p := args.out / f"{n}-s{s}" / "scores.json").is_file()}
    (args.out / "summary.json").write_text(json.dumps(scores, indent=1))
    print(f"\n{len(scores)} runs scored on the held-out photos at the shipped cut-off\n")
    print("| recipe | runs | " + " | ".join(METRICS) + " |")
    print("|---|---:|" + "---|" * len(METRICS))
    first = next(iter(recipes))
    for name in recipes:
        got = {s: scores[f"{name}-s{s}"] for s in seeds if f"{name}-s{s}" in scores}
        if not got:
            continue
        print(f"| {name} | {len(got)} | " + " | ".join(describe([r[k] for r in got.values()]) for k in METRICS) + " |")
        base = {s: scores[f"{first}-s{s}"] for s in got if f"{first}-s{s}" in scores}
        if name != first and len(base) > 1:
            print(f"| {name} - {first}, same seeds | {len(base)} | " + " | ".join(
                describe([got[s][k] - base[s][k] for s in base]) for k in METRICS) + " |")
    if failed:
        sys.exit(f"{failed} of the runs failed: see their logs in {args.out}")


if __name__ == "__main__":
    main()

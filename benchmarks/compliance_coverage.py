"""Does the compliance interval hold the truth? A simulated site whose true share is known.

Each run draws N people whose true classes come from a set compliance c (the rest 85 % bare
faces, 15 % wrongly worn masks, the dataset's 717 : 123), gives each person a label, and asks
maskwatch.site.prevalence for the corrected share and its 95 % interval. Two sources of labels:

- held-out: each person's label is the shipped classifier's (with its gate, as a site runs it)
  on a random held-out Kaggle face of their true class: the 814 faces of the shipped model's own
  validation photos (per-photo split, seed 0; held out from its training, though its temperature
  was fitted on them), classified here at the start of the run. These
  labels are not the ones the correction's confusion counts came from (a cross-validation), so
  the study also checks the counts against a model's real errors.
- cv: each label drawn from the correction's own confusion rates (CONFUSION_COUNTS), the case
  where the confusion is exactly as assumed but for its sampling error.

Per setting, 200 runs: the coverage of the interval (of c, the site's share, and of the share
among the N people drawn), its mean width, and the mean error (bias) of the corrected estimate
against the plain ratio with_mask / people. Both interval methods are scored on the same runs:
"jeffreys" (shipped) and "resample" (a plain bootstrap of the people).

    python benchmarks/compliance_coverage.py ../shared/datasets/face-mask-detection --runs 200
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import time
from pathlib import Path

import numpy as np

from maskwatch.faces import CLASSES
from maskwatch.site.prevalence import CONFUSION_COUNTS, compliance_estimate, confusion_rates

NONCOMPLIANT_SPLIT = (0.85, 0.15)  # without_mask : mask_weared_incorrect among the non-compliant


def held_out_labels(data_dir: Path) -> dict[str, np.ndarray]:
    """Per true class, the shipped classifier's labels (CLASSES indices) of the held-out faces."""
    from maskwatch.classifier import Classifier
    from maskwatch.data.images import read_image
    from maskwatch.data.photos import annotated_faces, photo_split

    classifier = Classifier.load()
    labels: dict[str, list[int]] = {label: [] for label in CLASSES}
    for ann in photo_split(data_dir).val:
        faces = annotated_faces(ann)
        image = read_image(data_dir / "images" / ann.filename)
        for face, labelled in zip(faces, classifier.predict_boxes(image, faces)):
            # A site decides a person by the class their probabilities favour (video.tracker), even
            # where a single frame is too unsure to label (`unassessable`).
            labels[face.label].append(int(np.argmax(labelled.probabilities)))
    return {label: np.array(given) for label, given in labels.items()}


def true_shares(compliance: float) -> np.ndarray:
    rest = 1 - compliance
    return np.array([compliance, rest * NONCOMPLIANT_SPLIT[0], rest * NONCOMPLIANT_SPLIT[1]])


def simulate(source: str, compliance: float, people: int, runs: int, rng: np.random.Generator,
             held_out: dict[str, np.ndarray] | None) -> dict:
    rates = confusion_rates(CONFUSION_COUNTS)
    rows = []
    for _ in range(runs):
        truth = rng.choice(len(CLASSES), size=people, p=true_shares(compliance))
        if source == "held-out":
            given = np.array([rng.choice(held_out[CLASSES[t]]) for t in truth])
        else:
            given = np.array([rng.choice(len(CLASSES), p=rates[t]) for t in truth])
        counts = dict(zip(CLASSES, np.bincount(given, minlength=len(CLASSES)).tolist()))
        realised = float(np.mean(truth == 0))
        row = {"realised": realised}
        for method in ("jeffreys", "resample"):
            estimate = compliance_estimate(counts, people=method)
            row[method] = (estimate.low, estimate.high)
        row["share"], row["observed"] = estimate.share, estimate.observed
        rows.append(row)

    def covered(method: str, target: str) -> float:
        return float(np.mean([r[method][0] <= (compliance if target == "site" else r["realised"]) <= r[method][1]
                              for r in rows]))

    return {
        "source": source, "compliance": compliance, "people": people, "runs": runs,
        "coverage": covered("jeffreys", "site"), "coverage_realised": covered("jeffreys", "realised"),
        "coverage_resample": covered("resample", "site"),
        "width": float(np.mean([r["jeffreys"][1] - r["jeffreys"][0] for r in rows])),
        "width_resample": float(np.mean([r["resample"][1] - r["resample"][0] for r in rows])),
        "bias_corrected": float(np.mean([r["share"] for r in rows]) - compliance),
        "bias_observed": float(np.mean([r["observed"] for r in rows]) - compliance),
        # The Monte Carlo standard error of the biases: with 200 runs, smaller biases are noise.
        "bias_se": float(np.std([r["share"] for r in rows]) / np.sqrt(runs)),
        "rmse_corrected": float(np.sqrt(np.mean([(r["share"] - compliance) ** 2 for r in rows]))),
        "rmse_observed": float(np.sqrt(np.mean([(r["observed"] - compliance) ** 2 for r in rows]))),
    }


def markdown(results: list[dict]) -> str:
    lines = ["| labels | c | N | coverage (of c) | of the N drawn | resample bootstrap | width | bias corrected | "
             "bias uncorrected | bias's s.e. | RMSE corrected | RMSE uncorrected |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        lines.append(f"| {r['source']} | {r['compliance']} | {r['people']} | {r['coverage']:.3f} | "
                     f"{r['coverage_realised']:.3f} | {r['coverage_resample']:.3f} | {r['width']:.3f} | "
                     f"{r['bias_corrected']:+.4f} | {r['bias_observed']:+.4f} | {r['bias_se']:.4f} | "
                     f"{r['rmse_corrected']:.4f} | "
                     f"{r['rmse_observed']:.4f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="the Kaggle face-mask-detection folder (annotations/, images/)")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--compliance", type=float, nargs="+", default=[0.5, 0.8, 0.95])
    parser.add_argument("--people", type=int, nargs="+", default=[20, 100, 500])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="also write the results here as JSON")
    args = parser.parse_args()

    started = time.perf_counter()
    held_out = held_out_labels(args.data)
    confusion = [np.bincount(held_out[label], minlength=len(CLASSES)).tolist() for label in CLASSES]
    print(f"held-out faces classified in {time.perf_counter() - started:.1f} s; "
          f"their confusion (rows true, columns labelled, {', '.join(CLASSES)}): {confusion}")
    rng = np.random.default_rng(args.seed)
    results = [simulate(source, c, n, args.runs, rng, held_out)
               for source in ("held-out", "cv") for c in args.compliance for n in args.people]
    print(markdown(results))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print(f"{args.runs} runs per row, seed {args.seed}, {time.perf_counter() - started:.0f} s in all, "
          f"commit {commit}, {platform.node()}")
    if args.out:
        args.out.write_text(json.dumps({"held_out_confusion": confusion, "results": results, "commit": commit},
                                       indent=1))


if __name__ == "__main__":
    main()

"""Night camera frames (infrared grey, dark, noisy, blurred, glare) against colour, on held-out photos.

    python benchmarks/night_frames.py ../shared/datasets/face-mask-detection [--photos 174] [--seed 0]

The held-out photos of the per-photo split (seed 0: the split the shipped models were trained on)
are read as they are, then made into what a platform camera sends at night, each from the
colour photo with a fixed random seed:

- grey: R = G = B (an infrared camera's 3-channel frame; a 1-channel or 16-bit grey file reads the same);
- night: grey, its contrast cut to a third and darkened (0-255 to 10-95), a 5 px horizontal motion
  blur, Gaussian sensor noise of s.d. 6 grey levels;
- glare: grey, the lower half of every annotated face pushed half-way to white (IR light reflected
  by a mask's fabric).

For each: the share of annotated faces the shipped detector finds (its default cut-off, IoU >= 0.5),
and from the annotated boxes the shipped classifier's (gate and close-up model) accuracy (argmax),
wrongly worn masks caught, bare faces it calls masked, the share it calls `unassessable` (its doubt
threshold), the share it names wrongly, the accuracy of the faces it does name, and its mean top
probability. Nothing is tuned here: the shipped models and
thresholds answer every frame.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import cv2
import numpy as np

from maskwatch.classifier import Classifier
from maskwatch.data.images import read_image
from maskwatch.data.photos import annotated_faces, photo_split
from maskwatch.detection.detector import Detector
from maskwatch.faces import UNASSESSABLE
from maskwatch.geometry import greedy_match

WRONG = "mask_weared_incorrect"


def grey(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)


def night(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    dark = grey(image).astype(np.float32) / 3.0 + 10.0
    kernel = np.full((1, 5), 1 / 5, np.float32)
    blurred = cv2.filter2D(dark, -1, kernel)
    noisy = blurred + rng.normal(0.0, 6.0, blurred.shape[:2])[:, :, None]
    return np.clip(noisy + 0.5, 0, 255).astype(np.uint8)


def glare(image: np.ndarray, faces) -> np.ndarray:
    out = grey(image).astype(np.float32)
    for face in faces:
        x0, y0, x1, y1 = (int(round(v)) for v in face.box)
        low = (y0 + y1) // 2
        out[low:y1, x0:x1] = (out[low:y1, x0:x1] + 255.0) / 2.0
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def measure(data: Path, photos: int, seed: int) -> dict:
    detector, classifier = Detector.load().for_photos(), Classifier.load()
    held_out = photo_split(data, seed=seed).val[:photos]
    rng = np.random.default_rng(0)
    tallies = {name: {"truth": [], "called": [], "top": [], "found": 0}
               for name in ("colour", "grey", "night", "glare")}
    for ann in held_out:
        faces = annotated_faces(ann)
        if not faces:
            continue
        photo = read_image(data / "images" / ann.filename)
        frames = {"colour": photo, "grey": grey(photo), "night": night(photo, rng), "glare": glare(photo, faces)}
        truth_boxes = np.array([f.box for f in faces])
        for name, frame in frames.items():
            tally = tallies[name]
            found = detector.detect(frame)
            tally["found"] += len(greedy_match(truth_boxes, np.array([f.box for f in found]).reshape(-1, 4), 0.5))
            for face, answer in zip(faces, classifier.predict_boxes(frame, faces)):
                tally["truth"].append(face.label)
                tally["called"].append(answer.label)
                tally["top"].append(max(answer.probabilities))
    return {name: summary(t) for name, t in tallies.items()}


def summary(tally: dict) -> dict:
    truth, called = np.array(tally["truth"]), np.array(tally["called"])
    named = called != UNASSESSABLE
    return {"faces": len(truth), "found_rate": round(tally["found"] / max(len(truth), 1), 3),
            "accuracy_named": round(float(np.mean(truth[named] == called[named])), 3) if named.any() else None,
            "unassessable": round(float(np.mean(~named)), 3),
            "wrongly_worn_caught": int(np.sum((truth == WRONG) & (called == WRONG))),
            "wrongly_worn": int(np.sum(truth == WRONG)),
            "bare_called_masked": int(np.sum((truth == "without_mask") & (called == "with_mask"))),
            "bare": int(np.sum(truth == "without_mask")),
            "named_wrong": round(float(np.mean(named & (truth != called))), 3),
            "mean_top_probability": round(float(np.mean(tally["top"])), 3),
            "mistakes": dict(Counter(f"{t} as {c}" for t, c in zip(truth, called) if c not in (t, UNASSESSABLE)))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="the Kaggle face-mask-detection folder (VOC)")
    parser.add_argument("--photos", type=int, default=174, help="the first N held-out photos (all 174 by default)")
    parser.add_argument("--seed", type=int, default=0, help="the per-photo split's seed")
    args = parser.parse_args(argv)
    if not (args.data / "annotations").is_dir():
        parser.error(f"{args.data}: no annotations/ folder (the Kaggle face-mask-detection folder, VOC)")
    if args.photos < 1:
        parser.error(f"--photos must be 1 or more, got {args.photos}")
    results = measure(args.data, args.photos, args.seed)
    print("| frames | faces | found (IoU 0.5) | unassessable | named and wrong | accuracy of named | "
          "wrongly worn caught | bare faces called masked | mean top probability |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {r['faces']} | {r['found_rate']:.3f} | {r['unassessable']:.3f} | {r['named_wrong']:.3f} | "
              f"{r['accuracy_named']} | {r['wrongly_worn_caught']}/{r['wrongly_worn']} | {r['bare_called_masked']}/{r['bare']} | "
              f"{r['mean_top_probability']:.3f} |")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

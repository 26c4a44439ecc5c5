"""Large still photos: the detector's input side for photos over 800 px (a phone's 4000 x 3000).

    python benchmarks/photo_side.py ../shared/datasets/face-mask-detection

The detector brings a frame's long side to 800 px (detector.json's target_side): a 4000 x 3000
photo of a crowd, faces of 40 px, is shrunk 5x and its faces (8 px) are missed. Video frames
must stay at 800 for speed; a still photo may be read at a larger side (Detector.for_photos).
Dev set: mosaics of the held-out photos of the seed-0 per-photo split (the photos the shipped
detector and classifier were fitted without), each a 3 x 3 grid of nine photos enlarged 2x
(faces about 40 px; grids of 2400-3600 px), their boxes moved with them; scored by face recall
and precision at the shipped cut-off (IoU 0.5), and on benchmarks/medium_faces.py's medium faces
and close-ups, which a larger side must not lose. The rule, written before any side was scored:
docs/rules/i24p/RULE-photo-side.md (results in docs/bench-real-check.md).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from maskwatch.data.images import read_image  # noqa: E402
from maskwatch.data.photos import annotated_faces, photo_split  # noqa: E402
from maskwatch.detection.closeups import closeup_set, closeups_found  # noqa: E402
from maskwatch.detection.detector import Detector  # noqa: E402
from maskwatch.geometry import greedy_match  # noqa: E402


def mosaics(data: Path, annotations, per_side: int = 3, enlarge: float = 2.0):
    """(image, truth boxes N x 4) of grids of per_side^2 held-out photos, each enlarged."""
    out = []
    step = per_side * per_side
    for start in range(0, len(annotations) - step + 1, step):
        group = annotations[start:start + step]
        photos = [read_image(data / "images" / ann.filename) for ann in group]
        cell = int(enlarge * max(max(p.shape[:2]) for p in photos))
        canvas = np.zeros((cell * per_side, cell * per_side, 3), np.uint8)
        truth = []
        for i, (ann, photo) in enumerate(zip(group, photos)):
            y, x = (i // per_side) * cell, (i % per_side) * cell
            big = cv2.resize(photo, None, fx=enlarge, fy=enlarge, interpolation=cv2.INTER_LINEAR)
            canvas[y:y + big.shape[0], x:x + big.shape[1]] = big
            truth += [[b * enlarge + o for b, o in zip(face.box, (x, y, x, y))] for face in annotated_faces(ann)]
        out.append((canvas, np.array(truth, np.float64).reshape(-1, 4)))
    return out


def at_side(detector: Detector, side: int) -> Detector:
    """The detector reading a photo over its target side at `side` (as Detector.for_photos does
    with photo_side; 800: as a video frame)."""
    other = copy.copy(detector)
    other.finder = copy.copy(detector.finder)
    other.finder.scale = dataclasses.replace(detector.finder.scale, large_side=side)
    return other


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("--sides", default="800,1280,1600")
    args = parser.parse_args()
    split = photo_split(args.data, seed=0)
    grids = mosaics(args.data, split.val)
    if not grids:
        parser.error(f"{args.data} has {len(split.val)} held-out photos; a mosaic takes 9")
    medium = closeup_set(args.data, split.val, count=200, size=1400, fill=(0.07, 0.45), seed=3)
    large = closeup_set(args.data, split.val, count=60)
    shipped = Detector.load()
    faces = sum(len(t) for _, t in grids)
    print(f"{len(grids)} mosaics ({faces} faces, {min(g.shape[0] for g, _ in grids)}-"
          f"{max(g.shape[0] for g, _ in grids)} px), {len(medium)} medium faces, {len(large)} close-ups\n")
    print("| photo side | mosaic recall | mosaic precision | ms a mosaic (median) | medium faces found | close-ups found |")
    print("|---:|---:|---:|---:|---:|---:|")
    for side in (int(s) for s in args.sides.split(",")):
        detector = at_side(shipped, side)
        found = shown = matched = 0
        times = []
        for image, truth in grids:
            started = time.perf_counter()
            boxes = np.array([f.box for f in detector.detect(image)], np.float64).reshape(-1, 4)
            times.append(1000 * (time.perf_counter() - started))
            pairs = len(greedy_match(truth, boxes, 0.5))
            found, shown, matched = found + pairs, shown + len(boxes), matched + pairs
        print(f"| {side} | {found / faces:.3f} ({found}/{faces}) | {matched / max(shown, 1):.3f} | "
              f"{statistics.median(times):.0f} | {closeups_found(detector, medium).mean():.3f} | "
              f"{closeups_found(detector, large).sum()}/{len(large)} |", flush=True)


if __name__ == "__main__":
    main()

"""The real-world check: the shipped pipeline (or a candidate) on photos and clips from outside
the training data. Evaluation only: nothing here trains, fits or chooses a threshold.

    python benchmarks/real_check.py photos ../shared/datasets/real-check [--classifier M.onnx] [--no-gate]
        [--no-closeup | --closeup C.onnx]
    python benchmarks/real_check.py clips ../shared/datasets/real-clips [--classifier M.onnx]

Photos: one folder per true class; each photo's main face is the one the detector scores
highest (as a user's "who is this photo of"). Per class: how often the main face gets each
label, `unassessable` or no face at all, with Wilson 95 % intervals. The check itself is
`maskwatch evaluate-photos` (maskwatch.evaluation.sorted_photos); this prints it as before.
Clips: each tracked person's voted label and, per clip, the frames whose faces are called each
label. A video is read with the same loop `maskwatch detect` uses.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from collections import Counter
from pathlib import Path

from maskwatch import Detector
from maskwatch.evaluation.sorted_photos import (OUTCOMES, SortedPhotosError, class_folders, evaluate_sorted_photos,
                                                wilson)


def check_photos(detector: Detector, root: Path) -> dict:
    """The package's check, in this script's report: classes by folder name, each row's photo by
    its file name and its probabilities as a list; an unreadable photo warned of and left out."""
    results = evaluate_sorted_photos(detector, class_folders(root))
    out = {}
    for name in sorted(results):
        r = results[name]
        for row in r.unreadable:
            print(f"warning: {row.error}", file=sys.stderr)
        rows = []
        for row in r.read:
            rows.append(row.as_dict(root) | {"photo": row.photo.name})
            if "probabilities" in rows[-1]:
                rows[-1]["probabilities"] = list(rows[-1]["probabilities"].values())
        out[name] = {"photos": r.photos, "counts": r.counts,
                     "right": r.right, "right_ci": wilson(r.right, r.photos) or (math.nan, math.nan),
                     "found": r.found, "found_ci": wilson(r.found, r.photos) or (math.nan, math.nan),
                     "rows": rows}
    return out


def check_clip(detector: Detector, clip: Path) -> dict:
    from maskwatch.video.pipeline import run_detect

    with tempfile.TemporaryDirectory() as tmp:
        result = run_detect(str(clip), Path(tmp), detector, save_media=False, progress=False)
        lines = [json.loads(line) for line in (Path(tmp) / "detections.jsonl").read_text().splitlines()]
    frame_labels = Counter(f.get("label") for line in lines for f in line.get("faces", []))
    people = result.summary.get("people", [])
    return {"frames": result.frames, "people": len(people),
            "voted": dict(Counter(p["label"] for p in people)),
            "people_10_frames_or_more": [{"track_id": p["track_id"], "label": p["label"], "frames": p["frames"]}
                                         for p in people if p["frames"] >= 10],
            "face_labels_per_frame": dict(frame_labels)}


def print_photos(report: dict) -> None:
    print(f"{'true class':24s} {'photos':>6s} " + " ".join(f"{o[:12]:>12s}" for o in OUTCOMES)
          + "   right (95 % CI)        found (95 % CI)")
    for name, r in report.items():
        lo, hi = r["right_ci"]
        flo, fhi = r["found_ci"]
        print(f"{name:24s} {r['photos']:6d} " + " ".join(f"{r['counts'][o]:12d}" for o in OUTCOMES)
              + f"   {r['right'] / r['photos']:.3f} ({lo:.3f}-{hi:.3f})   "
              f"{r['found'] / r['photos']:.3f} ({flo:.3f}-{fhi:.3f})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("photos", "clips"))
    parser.add_argument("root", type=Path, help="real-check (class folders) or real-clips (*.mp4)")
    parser.add_argument("--classifier", type=Path, help="a candidate classifier .onnx (default: shipped)")
    parser.add_argument("--detector", type=Path, help="a detector settings .json (default: shipped)")
    parser.add_argument("--no-gate", action="store_true", help="every face to the full classifier")
    parser.add_argument("--no-closeup", action="store_true", help="large faces to the full classifier too")
    parser.add_argument("--closeup", type=Path, help="a candidate close-up model .onnx (`export --closeup-above`)")
    parser.add_argument("--json", type=Path, help="also write the whole report, per photo, here")
    args = parser.parse_args(argv)
    if not args.root.is_dir():
        parser.error(f"{args.root}: no such folder")
    detector = Detector.load(args.classifier, args.detector, gate=False if args.no_gate else True,
                             closeup=False if args.no_closeup else (args.closeup or True))
    if args.what == "photos":
        try:
            report = check_photos(detector.for_photos(), args.root)  # as `detect` reads a photo
        except SortedPhotosError as err:
            parser.error(str(err))
        print_photos(report)
    else:
        report = {clip.name: check_clip(detector, clip) for clip in sorted(args.root.glob("*.mp4"))}
        for name, r in report.items():
            print(f"{name}: {r['frames']} frames, {r['people']} people, voted {r['voted']}; "
                  f"faces per frame label {r['face_labels_per_frame']}")
            for p in r["people_10_frames_or_more"]:
                print(f"  person {p['track_id']}: {p['label']} over {p['frames']} frames")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

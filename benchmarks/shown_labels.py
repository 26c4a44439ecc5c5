"""The shown label on video: how long it lags a mask put on or taken off, and how right and steady it is.

    python benchmarks/shown_labels.py ../shared/datasets/face-mask-detection --before REF \
        [--clips 8 --first-seed 430] [--face-px 12 24] [--cache DIR] [--out labels.json]

The clips of benchmarks/tracking.py (faces cut from the held-out photos walking across a scene),
where each person, with probability `--change`, has their face swapped half-way across for a face
of the other class, as wide and in the same place: a mask put on or taken off. The shipped
detector and classifier on every second frame, as `maskwatch detect`; the tracker at `--before`
(a commit) and today's on the same detections. A shown face is matched to a true person at IoU
>= 0.5 (one to one, per frame). Measured:

- lag: after each change, the matched shown frames within one second that still carry the old
  class (and how many carry the new one);
- people whose face never changes: the share of their matched shown frames labelled with their
  class, those shown another class (`unassessable`, a face shown in doubt, is neither), and how
  often their shown label switches.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from scipy.optimize import linear_sum_assignment

from maskwatch.detection.detector import Detector
from maskwatch.faces import UNASSESSABLE
from maskwatch.video.tracker import FaceTracker

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tracking import (FPS, IOU, detect_once, face_cutouts, frame_iou, generated_clip, size_tag, track,  # noqa: E402
                      tracker_at)

WINDOW = int(FPS)  # frames after a change that count towards its lag: one second


def matched_labels(truth: list[dict], shown: list[dict]) -> list[dict]:
    """Per frame, {person: shown label} for the shown faces matched one to one at IoU >= 0.5."""
    out = []
    for t_truth, t_shown in zip(truth, shown):
        labels = {}
        if t_truth and t_shown:
            sim = frame_iou(t_truth, {k: box for k, (box, _) in t_shown.items()})
            rows, cols = linear_sum_assignment(-sim)
            people, shown_labels = list(t_truth), [label for _, label in t_shown.values()]
            labels = {people[a]: shown_labels[b] for a, b in zip(rows, cols) if sim[a, b] >= IOU}
        out.append(labels)
    return out


def score_labels(classes: list[dict], labels: list[dict]) -> dict:
    """Lag after each change; accuracy and switches of the people whose class never changes."""
    per_person: dict[int, list[tuple[int, str, str | None]]] = {}
    for t, (truth_t, shown_t) in enumerate(zip(classes, labels)):
        for person, cls in truth_t.items():
            per_person.setdefault(person, []).append((t, cls, shown_t.get(person)))
    changes, old_shown, new_shown, right, wrong, seen, switches = 0, 0, 0, 0, 0, 0, 0
    for frames in per_person.values():
        kinds = [cls for _, cls, _ in frames]
        if len(set(kinds)) > 1:
            at = next(k for k in range(1, len(frames)) if kinds[k] != kinds[k - 1])
            old, new, start = kinds[at - 1], kinds[at], frames[at][0]
            window = [shown for t, _, shown in frames[at:] if t < start + WINDOW]
            changes += 1
            old_shown += sum(shown == old for shown in window)
            new_shown += sum(shown == new for shown in window)
            continue
        shown = [s for _, _, s in frames if s is not None]
        right += sum(s == kinds[0] for s in shown)
        wrong += sum(s not in (kinds[0], UNASSESSABLE) for s in shown)
        seen += len(shown)
        switches += sum(a != b for a, b in zip(shown, shown[1:]))
    return {"changes": changes, "old_label_frames": int(old_shown), "new_label_frames": int(new_shown),
            "steady_frames": seen, "steady_right": int(right), "steady_wrong": int(wrong),
            "steady_switches": int(switches)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="the Kaggle face-mask-detection folder (VOC)")
    parser.add_argument("--before", required=True, help="the commit whose tracker is the other column")
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--first-seed", type=int, default=430)
    parser.add_argument("--change", type=float, default=0.5, help="the share of people whose face changes")
    parser.add_argument("--face-px", type=float, nargs=2, default=(30.0, 64.0), metavar=("MIN", "MAX"),
                        help="face widths in the clips (a camera's far faces: 12 24)")
    parser.add_argument("--cache", type=Path, help="keep the detections here (outside the repository)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    detector = Detector.load()
    low, cut = FaceTracker().low_score, detector.config.min_score
    trackers = {f"tracker at {args.before}": tracker_at(args.before), "today's tracker": FaceTracker}
    cutouts = face_cutouts(args.data, 64, seed=0)
    lacking = sorted({"with_mask", "without_mask"} - {label for _, _, label in cutouts})
    if args.change and lacking:  # a change swaps in a face of the other class
        parser.error(f"the held-out photos of {args.data} have no face of 32 px or more labelled {' or '.join(lacking)}")
    rows, totals = [], {name: {} for name in trackers}
    sizes = size_tag(args.face_px)
    for seed in range(args.first_seed, args.first_seed + args.clips):
        clip, truth, classes = generated_clip(cutouts, seed, face_px=tuple(args.face_px), change=args.change)
        detections = detect_once(detector, clip, low, args.cache, f"labels-{seed}-change{args.change:g}{sizes}")
        del clip
        for name, cls in trackers.items():
            shown, _ = track(cls(), detections, len(truth), cut, shown_as=lambda face: (face.box, face.label))
            row = {"clip": seed, "tracker": name} | score_labels(classes, matched_labels(truth, shown))
            rows.append(row)
            for key, value in row.items():
                if key not in ("clip", "tracker"):
                    totals[name][key] = totals[name].get(key, 0) + value
            print(json.dumps(row), flush=True)
    print("\n| tracker | changes | old label in the second after (new) | steady people: shown frames right | "
          "shown another class | label switches |")
    print("|---|---:|---|---|---:|---:|")
    for name, t in totals.items():
        print(f"| {name} | {t['changes']} | {t['old_label_frames']} ({t['new_label_frames']}) | "
              f"{t['steady_right']}/{t['steady_frames']} {t['steady_right'] / max(1, t['steady_frames']):.4f} | "
              f"{t['steady_wrong']} | {t['steady_switches']} |")
    if args.out:
        args.out.write_text(json.dumps({"rows": rows, "totals": totals}, indent=2))


if __name__ == "__main__":
    sys.exit(main())

"""Tracking measured: the tracker at c2fa597 (IoU, no motion) against today's, on the same clips, in one run.

    python benchmarks/tracking.py ../shared/datasets/face-mask-detection \
        [--street ../shared/datasets/real-clips/street.mp4 --street-count N] [--clips 4] [--out tracking.json]

Clips with known identities: faces cut (with their surroundings) from the held-out photos of
the per-photo split (seed 0), walking across a 640x360 scene at 25 FPS, entering and leaving at
the sides, crossing each other and passing behind a pillar; faces 30-64 px wide, or as
`--face-px` sets (`--face-px 12 24 --first-seed 210`: a camera's far faces). Scored with TrackEval's
definitions (IoU >= 0.5): IDF1, ID switches and fragmentation (CLEAR), tracks per true person
(distinct track ids a person was matched to), and people reported (tracks long enough to be
people) per true person. Two bounds beside them: the share of visible faces the detector finds,
and IDF1 with every track merged into the true person it mostly covered (what re-associating
lost tracks could reach at best). The walking clip of issue 24: the bundled sample's most crowded photo,
enlarged 1.6x, moved 7 px a frame across a 1280x720 frame with a gentle sway, every face in view
throughout; people reported against the faces the detector finds on a still frame. street.mp4
(evaluation only): people reported against a hand count (--street-count, docs/bench-tracking.md).

Both trackers run through the same FrameProcessor on the same detections (the shipped
detector, run once per detected frame, down to the new tracker's low score; the old tracker
gets the faces at the default cut-off, as it did), detecting on every second frame as
`maskwatch detect` does (`--detect-every` sets another interval). Last, the tracker's own cost
per frame of 40 faces, old and new alternating, median over passes.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment

from maskwatch.data.photos import annotated_faces, photo_split
from maskwatch.data.voc import load_voc_annotation
from maskwatch.geometry import iou_matrix
from maskwatch.detection.detector import Detector
from maskwatch.faces import Face
from maskwatch.video.camera_motion import CameraMotion
from maskwatch.video.process import FrameProcessor
from maskwatch.video.sources import Frame
from maskwatch.video.tracker import FaceTracker

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample" / "face-mask-detection"
OLD_COMMIT = "c2fa597"
FPS = 25.0
DETECT_EVERY = 2
IOU = 0.5  # TrackEval's similarity threshold for a true positive


def tracker_at(commit: str):
    """FaceTracker as it was at `commit`, imported from a temporary copy of its file."""
    shown = subprocess.run(["git", "show", f"{commit}:src/maskwatch/video/tracker.py"], cwd=ROOT,
                           capture_output=True, text=True)
    if shown.returncode:
        raise SystemExit(f"no tracker at {commit!r} in this repository: {shown.stderr.strip()}")
    source = shown.stdout
    # Its box matching has since moved from detection/boxes.py to geometry.py (5ff5d7c), unchanged.
    source = source.replace("from maskwatch.detection.boxes import greedy_match", "from maskwatch.geometry import greedy_match")
    name = f"tracker_at_{commit}"
    path = Path(tempfile.mkdtemp()) / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module.FaceTracker


def old_tracker_class():
    """FaceTracker as it was at OLD_COMMIT (the IoU tracker)."""
    return tracker_at(OLD_COMMIT)


TRACKERS = {"old (IoU, c2fa597)": old_tracker_class, "new (ByteTrack-style)": lambda: FaceTracker}
CAMERA_MOTION = "new + camera motion"  # with --camera-motion: the new tracker given each frame's image


# --- clips -----------------------------------------------------------------------------------

def face_cutouts(data: Path, count: int, seed: int) -> list[tuple]:
    """Faces of held-out photos (short side >= 32 px) with a margin of half their size around them,
    where no other annotated face reaches into that margin: (crop, face box as fractions, class)."""
    rng = np.random.default_rng(seed)
    cutouts = []
    for ann in photo_split(data, seed=0).val:
        image = None
        faces = annotated_faces(ann)
        for face in faces:
            if min(face.width, face.height) < 32:
                continue
            x0, y0, x1, y1 = face.box
            region = np.array([[x0 - face.width / 2, y0 - face.height / 2, x1 + face.width / 2, y1 + face.height / 2]])
            others = np.array([f.box for f in faces if f is not face]).reshape(-1, 4)
            if (iou_matrix(region, others) > 0).any():  # another person in the cut-out: no known identity
                continue
            if image is None:
                image = cv2.imread(str(data / "images" / ann.filename))
            x0, y0, x1, y1 = face.box
            mx, my = face.width / 2, face.height / 2
            crop = image[max(0, int(y0 - my)):int(y1 + my), max(0, int(x0 - mx)):int(x1 + mx)]
            if crop.shape[0] > 8 and crop.shape[1] > 8:
                # where the face sits in the crop, as fractions, so a resized crop knows its face box
                fx0, fy0 = (x0 - max(0, int(x0 - mx))) / crop.shape[1], (y0 - max(0, int(y0 - my))) / crop.shape[0]
                cutouts.append((crop, (fx0, fy0, face.width / crop.shape[1], face.height / crop.shape[0]), face.label))
    order = rng.permutation(len(cutouts))[:count]
    return [cutouts[i] for i in order]


def background(width: int, height: int, rng, blocks=None) -> np.ndarray:
    """A street-like grey scene with soft texture (no faces in it). blocks: a random generator
    to draw sharp-edged blocks with too (windows, signs, paving), as a real street has: corners a
    camera's motion can be followed by, more of them than on the people."""
    base = np.linspace(90, 160, height)[:, None, None] * np.ones((1, width, 3))
    noise = cv2.resize(rng.normal(0, 25, (height // 20, width // 20)), (width, height))[:, :, None]
    scene = np.clip(base + noise, 0, 255).astype(np.uint8)
    for _ in range(400 if blocks is not None else 0):
        x, y = int(blocks.uniform(0, width)), int(blocks.uniform(0, height))
        w, h = int(blocks.uniform(4, 30)), int(blocks.uniform(4, 30))
        cv2.rectangle(scene, (x, y), (x + w, y + h), tuple(int(v) for v in blocks.uniform(40, 220, 3)), -1)
    return scene


def camera_shake(frames: int, shake: float, seed: int) -> np.ndarray:
    """frames x 2 offsets of a hand-held camera: a speed that wanders by `shake` px a frame
    (s.d.) and decays, and a position pulled gently back to the start (a hand that aims)."""
    rng = np.random.default_rng(5000 + seed)
    speed, offset, out = np.zeros(2), np.zeros(2), np.zeros((frames, 2))
    for t in range(frames):
        speed = 0.85 * speed + rng.normal(0, shake, 2)
        offset = 0.97 * offset + speed
        out[t] = offset
    return out


def generated_clip(cutouts, seed: int, width=640, height=360, frames=250, people=8, face_px=(30, 64), shake=0.0,
                   change=0.0):
    """Frames, per frame the visible true faces {person id: box}, and per frame their classes
    {person id: class}. People walk in from either side at 2-6 px a frame, sway, cross each
    other, pass behind a pillar, and leave. face_px: the range of face widths (a camera's far
    faces: 12-24). shake: a hand-held camera (camera_shake): the whole view, pillar included,
    moves, faces count while half in view, and the background is textured (corners to follow
    the camera by). change: the share of people whose face is swapped half-way across for a face
    of the other class (bare for masked, masked for bare or wrongly worn), as wide and in the same
    place: a mask put on or taken off, for the shown label's lag (benchmarks/shown_labels.py)."""
    offsets = camera_shake(frames, shake, seed) if shake else None
    rng = np.random.default_rng(seed)
    scene = background(width, height, rng, blocks=np.random.default_rng(9000 + seed) if shake else None)
    pillar = (int(width * 0.55), int(width * 0.55) + 36)
    walkers = []
    for pid in range(people):
        crop, (fx0, fy0, fw, fh), label = cutouts[(seed * people + pid) % len(cutouts)]
        width_now = fw * crop.shape[1]
        face = min(rng.uniform(*face_px), 1.25 * width_now)  # face width in px, enlarged 1.25x at most
        scale = face / width_now
        image = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
        speed = rng.uniform(2, 6) * rng.choice([-1, 1])
        start = int(rng.uniform(0, frames * 0.5))
        x = -image.shape[1] if speed > 0 else width
        y = rng.uniform(40, height - image.shape[0] - 40)
        walkers.append(dict(image=image, face=(fx0, fy0, fw, fh), label=label, speed=speed, start=start, x=x, y=y,
                            sway=rng.uniform(0, 4), phase=rng.uniform(0, 6.28), vy=rng.uniform(-0.3, 0.3)))
    swaps = np.random.default_rng(5000 + seed)  # its own draws: the clips without changes stay as they were
    for w in walkers if change else ():
        if swaps.random() >= change:
            continue
        wanted = "without_mask" if w["label"] == "with_mask" else "with_mask"
        others = [c for c in cutouts if c[2] == wanted]
        crop, (fx0, fy0, fw, fh), label = others[swaps.integers(len(others))]
        scale = w["face"][2] * w["image"].shape[1] / (fw * crop.shape[1])  # as wide as the first face
        w["after"] = dict(image=cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC),
                          face=(fx0, fy0, fw, fh), label=label,
                          at=int(0.5 * (width + w["image"].shape[1]) / abs(w["speed"])))
    clip, truth, classes = [], [], []
    for t in range(frames):
        frame = scene.copy()
        covered = np.zeros((height, width), np.int16) - 1  # which person's pixels are on top
        boxes, labels = {}, {}
        for pid, w in enumerate(walkers):
            if t < w["start"]:
                continue
            dt = t - w["start"]
            x = w["x"] + w["speed"] * dt
            y = w["y"] + w["vy"] * dt + w["sway"] * np.sin(w["phase"] + dt / 6)
            now = w["after"] if "after" in w and dt >= w["after"]["at"] else w
            if now is not w:  # the new face's box where the old one's was
                x += w["face"][0] * w["image"].shape[1] - now["face"][0] * now["image"].shape[1]
                y += w["face"][1] * w["image"].shape[0] - now["face"][1] * now["image"].shape[0]
            h_img, w_img = now["image"].shape[:2]
            x0, y0 = int(round(x)), int(round(y))
            xa, ya, xb, yb = max(0, x0), max(0, y0), min(width, x0 + w_img), min(height, y0 + h_img)
            if xb <= xa or yb <= ya:
                continue
            frame[ya:yb, xa:xb] = now["image"][ya - y0:yb - y0, xa - x0:xb - x0]
            covered[ya:yb, xa:xb] = pid
            fx0, fy0, fw, fh = now["face"]
            boxes[pid] = (x0 + fx0 * w_img, y0 + fy0 * h_img, x0 + (fx0 + fw) * w_img, y0 + (fy0 + fh) * h_img)
            labels[pid] = now["label"]
        frame[:, pillar[0]:pillar[1]] = (70, 70, 80)
        covered[:, pillar[0]:pillar[1]] = -2
        visible = {}
        for pid, (x0, y0, x1, y1) in boxes.items():
            xa, ya, xb, yb = max(0, int(x0)), max(0, int(y0)), min(width, int(x1)), min(height, int(y1))
            area = max(1.0, (x1 - x0) * (y1 - y0))
            shown = (covered[ya:yb, xa:xb] == pid).sum() if xb > xa and yb > ya else 0
            if shown / area >= 0.5:  # half the face in view and on top: a face a person could see
                visible[pid] = (x0, y0, x1, y1)
        if offsets is not None:
            dx, dy = offsets[t]
            frame = cv2.warpAffine(frame, np.float32([[1, 0, dx], [0, 1, dy]]), (width, height),
                                   borderMode=cv2.BORDER_REFLECT)
            moved = {}
            for pid, (x0, y0, x1, y1) in visible.items():
                x0, y0, x1, y1 = x0 + dx, y0 + dy, x1 + dx, y1 + dy
                inside = max(0.0, min(width, x1) - max(0.0, x0)) * max(0.0, min(height, y1) - max(0.0, y0))
                if inside >= 0.5 * (x1 - x0) * (y1 - y0):
                    moved[pid] = (x0, y0, x1, y1)
            visible = moved
        clip.append(frame)
        truth.append(visible)
        classes.append({pid: labels[pid] for pid in visible})
    return clip, truth, classes


def size_tag(face_px) -> str:
    """The cache name's mark for clips of other than the default face widths (30-64 px)."""
    return "" if tuple(face_px) == (30.0, 64.0) else "-{:g}-{:g}px".format(*face_px)


def walking_clip(width=1280, height=720, scale=1.6, step=7.0):
    """The most crowded sample photo, enlarged, moved `step` px a frame across the frame with a
    gentle sway, every face in view throughout; and its annotated faces per frame (id = index)."""
    annotations = [load_voc_annotation(p) for p in sorted((SAMPLE / "annotations").glob("*.xml"))]
    ann = max(annotations, key=lambda a: len(a.objects))
    photo = cv2.imread(str(SAMPLE / "images" / ann.filename))
    photo = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    faces = [f.box for f in annotated_faces(ann)]
    frames = int((width - photo.shape[1]) // step)
    y_mid = (height - photo.shape[0]) / 2
    clip, truth = [], []
    for t in range(frames):
        frame = np.full((height, width, 3), 120, np.uint8)
        x0, y0 = int(round(step * t)), int(round(y_mid + 6 * np.sin(t / 8)))
        frame[y0:y0 + photo.shape[0], x0:x0 + photo.shape[1]] = photo
        clip.append(frame)
        truth.append({i: (x0 + b[0] * scale, y0 + b[1] * scale, x0 + b[2] * scale, y0 + b[3] * scale)
                      for i, b in enumerate(faces)})
    return ann.filename, clip, truth


def video_frames(path: Path) -> tuple[list[np.ndarray], float]:
    """The video's frames and its frame rate."""
    capture = cv2.VideoCapture(str(path))
    fps = capture.get(cv2.CAP_PROP_FPS) or FPS
    frames = []
    while True:
        ok, image = capture.read()
        if not ok:
            break
        frames.append(image)
    capture.release()
    return frames, fps


# --- running the trackers ----------------------------------------------------------------------

class Replay:
    """A detector that answers each frame with detections made once, beforehand (by frame index)."""

    def __init__(self, detections: dict[int, list[Face]], min_score: float) -> None:
        self.detections, self.min_score, self.index = detections, min_score, 0

    def detect(self, image, min_score: float | None = None) -> list[Face]:
        cutoff = self.min_score if min_score is None else min_score
        return [f for f in self.detections[self.index] if f.score >= cutoff]


def detect_once(detector: Detector, clip: list[np.ndarray], low_score: float, cache: Path | None = None,
                name: str = "") -> dict[int, list[Face]]:
    """The detector's faces (down to low_score) on every DETECT_EVERY-th frame; with `cache`, kept
    in cache/NAME.pkl and read back from there on a re-run (the detector dominates the time)."""
    path = cache / f"{name}-{low_score}.pkl" if cache is not None else None
    if path is not None and path.is_file():
        return pickle.loads(path.read_bytes())
    found = {i: detector.detect(image, min_score=low_score) for i, image in enumerate(clip) if i % DETECT_EVERY == 0}
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(pickle.dumps(found))
    return found


def noisy_truth(truth: list[dict], seed: int, miss: float = 0.1, jitter: float = 0.04) -> dict[int, list[Face]]:
    """Detections made from the true boxes, to measure the tracker apart from the detector: each
    visible face on a detected frame, its box moved and resized by `jitter` of its size (s.d.),
    missed with probability `miss`, and a score drawn from 0.25-0.95 (so about a quarter are
    unsure faces that may only continue a track)."""
    rng = np.random.default_rng(1000 + seed)
    found = {}
    for i, faces in enumerate(truth):
        if i % DETECT_EVERY:
            continue
        found[i] = []
        for x0, y0, x1, y1 in faces.values():
            if rng.random() < miss:
                continue
            w, h = x1 - x0, y1 - y0
            dx, dy, dw, dh = rng.normal(0, jitter, 4) * (w, h, w, h)
            found[i].append(Face(box=(x0 + dx, y0 + dy, x1 + dx + dw, y1 + dy + dh), label="with_mask",
                                 probabilities=(0.9, 0.05, 0.05), score=float(rng.uniform(0.25, 0.95))))
    return found


def track(tracker, detections, frames: int, default_min_score: float, clip=None, fps: float = FPS,
          shown_as=lambda face: face.box):
    """Per frame, {track id: box} as the processor hands it on (or what `shown_as` takes of each
    face); and the people at the end. With the clip's images, the tracks follow the camera's own
    motion (CameraMotion). fps: the clip's frame rate (the tracker measures time in seconds)."""
    replay = Replay(detections, default_min_score)
    processor = FrameProcessor(replay, tracker, DETECT_EVERY, camera_motion=CameraMotion() if clip else None)
    shown = []
    for i in range(frames):
        replay.index = i
        faces, _ = processor(Frame(i, i / fps, clip[i] if clip else None, f"{i}"))
        shown.append({f.track_id: shown_as(f) for f in faces})
    return shown, tracker.people()


# --- TrackEval's definitions -------------------------------------------------------------------

def frame_iou(t_truth: dict, t_shown: dict) -> np.ndarray:
    """IoU of one frame's true faces (rows, in dict order) against its shown tracks (columns)."""
    return iou_matrix(np.array(list(t_truth.values())).reshape(-1, 4), np.array(list(t_shown.values())).reshape(-1, 4))


def score_tracking(truth: list[dict], shown: list[dict]) -> dict:
    """IDF1 (Identity), IDSW and Frag (CLEAR), tracks per true person, as TrackEval computes them."""
    gt_ids = sorted({g for t in truth for g in t})
    tr_ids = sorted({r for s in shown for r in s})
    gi, ti = {g: k for k, g in enumerate(gt_ids)}, {r: k for k, r in enumerate(tr_ids)}
    potential = np.zeros((len(gt_ids), len(tr_ids)))
    gt_dets = sum(len(t) for t in truth)
    tr_dets = sum(len(s) for s in shown)
    prev_id = np.full(len(gt_ids), -1)  # last tracker id each person was matched to
    prev_step = np.full(len(gt_ids), -1)  # tracker id matched at the previous frame (-1: none)
    starts = np.zeros(len(gt_ids), int)
    idsw = 0
    matched_to = [set() for _ in gt_ids]
    for t_truth, t_shown in zip(truth, shown):
        g = [gi[k] for k in t_truth]
        r = [ti[k] for k in t_shown]
        sim = frame_iou(t_truth, t_shown)
        if len(g) and len(r):
            potential[np.ix_(g, r)] += sim >= IOU
        step = np.full(len(gt_ids), -1)
        if len(g) and len(r):
            score = 1000.0 * (np.array(r)[None, :] == prev_step[g][:, None]) + sim
            score[sim < IOU] = 0
            rows, cols = linear_sum_assignment(-score)
            for a, b in zip(rows, cols):
                if score[a, b] <= 0:
                    continue
                person, track_id = g[a], r[b]
                if prev_id[person] >= 0 and prev_id[person] != track_id:
                    idsw += 1
                prev_id[person] = track_id
                step[person] = track_id
                matched_to[person].add(track_id)
        starts += (prev_step < 0) & (step >= 0)
        prev_step = step
    rows, cols = linear_sum_assignment(-potential) if potential.size else ([], [])
    idtp = float(potential[rows, cols].sum()) if potential.size else 0.0
    return {"true_people": len(gt_ids), "idf1": 2 * idtp / max(1, gt_dets + tr_dets), "id_switches": int(idsw),
            "fragmentations": int(np.sum(np.maximum(starts - 1, 0))),
            "tracks_per_person": float(np.mean([len(m) for m in matched_to])) if gt_ids else 0.0}


def merged_by_owner(truth: list[dict], shown: list[dict]) -> list[dict]:
    """`shown` with every track id replaced by the true person it overlapped most often: what
    perfect re-association of lost tracks could reach, the detector's misses left as they are."""
    votes: dict[int, Counter] = {}
    for t_truth, t_shown in zip(truth, shown):
        if not t_truth or not t_shown:
            continue
        people, tracks = list(t_truth), list(t_shown)
        for a, b in zip(*np.nonzero(frame_iou(t_truth, t_shown) >= IOU)):
            votes.setdefault(tracks[b], Counter())[people[a]] += 1
    # Negative ids for people, apart from track ids (>= 1).
    owner = {track_id: -1 - count.most_common(1)[0][0] for track_id, count in votes.items()}
    return [{owner.get(k, k): box for k, box in t_shown.items()} for t_shown in shown]


def covered_people(truth: list[dict], detections: dict[int, list[Face]], cutoff: float):
    """Per detected frame, each visible true person and whether a face scoring >= cutoff covers
    them (IoU >= 0.5): (person, covered) pairs, frame by frame."""
    for i, faces in detections.items():
        people = list(truth[i])
        true_boxes = np.array([truth[i][p] for p in people]).reshape(-1, 4)
        boxes = np.array([f.box for f in faces if f.score >= cutoff]).reshape(-1, 4)
        covered = (iou_matrix(true_boxes, boxes).max(1) >= IOU if len(people) and len(boxes)
                   else np.zeros(len(people), bool))
        yield from zip(people, covered.tolist())


def detector_recall(truth: list[dict], detections: dict[int, list[Face]], cutoff: float) -> float:
    """Share of the visible true faces on detected frames that a face scoring >= cutoff covers (IoU >= 0.5)."""
    hits = [hit for _, hit in covered_people(truth, detections, cutoff)]
    return sum(hits) / max(1, len(hits))


def people_found(truth: list[dict], detections: dict[int, list[Face]], cutoff: float) -> int:
    """True people covered (IoU >= 0.5) by a face scoring >= cutoff on at least two detected frames:
    the people a tracker can report. Counted against the truth, a tracker that splits people would
    make up for a detector that misses them (docs/bench-tracking.md, S1)."""
    frames = Counter(person for person, hit in covered_people(truth, detections, cutoff) if hit)
    return sum(n >= 2 for n in frames.values())


def people_summary(people) -> dict:
    decided = [getattr(t, "decision", t.label) for t in people]
    return {"people": len(people), "unassessable": decided.count("unassessable")}


def tracker_cost(old_cls, passes: int = 7, frames: int = 200, faces: int = 40) -> dict:
    """Per update() of 40 faces walking 3 px a frame: CPU seconds of this process (what the
    tracker itself costs, little moved by other work on a shared machine) and wall seconds;
    old and new alternate within each pass; medians over passes."""
    rng = np.random.default_rng(0)
    origin = np.stack([np.tile(np.arange(8) * 150 + 20, 5), np.repeat(np.arange(5) * 130 + 20, 8)], 1)[:faces]
    probs = (0.8, 0.15, 0.05)
    clip = []
    for t in range(frames):
        xy = origin + np.array([3.0 * t, 0]) + rng.normal(0, 1, origin.shape)
        clip.append([Face(box=(x, y, x + 40, y + 48), label="with_mask", probabilities=probs, score=0.9)
                     for x, y in xy])
    cpu, wall = {"old": [], "new": []}, {"old": [], "new": []}
    for _ in range(passes):
        for name, cls in (("old", old_cls), ("new", FaceTracker)):
            tracker = cls()
            started, started_cpu = time.perf_counter(), time.process_time()
            for t, faces_t in enumerate(clip):
                tracker.update(faces_t, t / FPS)
            cpu[name].append((time.process_time() - started_cpu) / frames)
            wall[name].append((time.perf_counter() - started) / frames)
    return {f"{name}_{kind}": statistics.median(values[name]) for kind, values in (("cpu", cpu), ("wall", wall))
            for name in ("old", "new")}


def settings_digest(settings: Path, model: str) -> str:
    """A short digest of a detector's settings file and its model (the path the loaded settings
    resolved), naming its cached faces."""
    digest = hashlib.sha256(settings.read_bytes())
    digest.update(Path(model).read_bytes())
    return digest.hexdigest()[:10]


def main() -> None:
    global DETECT_EVERY  # --detect-every sets it for every clip's detections, truth and tracking
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="the Kaggle face-mask-detection folder (VOC)")
    parser.add_argument("--clips", type=int, default=4)
    parser.add_argument("--first-seed", type=int, default=0, help="the generated clips' seeds start here")
    parser.add_argument("--face-px", type=float, nargs=2, default=(30.0, 64.0), metavar=("MIN", "MAX"),
                        help="face widths in the generated clips (a camera's far faces: 12 24)")
    parser.add_argument("--street", type=Path, help="street.mp4 (evaluation only, never copied)")
    parser.add_argument("--street-count", type=int, help="people whose face is visible, counted by hand")
    parser.add_argument("--upscale", type=float, default=None,
                        help="the detector's fixed resize factor, as `maskwatch detect --upscale` (far faces)")
    parser.add_argument("--shake", type=float, default=0.0,
                        help="a hand-held camera in the generated clips: its speed's wander, px a frame (s.d.)")
    parser.add_argument("--camera-motion", action="store_true",
                        help="also run the new tracker following the camera's motion (CameraMotion)")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--cache", type=Path, help="keep the detections here (outside the repository)")
    parser.add_argument("--detector", type=Path,
                        help="a detector's settings (an exported detector.json) in place of the shipped one")
    parser.add_argument("--detect-every", type=int, default=DETECT_EVERY,
                        help="detect on every n-th frame and track between, as `maskwatch detect --detect-every`")
    args = parser.parse_args()
    DETECT_EVERY = args.detect_every
    detector = Detector.load(config=args.detector)
    detector_name = "shipped detector" if args.detector is None else f"detector {args.detector}"
    if args.upscale is not None:
        detector = detector.rescaled(args.upscale)
    # The cache keeps each detector's faces apart: its resize factor and, for a candidate, its files.
    cache_tag = "" if args.upscale is None else f"-x{args.upscale:g}"
    if DETECT_EVERY != 2:  # the caches of every second frame keep their names
        cache_tag += f"-every{DETECT_EVERY}"
    if args.detector is not None:
        cache_tag += "-" + settings_digest(args.detector, detector.config.model)
    low = FaceTracker().low_score
    default_cut = detector.config.min_score
    trackers = {name: make() for name, make in TRACKERS.items()}
    if args.camera_motion:
        trackers[CAMERA_MOTION] = FaceTracker
    results: dict = {"generated": [], "walking": {}, "street": {}, "cost": {}}

    cutouts = face_cutouts(args.data, 64, seed=0)
    sizes = size_tag(args.face_px) + (f"-shake{args.shake:g}-textured" if args.shake else "")
    for seed in range(args.first_seed, args.first_seed + args.clips):
        clip, truth, _ = generated_clip(cutouts, seed, face_px=tuple(args.face_px), shake=args.shake)
        sources = {detector_name: detect_once(detector, clip, low, args.cache, f"generated-{seed}{sizes}{cache_tag}"),
                   "true boxes, jittered, 10 % missed": noisy_truth(truth, seed)}
        for source, detections in sources.items():
            row = {"clip": seed, "detections": source, "detector_recall": {
                str(cut): detector_recall(truth, detections, cut) for cut in (default_cut, low)},
                "people_found": people_found(truth, detections, default_cut)}
            for name, cls in trackers.items():
                shown, people = track(cls(), detections, len(clip), default_cut, clip if name == CAMERA_MOTION else None)
                row[name] = score_tracking(truth, shown) | people_summary(people)
                row[name]["idf1_merged_by_owner"] = score_tracking(truth, merged_by_owner(truth, shown))["idf1"]
            results["generated"].append(row)
            print(f"generated clip {seed}, {source}: faces found at {default_cut} / {low}: " + " / ".join(
                f"{r:.2f}" for r in row["detector_recall"].values()) + "; " + "; ".join(
                f"{n}: IDF1 {row[n]['idf1']:.3f} (merged by owner {row[n]['idf1_merged_by_owner']:.3f}), "
                f"{row[n]['people']} people for {row[n]['true_people']} ({row['people_found']} found)"
                for n in trackers), flush=True)

    photo, clip, truth = walking_clip()
    detections = detect_once(detector, clip, low, args.cache, f"walking{cache_tag}")
    still = len([f for f in detections[0] if f.score >= default_cut])
    results["walking"] = {"photo": photo, "frames": len(clip), "faces_on_a_still_frame": still,
                          "annotated_faces": len(truth[0])}
    for name, cls in trackers.items():
        shown, people = track(cls(), detections, len(clip), default_cut, clip if name == CAMERA_MOTION else None)
        results["walking"][name] = score_tracking(truth, shown) | people_summary(people)
    print(f"walking clip: {json.dumps(results['walking'])}", flush=True)

    if args.street is not None:
        clip, street_fps = video_frames(args.street)
        detections = detect_once(detector, clip, low, args.cache, f"street{cache_tag}")
        # Asking the detector for unsure faces too means classifying more crops: how many more.
        sure = sum(f.score >= default_cut for faces in detections.values() for f in faces)
        unsure = sum(f.score < default_cut for faces in detections.values() for f in faces)
        results["street"] = {"frames": len(clip), "hand_count": args.street_count,
                             "faces_per_detected_frame": {"sure": sure / len(detections),
                                                          "unsure_also_classified": unsure / len(detections)}}
        for name, cls in trackers.items():
            _, people = track(cls(), detections, len(clip), default_cut, clip if name == CAMERA_MOTION else None,
                              fps=street_fps)
            hits = [t.hits for t in people]
            results["street"][name] = people_summary(people) | {"under_10_frames": sum(h < 10 for h in hits)}
        del clip
        print(f"street: {json.dumps(results['street'])}", flush=True)

    results["cost"] = tracker_cost(trackers["old (IoU, c2fa597)"])
    cost = results["cost"]
    print(f"tracker cost per frame of 40 faces, CPU (wall): old {cost['old_cpu'] * 1e3:.3f} "
          f"({cost['old_wall'] * 1e3:.3f}) ms, new {cost['new_cpu'] * 1e3:.3f} ({cost['new_wall'] * 1e3:.3f}) ms",
          flush=True)

    names = list(trackers)
    print("\n| clip | detections | tracker | IDF1 | ID switches | fragmentations | tracks per true person | "
          "people reported / true |")
    print("|---|---|---|---|---|---|---|---|")
    walking = {"clip": "walking", "detections": detector_name, **{n: results["walking"][n] for n in names}}
    for row in results["generated"] + [walking]:
        for name in names:
            r = row[name]
            print(f"| {row['clip']} | {row['detections']} | {name} | {r['idf1']:.3f} | {r['id_switches']} | "
                  f"{r['fragmentations']} | {r['tracks_per_person']:.2f} | {r['people']} / {r['true_people']} |")
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    sys.exit(main())

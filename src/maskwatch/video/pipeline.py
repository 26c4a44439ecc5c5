"""`maskwatch detect`: the whole loop, frames in, labelled faces and annotated outputs out.

    for frame in read_frames(source):
        faces = tracker.update(detector.detect(frame.image), frame.timestamp)
        writer.write(frame, faces)
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import cv2
from tqdm import tqdm

from maskwatch.atomic import write_bytes, write_text
from maskwatch.faces import Face, count_labels
from maskwatch.render import FaceAnnotator
from maskwatch.video.sources import Frame, SourceInfo, describe_source, read_frames
from maskwatch.video.tracker import FaceTracker, per_minute_counts


def frame_record(frame: Frame, faces: list[Face]) -> dict:
    """The JSON line for one image or frame: the schema of `--json` and of the HTTP API."""
    return {"frame": frame.index, "name": frame.name, "time": round(frame.timestamp, 3),
            "faces": [f.to_dict() for f in faces], "counts": count_labels(faces)}


@dataclass
class DetectResult:
    out: Path
    frames: int = 0
    faces: int = 0
    errors: list[str] = field(default_factory=list)
    interrupted: bool = False
    outputs: list[Path] = field(default_factory=list)
    summary: dict = field(default_factory=dict)


class _VideoOutput:
    """An annotated video written to a temp file and renamed into place when closed."""

    def __init__(self, target: Path, fps: float, size: tuple[int, int]) -> None:
        self.target = target
        fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=".partial.mp4", dir=target.parent)
        os.close(fd)
        self.tmp = Path(tmp)
        self.writer = cv2.VideoWriter(str(self.tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
        if not self.writer.isOpened():
            self.tmp.unlink(missing_ok=True)
            raise RuntimeError(f"{target}: OpenCV cannot write mp4 video here")

    def write(self, image) -> None:
        self.writer.write(image)

    def close(self) -> None:
        self.writer.release()
        os.replace(self.tmp, self.target)


def run_detect(source: str, out: Path, detector, blur: bool = False, save_media: bool = True,
               progress: bool = True, max_frames: int | None = None, on_frame=None,
               detect_every: int = 1) -> DetectResult:
    """Detect, classify and (for video) track every face of `source`; write into `out`.

    detect_every: on video, run the detector on every n-th frame only and carry the tracked
    faces over the frames between (their JSON lines say "detected": false). Faster, and on
    25 FPS video a face moves little in between.

    out/detections.jsonl: one line per image or frame. Images get out/<name>.jpg; videos,
    streams and webcams get out/<name>.mp4 plus out/summary.json with one label per person and
    per-minute counts. Ctrl-C stops cleanly: what was processed is kept and closed properly.
    """
    info: SourceInfo = describe_source(source)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    result = DetectResult(out=out)
    annotator = FaceAnnotator(blur=blur)
    is_video = info.kind in ("video", "stream", "webcam")
    tracker = FaceTracker() if is_video else None
    video: _VideoOutput | None = None
    lines_path = out / "detections.jsonl"
    fd, tmp_lines = tempfile.mkstemp(prefix=".detections.", suffix=".partial", dir=out)
    try:
        with os.fdopen(fd, "w") as lines:
            frames = read_frames(source, result.errors)
            bar = tqdm(frames, total=info.frames, desc="detect", unit="frame",
                       disable=not progress or info.frames is None)
            try:
                for frame in bar:
                    detected = tracker is None or frame.index % detect_every == 0
                    if not detected:
                        faces = tracker.current()
                    elif tracker is not None:
                        faces = tracker.update(detector.detect(frame.image), frame.timestamp)
                    else:
                        faces = detector.detect(frame.image)
                    lines.write(json.dumps(frame_record(frame, faces) | {"detected": detected}) + "\n")
                    result.frames += 1
                    result.faces += len(faces)
                    if on_frame is not None:
                        on_frame(frame, faces)
                    if save_media:
                        drawn = annotator.annotate(frame.image, faces)
                        if is_video:
                            if video is None:
                                h, w = drawn.shape[:2]
                                video = _VideoOutput(out / f"{info.name}.mp4", info.fps or 25.0, (w, h))
                            video.write(drawn)
                        else:
                            target = out / f"{frame.name}.jpg"
                            ok, encoded = cv2.imencode(".jpg", drawn)
                            if ok:
                                write_bytes(target, encoded.tobytes())
                                result.outputs.append(target)
                    if max_frames is not None and result.frames >= max_frames:
                        break
            except KeyboardInterrupt:
                result.interrupted = True
            finally:
                bar.close()
                frames.close()
        os.replace(tmp_lines, lines_path)
        result.outputs.append(lines_path)
    finally:
        Path(tmp_lines).unlink(missing_ok=True)
        if video is not None:
            video.close()
            result.outputs.append(video.target)
    if tracker is not None:
        people = tracker.people()
        result.summary = {
            "source": source, "frames": result.frames, "interrupted": result.interrupted,
            "people": [{"track_id": t.track_id, "label": t.label, "first_seen": round(t.first_seen, 2),
                        "last_seen": round(t.last_seen, 2), "frames": t.hits,
                        "probabilities": [round(p, 4) for p in t.probabilities]} for t in people],
            "per_minute": per_minute_counts(people),
            "errors": result.errors,
        }
        write_text(out / "summary.json", json.dumps(result.summary, indent=2))
        result.outputs.append(out / "summary.json")
    return result

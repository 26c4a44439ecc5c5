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

from maskwatch.atomic import atomic_path, write_bytes, write_text
from maskwatch.faces import Face, frame_record
from maskwatch.progress import progress_bar
from maskwatch.render import FaceAnnotator
from maskwatch.video.sources import Frame, SourceInfo, describe_source, read_frames
from maskwatch.video.tracker import FaceTracker, compliance, per_minute_counts


# On video, detect on every second frame and carry tracked faces over the one between: twice
# the frame rate, and at 25 FPS a face moves a few pixels in 40 ms (BENCHMARKS.md, FPS).
DEFAULT_DETECT_EVERY = 2


def frame_line(frame: Frame, faces: list[Face], detected: bool = True) -> dict:
    """The JSON line of one image or frame (faces.frame_record, placed in its source)."""
    height, width = frame.image.shape[:2]
    return frame_record(faces, width, height, frame=frame.index, name=frame.name, time=frame.timestamp,
                        detected=detected)


@dataclass
class DetectResult:
    out: Path
    frames: int = 0
    faces: int = 0
    errors: list[str] = field(default_factory=list)
    interrupted: bool = False
    outputs: list[Path] = field(default_factory=list)
    summary: dict = field(default_factory=dict)


class _MediaWriter:
    """Annotated outputs: one JPEG per image, or one MP4 per video, written under temp names."""

    def __init__(self, out: Path, info: SourceInfo, blur: bool) -> None:
        self.out, self.info = out, info
        self.annotator = FaceAnnotator(blur=blur)
        self.video = None
        self.video_tmp: Path | None = None
        self.written: list[Path] = []

    def write(self, frame: Frame, faces: list[Face]) -> None:
        drawn = self.annotator.annotate(frame.image, faces)
        if self.info.kind == "image" or self.info.kind == "folder":
            ok, encoded = cv2.imencode(".jpg", drawn)
            if ok:
                write_bytes(self.out / f"{frame.name}.jpg", encoded.tobytes())
                self.written.append(self.out / f"{frame.name}.jpg")
            return
        if self.video is None:
            fd, tmp = tempfile.mkstemp(prefix=f".{self.info.name}.", suffix=".partial.mp4", dir=self.out)
            os.close(fd)
            self.video_tmp = Path(tmp)
            h, w = drawn.shape[:2]
            self.video = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*"mp4v"), self.info.fps or 25.0, (w, h))
            if not self.video.isOpened():
                raise RuntimeError(f"{self.out}: OpenCV cannot write mp4 video here")
        self.video.write(drawn)

    def close(self) -> None:
        """Finish the video (also after Ctrl-C) and move it into place."""
        if self.video is not None:
            self.video.release()
            target = self.out / f"{self.info.name}.mp4"
            os.replace(self.video_tmp, target)
            self.written.append(target)
            self.video = None


def run_detect(source: str, out: Path, detector, blur: bool = False, save_media: bool = True,
               progress: bool = True, max_frames: int | None = None, on_frame=None,
               detect_every: int = DEFAULT_DETECT_EVERY, on_line=None) -> DetectResult:
    """Detect, classify and (for video) track every face of `source`; write into `out`.

    out/detections.jsonl: one line per image or frame. Images get out/<name>.jpg; videos,
    streams and webcams get out/<name>.mp4 plus out/summary.json with one label per person and
    per-minute counts. Ctrl-C stops cleanly: what was processed is kept and closed properly.

    detect_every: on video, run the detector on every n-th frame only and carry the tracked
    faces over the frames between (their JSON lines say "detected": false). Faster, and on
    25 FPS video a face moves little in between.

    on_frame(frame, faces) and on_line(record) are called after each frame's line is written;
    on_line gets exactly what detections.jsonl holds (`detect --json` prints it).
    """
    info: SourceInfo = describe_source(source)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    result = DetectResult(out=out)
    tracker = FaceTracker() if info.kind in ("video", "stream", "webcam") else None
    media = _MediaWriter(out, info, blur) if save_media else None

    def faces_of(frame: Frame) -> tuple[list[Face], bool]:
        if tracker is None:
            return detector.detect(frame.image), True
        if frame.index % detect_every:
            return tracker.current(), False
        return tracker.update(detector.detect(frame.image), frame.timestamp), True

    lines_path = out / "detections.jsonl"
    with atomic_path(lines_path) as tmp_lines, open(tmp_lines, "w") as lines:
        frames = read_frames(source, result.errors)
        bar = progress_bar(frames, total=info.frames, desc="detect", unit="frame",
                   disable=not progress or info.frames is None)
        try:
            for frame in bar:
                faces, detected = faces_of(frame)
                record = frame_line(frame, faces, detected)
                lines.write(json.dumps(record) + "\n")
                result.frames += 1
                result.faces += len(faces)
                if on_line is not None:
                    on_line(record)
                if on_frame is not None:
                    on_frame(frame, faces)
                if media is not None:
                    media.write(frame, faces)
                if max_frames is not None and result.frames >= max_frames:
                    break
        except KeyboardInterrupt:
            result.interrupted = True
        finally:
            bar.close()
            frames.close()
            if media is not None:
                media.close()
                result.outputs.extend(media.written)
    result.outputs.append(lines_path)
    if tracker is not None:
        people = tracker.people()
        result.summary = {
            "source": source, "frames": result.frames, "interrupted": result.interrupted,
            "people": [{"track_id": t.track_id, "label": t.label, "first_seen": round(t.first_seen, 2),
                        "last_seen": round(t.last_seen, 2), "frames": t.hits,
                        "probabilities": [round(p, 4) for p in t.probabilities]} for t in people],
            "totals": compliance(people),
            "per_minute": per_minute_counts(people),
            "errors": result.errors,
        }
        write_text(out / "summary.json", json.dumps(result.summary, indent=2))
        result.outputs.append(out / "summary.json")
    return result

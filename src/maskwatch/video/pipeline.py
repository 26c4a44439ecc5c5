"""`maskwatch detect`: the whole loop, frames in, labelled faces and annotated outputs out.

    processor = FrameProcessor(detector, FaceTracker(), detect_every)
    for frame in read_frames(source):
        faces, detected = processor(frame)
        for sink in sinks: sink.write(frame, faces, detected)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from maskwatch.atomic import atomic_path, write_text
from maskwatch.progress import progress_bar
from maskwatch.video.process import FrameProcessor
from maskwatch.video.sinks import CallbackSink, JsonLinesSink, MediaSink, Sink, frame_line  # noqa: F401 (frame_line: kept importable here)
from maskwatch.video.sources import SourceInfo, describe_source, read_frames
from maskwatch.video.tracker import FaceTracker, compliance, per_minute_counts


# On video, detect on every second frame and carry tracked faces over the one between: twice
# the frame rate, and at 25 FPS a face moves a few pixels in 40 ms (BENCHMARKS.md, FPS).
DEFAULT_DETECT_EVERY = 2


@dataclass
class DetectResult:
    out: Path
    frames: int = 0
    faces: int = 0
    errors: list[str] = field(default_factory=list)
    interrupted: bool = False
    outputs: list[Path] = field(default_factory=list)
    summary: dict = field(default_factory=dict)


def run_frames(frames, processor: FrameProcessor, sinks: list[Sink], result: DetectResult,
               max_frames: int | None = None) -> None:
    """The loop: each frame through the processor, then to every sink in order.

    Ctrl-C ends it with result.interrupted set; the sinks are closed whatever happens.
    """
    try:
        for frame in frames:
            faces, detected = processor(frame)
            result.frames += 1
            result.faces += len(faces)
            for sink in sinks:
                sink.write(frame, faces, detected)
            if max_frames is not None and result.frames >= max_frames:
                break
    except KeyboardInterrupt:
        result.interrupted = True
    finally:
        for sink in sinks:
            sink.close()
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
    processor = FrameProcessor(detector, tracker, detect_every)
    media = MediaSink(out, info, blur) if save_media else None

    lines_path = out / "detections.jsonl"
    with atomic_path(lines_path) as tmp_lines, open(tmp_lines, "w") as lines:
        # The order is the contract: the line is written (and on_line called) before on_frame,
        # and on_frame before the frame is drawn.
        sinks: list[Sink] = [JsonLinesSink(lines, on_line)]
        if on_frame is not None:
            sinks.append(CallbackSink(on_frame))
        if media is not None:
            sinks.append(media)
        frames = read_frames(source, result.errors)
        bar = progress_bar(frames, total=info.frames, desc="detect", unit="frame",
                           disable=not progress or info.frames is None)
        try:
            run_frames(bar, processor, sinks, result, max_frames)
        finally:
            bar.close()
            frames.close()
            if media is not None:
                result.outputs.extend(media.written)
    result.outputs.append(lines_path)
    if tracker is not None:
        people = tracker.people()
        result.summary = {
            "source": source, "frames": result.frames, "interrupted": result.interrupted,
            "people": [{"track_id": t.track_id, "label": t.decision, "first_seen": round(t.first_seen, 2),
                        "last_seen": round(t.last_seen, 2), "frames": t.hits, "evidence_frames": t.evidence,
                        "probabilities": [round(p, 4) for p in t.probabilities]} for t in people],
            "totals": compliance(people),
            "per_minute": per_minute_counts(people),
            "errors": result.errors,
        }
        write_text(out / "summary.json", json.dumps(result.summary, indent=2))
        result.outputs.append(out / "summary.json")
    return result

"""Reading back what maskwatch wrote: detections.jsonl and /v1/detect's answers, as `Face`s.

    for frame in maskwatch.read_detections("out/detections.jsonl"):
        print(frame.name, frame.width, frame.height, [face.label for face in frame.faces])
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from maskwatch.faces import Face, count_labels, frame_record

# The keys of faces.frame_record: those of every frame, and those that place one in its source.
FRAME_KEYS = frozenset({"width", "height", "detected", "faces", "counts"})
PLACE_KEYS = frozenset({"frame", "name", "time"})


@dataclass(frozen=True)
class FrameRecord:
    """One frame as faces.frame_record wrote it, its faces as `Face`s.

    frame, name, time: its place in its source (a photo's name, a video's "<name>-000123");
    None in an answer of POST /v1/detect, which has none.
    detected: False where the tracker carried the faces over without detecting (video).
    """

    width: int
    height: int
    detected: bool
    faces: tuple[Face, ...]
    frame: int | None = None
    name: str | None = None
    time: float | None = None

    @property
    def counts(self) -> dict[str, int]:
        """Faces per label, every label present: the record's "counts"."""
        return count_labels(list(self.faces))

    @classmethod
    def from_dict(cls, record: dict) -> FrameRecord:
        """frame_record's inverse; ValueError saying what is wrong where `record` is not one."""
        if not isinstance(record, dict):
            raise ValueError(f"a frame is a JSON object, got {type(record).__name__}")
        if missing := sorted(FRAME_KEYS - set(record)):
            raise ValueError(f"not a maskwatch frame: no {', '.join(map(repr, missing))}")
        if unknown := sorted(set(record) - FRAME_KEYS - PLACE_KEYS):
            raise ValueError(f"not a maskwatch frame: {', '.join(map(repr, unknown))} is none of its keys")
        if not isinstance(record["faces"], list):
            raise ValueError(f"a frame's faces are a list, got {type(record['faces']).__name__}")
        faces = []
        for number, item in enumerate(record["faces"], 1):
            try:
                faces.append(Face.from_dict(item))
            except ValueError as err:
                raise ValueError(f"face {number}: {err}") from None
        width, height, detected = record["width"], record["height"], record["detected"]
        if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (width, height)):
            raise ValueError(f"a frame's width and height are whole numbers over 0, got {width!r} and {height!r}")
        if not isinstance(detected, bool):
            raise ValueError(f"a frame's detected is true or false, got {detected!r}")
        # A label the counts lack is one no face may have: files from before `unassessable` have none.
        counted = {label: n for label, n in count_labels(faces).items() if n or label in record["counts"]}
        if record["counts"] != counted:
            raise ValueError(f"its counts {record['counts']} are not those of its faces {count_labels(faces)}")
        frame, name, time = record.get("frame"), record.get("name"), record.get("time")
        if (frame is None) != (name is None) or (frame is None) != (time is None):
            raise ValueError("a frame has all of frame, name and time (a file's or stream's) or none (the API's)")
        return cls(width, height, detected, tuple(faces), frame, name, None if time is None else float(time))

    def to_dict(self) -> dict:
        """The record as frame_record writes it."""
        return frame_record(list(self.faces), self.width, self.height, frame=self.frame, name=self.name,
                            time=self.time, detected=self.detected)


def read_detections(path: Path | str) -> Iterator[FrameRecord]:
    """The frames of a detections.jsonl (`maskwatch detect`'s, or lines of `detect --json`), one
    per line, in order. A last line a killed run cut short (no line end, not JSON) is left out, as
    is a blank line; any other line that is not a maskwatch frame raises ValueError naming the file
    and the line. Lines are read one at a time: a day's file is never held whole."""
    path = Path(path)
    if path.is_dir():  # a detect run's folder was "[Errno 21] Is a directory"
        inside = f" (give {path / 'detections.jsonl'})" if (path / "detections.jsonl").is_file() else ""
        raise IsADirectoryError(f"{path}: a folder, not a detections.jsonl{inside}")
    with open(path, "rb") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as err:  # UnicodeDecodeError too: a binary file
                if not line.endswith(b"\n"):
                    return  # a kill mid-line: the frame's line was never finished
                why = getattr(err, "msg", "not UTF-8 text")
                raise ValueError(f"{path}, line {number}: not JSON ({why}); not a maskwatch detections.jsonl") from None
            try:
                yield FrameRecord.from_dict(record)
            except ValueError as err:
                raise ValueError(f"{path}, line {number}: {err}") from None

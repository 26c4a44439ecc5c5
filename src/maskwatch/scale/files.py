"""What `maskwatch batch` works on: the photos and videos named on its command line, each with
the output folder it gets, and scoring one of them exactly as `maskwatch detect` would.

Each file's outputs go to OUT/<key>/, where key is the file's path below the folder it was
found in (or its name, for a file named directly): the very files `maskwatch detect FILE
--out OUT/<key>` writes. The folder appears in one rename when the file is complete, so an
existing folder means a finished file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from maskwatch.atomic import atomic_dir
from maskwatch.detection.detector import Models
from maskwatch.video.pipeline import DetectFailed, DetectOptions, run_detect
from maskwatch.video.sources import (IMAGE_SUFFIXES, STREAM_PREFIXES, UNREAD_PHOTO_SUFFIXES, VIDEO_SUFFIXES,
                                     redact_source, split_written, written_warning)


class BatchInputError(ValueError):
    """Inputs that cannot make a batch (a missing path, nothing to score, two files one output)."""


@dataclass(frozen=True)
class BatchFile:
    """One input file: its absolute path, its output folder below OUT, photo or video."""

    path: str
    key: str
    kind: str  # "photo" or "video"

    def done(self, out: Path) -> bool:
        return (out / self.key).is_dir()


@dataclass(frozen=True)
class ScoreOptions(DetectOptions):
    """The `detect` options a batch passes on to every file, and the models each actor loads."""

    models: Models = field(default_factory=Models)  # each actor loads its own


def find_files(inputs: list[str | Path], out: Path | None = None, warnings: list[str] | None = None) -> list[BatchFile]:
    """Every photo and video of `inputs` (files, and folders searched recursively, hidden
    entries and the output folder `out` skipped: a second run read the first one's annotated
    copies as new photos), in order; BatchInputError when an input is missing, a folder holds
    nothing to score, two files would share an output folder, or the outputs would go among the
    inputs (`batch photos --out photos`). In a folder, the files a `detect` run wrote there are
    left out as `detect` leaves them out (split_written), each folder's named in `warnings`."""
    found: list[BatchFile] = []
    warnings = warnings if warnings is not None else []
    outputs = Path(out).resolve() if out is not None else None
    for given in inputs:
        if isinstance(given, str) and given.lower().startswith((*STREAM_PREFIXES, "webcam:")):
            raise BatchInputError(_live_source(given))
        path = Path(given)
        if not path.exists():
            raise BatchInputError(f"{path}: no such file or folder")
        if path.is_dir() and outputs is not None and path.resolve().is_relative_to(outputs):
            raise BatchInputError(f"{path}: this input folder is the output folder {outputs} or inside it; "
                                  "choose an --out outside the inputs")
        if path.is_dir():
            files, ours = split_written(f for f in path.rglob("*") if f.is_file() and _kind(f) is not None
                                        and not any(part.startswith(".") for part in f.relative_to(path).parts)
                                        and (outputs is None or not f.resolve().is_relative_to(outputs)))
            if not files:
                raise BatchInputError(f"{path}: folder holds no photos or videos "
                                      f"({', '.join(sorted(IMAGE_SUFFIXES | VIDEO_SUFFIXES))})"
                                      + (f"; {written_warning(path, ours)}" if ours else ""))
            if ours:
                warnings.append(written_warning(path, ours))
            found += [BatchFile(str(f.resolve()), f.relative_to(path).as_posix(), _kind(f)) for f in files]
        else:
            found.append(BatchFile(str(path.resolve()), path.name, _kind(path) or "video"))
    owners: dict[str, str] = {}
    for file in found:
        if file.key in owners and owners[file.key] != file.path:
            raise BatchInputError(f"{owners[file.key]} and {file.path} would both write OUT/{file.key}; "
                                  "score them in separate runs")
        owners[file.key] = file.path
    return list({file.path: file for file in found}.values())  # a file named twice is scored once


def _live_source(source: str) -> str:
    """Why a stream or webcam is no batch input: it never ends, and `batch` waits for each input's
    end. It was read as a path: `rtsp:/admin:secret@cam/live: no such file or folder`, the URL
    bent and its password shown."""
    what = "a webcam" if source.lower().startswith("webcam:") else "a live stream"
    return (f"{redact_source(source)}: {what}, which never ends; `batch` scores photos and videos: read it with "
            "`maskwatch detect URL` (until Ctrl-C or --max-frames), or watch it as a site's camera (`maskwatch run`)")


def _kind(path: Path) -> str | None:
    """A photo (HEIC too: it fails with its reason in batch.json, not passed over in silence), a
    video, or None: not an input."""
    suffix = path.suffix.lower()
    return "photo" if suffix in IMAGE_SUFFIXES | UNREAD_PHOTO_SUFFIXES else "video" if suffix in VIDEO_SUFFIXES else None


def score_file(file: BatchFile, out: Path, detector, options: ScoreOptions) -> dict:
    """Run `detect`'s loop on one file into OUT/<key>/ (atomically); the outcome as a dict:
    file, output, status ("done" or "failed"), frames, faces, and error or warnings.

    A file from which no frame could be read fails and leaves no output folder, so a re-run
    tries it again; one with some unreadable frames is done, its problems kept as warnings.
    """
    row = {"file": file.path, "output": file.key, "status": "done", "frames": 0, "faces": 0,
           "error": "", "warnings": []}
    try:
        with atomic_dir(Path(out) / file.key, own="detections.jsonl") as tmp:
            result = run_detect(file.path, tmp, detector, options, progress=False)
    except DetectFailed as err:  # its frames went with the discarded folder
        return row | {"status": "failed", "error": f"stopped after {err.result.frames} frames by an error: "
                                                   f"{err.result.failed}"}
    except Exception as err:  # noqa: BLE001 - the batch loop reports each bad file and goes on
        reason = str(err) if isinstance(err, ValueError) else f"{type(err).__name__}: {err}"
        return row | {"status": "failed", "error": reason}
    return row | {"frames": result.frames, "faces": result.faces, "warnings": result.errors}

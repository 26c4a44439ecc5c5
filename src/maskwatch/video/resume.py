"""`detect --resume`: a folder of photos stopped part-way goes on where it stopped.

Every run writes OUT/detect-run.json at its start (what it reads and what decides its answers)
and again at its end (how many photos it skipped and did). A resumed run appends to
detections.jsonl only where that record says the lines are of the same source and settings,
and passes over the photos whose line is there (by name: photo_files names each photo once).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from maskwatch.atomic import OutputError
from maskwatch.video.sources import SourceInfo, redact_source

RUN_RECORD = "detect-run.json"
PHOTOS = ("image", "folder")


def run_identity(source: str, info: SourceInfo, settings: dict) -> dict:
    """What a run's lines depend on: its source (a path made absolute; a URL without its
    password) and kind, and its settings as JSON gives them back (so that they compare equal)."""
    where = str(Path(source).resolve()) if info.kind in (*PHOTOS, "video") else redact_source(source)
    return {"source": where, "kind": info.kind, "settings": json.loads(json.dumps(settings))}


def read_record(out: Path) -> dict | None:
    """OUT's detect-run.json, or None where there is none (or it is not one)."""
    try:
        record = json.loads((Path(out) / RUN_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and isinstance(record.get("settings"), dict) else None


@dataclass
class Resumed:
    """What an earlier run into OUT left: the photos its lines name, and where its last whole line ends."""

    names: set[str] = field(default_factory=set)
    end: int = 0  # bytes of detections.jsonl up to its last whole line: a line a kill cut short is after


def _differences(then: dict, now: dict, prefix: str = "") -> list[str]:
    """The settings that differ, as "name: then -> now"."""
    said = []
    for key in sorted(set(then) | set(now)):
        a, b = then.get(key), now.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            said += _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            short = (lambda v: f"{v[:12]}..." if isinstance(v, str) and len(v) == 64 else json.dumps(v))
            said.append(f"{prefix}{key} {short(a)} then, {short(b)} now")
    return said


def earlier_run(out: Path, identity: dict, names: set[str], copies: bool = False) -> Resumed:
    """The lines an earlier run of the same source and settings left in OUT, to go on from;
    OutputError (nothing written) where appending to them would mix two runs' answers. `names`
    are the names of the photos the source holds now; copies: the run writes annotated copies."""
    out = Path(out)
    lines_path = out / "detections.jsonl"
    if not lines_path.is_file():
        return Resumed()  # nothing to go on from: the run starts afresh
    record = read_record(out)
    refuse = "; detect into another --out, or again without --resume to replace them (nothing was written)"
    if record is None and (out / RUN_RECORD).exists():  # cut short, edited, or a later maskwatch's
        raise OutputError(f"{out / RUN_RECORD}: not a record of a detect run this maskwatch can read, so which "
                          f"source and settings the lines beside it are of is not known{refuse}")
    if record is None:
        raise OutputError(f"{lines_path}: no {RUN_RECORD} beside it says which source and settings its lines are "
                          f"of (written by a maskwatch before --resume, or not by detect){refuse}")
    if record.get("kind") not in PHOTOS:
        raise OutputError(f"{lines_path}: its lines are of a {record.get('kind')} ({record.get('source')}), whose "
                          f"tracks cannot be resumed{refuse}")
    if (record.get("source"), record.get("kind")) != (identity["source"], identity["kind"]):
        raise OutputError(f"{lines_path}: its lines are of {record.get('source')}, not {identity['source']}{refuse}")
    if record.get("settings") != identity["settings"]:
        changed = _differences(record.get("settings") or {}, identity["settings"])
        raise OutputError(f"{lines_path}: its lines were written with other settings ({'; '.join(changed[:3])}"
                          f"{' ...' * (len(changed) > 3)}){refuse}")
    resumed, cut = Resumed(), False
    with open(lines_path, "rb") as lines:
        for number, line in enumerate(lines, 1):
            if not line.endswith(b"\n"):
                cut = True  # the last line, cut short by a kill: written again
                break
            try:
                name = json.loads(line)["name"]
            except (ValueError, TypeError, KeyError):
                raise OutputError(f"{lines_path}, line {number}: not a line of detect's (no JSON object with a "
                                  f"'name'){refuse}") from None
            if name not in names:
                raise OutputError(f"{lines_path}, line {number}: photo {name!r} is not in {identity['source']} under "
                                  "that name now (removed or renamed since, or a photo of the same stem added, "
                                  f"which renames both); --resume cannot tell which photos are done{refuse}")
            if name in resumed.names:  # pasted twice, or two runs' lines joined: which is this run's is not known
                raise OutputError(f"{lines_path}, line {number}: a second line of photo {name!r} (a run writes one; "
                                  f"these were joined or edited by hand); --resume cannot tell which is the run's{refuse}")
            resumed.names.add(name)
            resumed.end += len(line)
            last = (name, len(line))
    # A photo's line is written before its copy: a run stopped between (a kill, Ctrl-C) left its
    # last line without its copy, or beside an earlier run's, and file times are too coarse to
    # tell. That photo is done again, unless a line begun after it, or the run's getting through,
    # says its copy was written.
    if copies and resumed.names and not cut and not record.get("complete"):
        resumed.names.discard(last[0])
        resumed.end -= last[1]
    return resumed


def stopped_part_way(out: Path) -> str | None:
    """Said of an earlier photo run into OUT that did not get through its photos (Ctrl-C, a
    kill, a full disk), which a run without --resume replaces; None otherwise."""
    record = read_record(out)
    if record is None or record.get("kind") != "folder" or record.get("complete", True):
        return None
    try:
        with open(Path(out) / "detections.jsonl", "rb") as lines:
            done = sum(block.count(b"\n") for block in iter(lambda: lines.read(1 << 20), b""))
    except OSError:
        return None
    photos = record.get("photos")
    if not isinstance(photos, int) or not 0 < done < photos:
        return None
    return (f"{out} held a run on {record.get('source')} stopped after {done} of {record['photos']} photos, "
            "replaced now: `--resume` goes on from where a stopped run ended")

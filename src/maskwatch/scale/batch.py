"""`maskwatch batch`: photos and videos scored on Ray, each exactly as `maskwatch detect` would.

    report = run_batch(["archive/", "door.mp4"], Path("out"), ScoreOptions(), actors=2)

Photos go through Ray Data in batches to a pool of actors that load the models once; each
video goes whole to one actor call, as tracking needs its frames in order. Actors get paths,
never pixels: each reads its files itself (BGR, as OpenCV reads them), so a bad file fails on
its own. Finished files are skipped on a re-run; OUT/batch.json lists every file's outcome.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import math
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from maskwatch.atomic import OutputError, check_output_folder, make_output_folder, only_writer, write_text
from maskwatch.progress import progress_bar
from maskwatch.runtime import single_threaded
from maskwatch.scale.cluster import ClusterError, cluster_cpus, cpus_each, ray_cluster
from maskwatch.scale.files import BatchFile, ScoreOptions, find_files, score_file

PHOTO_BATCH = 16  # photos per actor call: enough to amortise a call, few enough to share out
# Ray Data can hang when actors hold every CPU and its own tasks get none (ray issue 44687):
# together, actors take at most this share of the cluster's CPUs.
ACTOR_CPU_SHARE = 0.9
# A call whose actor dies (killed, out of memory) is tried this many times more, then its files
# fail: Ray Data retries forever by default, and a file that killed its actor each time (a
# photo too big for the worker's memory) kept the batch going for ever.
ACTOR_RETRIES = 2
SUMMARY = "batch.json"


@dataclass
class BatchReport:
    """What a batch did: one row per file (see files.score_file), skipped files included."""

    out: Path
    files: list[dict] = field(default_factory=list)
    actors: int = 0
    seconds: float = 0.0
    interrupted: bool = False  # stopped before every file was scored (Ctrl-C, the cluster lost)
    # Rows of earlier runs' files whose outputs are still in OUT: which file each folder holds
    earlier: list[dict] = field(default_factory=list)
    # Input files passed over (a detect run's annotated copies in an input folder), said as `detect` says them
    warnings: list[str] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(row["status"] == status for row in self.files)

    @property
    def failed(self) -> list[dict]:
        return [row for row in self.files if row["status"] == "failed"]

    def to_dict(self) -> dict:
        return {"files": len(self.files), "done": self.count("done"), "skipped": self.count("skipped"),
                "failed": self.count("failed"), "actors": self.actors, "seconds": round(self.seconds, 2),
                "interrupted": self.interrupted, "warnings": self.warnings, "results": self.files, "earlier": self.earlier}


class FileScorer:
    """A Ray Data actor: loads the detector once, scores each batch of files into OUT.

    Batches are columns of BatchFile fields (path, key, kind); it returns one row per file.
    """

    def __init__(self, out: str, options: ScoreOptions) -> None:
        self.detector = options.models.load(threads=single_threaded())
        self.out, self.options = Path(out), options

    def __call__(self, batch: dict) -> dict:
        rows = [score_file(BatchFile(str(path), str(key), str(kind)), self.out, self.detector, self.options)
                for path, key, kind in zip(batch["path"], batch["key"], batch["kind"])]
        # Columns of plain types for Arrow: warnings travel as one JSON string per file.
        return {name: [json.dumps(row[name]) if name == "warnings" else row[name] for row in rows]
                for name in rows[0]} if rows else {}


def _scored(files: list[BatchFile], out: Path, options: ScoreOptions, actors: int, batch_size: int) -> Iterator[dict]:
    """Rows of scored files as Ray Data hands them back (in any order); the files of a call whose
    actor died ACTOR_RETRIES + 1 times get none."""
    if not files:
        return
    import ray.data

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # ours counts files, Ray's would count blocks
    context.print_on_execution_start = False
    context.max_errored_blocks = -1  # a call that failed for good loses its files only (see _score_all)
    logging.getLogger("ray.data").setLevel(logging.WARNING)  # no "execution finished" lines
    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)  # nor "progress bars disabled"
    # nor a traceback per lost call: its files are reported failed, with the reason
    logging.getLogger("ray.data._internal.execution.streaming_executor_state").setLevel(logging.CRITICAL)
    dataset = ray.data.from_items([asdict(f) for f in files],
                                  override_num_blocks=math.ceil(len(files) / batch_size))
    pool = min(actors, math.ceil(len(files) / batch_size))
    # One call at a time per actor: a call queued behind one whose actor died would be charged a retry.
    with warnings.catch_warnings():  # Ray 2.60 (pinned) names no parameter for the retries: **ray_remote_args
        warnings.simplefilter("ignore", DeprecationWarning)
        scored = dataset.map_batches(FileScorer, fn_constructor_args=(str(out), options), batch_size=batch_size,
                                     batch_format="numpy",
                                     compute=ray.data.ActorPoolStrategy(size=pool, max_tasks_in_flight_per_actor=1),
                                     num_cpus=cpus_each(actors, ACTOR_CPU_SHARE),
                                     max_restarts=-1, max_task_retries=ACTOR_RETRIES)
    for row in scored.iter_rows():
        yield {"file": str(row["file"]), "output": str(row["output"]), "status": str(row["status"]),
               "frames": int(row["frames"]), "faces": int(row["faces"]), "error": str(row["error"]),
               "warnings": json.loads(row["warnings"])}


def _score_all(todo: list[BatchFile], out: Path, options: ScoreOptions, actors: int) -> Iterator[dict]:
    """One row per file of `todo`. The photos of a call whose actor kept dying are scored again
    one per call, so that only the file that kills it fails."""
    photos = [f for f in todo if f.kind == "photo"]
    batch = max(1, min(PHOTO_BATCH, math.ceil(len(photos) / actors)))
    videos = [f for f in todo if f.kind == "video"]  # one per actor call: whole, in order
    returned: set[str] = set()
    for row in itertools.chain(_scored(photos, out, options, actors, batch), _scored(videos, out, options, actors, 1)):
        returned.add(row["file"])
        yield row
    lost = [f for f in todo if f.path not in returned]
    alone = [f for f in lost if f.kind == "photo" and batch > 1 and not f.done(out)]
    for row in _scored(alone, out, options, actors, 1):
        returned.add(row["file"])
        yield row
    for file in todo:
        if file.path in returned:
            continue
        if file.done(out):  # written before its actor died
            yield _read_back(file, out)
        else:
            yield {"file": file.path, "output": file.key, "status": "failed", "frames": 0, "faces": 0, "warnings": [],
                   "error": f"{file.path}: the actor scoring it died {ACTOR_RETRIES + 1} times (killed, or out of "
                            "memory); a re-run tries it again"}


def run_batch(inputs: list[str | Path], out: Path, options: ScoreOptions | None = None,
              actors: int | None = None, address: str | None = None, progress: bool = True) -> BatchReport:
    """Score every photo and video of `inputs` into OUT/<key>/, skipping finished ones.

    actors: size of the actor pool (default: one per CPU of the cluster). address: a Ray
    cluster to join; without one a local cluster is started, and shut down at the end.
    Raises BatchInputError (bad inputs) or ClusterError (no cluster) before scoring anything;
    ClusterError too where Ray stops the batch part-way (actors that cannot start).
    """
    if actors is not None and actors < 1:
        raise ValueError(f"--actors must be at least 1, got {actors}")
    options = options or ScoreOptions()
    started = time.monotonic()
    passed_over: list[str] = []
    files = find_files(inputs, out, passed_over)
    out = check_output_folder(Path(out).resolve())  # actors may run elsewhere: every path they get is absolute
    report = BatchReport(out=out, warnings=passed_over)
    earlier = _earlier_results(out)
    owner = {row["output"]: file for file, row in earlier.items()}
    todo = []
    for file in files:
        if not file.done(out):
            todo.append(file)
        elif owner.get(file.key, file.path) != file.path:  # another file of the same name, scored by an earlier run
            report.files.append({"file": file.path, "output": file.key, "status": "failed", "frames": None,
                                 "faces": None, "error": f"OUT/{file.key} holds the outputs of {owner[file.key]}; score this file "
                                          "into another --out", "warnings": []})
        else:
            known = earlier.get(file.path) or _read_back(file, out)  # no earlier row: batch.json lost with its driver
            report.files.append({"frames": None, "faces": None, "error": "", "warnings": []} | known
                                | {"file": file.path, "output": file.key, "status": "skipped"})
    scoring = not todo  # a cluster that cannot be reached stops the batch with nothing written
    held = contextlib.ExitStack()  # OUT, held from its check to batch.json's write
    try:
        if todo:
            with ray_cluster(address):
                from ray.exceptions import RayError

                _check_writable(out)
                held.enter_context(only_writer(out, f"{out}: another maskwatch batch is writing here; wait for it to "
                                                    "end or give another --out"))
                scoring = True
                report.actors = actors or max(1, int(cluster_cpus()))
                _remove_leftovers(files, out)
                rows = _score_all(todo, out, options, report.actors)
                bar = progress_bar(rows, total=len(todo), desc="batch", unit="file", disable=not progress)
                try:
                    for row in bar:
                        report.files.append(row)
                    _remove_leftovers(todo, out)  # of attempts killed part-way
                except RayError as err:  # actors that cannot start (a model file missing on a node): a line, not
                    # Ray's pages of traceback, whose last line says why
                    reason = str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__
                    raise ClusterError(f"the batch stopped: {reason}; the files scored so far are in "
                                       f"{out / SUMMARY}") from None
                finally:
                    bar.close()
    except BaseException:  # Ctrl-C or a lost cluster: what was scored is recorded all the same
        report.interrupted = True
        raise
    finally:
        if scoring:
            # Rows come back a call (up to PHOTO_BATCH files) at a time: after a Ctrl-C or a lost
            # cluster, files written since the last one are read back, not left out.
            scored = {row["file"] for row in report.files}
            report.files += [_read_back(f, out) for f in todo if f.path not in scored and f.done(out)]
            order = {f.path: i for i, f in enumerate(files)}
            report.files.sort(key=lambda row: order[row["file"]])
            report.seconds = time.monotonic() - started
            now = {f.path for f in files}
            report.earlier = [row for path, row in earlier.items() if path not in now and (out / row["output"]).is_dir()]
            write_text(out / SUMMARY, json.dumps(report.to_dict(), indent=2))
        held.close()
    return report


def _read_back(file: BatchFile, out: Path) -> dict:
    """The row of a file whose output folder is complete but whose row never came back (Ctrl-C, a
    lost driver or actor): frames and faces counted from its detections.jsonl (null if unreadable)."""
    row = {"file": file.path, "output": file.key, "status": "done", "frames": None, "faces": None,
           "error": "", "warnings": []}
    try:
        with open(out / file.key / "detections.jsonl", encoding="utf-8") as lines:
            faces = [len(json.loads(line)["faces"]) for line in lines if line.strip()]
    except (OSError, ValueError, KeyError, TypeError):
        return row
    return row | {"frames": len(faces), "faces": sum(faces)}


def _check_writable(out: Path) -> None:
    """OutputError unless files can be made in OUT (made here): else every file failed on its own
    actor, models loaded and all, before batch.json could not be written either."""
    make_output_folder(out)
    try:
        tempfile.TemporaryFile(dir=out).close()
    except OSError as err:
        raise OutputError(f"{out}: cannot write in the output folder ({err.strerror or err}); nothing was scored") from None


def _remove_leftovers(files: list[BatchFile], out: Path) -> None:
    """The temp folders (atomic_dir's .NAME.*.partial and .old) in the folders of `files`' outputs:
    a killed actor or a Ctrl-C leaves them (a half-written video's can be large), and nothing else
    would remove them. Called while no actor writes: before the scoring and after it."""
    for folder in {(out / f.key).parent for f in files}:
        with contextlib.suppress(OSError):
            for entry in os.scandir(folder):
                if entry.name.startswith(".") and entry.name.endswith((".partial", ".old")) \
                        and entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)


def _earlier_results(out: Path) -> dict[str, dict]:
    """The rows of an earlier batch.json by file, so that a file skipped now keeps its figures and
    an output folder is known to be that file's."""
    try:
        summary = json.loads((out / SUMMARY).read_text())
        rows = summary.get("earlier", []) + summary["results"]
        return {row["file"]: row for row in rows if row.get("status") in ("done", "skipped")}
    except (OSError, ValueError, KeyError, TypeError):  # none yet, or not ours: nothing to carry over
        return {}


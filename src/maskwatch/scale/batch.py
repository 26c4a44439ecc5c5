"""`maskwatch batch`: photos and videos scored on Ray, each exactly as `maskwatch detect` would.

    report = run_batch(["archive/", "door.mp4"], Path("out"), ScoreOptions(), actors=2)

Photos go through Ray Data in batches to a pool of actors that load the models once; each
video goes whole to one actor call, as tracking needs its frames in order. Actors get paths,
never pixels: each reads its files itself (BGR, as OpenCV reads them), so a bad file fails on
its own. Finished files are skipped on a re-run; OUT/batch.json lists every file's outcome.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from maskwatch.atomic import check_output_folder, write_text
from maskwatch.progress import progress_bar
from maskwatch.runtime import single_threaded
from maskwatch.scale.cluster import cluster_cpus, cpus_each, ray_cluster
from maskwatch.scale.files import BatchFile, ScoreOptions, find_files, score_file

PHOTO_BATCH = 16  # photos per actor call: enough to amortise a call, few enough to share out
# Ray Data can hang when actors hold every CPU and its own tasks get none (ray issue 44687):
# together, actors take at most this share of the cluster's CPUs.
ACTOR_CPU_SHARE = 0.9
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

    def count(self, status: str) -> int:
        return sum(row["status"] == status for row in self.files)

    @property
    def failed(self) -> list[dict]:
        return [row for row in self.files if row["status"] == "failed"]

    def to_dict(self) -> dict:
        return {"files": len(self.files), "done": self.count("done"), "skipped": self.count("skipped"),
                "failed": self.count("failed"), "actors": self.actors, "seconds": round(self.seconds, 2),
                "interrupted": self.interrupted, "results": self.files, "earlier": self.earlier}


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
    """Rows of scored files as Ray Data hands them back (in any order)."""
    if not files:
        return
    import ray.data

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # ours counts files, Ray's would count blocks
    context.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)  # no "execution finished" lines
    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)  # nor "progress bars disabled"
    dataset = ray.data.from_items([asdict(f) for f in files],
                                  override_num_blocks=math.ceil(len(files) / batch_size))
    pool = min(actors, math.ceil(len(files) / batch_size))
    scored = dataset.map_batches(FileScorer, fn_constructor_args=(str(out), options), batch_size=batch_size,
                                 batch_format="numpy",
                                 compute=ray.data.ActorPoolStrategy(size=pool),
                                 num_cpus=cpus_each(actors, ACTOR_CPU_SHARE))
    for row in scored.iter_rows():
        yield {"file": str(row["file"]), "output": str(row["output"]), "status": str(row["status"]),
               "frames": int(row["frames"]), "faces": int(row["faces"]), "error": str(row["error"]),
               "warnings": json.loads(row["warnings"])}


def run_batch(inputs: list[str | Path], out: Path, options: ScoreOptions | None = None,
              actors: int | None = None, address: str | None = None, progress: bool = True) -> BatchReport:
    """Score every photo and video of `inputs` into OUT/<key>/, skipping finished ones.

    actors: size of the actor pool (default: one per CPU of the cluster). address: a Ray
    cluster to join; without one a local cluster is started, and shut down at the end.
    Raises BatchInputError (bad inputs) or ClusterError (no cluster) before scoring anything.
    """
    if actors is not None and actors < 1:
        raise ValueError(f"--actors must be at least 1, got {actors}")
    options = options or ScoreOptions()
    started = time.monotonic()
    files = find_files(inputs, out)
    out = check_output_folder(Path(out).resolve())  # actors may run elsewhere: every path they get is absolute
    report = BatchReport(out=out)
    earlier = _earlier_results(out)
    owner = {row["output"]: file for file, row in earlier.items()}
    todo = []
    for f in files:
        if not f.done(out):
            todo.append(f)
        elif owner.get(f.key, f.path) != f.path:  # another file of the same name, scored by an earlier run
            report.files.append({"file": f.path, "output": f.key, "status": "failed", "frames": None, "faces": None,
                                 "error": f"OUT/{f.key} holds the outputs of {owner[f.key]}; score this file "
                                          "into another --out", "warnings": []})
        else:
            report.files.append({"frames": None, "faces": None, "error": "", "warnings": []} | earlier.get(f.path, {})
                                | {"file": f.path, "output": f.key, "status": "skipped"})
    scoring = not todo  # a cluster that cannot be reached stops the batch with nothing written
    try:
        if todo:
            with ray_cluster(address):
                scoring = True
                report.actors = actors or max(1, int(cluster_cpus()))
                photos = [f for f in todo if f.kind == "photo"]
                batch = max(1, min(PHOTO_BATCH, math.ceil(len(photos) / report.actors)))
                videos = [f for f in todo if f.kind == "video"]  # one per actor call: whole, in order
                rows = itertools.chain(_scored(photos, out, options, report.actors, batch),
                                       _scored(videos, out, options, report.actors, 1))
                bar = progress_bar(rows, total=len(todo), desc="batch", unit="file", disable=not progress)
                try:
                    for row in bar:
                        report.files.append(row)
                finally:
                    bar.close()
    except BaseException:  # Ctrl-C or a lost cluster: what was scored is recorded all the same
        report.interrupted = True
        raise
    finally:
        if scoring:
            order = {f.path: i for i, f in enumerate(files)}
            report.files.sort(key=lambda row: order[row["file"]])
            report.seconds = time.monotonic() - started
            now = {f.path for f in files}
            report.earlier = [row for path, row in earlier.items() if path not in now and (out / row["output"]).is_dir()]
            write_text(out / SUMMARY, json.dumps(report.to_dict(), indent=2))
    return report


def _earlier_results(out: Path) -> dict[str, dict]:
    """The rows of an earlier batch.json by file, so that a file skipped now keeps its figures and
    an output folder is known to be that file's."""
    try:
        summary = json.loads((out / SUMMARY).read_text())
        rows = summary.get("earlier", []) + summary["results"]
        return {row["file"]: row for row in rows if row.get("status") in ("done", "skipped")}
    except (OSError, ValueError, KeyError, TypeError):  # none yet, or not ours: nothing to carry over
        return {}


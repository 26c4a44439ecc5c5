"""The `maskwatch` command line: thin wrappers over the library functions the tests call."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

app = typer.Typer(
    help="maskwatch: who wears a face mask, who wears it wrongly, who wears none.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

Progress = Annotated[bool, typer.Option("--progress/--quiet", help="Show progress bars.")]


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=1)


def _need_train_extra() -> None:
    try:
        import sklearn  # noqa: F401
        import torch  # noqa: F401
    except ImportError:
        _fail("this command trains or evaluates models and needs the train extra: "
              "pip install 'maskwatch[train]'")


@app.command()
def prepare(
    data: Annotated[Path, typer.Argument(help="Dataset folder with annotations/*.xml and images/.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Work folder to write.")],
    size: Annotated[int, typer.Option(help="Side of the square crops, in pixels.")] = 64,
    margin: Annotated[float, typer.Option(help="Context around each box, as a fraction of its side.")] = 0.0,
    grey: Annotated[bool, typer.Option("--grey/--colour", help="Drop colour from the crops.")] = False,
    strict: Annotated[bool, typer.Option(help="Stop at the first bad input instead of skipping it.")] = False,
    split_by: Annotated[str, typer.Option(help="Also write split.csv, grouped by 'photo' or by 'face'.")] = "photo",
    seed: Annotated[int, typer.Option(help="Seed of the split.")] = 0,
    progress: Progress = True,
) -> None:
    """Parse Pascal VOC annotations into faces.csv and crop every face."""
    from maskwatch.data.crops import CropSpec
    from maskwatch.data.prepare import PrepareError
    from maskwatch.data.prepare import prepare as run_prepare

    if size < 8 or not 0 <= margin <= 2:
        _fail(f"--size must be at least 8 and --margin between 0 and 2, got {size} and {margin}")
    try:
        result = run_prepare(data, out, CropSpec(size=size, margin=margin, grey=grey), strict=strict,
                             progress=progress)
    except PrepareError as err:
        _fail(str(err))
    counts = ", ".join(f"{c} {n}" for c, n in result.per_class.items())
    typer.echo(f"{result.faces} faces from {result.photos} photos ({counts}) -> {out}/faces.csv")
    if result.problems:
        typer.secho(f"{len(result.problems)} inputs skipped; see {out}/skipped.csv", fg=typer.colors.YELLOW)
    split(out, by=split_by, seed=seed)


@app.command()
def split(
    work: Annotated[Path, typer.Argument(help="Work folder written by `maskwatch prepare`.")],
    by: Annotated[str, typer.Option(help="'photo' (no leak) or 'face' (the study's split, leaks).")] = "photo",
    val_fraction: Annotated[float, typer.Option(help="Share of faces held out for validation.")] = 0.2,
    seed: Annotated[int, typer.Option()] = 0,
    out: Annotated[Optional[Path], typer.Option(help="Split file to write (default WORK/split.csv).")] = None,
) -> None:
    """Split faces into train and validation, every face of a photo on one side."""
    from maskwatch.data.prepare import PrepareError, read_faces_csv
    from maskwatch.data.split import split_faces, write_split_csv

    try:
        rows = read_faces_csv(work / "faces.csv")
        is_val = split_faces([r["label"] for r in rows], [r["image"] for r in rows], by=by,
                             val_fraction=val_fraction, seed=seed)
    except (PrepareError, ValueError) as err:
        _fail(str(err))
    target = out or work / "split.csv"
    write_split_csv(target, [r["face_id"] for r in rows], is_val, by=by, seed=seed)
    typer.echo(f"split by {by}: {int((~is_val).sum())} train, {int(is_val.sum())} validation faces -> {target}")


@app.command()
def train(
    work: Annotated[Path, typer.Argument(help="Work folder written by `maskwatch prepare`.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder to write.")],
    model: Annotated[str, typer.Option(help="Architecture: seed-cnn (the study's).")] = "seed-cnn",
    epochs: Annotated[int, typer.Option()] = 10,
    batch_size: Annotated[int, typer.Option()] = 32,
    lr: Annotated[float, typer.Option(help="Learning rate (peak rate with --schedule onecycle).")] = 1e-3,
    seed: Annotated[int, typer.Option()] = 0,
    augment: Annotated[bool, typer.Option(help="Flip, shift and light jitter while training.")] = False,
    balance: Annotated[str, typer.Option(help="'none' or 'loss' (class-weighted loss).")] = "none",
    schedule: Annotated[str, typer.Option(help="'constant' or 'onecycle'.")] = "constant",
    split_csv: Annotated[Optional[Path], typer.Option("--split", help="Split file (default WORK/split.csv).")] = None,
    progress: Progress = True,
) -> None:
    """Train a classifier on the crops; writes weights, history.csv and curves.png."""
    _need_train_extra()
    from maskwatch.training.train import TrainConfig, train_run

    try:
        cfg = TrainConfig(model=model, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
                          augment=augment, balance=balance, schedule=schedule)
        run = train_run(work, out, cfg, split_csv=split_csv, progress=progress)
    except (ValueError, FileNotFoundError) as err:
        _fail(str(err))
    typer.echo(f"trained {model} -> {run} (history.csv, curves.png, model.safetensors)")


@app.command()
def evaluate(run: Annotated[Path, typer.Argument(help="Run folder written by `maskwatch train`.")]) -> None:
    """Score a run on its validation faces: metrics.json and confusion.png."""
    _need_train_extra()
    from maskwatch.training.evaluate import evaluate_run

    try:
        metrics = evaluate_run(run)
    except (ValueError, FileNotFoundError) as err:
        _fail(str(err))
    typer.echo(json.dumps({k: metrics[k] for k in ("accuracy", "macro_f1")}
                          | {"recall": {c: round(v["recall"], 4) for c, v in metrics["per_class"].items()}},
                          indent=2))
    typer.echo(f"-> {run}/metrics.json, {run}/confusion.png")


@app.command()
def study(
    data: Annotated[Path, typer.Argument(help="Dataset folder with annotations/*.xml and images/.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the work, runs and report.")],
    epochs: Annotated[int, typer.Option()] = 10,
    size: Annotated[int, typer.Option(help="Crop side in pixels.")] = 64,
    seed: Annotated[int, typer.Option()] = 0,
    progress: Progress = True,
) -> None:
    """The original study in one command: colour vs grey, per-photo vs per-face split."""
    _need_train_extra()
    from maskwatch.data.prepare import PrepareError
    from maskwatch.training.study import StudyConfig, run_study

    try:
        report = run_study(data, out, StudyConfig(size=size, epochs=epochs, seed=seed), progress=progress)
    except (PrepareError, ValueError, FileNotFoundError) as err:
        _fail(str(err))
    typer.echo(f"report: {report}")


if __name__ == "__main__":
    app()

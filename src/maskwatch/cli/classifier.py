"""The classifier's commands, in the order they are used: prepare (crops and a split), split, render
(masks drawn on bare faces), train, evaluate, cv (cross-validation) and export (to ONNX)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from maskwatch.cli.common import (SEED_RANGE, Progress, _fail, _output_folder, _refuse_folder, _sigterm_as_ctrl_c,
                                  _with_option, need_centerface)
from maskwatch.extras import need as _need

commands = typer.Typer()  # included straight under `maskwatch` by maskwatch.cli

SKIPPED_SHOWN = 5  # problems `prepare` prints; skipped.csv lists them all


def _recipe(model: str, **options):
    """`model`'s recipe (TrainConfig, CropSpec) with the options given: one at a time, so that a value
    out of its range is a usage error naming its option (`--epochs 0` was exit 1, 'epochs must be ...')."""
    from maskwatch.training.classifier.recipes import recipe

    try:
        cfg, spec = recipe(model)
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="'--model'") from None
    for field, value in options.items():
        if value is not None:
            option = "--" + field.replace("_", "-")
            if field in ("size", "margin", "grey"):
                spec = _with_option(spec, option, value)
            else:
                cfg = _with_option(cfg, option, value)
    return cfg, spec


Model = Annotated[str, typer.Option(help="Architecture: effnet-lite0 (default), effnet-lite1 (larger), seed-cnn (the study's) or gate-cnn (the seed CNN with batch normalisation, for a gate).")]
Epochs = Annotated[Optional[int], typer.Option(help="Epochs (default: the model's recipe).")]
BatchSize = Annotated[Optional[int], typer.Option(help="Batch size (default: the model's recipe).")]
LearningRate = Annotated[Optional[float], typer.Option(help="Learning rate, peak rate with onecycle (default: recipe).")]
Augment = Annotated[Optional[bool], typer.Option("--augment/--no-augment", help="Flip, shift, light jitter (default: recipe).")]
Balance = Annotated[Optional[str], typer.Option(help="Class weights in the loss: 'none', 'sqrt' (1/sqrt(freq)) or 'inverse' (1/freq) (default: recipe).")]
Rendered = Annotated[Optional[float], typer.Option(help="Renders of `maskwatch render` (masks worn right and wrongly on bare training faces) as a share of each batch (default: recipe).")]
Schedule = Annotated[Optional[str], typer.Option(help="'constant' or 'onecycle' (default: recipe).")]
Device = Annotated[str, typer.Option(help="Where the network trains: 'cpu', or 'cuda' on a machine with an NVIDIA GPU and a CUDA build of PyTorch.")]
Init = Annotated[Optional[str], typer.Option("--init", help="Start from a trained classifier instead of ImageNet's weights: 'shipped', an .onnx file of `maskwatch export`, or a run folder (same --model and crops); without --lr, at a tenth of the recipe's rate.")]


def _with_init(cfg, init: str | None, lr: float | None):
    """cfg starting from --init's classifier (initial.py), a usage error naming it where there is none;
    without --lr, at a share of the recipe's rate (INIT_LR_SHARE: the recipe's undid the start)."""
    if init is None:
        return cfg
    from maskwatch.training.classifier.initial import INIT_LR_SHARE, init_source

    try:
        cfg = _with_option(cfg, "--init", str(init_source(init)))
    except ValueError as err:
        raise typer.BadParameter(str(err).removeprefix(f"--init {init}: "), param_hint="'--init'") from None
    return cfg if lr is not None else _with_option(cfg, "--lr", cfg.lr * INIT_LR_SHARE)


@commands.command()
def prepare(
    data: Annotated[list[Path], typer.Argument(help="Dataset folder with annotations/*.xml and images/; several (your photos and the Kaggle set) are prepared as one.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Work folder to write.")],
    size: Annotated[int, typer.Option(help="Side of the square crops, 8-512 pixels.")] = 64,
    margin: Annotated[float, typer.Option(help="Context around each box, as a fraction of its side.")] = 0.0,
    grey: Annotated[bool, typer.Option("--grey/--colour", help="Drop colour from the crops.")] = False,
    strict: Annotated[bool, typer.Option(help="Stop at the first bad input instead of skipping it.")] = False,
    split_by: Annotated[str, typer.Option(help="Also write split.csv, grouped by 'photo' or by 'face'.")] = "photo",
    seed: Annotated[int, typer.Option(help="Seed of the split.", **SEED_RANGE)] = 0,
    progress: Progress = True,
) -> None:
    """Parse Pascal VOC annotations into faces.csv and crop every face."""
    _need("prepare", "train", ("sklearn",))  # the split; checked before anything is written
    if split_by not in ("photo", "face"):  # said after every face was cropped
        raise typer.BadParameter(f"must be 'photo' or 'face', got {split_by!r}", param_hint="'--split-by'")
    from maskwatch.atomic import OutputError
    from maskwatch.data.crops import CropSpec
    from maskwatch.data.prepare import PrepareError
    from maskwatch.data.prepare import prepare as run_prepare

    spec = _with_option(_with_option(CropSpec(grey=grey), "--size", size), "--margin", margin)
    try:
        result = run_prepare(data, out, spec, strict=strict, progress=progress)
    except (PrepareError, OutputError) as err:
        _fail(str(err))
    counts = ", ".join(f"{c} {n}" for c, n in result.per_class.items())
    typer.echo(f"{result.faces} faces from {result.photos} photos ({counts}) -> {out}/faces.csv")
    _say_skipped(result.problems, out)
    split(out, by=split_by, seed=seed)


def _say_skipped(problems: list[tuple[str, str]], work: Path) -> None:
    """The inputs `prepare` skipped, the first few on screen: a label typed otherwise drops the very
    faces a site corrected, and a count alone was easily read past."""
    if not problems:
        return
    shown = SKIPPED_SHOWN if len(problems) > SKIPPED_SHOWN + 1 else len(problems)
    typer.secho(f"{len(problems)} input{'s' if len(problems) > 1 else ''} skipped:", fg=typer.colors.YELLOW, err=True)
    for where, what in problems[:shown]:
        typer.secho(f"  {where}: {what}", fg=typer.colors.YELLOW, err=True)
    more = f"{len(problems) - shown} more in" if len(problems) > shown else "all in"
    typer.secho(f"  ({more} {work}/skipped.csv)", fg=typer.colors.YELLOW, err=True)


@commands.command()
def split(
    work: Annotated[Path, typer.Argument(help="Work folder written by `maskwatch prepare`.")],
    by: Annotated[str, typer.Option(help="'photo' (no leak) or 'face' (the study's split, leaks).")] = "photo",
    val_fraction: Annotated[float, typer.Option(help="Share of faces held out for validation; a per-photo split holds out one fold of k, so 1/k: 0.5, 0.333, 0.25, 0.2 ...")] = 0.2,
    seed: Annotated[int, typer.Option(help="Seed of the split.", **SEED_RANGE)] = 0,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Split file to write (default WORK/split.csv).")] = None,
) -> None:
    """Split faces into train and validation, every face of a photo on one side."""
    _need("split", "train", ("sklearn",))
    from maskwatch.data.prepare import PrepareError, read_faces_csv
    from maskwatch.data.split import split_faces, write_split_csv

    try:
        rows = read_faces_csv(work / "faces.csv")
        is_val = split_faces([r["label"] for r in rows], [r["image"] for r in rows], by=by,
                             val_fraction=val_fraction, seed=seed)
        target = out or work / "split.csv"
        write_split_csv(target, [r["face_id"] for r in rows], is_val, by=by, seed=seed)
    except (PrepareError, ValueError) as err:  # OutputError too: a folder where the file would go
        _fail(str(err))
    typer.echo(f"split by {by}: {int((~is_val).sum())} train, {int(is_val.sum())} validation faces -> {target}")


@commands.command()
def render(
    work: Annotated[Path, typer.Argument(help="Work folder written by `maskwatch prepare` (colour crops).")],
    data: Annotated[Optional[Path], typer.Option(help="The dataset the work folder was prepared from (default: the one prepare.json names).")] = None,
    per_face: Annotated[int, typer.Option(help="Renders per bare face, half with the mask worn right.")] = 4,
    seed: Annotated[int, typer.Option(help="Seed of the renders' choices.", **SEED_RANGE)] = 0,
    progress: Progress = True,
) -> None:
    """Draw masks, worn right and wrongly, on every bare face of a work folder: WORK/rendered.npz
    (train with --rendered SHARE)."""
    _need("render", "train", ("torch",))
    need_centerface("render")
    if per_face < 2:
        raise typer.BadParameter(f"must be at least 2 (one worn right, one wrongly), got {per_face}",
                                 param_hint="'--per-face'")
    import json

    from maskwatch.atomic import os_error_text
    from maskwatch.data.prepare import PrepareError, dataset_folders, read_faces_csv
    from maskwatch.training.classifier.masks import render_work

    if not work.is_dir():  # Python's "[Errno 2] No such file or directory: 'WORK/prepare.json'" named neither
        _fail(f"{work}: {'not a folder' if work.exists() else 'no such folder'}; "
              f"`maskwatch prepare DATA -o {work}` makes a work folder")
    try:
        meta = json.loads((work / "prepare.json").read_text())
        rows = read_faces_csv(work / "faces.csv")
    except FileNotFoundError as err:
        _fail(f"{work}: not a prepared work folder (no {Path(err.filename).name}); run `maskwatch prepare`")
    except OSError as err:
        _fail(f"{work}: not a prepared work folder ({os_error_text(err)}); run `maskwatch prepare`")
    except (ValueError, PrepareError) as err:
        _fail(f"{work}: not a prepared work folder ({err}); run `maskwatch prepare`")
    crop = meta["crop"]
    if crop.get("grey") or crop.get("margin"):
        _fail(f"{work}: renders are colour crops of exactly the box; prepare with --colour --margin 0")
    folders = [data] if data else dataset_folders(meta)
    for folder in folders:
        if not (folder / "images").is_dir():
            _fail(f"{folder}: no images/ folder; pass the dataset with --data")
    if not any(row["label"] == "without_mask" for row in rows):
        _fail(f"{work}: no bare (without_mask) face to draw masks on")
    try:
        renders = render_work(rows, folders, crop["size"], per_face=per_face, seed=seed, progress=progress)
    except ValueError as err:  # a photo that does not read (ImageError), no real mask to take shapes from
        _fail(str(err))
    renders.save(work / "rendered.npz")
    typer.echo(f"{len(renders.labels)} renders of {len(set(renders.sources))} bare faces -> {work}/rendered.npz")


@commands.command()
def train(
    work: Annotated[Path, typer.Argument(help="Work folder written by `maskwatch prepare`.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder to write.")],
    model: Model = "effnet-lite0",
    epochs: Epochs = None,
    batch_size: BatchSize = None,
    lr: LearningRate = None,
    augment: Augment = None,
    balance: Balance = None,
    schedule: Schedule = None,
    rendered: Rendered = None,
    seed: Annotated[int, typer.Option(help="Seed of the training (initial weights, batches).", **SEED_RANGE)] = 0,
    split_csv: Annotated[Optional[Path], typer.Option("--split", help="Split file (default WORK/split.csv).")] = None,
    init: Init = None,
    night: Annotated[bool, typer.Option(
        "--night", help="Train a night model: every crop grey, with low-light and glare copies (export it with "
                        "`export --night`; it answers the faces of grey, infrared frames).")] = False,
    device: Device = "cpu",
    progress: Progress = True,
) -> None:
    """Train a classifier on the crops; writes weights, history.csv and curves.png."""
    _need("train", "train")
    from maskwatch.training.classifier.train import train_run

    cfg, _ = _recipe(model, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, augment=augment,
                     balance=balance, schedule=schedule, rendered=rendered, night=night or None)
    cfg = _with_init(cfg, init, lr)
    try:
        with _sigterm_as_ctrl_c():
            run = train_run(work, out, cfg, split_csv=split_csv, progress=progress, device=device)
    except (ValueError, FileNotFoundError) as err:
        _fail(str(err))
    except OSError as err:  # the run folder not written (a full disk): the epochs are not lost
        from maskwatch.training.classifier.train import checkpoint_path

        _fail(f"{err}; every trained epoch is kept in {checkpoint_path(out)}: free space, and the same command "
              "finishes the run from it")
    except KeyboardInterrupt:  # a traceback said nothing of what was kept
        from maskwatch.training.classifier.train import checkpoint_path

        _fail(f"interrupted (Ctrl-C or SIGTERM): {out} is written only once the run finishes; its last finished "
              f"epoch is kept in {checkpoint_path(out)} and the same command resumes from it", code=130)
    typer.echo(f"trained {model} -> {run} (history.csv, curves.png, model.safetensors)")


@commands.command()
def evaluate(run: Annotated[Path, typer.Argument(help="Run folder written by `maskwatch train`.")]) -> None:
    """Score a run on its validation faces: metrics.json and confusion.png."""
    _need("evaluate", "train")
    from maskwatch.training.classifier.evaluate import evaluate_run, format_recall_by_size

    try:
        metrics = evaluate_run(run)
    except (ValueError, FileNotFoundError) as err:
        _fail(str(err))
    typer.echo(json.dumps({k: metrics[k] for k in ("accuracy", "macro_f1")}
                          | {"recall": {c: None if v["recall"] is None else round(v["recall"], 4)
                                      for c, v in metrics["per_class"].items()}},
                          indent=2))
    cal = metrics["calibration"]
    unfitted = "" if cal.get("fitted", True) else " (not fitted: every validation face is answered right)"
    typer.echo(f"calibration: temperature {cal['temperature']:.3f}{unfitted}, ECE {cal['ece_before']:.4f} before, "
               f"{cal['ece_after']:.4f} after (cross-fitted)")
    doubt = cal["doubt"]
    typer.echo(f"doubt: under {doubt['threshold']:.3f} a face is unassessable ({doubt['declined']} of {doubt['faces']} "
               f"here, {doubt['wrong_among_declined']} of them wrong; {doubt['wrong_among_answered']} wrong among the rest)")
    typer.echo(format_recall_by_size(metrics["recall_by_size"]))
    typer.echo(f"-> {run}/metrics.json, {run}/confusion.png")


@commands.command()
def cv(
    data: Annotated[Path, typer.Argument(help="Dataset folder (annotations/, images/) or a prepared work folder.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for cv.json and cv.txt.")] = Path("cv-output"),
    folds: Annotated[int, typer.Option(help="Number of per-photo folds.")] = 5,
    model: Model = "effnet-lite0",
    size: Annotated[Optional[int], typer.Option(help="Crop side, 8-512 pixels (default: recipe).")] = None,
    margin: Annotated[Optional[float], typer.Option(help="Context margin (default: recipe).")] = None,
    epochs: Epochs = None,
    batch_size: BatchSize = None,
    lr: LearningRate = None,
    augment: Augment = None,
    balance: Balance = None,
    schedule: Schedule = None,
    rendered: Rendered = None,
    seed: Annotated[int, typer.Option(help="Seed of the folds and of the training.", **SEED_RANGE)] = 0,
    save_models: Annotated[bool, typer.Option(help="Keep each fold's model as OUT/fold-K (a run folder).")] = False,
    init: Init = None,
    device: Device = "cpu",
    progress: Progress = True,
) -> None:
    """Grouped (per-photo), class-stratified k-fold cross-validation: mean ± std of the metrics."""
    _need("cv", "train")
    _output_folder(out)
    if folds < 2:
        raise typer.BadParameter(f"must be at least 2 (each fold is held out once), got {folds}", param_hint="'--folds'")
    from maskwatch.data.prepare import PrepareError
    from maskwatch.data.prepare import prepare as run_prepare
    from maskwatch.training.classifier.crossval import format_summary, run_cv
    from maskwatch.training.classifier.dataset import load_crop_dataset

    cfg, spec = _recipe(model, size=size, margin=margin, epochs=epochs, batch_size=batch_size, lr=lr,
                        seed=seed, augment=augment, balance=balance, schedule=schedule, rendered=rendered)
    cfg = _with_init(cfg, init, lr)
    try:
        work = data
        if not (data / "prepare.json").is_file():
            if rendered:  # a work folder made here would hold no renders (each cv made it again)
                _fail(f"--rendered needs a work folder with renders: maskwatch prepare {data} -o WORK, "
                      f"maskwatch render WORK, then maskwatch cv WORK --rendered {rendered:g}")
            work = out / "work"
            _say_skipped(run_prepare(data, work, spec, progress=progress).problems, work)  # was said nowhere
        dataset = load_crop_dataset(work)
        if dataset.spec != spec and (size is not None or margin is not None):
            _fail(f"{work} holds {dataset.spec} crops, not the requested {spec}; prepare again")
        result = run_cv(dataset, cfg, out, folds=folds, seed=seed, progress=progress, save_models=save_models,
                        device=device)
    except (PrepareError, ValueError, FileNotFoundError) as err:
        _fail(str(err))
    typer.echo(format_summary(result))
    typer.echo(f"-> {out}/cv.json")


@commands.command()
def export(
    run: Annotated[Path, typer.Argument(help="Run folder written by `maskwatch train`.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="ONNX file to write.")] = Path("model.onnx"),
    gate_threshold: Annotated[Optional[float], typer.Option(
        help="Export as a gate: its with/without answers stand at this calibrated probability or "
             "above (choose it with `python -m maskwatch.training.classifier.gate_cv`).")] = None,
    gate_max_side: Annotated[int, typer.Option(
        help="A gate answers only faces whose box is at most this many px on its long side.")] = 64,
    closeup_above: Annotated[Optional[int], typer.Option(
        help="Export as a close-up model: it answers the faces whose box is more than this many px "
             "on its long side, beside the shipped classifier.")] = None,
    night: Annotated[bool, typer.Option(
        "--night", help="Export as a night model: it answers every face of a grey (infrared) frame, beside the "
                        "shipped classifier (train it on grey crops).")] = False,
) -> None:
    """Export a run to ONNX (classes, crop spec and temperature inside) for ONNX Runtime."""
    _need("export", "train")
    _refuse_folder(out, ".onnx")
    from maskwatch.classifier import CloseupRule, GateRule, NightRule
    from maskwatch.training.classifier.export import export_onnx

    try:
        if gate_threshold is None and gate_max_side != 64:
            _fail("--gate-max-side only applies to a gate: give --gate-threshold too")
        if sum((gate_threshold is not None, closeup_above is not None, night)) > 1:
            _fail("a model is one of a gate, a close-up model or a night model: give one of --gate-threshold, "
                  "--closeup-above and --night")
        gate = None if gate_threshold is None else GateRule(gate_threshold, gate_max_side)
        closeup = None if closeup_above is None else CloseupRule(closeup_above)
        path = export_onnx(run, out, gate=gate, closeup=closeup, night=NightRule() if night else None)
    except (ValueError, FileNotFoundError) as err:
        _fail(str(err))
    typer.echo(f"exported {run} -> {path}")

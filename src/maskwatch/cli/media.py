"""The commands that run the models on your own photos, videos and streams: classify (face crops),
detect, annotations (a detect run's faces for a labelling tool), batch (on Ray) and evaluate-photos
(your photos sorted by class)."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from maskwatch.cli.common import (ClassifierFile, DetectorFile, Gate, MovingCamera, Progress, _blur_reads_every_frame,
                                  _fail, _models, _print_data, _refuse_folder, _sigterm_as_ctrl_c, _with_option)
from maskwatch.extras import need as _need

commands = typer.Typer()  # included straight under `maskwatch` by maskwatch.cli


@commands.command()
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
    from maskwatch.video.sources import IMAGE_SUFFIXES, UNREAD_PHOTO_SUFFIXES, folder_files, no_images_hint

    failed = 0
    crops: list[Path] = []
    for path in images:
        # A folder's HEIC crops are named with how to convert them, not passed over in silence.
        found = folder_files(path, IMAGE_SUFFIXES | UNREAD_PHOTO_SUFFIXES) if path.is_dir() else [path]
        if not found:
            _fail(f"{path}: a folder with no images in it ({', '.join(sorted(IMAGE_SUFFIXES))}){no_images_hint(path)}")
        crops += found
    for path in crops:
        try:
            prediction = classifier.predict([read_image(path)])[0]
        except (ImageError, ValueError) as err:
            failed += 1
            if as_json:
                _print_data(json.dumps({"image": str(path), "error": str(err)}))
            else:
                typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
            continue
        if as_json:
            _print_data(json.dumps({"image": str(path), **prediction.as_dict()}))
        else:
            probs = "  ".join(f"{c} {p:.3f}" for c, p in prediction.as_dict()["probabilities"].items())
            _print_data(f"{path}: {prediction.label}  ({probs})")
    if failed:
        raise typer.Exit(code=1)


@commands.command()
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
    from maskwatch.atomic import OutputError
    from maskwatch.video.pipeline import DetectFailed, DetectOptions, run_detect
    from maskwatch.video.resume import PHOTOS
    from maskwatch.video.sources import SourceError

    models = _models(classifier, detector_file, gate)
    try:
        config = models.detector_config()
        if min_score is not None:
            config = _with_option(config, "--min-score", min_score)
        if upscale is not None:
            config = _with_option(config, "--upscale", upscale)
        if detect_every is not None and detect_every < 1:
            raise typer.BadParameter(f"must be at least 1, got {detect_every}", param_hint="'--detect-every'")
        _blur_reads_every_frame(blur, no_media, detect_every)
        if max_frames is not None and max_frames < 1:
            raise typer.BadParameter(f"must be at least 1, got {max_frames}", param_hint="'--max-frames'")
        detector = models.load(config=config)
    except (ImportError, ValueError, FileNotFoundError) as err:
        _fail(str(err))
    on_line = (lambda record: _print_data(json.dumps(record))) if as_json else None  # = detections.jsonl
    options = DetectOptions(blur=blur, save_media=not no_media, moving_camera=moving_camera,
                            **({} if detect_every is None else {"detect_every": detect_every}))
    try:
        with _sigterm_as_ctrl_c():
            result = run_detect(source, out, detector, options, progress=progress and not as_json,
                                max_frames=max_frames, resume=resume, on_line=on_line)
    except DetectFailed as err:
        for error in err.result.errors:
            typer.secho(f"warning: {error}", fg=typer.colors.YELLOW, err=True)
        _fail(str(err) + _resume_hint(err.result))
    except (SourceError, OutputError) as err:
        _fail(str(err))
    for error in result.errors:
        typer.secho(f"warning: {error}", fg=typer.colors.YELLOW, err=True)
    skipped = f" ({result.skipped} photo{'s' * (result.skipped != 1)} done before, not read again)" if result.skipped else ""
    unit = "photo" if result.kind in PHOTOS else "frame"  # make demo said "40 frames" of 40 photos
    typer.echo(f"{result.frames} {unit}{'s' * (result.frames != 1)}, {result.faces} face{'s' * (result.faces != 1)} "
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
              f"are in {out}" + _resume_hint(result, unread=True))


def _resume_hint(result, unread: bool = False) -> str:
    """How a photo run stopped part-way goes on: said where it stops. `unread`: photos that could not
    be read, which --resume alone reads (and refuses) again."""
    if result.kind != "folder":
        return ""
    return f"{'; mend or remove them, and' if unread else ';'} the same command with --resume reads only the photos not done"


class AnnotationFormat(str, Enum):
    voc = "voc"
    coco = "coco"


@commands.command()
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


@commands.command()
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
    for option, value in (("--actors", actors), ("--detect-every", detect_every)):  # usage errors, as click's own
        if value is not None and value < 1:
            raise typer.BadParameter(f"must be at least 1, got {value}", param_hint=f"'{option}'")
    _blur_reads_every_frame(blur, no_media, detect_every)
    _need("batch", "ray")
    from maskwatch.scale.batch import SUMMARY, run_batch
    from maskwatch.scale.cluster import ClusterError
    from maskwatch.scale.files import BatchInputError, ScoreOptions

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
    for warning in report.warnings:
        typer.secho(f"warning: {warning}", fg=typer.colors.YELLOW, err=True)
    for row in report.failed:
        typer.secho(f"failed: {row['error']}", fg=typer.colors.RED, err=True)
    typer.echo(f"{len(report.files)} files: {report.count('done')} done, {report.count('skipped')} already done, "
               f"{report.count('failed')} failed ({report.actors} actors, {report.seconds:.1f} s) -> {out}/{SUMMARY}")
    if report.failed:
        raise typer.Exit(code=1)


@commands.command("evaluate-photos")
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
                                   "classifier": detector.classifier.model_info(),
                                   "gate": detector.classifier.gate_info(),
                                   "closeup": detector.classifier.closeup_info(),
                                   "night": detector.classifier.night_info()}, indent=2))
        typer.echo(f"-> {out}")
    if unreadable:
        _fail(f"{len(unreadable)} of {sum(len(r.rows) for r in results.values())} photos could not be read "
              "(named above); the others are scored above")

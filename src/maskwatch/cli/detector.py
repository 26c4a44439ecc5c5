"""The face detector's commands: evaluate-detection (COCO mAP on the held-out photos of the split the
models were trained on), train-detector, export-detector and fit-detector."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from maskwatch.cli.common import (SEED_RANGE, ClassifierFile, DetectorFile, Gate, Progress, _fail, _models,
                                  _output_folder, _refuse_folder, _sigterm_as_ctrl_c, _with_option, need_centerface)
from maskwatch.extras import need as _need

commands = typer.Typer()  # included straight under `maskwatch` by maskwatch.cli


@commands.command("evaluate-detection")
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
        raise typer.BadParameter(f"must be 0 or more, got {bootstrap}", param_hint="'--bootstrap'")
    if limit is not None and limit < 1:
        raise typer.BadParameter(f"must be 1 or more, got {limit}", param_hint="'--limit'")
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


@commands.command("train-detector")
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
    for option, value in (("--steps", recipe.steps), ("--batch-size", recipe.batch_size)):
        if value < 1:
            raise typer.BadParameter(f"must be at least 1, got {value}", param_hint=f"'{option}'")
    try:
        with _sigterm_as_ctrl_c():
            model = run_train(data, out, recipe, progress=progress, threads=threads)
    except (ImportError, PrepareError, ValueError, FileNotFoundError) as err:
        _fail(str(err))
    except KeyboardInterrupt:
        _fail(f"interrupted (Ctrl-C or SIGTERM): {out} keeps its last checkpoint; the same command resumes it",
              code=130)
    typer.echo(f"trained -> {model}; next: maskwatch export-detector {out}")


@commands.command("export-detector")
def export_detector(
    run: Annotated[Path, typer.Argument(help="Run folder written by `maskwatch train-detector`.")],
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Folder for detector.onnx and detector.json (default RUN/export).")] = None,
    fit_photos: Annotated[Optional[int], typer.Option(help="Fit the cut-off and calibrate the int8 model on the first N training photos only (default all; at most 32 calibrate).")] = None,
    progress: Progress = True,
) -> None:
    """Export a trained detector to ONNX with its settings (cut-off fitted on training photos)."""
    _need("export-detector", "train")
    if fit_photos is not None and fit_photos < 1:
        raise typer.BadParameter(f"must be 1 or more, got {fit_photos}", param_hint="'--fit-photos'")
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


@commands.command("fit-detector")
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
    start = _with_option(DetectorConfig(), "--upscale", upscale)
    try:
        split = photo_split(data, seed=seed)
        config, report = fit_detector_config(data, split.train, start,
                                             progress=progress)
    except (ImportError, ValueError) as err:  # bad data: PrepareError, AnnotationError, ImageError
        _fail(str(err))
    write_text(out, json.dumps(config.to_dict() | {"fitted_on": report | {"split_seed": seed}}, indent=2))
    typer.echo(f"{json.dumps(config.to_dict())}\n-> {out}")

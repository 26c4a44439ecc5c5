"""The Makefile a newcomer runs: `make demo` twice, and the targets the docs and the tests' messages name."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO_COMMANDS = {"study": "maskwatch study", "detect": "maskwatch detect", "clips": "-m maskwatch.demo"}


def _demo_would_run(folder: Path) -> set[str]:
    """Which of the demo's three commands `make demo` would run in `folder` (make -n: none is run)."""
    out = subprocess.run(["make", "-n", "demo"], cwd=folder, capture_output=True, text=True, check=True).stdout
    return {step for step, command in DEMO_COMMANDS.items() if command in out}


def test_a_second_make_demo_remakes_only_what_is_missing_or_older_than_its_inputs(tmp_path):
    """`make demo` ran the study's four trainings (a minute), detect and the clips again each time,
    with nothing changed."""
    for name in ("Makefile", "pyproject.toml", "constraints.txt"):
        shutil.copy(ROOT / name, tmp_path)
    for name in ("sample", "src"):  # the demo's inputs, read where they are
        (tmp_path / name).symlink_to(ROOT / name)
    stamp = tmp_path / ".venv" / ".installed"
    outputs = [tmp_path / "demo-output" / p for p in
               ("study/report.html", "detect/detections.jsonl", "clips/entrance.mp4", "clips/counter.mp4")]
    for path in [stamp, *outputs]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    later = max(p.stat().st_mtime for p in ROOT.joinpath("src").rglob("*")) + 60
    os.utime(tmp_path / "pyproject.toml", (later - 20, later - 20))
    os.utime(tmp_path / "constraints.txt", (later - 20, later - 20))
    os.utime(stamp, (later - 10, later - 10))
    for path in outputs:
        os.utime(path, (later, later))
    assert _demo_would_run(tmp_path) == set()
    outputs[1].unlink()
    assert _demo_would_run(tmp_path) == {"detect"}
    os.utime(stamp, (later + 10, later + 10))  # the venv installed again: all of it
    assert _demo_would_run(tmp_path) == {"study", "detect", "clips"}


def test_every_make_target_the_docs_and_the_tests_name_is_in_the_makefile():
    """The MQTT tests' failures named a "services" target of the Makefile: it is `mqtt-broker`."""
    targets = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), re.M))
    files = [ROOT / "README.md", *ROOT.joinpath("tests").glob("*.py"), *ROOT.joinpath("src").rglob("*.py"),
             *(p for p in ROOT.joinpath("docs").rglob("*.md") if "history" not in p.parts)]
    named = {}
    for path in files:
        text = path.read_text()
        for match in re.finditer(r"Makefile's ([\w-]+)(?: and ([\w-]+))? targets?|`make ([\w-]+)", text):
            for target in filter(None, match.groups()):
                named.setdefault(target, path.relative_to(ROOT))
    assert named and {t: f for t, f in named.items() if t not in targets} == {}

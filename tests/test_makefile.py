"""The Makefile a newcomer runs: `make demo` twice, and the targets the docs and the tests' messages name."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO_COMMANDS = {"study": "maskwatch study", "detect": "maskwatch detect", "clips": "-m maskwatch.demo"}


def _demo_would_run(folder: Path) -> set[str]:
    """Which of the demo's three commands `make demo` would run in `folder` (make -n: none is run)."""
    out = subprocess.run(["make", "-n", "demo"], cwd=folder, capture_output=True, text=True, check=True).stdout
    return {step for step, command in DEMO_COMMANDS.items() if command in out}


def _demo_folder(folder: Path, sample: Path) -> list[Path]:
    """`folder` as a checkout whose venv is installed and whose demo was made (each file newer than
    what it is made from): the demo's four outputs. The package's sources are read where they are."""
    for name in ("Makefile", "pyproject.toml", "constraints.txt"):
        shutil.copy(ROOT / name, folder)
    (folder / "src").symlink_to(ROOT / "src")
    (folder / "sample").mkdir()
    (folder / "sample" / "face-mask-detection").symlink_to(sample)
    stamp = folder / ".venv" / ".installed"
    outputs = [folder / "demo-output" / p for p in
               ("study/report.html", "detect/detections.jsonl", "clips/entrance.mp4", "clips/counter.mp4")]
    for path in [stamp, *outputs]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    later = max(p.stat().st_mtime for p in [*ROOT.joinpath("src").rglob("*"), *sample.rglob("*")]) + 60
    for path, when in ((folder / "pyproject.toml", later - 20), (folder / "constraints.txt", later - 20),
                       (stamp, later - 10), *((path, later) for path in outputs)):
        os.utime(path, (when, when))
    return outputs


def test_a_second_make_demo_remakes_only_what_is_missing_or_older_than_its_inputs(tmp_path):
    """`make demo` ran the study's four trainings (a minute), detect and the clips again each time,
    with nothing changed."""
    outputs = _demo_folder(tmp_path, ROOT / "sample" / "face-mask-detection")
    assert _demo_would_run(tmp_path) == set()
    outputs[1].unlink()
    assert _demo_would_run(tmp_path) == {"detect"}
    stamp = tmp_path / ".venv" / ".installed"
    later = outputs[0].stat().st_mtime + 10
    os.utime(stamp, (later, later))  # the venv installed again: all of it
    assert _demo_would_run(tmp_path) == {"study", "detect", "clips"}


def test_a_detect_that_fails_part_way_in_make_demo_is_run_again_by_the_next(tmp_path, sample_dir):
    """detect writes detections.jsonl as it goes: one that failed on a photo left the file of the
    photos before it, newer than its inputs, and the next `make demo` found it up to date."""
    sample = tmp_path / "sample-copy"
    shutil.copytree(sample_dir, sample)
    (sample / "images" / "zz-broken.png").write_bytes(b"not a PNG")  # read last
    folder = tmp_path / "checkout"
    folder.mkdir()
    outputs = _demo_folder(folder, sample)
    outputs[1].unlink()
    maskwatch = folder / ".venv" / "bin" / "maskwatch"  # this test run's maskwatch, as the venv's
    maskwatch.parent.mkdir()
    maskwatch.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m maskwatch "$@"\n')
    maskwatch.chmod(0o755)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    made = subprocess.run(["make", "demo"], cwd=folder, capture_output=True, text=True, env=env)
    assert made.returncode != 0 and "zz-broken.png" in made.stdout + made.stderr
    assert not outputs[1].exists() and _demo_would_run(folder) == {"detect"}


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

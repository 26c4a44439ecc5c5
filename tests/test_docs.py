"""The docs stay true to the code: short enough to read, links that resolve, every command and
option of the CLI documented in docs/cli.md, and no removed option taught as current."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
import typer

from maskwatch.cli import app

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
# Pages that describe today; docs/history/ is frozen as it was and may name what is gone.
CURRENT = [ROOT / "README.md", ROOT / "BENCHMARKS.md", ROOT / "src/maskwatch/weights/MODEL_CARD.md",
           *sorted(p for p in DOCS.glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s#]+)(?:#[^)\s]*)?\)")
REMOVED_OPTIONS = ("--nose-aux", "--focal", "--mixup", "--teacher", "--distill", "--synthetic-incorrect",
                   "--degrade", "--small-input")


@pytest.mark.parametrize(("page", "limit"), [("README.md", 20_000), ("BENCHMARKS.md", 40_000)])
def test_front_pages_read_in_a_few_minutes(page, limit):
    size = len((ROOT / page).read_bytes())
    assert size < limit, f"{page} is {size} bytes; issue 27 asks for under {limit}"


@pytest.mark.parametrize("page", CURRENT + sorted((DOCS / "history").glob("*.md")), ids=lambda p: p.name)
def test_relative_links_resolve(page):
    text = page.read_text()
    if page.parent.name == "history":
        text = text.split("\n", 1)[0]  # frozen below their first line, links relative to the repo's top then
    broken = [target for target in LINK.findall(text)
              if "://" not in target and not target.startswith("mailto:")
              and not (page.parent / target).exists()]
    assert not broken, f"{page.relative_to(ROOT)}: links to missing files: {broken}"


def _commands():
    group = typer.main.get_command(app)
    ctx = click.Context(group)
    return [(name, group.get_command(ctx, name)) for name in group.list_commands(ctx)]


def test_every_command_and_option_is_in_the_cli_page():
    """Each command has its section in docs/cli.md naming each of its options; options common to
    many commands may be named once, in the page's introduction instead."""
    page = (DOCS / "cli.md").read_text()
    intro = page.split("\n## ", 1)[0]
    sections = dict(re.findall(r"^### (\S+)\n(.*?)(?=^##)", page + "\n##", re.M | re.S))
    missing = []
    for name, command in _commands():
        if name not in sections:
            missing.append(name)
            continue
        for param in command.params:
            for flag in [*getattr(param, "opts", []), *getattr(param, "secondary_opts", [])]:
                if flag.startswith("--") and flag != "--help" and f"`{flag}`" not in sections[name] + intro:
                    missing.append(f"{name} {flag}")
    assert not missing, f"docs/cli.md does not document: {missing}"


def test_removed_options_are_not_taught_as_current():
    """README.md says once what was removed; no other current page uses a removed option."""
    offenders = []
    for page in CURRENT:
        if page.name in ("experiments.md", "README.md"):
            continue
        for option in REMOVED_OPTIONS:
            if re.search(re.escape(option) + r"(?![\w-])", page.read_text()):
                offenders.append(f"{page.relative_to(ROOT)}: {option}")
    assert not offenders, offenders

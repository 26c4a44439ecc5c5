"""The docs stay true to the code: short enough to read, links that resolve, every command and
option of the CLI documented in docs/cli.md, no removed option taught as current, and every benchmark
command naming a script and options that exist."""

from __future__ import annotations

import ast
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


@pytest.mark.parametrize("page", CURRENT, ids=lambda p: p.name)
def test_no_long_sentence_is_said_twice_on_a_page(page):
    """A change's notes written into two upgrade paragraphs (deployment.md said the 2026-12-07 clock
    changes under 2026-12-06 too, word for word): a reader is told twice, once under the wrong day."""
    text = " ".join(page.read_text().split())
    sentences = [s for s in re.split(r"(?<=[.;:])\s+", text) if len(s) > 120]
    assert not [s for s in set(sentences) if sentences.count(s) > 1]


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


def _flags(command) -> set[str]:
    """The long options of a command, or of every subcommand of a group (`users add`, ...)."""
    flags = {flag for param in command.params
             for flag in [*getattr(param, "opts", []), *getattr(param, "secondary_opts", [])]
             if flag.startswith("--") and flag != "--help"}
    if hasattr(command, "list_commands"):
        ctx = click.Context(command)
        for name in command.list_commands(ctx):
            flags |= _flags(command.get_command(ctx, name))
    return flags


def _cli_page():
    page = (DOCS / "cli.md").read_text()
    return page.split("\n## ", 1)[0], dict(re.findall(r"^### (\S+)\n(.*?)(?=^##)", page + "\n##", re.M | re.S))


def test_every_command_and_option_is_in_the_cli_page():
    """Each command has its section in docs/cli.md naming each of its options (a group's: its
    subcommands'); options common to many commands may be named once, in the page's introduction."""
    intro, sections = _cli_page()
    missing = []
    for name, command in _commands():
        if name not in sections:
            missing.append(name)
            continue
        missing += [f"{name} {flag}" for flag in sorted(_flags(command)) if f"`{flag}`" not in sections[name] + intro]
    assert not missing, f"docs/cli.md does not document: {missing}"


def test_every_command_is_in_the_cli_pages_table():
    """The introduction's table of commands, with their extras, lacked `backup`."""
    intro, _ = _cli_page()
    listed = set(re.findall(r"^\| \[?`([a-z-]+)`", intro, re.M)) | {"users", "tokens"}
    assert not {name.split()[0] for name, _ in _commands()} - listed


def test_the_readmes_extras_table_names_each_command_under_its_extra():
    """README's table of extras said `classify`, `detect` for the base install and left `alerts`
    out of serve's, where the CLI page's table gives `annotations` and `evaluate-photos` as base
    and `alerts` as serve: a newcomer installing for `alerts test` did not know which extra."""
    intro, _ = _cli_page()
    row = re.compile(r"^\| \[?`([a-z-]+)`.*\| (\w+) \|$", re.M)
    extra_of = dict(row.findall(intro)) | {"users": "serve", "tokens": "serve"}
    readme = (ROOT / "README.md").read_text().split("\n## Installing\n", 1)[1].split("\n## ", 1)[0]
    for_extra = {("base" if extra == "(none)" else extra.strip("`")): commands for extra, commands in
                 re.findall(r"^\| (\(none\)|`\w+`) \|[^|]*\| (.*) \|$", readme, re.M)}
    detector_part = (DOCS / "cli.md").read_text().split("\n## The face detector\n", 1)[1].split("\n## ", 1)[0]
    detector_commands = set(re.findall(r"^### (\S+)", detector_part, re.M))
    wrong = [f"{name} ({extra})" for name, extra in sorted(extra_of.items())
             if f"`{name}`" not in for_extra.get(extra, "")
             and not (name in detector_commands and "the detector commands" in for_extra.get(extra, ""))]
    assert not wrong, f"README's table of extras misses: {wrong}"


def test_the_cli_page_teaches_no_option_its_command_lacks():
    """A section is a command's, and its option table's first column names only options the
    command has (a renamed or removed one stayed in the table, and users' scripts copied it)."""
    _, sections = _cli_page()
    commands = dict(_commands())
    wrong = []
    for name, text in sections.items():
        if name not in commands:
            wrong.append(f"{name} (no such command)")
            continue
        rows = [line.split("|")[1] for line in text.splitlines() if line.startswith("| `")]
        taught = {flag for row in rows for flag in re.findall(r"`(--[a-z][\w-]*)`", row)}
        wrong += [f"{name} {flag}" for flag in sorted(taught - _flags(commands[name]))]
    assert not wrong, f"docs/cli.md teaches options that do not exist: {wrong}"


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


BENCHMARKS = ROOT / "benchmarks"
# `benchmarks/X.py` and what follows it on its line (and on the lines a trailing backslash joins),
# up to a closing backtick or a shell comment: the options a reader is told to pass.
BENCHMARK_COMMAND = re.compile(r"benchmarks/(\w+)\.py((?:\\\n|[^`#\n])*)")


def _parser_options(script: Path) -> set[str] | None:
    """The options a benchmark script's argparse parser declares, read without running it; None
    where it builds no parser (then `--help` runs the benchmark itself)."""
    calls = [node for node in ast.walk(ast.parse(script.read_text())) if isinstance(node, ast.Call)]
    if not any(getattr(node.func, "attr", getattr(node.func, "id", None)) == "ArgumentParser" for node in calls):
        return None
    return {arg.value for node in calls if getattr(node.func, "attr", None) == "add_argument"
            for arg in node.args if isinstance(arg, ast.Constant) and str(arg.value).startswith("-")} | {"--help"}


def _benchmark_commands():
    """(where, script name, options) of every benchmark command in the current pages and in the
    scripts' own docstrings; README's "What was removed" names scripts that are gone on purpose."""
    for page in [*CURRENT, *sorted(BENCHMARKS.glob("*.py"))]:
        text = page.read_text()
        if page.name == "README.md":
            text = re.sub(r"\n## What was removed\n.*?(?=\n## )", "\n", text, flags=re.S)
        for match in BENCHMARK_COMMAND.finditer(text):
            where = f"{page.relative_to(ROOT)}:{text.count(chr(10), 0, match.start()) + 1}"
            yield where, match.group(1), set(re.findall(r"(?<![\w-])(--[a-zA-Z][\w-]*)", match.group(2)))


def test_every_benchmark_script_has_a_parser():
    """`benchmarks/X.py --help` answers without running the benchmark (detect_ab.py read sys.argv
    by hand: --help crashed with an IndexError)."""
    assert not [p.name for p in sorted(BENCHMARKS.glob("*.py")) if _parser_options(p) is None]


def test_benchmark_commands_in_the_docs_name_scripts_and_options_that_exist():
    """Every figure comes with its command: a renamed option or a moved script left a command a
    reader cannot run. docs/experiments.md names where removed ideas lived, scripts gone included."""
    wrong = []
    for where, name, options in _benchmark_commands():
        script = BENCHMARKS / f"{name}.py"
        if not script.is_file():
            if not where.startswith("docs/experiments.md"):
                wrong.append(f"{where}: benchmarks/{name}.py does not exist")
            continue
        wrong += [f"{where}: benchmarks/{name}.py has no {option}" for option in
                  sorted(options - (_parser_options(script) or {"--help"}))]
    assert not wrong, "\n".join(wrong)


def test_the_architecture_map_names_every_module_and_package():
    """docs/architecture.md's "Where things live" is a newcomer's map of src/maskwatch: after the
    splits it lacked evaluation/ (evaluate-photos), demo.py, atomic.py and progress.py."""
    text = (DOCS / "architecture.md").read_text()
    block = text.split("\n## Where things live\n", 1)[1].split("```", 2)[1]
    named = set(re.findall(r"^  (\S+)", block, re.M))
    package = ROOT / "src" / "maskwatch"
    entries = {p.name + "/" if p.is_dir() else p.name for p in package.iterdir()
               if not p.name.startswith(("_", ".")) and p.name != "py.typed"}
    assert not entries - named, f"docs/architecture.md does not place: {sorted(entries - named)}"


def _command_lines(text: str):
    """(line, words) of each `maskwatch COMMAND ...` in the code of a page, cut at `&&`, `;`, `|` and
    shell comments; a code block that first checks out an older tree (`git show`) is of that tree."""
    for code in re.finditer(r"```.*?```|`[^`\n]+`", text, re.S):
        if "git show" in code.group(0) or "git checkout" in code.group(0):
            continue
        for match in re.finditer(r"(?<![\w.-])maskwatch ([a-z][^`\n#|;&]*)", code.group(0)):
            yield text.count("\n", 0, code.start() + match.start()) + 1, match.group(1).split()


def test_every_command_in_the_docs_names_options_its_command_has():
    """What a reader copies runs as written: README's Quick start and every page's commands use
    only options the command (or its subcommand, `users 2fa`) has, not only docs/cli.md's tables."""
    commands = dict(_commands())
    wrong = []
    for page in CURRENT:
        for line, words in _command_lines(page.read_text()):
            if words[0] not in commands:
                continue
            command, rest = commands[words[0]], words[1:]
            while rest and hasattr(command, "list_commands") and rest[0] in command.list_commands(click.Context(command)):
                command, rest = command.get_command(click.Context(command), rest[0]), rest[1:]
            taught = {word.split("=")[0] for word in rest if re.fullmatch(r"--[a-z][\w-]*(=.*)?", word)}
            wrong += [f"{page.relative_to(ROOT)}:{line}: maskwatch {words[0]} {flag}"
                      for flag in sorted(taught - _flags(command) - {"--help"})]
    assert not wrong, "\n".join(wrong)


def _pip_installs(text: str):
    """Each `pip install ...` a page teaches, with its line: the words up to a backtick, `#` or line end."""
    for match in re.finditer(r"([^\s`(]*pip) install[^`\n#]*", text):
        yield text.count("\n", 0, match.start()) + 1, match.group(1), match.group(0).split()


def test_installs_of_the_checkout_keep_the_constraints():
    """`pip install '.[serve]'` of the upgrade step (and `pip install .`) went without
    `-c constraints.txt`: the versions an upgrade got were not the tested ones."""
    checkout = re.compile(r"'?\.(\[[\w,]*\])?'?")
    wrong = [f"{page.relative_to(ROOT)}:{line}: {' '.join(words)}"
             for page in CURRENT for line, _, words in _pip_installs(page.read_text())
             if any(checkout.fullmatch(word) for word in words) and "constraints.txt" not in words]
    assert not wrong, "\n".join(wrong)


def test_deployments_later_installs_go_into_the_units_venv():
    """From "Running at boot" on, deployment.md's installs (the upgrade, the postgres extra) said a
    bare `pip`: typed as written it is the system's (refused as externally managed) or another
    venv's, and the site in /opt/maskwatch kept its old version."""
    page = (DOCS / "deployment.md").read_text()
    start = page.index("\n## Running at boot")
    wrong = [f"docs/deployment.md:{line}: {' '.join(words)}"
             for line, pip, words in _pip_installs(page) if line > page.count("\n", 0, start)
             and pip != "/opt/maskwatch/bin/pip"]
    assert not wrong, "\n".join(wrong)


def test_the_boot_steps_need_no_checkout():
    """A site installed from the wheel has no checkout: the steps copied the unit from examples/
    and the site file from src/, neither there. The package writes one (`run --init`) and prints
    the other (`run --unit`)."""
    page = (DOCS / "deployment.md").read_text()
    section = page[page.index("\n## Running at boot"):]
    steps = section[section.index("```sh\n"):section.index("\n```\n")]
    commands = [line.partition("#")[0].rstrip() for line in steps.splitlines()[1:]]
    assert not [line for line in commands if re.search(r"(^|\s)(\./)?(examples|src)/", line)], steps
    assert any(line.endswith("/etc/maskwatch/site.yaml --init") for line in commands), steps
    assert any("--unit | sudo tee /etc/systemd/system/maskwatch.service" in line for line in commands), steps


def test_the_wheel_s_install_lines_name_no_file_of_a_checkout():
    """The boot steps said to install the wheel "in place of `.`" on a line with `-c constraints.txt`:
    typed so where there is no checkout, pip stopped, "Could not open constraint file"."""
    page = (DOCS / "deployment.md").read_text()
    assert "in place of `.`" not in page
    wheel_lines = [line for line in re.findall(r"`([^`]*pip install[^`]*\.whl[^`]*)`", page)]
    assert wheel_lines and not [line for line in wheel_lines if "constraints.txt" in line], wheel_lines
    section = page[page.index("\n## Running at boot"):]
    assert "`sudo /opt/maskwatch/bin/pip install './maskwatch-0.1.0-py3-none-any.whl[serve]'`" in section


def test_the_boot_steps_move_the_database_before_users_add_needs_it():
    """The example site keeps its database beside the file, in /etc/maskwatch, which the service's
    user cannot write (750, root's): the steps said only "then edit it", and the storage lines came
    after the block, so `users add`, two lines on, failed as typed. The edit is said where it is due."""
    page = (DOCS / "deployment.md").read_text()
    section = page[page.index("\n## Running at boot"):]
    steps = section[section.index("```sh\n"):section.index("\n```\n")]
    before_users = steps[:steps.index("maskwatch users add")]
    assert "storage: {database: /var/lib/maskwatch/maskwatch.db" in before_users, steps


def test_the_upgrade_from_a_wheel_reinstalls_the_same_version():
    """Every wheel of the project is 0.1.0: `pip install new.whl` said "already installed with the
    same version", exited 0 and the site ran the old code."""
    page = (DOCS / "deployment.md").read_text()
    upgrading = page[page.index("**Upgrading**"):page.index("**What integrators must change**")]
    assert "install --force-reinstall --no-deps ./maskwatch-0.1.0-py3-none-any.whl" in upgrading


def test_the_wheels_named_in_the_docs_are_this_versions():
    """The wheel's file name the install steps give is the one `python -m build` writes today."""
    import tomllib

    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    named = {name for page in CURRENT
             for name in re.findall(r"maskwatch-[\w.]+-py3-none-any\.whl", page.read_text())}
    assert named == {f"maskwatch-{version}-py3-none-any.whl"}, named


def test_the_boot_installs_environment_file_names_what_the_example_site_needs():
    """The step that makes /etc/maskwatch/env named CAM_PASSWORD alone; the example site it
    installs needs WEBHOOK_SECRET too, so a file filled as told did not start."""
    example = (ROOT / "src/maskwatch/examples/site.yaml").read_text()
    needed = set(re.findall(r"^[^#\n]*\$\{([A-Z_]+)\}", example, re.M))
    step = next(line for line in (DOCS / "deployment.md").read_text().splitlines()
                if line.startswith("sudo install") and "/etc/maskwatch/env" in line)
    assert needed and not {name for name in needed if f"{name}=" not in step}, step


def test_the_restore_step_gives_the_copy_back_to_the_sites_user():
    """Restored as the steps said (as root: the backup is 600, the state folder the site user's),
    the copy was root's and the unit's `run` stopped with `unable to open database file`."""
    page = (DOCS / "deployment.md").read_text()
    restore = page[page.index("\nTo restore:"):].split("\n\n", 1)[0]
    assert "chown -R maskwatch:maskwatch" in restore, restore


def test_the_install_sections_name_the_python_that_pyproject_requires():
    """Neither README's Installing nor deployment.md's said which Python: on Ubuntu 22.04 (3.10)
    the steps ended in pip's "requires a different Python" with nothing before it to say so."""
    import tomllib

    floor = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    version = re.fullmatch(r">=(\d+\.\d+)", floor).group(1)
    for page in (ROOT / "README.md", DOCS / "deployment.md"):
        section = page.read_text().split("\n## Installing\n", 1)[1].split("\n## ", 1)[0]
        assert f"Python {version} or later" in section, page.name

"""YAML read safely (size, alias, depth, repeated keys), its errors in words: the file's and the zone editor's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from maskwatch.site.config.problems import SiteConfigError


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader refusing a key given twice in one mapping (a second camera or zone of one
    id replaced the first in silence), and nesting past MOST_CONFIG_DEPTH: PyYAML composes a nested
    list by recursion, and 20,000 '[' were a RecursionError (POST .../zones/check's 500)."""

    def __init__(self, stream) -> None:
        super().__init__(stream)
        self.depth = 0

    def compose_node(self, parent, index):
        if self.depth >= MOST_CONFIG_DEPTH:
            raise yaml.composer.ComposerError(None, None, f"nested more than {MOST_CONFIG_DEPTH} levels deep",
                                              self.peek_event().start_mark)
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *defaults`: its keys may be replaced
                continue
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"{key!r} is given twice in one mapping (the second would replace the first)",
                    key_node.start_mark)
            seen.add(key) if isinstance(key, (str, int, float, bool)) else None
        return super().construct_mapping(node, deep=deep)


# A site's file is a few KB; a larger one is another file (a video named by mistake), and YAML's
# aliases can make a small file expand without end (nine aliases of nine, eight deep, held `run
# --check` for minutes): both are refused before anything is built.
LARGEST_CONFIG = 1024 * 1024
MOST_CONFIG_ENTRIES = 100_000
MOST_CONFIG_DEPTH = 50  # levels of nesting, aliases written out: a site's file has about 6


def _expanded_entries(node: yaml.Node, sizes: dict[int, tuple[int, int] | None], depth: int = 1) -> int:
    """How many entries the node stands for with every alias written out (each node counted once);
    ValueError for an alias inside its own anchor (a list that holds itself has no end), and for
    nesting past MOST_CONFIG_DEPTH with the aliases written out (anchors of 50 levels, each aliased
    in the next, were as deep as a document of thousands of '[', which what reads it next recurses into)."""
    if id(node) in sizes:
        if sizes[id(node)] is None:
            raise ValueError(f"an alias inside its own anchor (line {node.start_mark.line + 1}) has no end")
    else:
        sizes[id(node)] = None  # being counted
        children = node.value if isinstance(node, yaml.SequenceNode) else \
            [n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode) else []
        for child in children:
            _expanded_entries(child, sizes, depth + 1)
        sizes[id(node)] = (1 + sum(sizes[id(child)][0] for child in children),
                           1 + max((sizes[id(child)][1] for child in children), default=0))
    entries, height = sizes[id(node)]
    if depth - 1 + height > MOST_CONFIG_DEPTH:
        raise ValueError(f"nested more than {MOST_CONFIG_DEPTH} levels deep with its aliases written out (an "
                         f"alias of the anchor on line {node.start_mark.line + 1}); write the values out")
    return entries


def _read_yaml(path: Path) -> dict:
    """The file's top-level mapping; SiteConfigError saying why there is none."""
    try:
        size = path.stat().st_size
        if size > LARGEST_CONFIG:
            raise SiteConfigError(path, [f"{size / 1024 / 1024:.1f} MB, too large for a site's config (a few KB; "
                                         f"at most {LARGEST_CONFIG // 1024 // 1024} MB): is it the right file?"])
        raw = _yaml_document(path.read_text(encoding="utf-8"), path)
    except OSError as err:
        raise SiteConfigError(path, [f"cannot read: {err.strerror}"]) from None
    except UnicodeDecodeError as err:
        raise SiteConfigError(path, [f"not UTF-8 text (byte {err.start}); save the file as UTF-8"]) from None
    if not isinstance(raw, dict):
        raise SiteConfigError(path, ["expected a mapping with a 'cameras:' section at the top"])
    return raw


def _yaml_document(text: str, path: Path | str) -> Any:
    """The text's one YAML document (None if empty), read as the site's file is: keys given twice and
    aliases that expand past MOST_CONFIG_ENTRIES refused; SiteConfigError saying why it is not YAML."""
    try:
        loader = _UniqueKeyLoader(text)
        try:
            node = loader.get_single_node()
            try:
                entries = _expanded_entries(node, {}) if node is not None else 0
            except ValueError as err:
                raise SiteConfigError(path, [str(err)]) from None
            if entries > MOST_CONFIG_ENTRIES:
                raise SiteConfigError(path, [f"its YAML aliases expand to {entries:,} entries "
                                             f"(at most {MOST_CONFIG_ENTRIES:,}); write the values out"])
            return loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as err:
        raise SiteConfigError(path, [f"not valid YAML: {_yaml_problem(err)}"]) from None
    except yaml.YAMLError as err:
        raise SiteConfigError(path, [f"not valid YAML: {err}".replace("\n", " ")]) from None


def _yaml_problem(err: yaml.MarkedYAMLError) -> str:
    """What PyYAML found wrong and where, without the line it quotes: a camera's URL there showed
    its password."""
    def at(mark) -> str:
        return f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""

    said = [f"{err.context}{at(err.context_mark)}"] if err.context else []
    return "; ".join([*said, f"{err.problem}{at(err.problem_mark)}"]) + _yaml_hint(str(err.problem))


def _yaml_hint(problem: str) -> str:
    """What a newcomer's slip behind PyYAML's words most likely is: "expected <block end>, but found
    '<block mapping start>'" named no indentation, a tab's error no tab, and a name missing its
    colon (`name Front door`) was told as the next line's problem."""
    colon = "a setting's name is followed by ': ' (fps: 5, not fps 5)"
    if "'\\t'" in problem:
        return "; YAML indents with spaces, not tabs"
    if "<block end>" in problem or "mapping values are not allowed" in problem or "expected key" in problem:
        return ("; check the indentation there and on the line above: the settings of one thing line up "
                f"under it, indented more than its name (and a value holding ': ' goes in quotes); {colon}")
    if "could not find expected ':'" in problem:  # a name without its colon, where a setting was due
        return f"; {colon}"
    return ""

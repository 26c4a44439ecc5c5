"""Layers point one way: a module imports only its own package or packages below it, and no two
modules import each other at load time. The walk reads every import, lazy ones inside functions
included, so a new one that points upwards fails here."""

from __future__ import annotations

import ast
from pathlib import Path

import maskwatch

PACKAGE = Path(maskwatch.__file__).parent
# Lowest first. A module may import from its own layer or any layer before it.
LAYERS = [
    {"faces", "records", "interop", "geometry", "atomic", "progress", "extras"},
    {"runtime", "models"},
    {"data"},
    {"classifier", "render"},
    {"detection"},
    {"video", "training"},
    {"evaluation"},
    {"site"},
    {"security"},
    {"serving"},
    {"scale"},
    {"cli", "demo", "__main__"},
]
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}


def _module(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, top_level_only: bool) -> set[str]:
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else ast.walk(tree)
    found = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("maskwatch"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("maskwatch")}
    return found


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None  # the package itself (maskwatch/__init__) re-exports


def test_every_package_has_a_layer():
    packages = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir()
                if (p.suffix == ".py" and p.stem != "__init__") or (p.is_dir() and (p / "__init__.py").exists())}
    assert packages <= set(RANK), f"give these a layer in LAYERS: {sorted(packages - set(RANK))}"


def test_no_module_imports_a_layer_above_it():
    upwards = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module(path)
        own = _layer(module)
        if own is None:
            continue
        for target in _imports(path, top_level_only=False):
            layer = _layer(target)
            if layer is not None and RANK[layer] > RANK[own]:
                upwards.append(f"{module} -> {target}")
    assert not upwards, "imports that point upwards:\n" + "\n".join(upwards)


def test_no_import_cycle_at_load_time():
    graph = {_module(p): {t for t in _imports(p, top_level_only=True)} for p in PACKAGE.rglob("*.py")}
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> list[str] | None:
        state[module] = 1
        for target in sorted(graph.get(module, ())):
            if target not in graph:
                target = target.rsplit(".", 1)[0]  # `from maskwatch.x import name`: name is not a module
            if state.get(target) == 1:
                return path + [module, target]
            if target in graph and not state.get(target):
                cycle = visit(target, path + [module])
                if cycle:
                    return cycle
        state[module] = 2
        return None

    for module in sorted(graph):
        if not state.get(module):
            cycle = visit(module, [])
            assert cycle is None, "import cycle: " + " -> ".join(cycle)


def _all_imports() -> dict[str, set[str]]:
    return {_module(p): _imports(p, top_level_only=False) for p in PACKAGE.rglob("*.py")}


def test_only_the_cli_imports_training():
    """Training needs torch; the rest of the package runs without it, so only the command line
    (inside its training commands) reaches into maskwatch.training."""
    outside = [f"{module} -> {target}" for module, targets in sorted(_all_imports().items())
               if _layer(module) not in ("cli", "training")
               for target in sorted(targets) if target.startswith("maskwatch.training")]
    assert not outside, "imports of maskwatch.training from outside it:\n" + "\n".join(outside)


def test_training_is_split_into_classifier_and_detector():
    """Every training module lives in classifier/ or detector/, and neither imports the other."""
    loose = sorted(p.name for p in (PACKAGE / "training").glob("*.py") if p.name != "__init__.py")
    assert not loose, f"put these in training/classifier/ or training/detector/: {loose}"
    sides = ("maskwatch.training.classifier", "maskwatch.training.detector")
    crossing = [f"{module} -> {target}" for module, targets in sorted(_all_imports().items())
                for own, other in (sides, sides[::-1]) if module.startswith(own)
                for target in sorted(targets) if target.startswith(other)]
    assert not crossing, "training/classifier and training/detector import each other:\n" + "\n".join(crossing)


def test_nothing_imports_the_benchmark_scripts():
    """benchmarks/ holds scripts behind BENCHMARKS.md; what makes a shipped model, and what the
    tests need, lives in the package."""
    roots = [PACKAGE, Path(__file__).resolve().parent]
    found = []
    for path in sorted(p for root in roots for p in root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0
                     else [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            if any(name == "benchmarks" or name.startswith("benchmarks.") for name in names):
                found.append(f"{path.name}:{node.lineno}")
    assert not found, f"imports of benchmarks/: {found}"


def test_every_file_compiles_without_a_warning():
    """maskwatch/__init__.py's docstring held `\\ s` (reStructuredText's), an invalid escape: Python
    3.12 prints a SyntaxWarning for it when the file is first compiled, on a user's first import."""
    import warnings

    root = Path(__file__).resolve().parents[1]
    warned = []
    for path in sorted([*PACKAGE.rglob("*.py"), *(root / "tests").rglob("*.py"), *(root / "benchmarks").rglob("*.py")]):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            compile(path.read_text(encoding="utf-8"), str(path), "exec")
        warned += [f"{path.relative_to(root)}: {w.message}" for w in caught]
    assert not warned, "\n".join(warned)

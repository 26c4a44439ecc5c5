"""pyproject.toml's floors stay above the releases with known advisories, and constraints.txt's
pins fall inside pyproject.toml's ranges (a pin outside them makes `pip install -c` fail)."""

from __future__ import annotations

import tomllib

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import ROOT

# The last release each advisory touches, for what maskwatch does with the package
# (docs/dependencies.md says why each one matters here).
ADVISORIES = [
    ("tqdm", "4.66.2", "CVE-2024-34062"),
    ("torch", "2.5.1", "CVE-2025-32434"),
    ("starlette", "0.47.1", "CVE-2025-54121"),
    ("h11", "0.15.0", "CVE-2025-43859"),
    ("pillow", "10.2.0", "CVE-2024-28219"),
    ("python-multipart", "0.0.17", "CVE-2024-53981"),
]


def declared() -> dict[str, list[Requirement]]:
    """Every requirement of pyproject.toml, the base's and each extra's, by package name."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    found: dict[str, list[Requirement]] = {}
    for line in lines:
        requirement = Requirement(line)
        found.setdefault(canonicalize_name(requirement.name), []).append(requirement)
    return found


@pytest.mark.parametrize(("name", "last_affected", "advisory"), ADVISORIES)
def test_floors_leave_out_releases_with_known_advisories(name, last_affected, advisory):
    requirements = declared().get(name, [])  # undeclared: whatever its parent allows, the old release too
    assert requirements and all(not r.specifier.contains(last_affected, prereleases=True) for r in requirements), (
        f"{name} {last_affected} ({advisory}) is still allowed by {[str(r) for r in requirements]}")


def test_constraints_pins_fall_inside_the_declared_ranges():
    requirements = declared()
    pinned = [Requirement(line.split("#", 1)[0]) for line in (ROOT / "constraints.txt").read_text().splitlines()
              if line.split("#", 1)[0].strip()]
    assert pinned
    for pin in pinned:
        (version,) = [spec.version for spec in pin.specifier if spec.operator == "=="]
        for requirement in requirements.get(canonicalize_name(pin.name), []):
            assert requirement.specifier.contains(version, prereleases=True), f"{pin} is outside {requirement}"

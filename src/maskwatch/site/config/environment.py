"""${NAME} (and ${NAME:-DEFAULT}) in the config's strings, from the environment: the whole file and the users' view take it alike."""

from __future__ import annotations

import re
from typing import Any

from maskwatch.site.config.problems import _place

ENV_VAR = re.compile(r"\$\{([^}]*)\}")


def _substitute_env(value: Any, environ, where: tuple, problems: list[str]) -> Any:
    """${NAME} in every string value, from the environment; an unset or empty NAME is a problem named by
    place (an empty CAM_PASSWORD passed --check and the camera then refused the site); ${NAME:-TEXT}
    takes TEXT for either, so `${NAME:-}` says empty on purpose."""
    if isinstance(value, dict):
        return {k: _substitute_env(v, environ, (*where, k), problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute_env(v, environ, (*where, i), problems) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def lookup(match: re.Match) -> str:
        name, given, default = match.group(1).partition(":-")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            problems.append(f"{_place(where)}: ${{{match.group(1)}}} is not a valid environment variable name")
        elif environ.get(name):
            return environ[name]
        elif given:
            return default
        elif name not in environ:
            problems.append(f"{_place(where)}: environment variable {name} is not set")
        else:
            problems.append(f"{_place(where)}: environment variable {name} is set but empty "
                            f"(write ${{{name}:-}} where empty is meant)")
        return match.group(0)

    return ENV_VAR.sub(lookup, value)

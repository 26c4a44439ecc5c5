"""A config's problems in words, each named by place, no secret repeated; above site.py, whose sections it names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from maskwatch.site.config.cameras import NoSuchVideoFile
from maskwatch.site.config.site import SiteConfig


class SiteConfigError(ValueError):
    """A config that cannot run: `problems` holds one line per problem; `missing_files` the video
    files its cameras name that are not there (for a hint that names what makes them)."""

    def __init__(self, path: Path | str, problems: list[str], missing_files: tuple[Path, ...] = ()) -> None:
        self.path, self.problems, self.missing_files = path, problems, missing_files
        super().__init__("\n".join(f"{path}: {p}" for p in problems))


MOST_SHOWN = 100  # characters of a value quoted in an error


def _shown(value: Any) -> str:
    """The value as an error quotes it, cut at MOST_SHOWN: a list aliased in itself a few times
    (359 bytes to POST .../zones/check) was quoted whole in each of its errors, 274 KB in one line."""
    text = repr(value)
    return text if len(text) <= MOST_SHOWN else text[:MOST_SHOWN] + "..."


def _place(loc: tuple) -> str:
    """'camera 'entrance', field 'fps'' for ('cameras', 'entrance', 'fps'); dotted otherwise."""
    loc = tuple(str(p) for p in loc)
    if len(loc) >= 2 and loc[0] == "cameras":
        field = ".".join(loc[2:])
        return f"camera {loc[1]!r}" + (f", field {field!r}" if field else "")
    return "field " + repr(".".join(loc)) if loc else "file"


SECRET_FIELDS = {"secret", "password", "username", "source", "detect_source", "database", "urls"}


def _holds_secret(value: Any) -> bool:
    """A mapping or list with a secret's key anywhere in it: a section of the wrong shape (cameras
    as a list) was quoted whole, a stream URL's password with it."""
    if isinstance(value, dict):
        return bool(SECRET_FIELDS & set(map(str, value))) or any(map(_holds_secret, value.values()))
    return isinstance(value, (list, tuple)) and any(map(_holds_secret, value))


def _missing_files(err: ValidationError) -> tuple[Path, ...]:
    """The video files `err` says are not there (NoSuchVideoFile), in its order."""
    return tuple(Path(problem["ctx"]["error"].path) for problem in err.errors()
                 if isinstance(problem.get("ctx", {}).get("error"), NoSuchVideoFile))


def _describe(err: ValidationError, prefix: tuple) -> list[str]:
    lines = []
    for problem in err.errors():
        loc = (*prefix, *problem["loc"])
        message = problem["msg"].removeprefix("Value error, ")
        if problem["type"] == "missing":
            message = "missing (required)"
        elif problem["type"] == "extra_forbidden":
            message = "unknown setting (a typo?)"
            if len(loc) == 1:  # a camera's lines indented too little land at the top, as unknown sections
                sections = ["cameras", "defaults", *(key for key in SiteConfig.model_fields if key != "cameras")]
                message = (f"unknown section (a typo?); a site's are {', '.join(sections)}"
                           + ("; a camera goes under cameras:, indented"
                              if isinstance(problem.get("input"), dict) and "source" in problem["input"] else ""))
        elif ("input" in problem and problem["type"] not in ("value_error",) and not SECRET_FIELDS & set(map(str, loc))
              and not _holds_secret(problem["input"])):
            message += f" (got {_shown(problem['input'])})"  # a secret's value is never repeated in an error (or a log)
        if loc:
            lines.append(f"{_place(loc)}: {message}")
        else:
            lines.extend(message.split("\n"))  # a whole-file check may name several problems
    return lines

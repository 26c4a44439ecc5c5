"""The base of every part of the site's config: a blank list, mapping or section reads as not written."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, model_validator


def without_blanks(data: Any, model: type[BaseModel]) -> Any:
    """`data` less the lists, mappings and sections left blank: `zones:` with every line under it
    commented out reads as null, and was refused ("Input should be a valid dictionary") where
    the user meant none. Settings of one value left blank stay an error."""
    if not isinstance(data, dict):
        return data
    return {key: value for key, value in data.items()
            if value is not None or key not in model.model_fields or model.model_fields[key].default_factory is None}


class Section(BaseModel):
    """A part of the site's config: a blank list, mapping or section in it reads as not written."""

    @model_validator(mode="before")
    @classmethod
    def _blanks(cls, data: Any) -> Any:
        return without_blanks(data, cls)

"""Zones' and motion masks' polygons: their bounds and checks (geometry, apart from the settings)."""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import Field

# A drawn zone or mask has a few corners, each checked against every other (polygon_problem): one of
# thousands (POST .../zones/check takes 64 KB, and a YAML alias repeats a corner in 3 bytes) held a
# worker thread for a minute a request. Real shapes are far inside these.
MOST_CORNERS = 100  # per zone or mask
MOST_SHAPES = 50  # zones per camera; motion masks per camera

Point = tuple[Annotated[float, Field(ge=0, le=1)], Annotated[float, Field(ge=0, le=1)]]


def too_many(what: str, shapes: Any) -> None:
    """ValueError, before any shape is checked, for more than MOST_SHAPES."""
    if len(shapes) > MOST_SHAPES:
        raise ValueError(f"{len(shapes)} {what}; a camera has at most {MOST_SHAPES}")


def too_many_corners(what: str, polygon: Any) -> None:
    """ValueError, before its corners are checked (against each other), for more than MOST_CORNERS."""
    if isinstance(polygon, list) and len(polygon) > MOST_CORNERS:
        raise ValueError(f"{what} has {len(polygon)} corners; at most {MOST_CORNERS}: draw it with fewer")


def in_pixels(what: str, polygon: Any) -> None:
    """ValueError, once for the polygon, where a corner is past 2: pixels, where 0-1 of the frame
    was meant (each coordinate was its own line, 'less than or equal to 1')."""
    numbers = [c for point in polygon if isinstance(point, list) for c in point
               if isinstance(c, (int, float)) and not isinstance(c, bool) and math.isfinite(c)] \
        if isinstance(polygon, list) else []
    if numbers and max(numbers) > 2:  # 1.5: past the edge, said per corner
        raise ValueError(f"{what}: corners are in 0-1 of the frame's width and height, not pixels "
                         f"(got {max(numbers):g}); divide x by the frame's width and y by its height")


def polygon_problem(points: list[tuple[float, float]]) -> str | None:
    """Why a zone's corners make no area a face could fall in (in a line, or repeated), or cross
    themselves (a bow-tie: which side is inside is then not what was meant); None if they are a zone."""
    edges = list(zip(points, points[1:] + points[:1]))

    def side(a, b, c) -> float:
        return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])

    for i, (a, b) in enumerate(edges):
        for j in range(i + 2, len(edges)):
            if i == 0 and j == len(edges) - 1:
                continue  # the first and last edges meet at the first corner
            c, d = edges[j]
            if side(a, b, c) * side(a, b, d) < 0 and side(c, d, a) * side(c, d, b) < 0:
                return "crosses itself"
    if abs(sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in edges)) < 2e-9:  # twice the area
        return "has no area (its corners are in one line or repeated)"
    return None

"""People seen on grey (infrared) frames, counted apart in a site's figures.

Their faces go to the night model, less sure than the colour models are in colour (video/night.py,
benchmarks/night_frames.py): a night camera's 95 % read as any other's in the counts, the chart,
the reports and the alerts. Each person seen
on grey frames more often than not is counted in the counts' `infrared` column (events schema
version 8), and the figures say how many of their people those were: marked, not corrected.
"""

from __future__ import annotations

from maskwatch.data.grey import NIGHT_WORDS
from maskwatch.faces import PERSON_LABELS, UNASSESSABLE

INFRARED = "infrared"
# What a count row sums, and so every sum of them (a day, a bucket, today): the decided people,
# each label's, and those seen on grey frames (schema version 8).
SUMMED_COLUMNS = ("people", *PERSON_LABELS, INFRARED)
INFRARED_DOCS = "docs/site.md#night-and-infrared-cameras"  # where the figures send their reader


def infrared_share(total: dict) -> float | None:
    """The share of a sum's people (decided or not) seen on grey frames, 4 decimals; None where
    no one was seen."""
    seen = total["people"] + total.get(UNASSESSABLE, 0)
    return round(total.get(INFRARED, 0) / seen, 4) if seen else None


def infrared_words(infrared: int, seen: int) -> str:
    """`N of M people seen on grey (infrared) frames ...`, as the reports and alerts say it."""
    return (f"{infrared} of {seen} {'person' if seen == 1 else 'people'} seen on grey (infrared) frames, "
            f"{NIGHT_WORDS} ({INFRARED_DOCS})")

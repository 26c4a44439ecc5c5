"""Telling a night camera's grey (infrared) frames, on which the shipped classifier is often wrong.

Its training photos are colour (1 of the dataset's 853 is grey). On grey copies of the held-out
photos it named 14 % of faces wrongly (2 % in colour), nearly all of them bare faces called masked,
as sure of itself as ever (mean top probability 0.96, unassessable 4.5 %): the doubt rule does not
catch it (benchmarks/night_frames.py, docs/site.md#night-and-infrared-cameras). So `detect` and a
site's cameras say when frames are grey.
"""

from __future__ import annotations

GREY_WORDS = ("the shipped mask classifier, trained on colour photos, passed 99 of 143 bare faces of held-out photos "
              "made grey as masked (1 of 143 in colour), as sure of itself as in colour: mask compliance in grey "
              "hours is overstated "
              "(docs/site.md#night-and-infrared-cameras)")


# How long a camera's frames stay grey (or colour) before the turn is said: a scene on the edge
# (dusk, a flickering light, a day/night switch hunting) turned at every analysed frame, a log
# line each; now at worst a line a minute, and a frame-to-frame flicker says nothing.
GREY_HOLD_S = 60.0


class GreyWatch:
    """Whether a camera's frames are grey, turned only once every reading for GREY_HOLD_S agrees."""

    def __init__(self) -> None:
        self.grey = False
        self.hold = GREY_HOLD_S
        self._since: float | None = None  # when the readings began to differ from self.grey

    def seen(self, grey: bool, at: float) -> bool:
        """A detection's reading at `at` seconds (a steady clock); whether the frames turned."""
        if grey == self.grey:
            self._since = None
            return False
        if self._since is None:
            self._since = at
        if at - self._since < self.hold:
            return False
        self.grey, self._since = grey, None
        return True

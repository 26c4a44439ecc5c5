"""Telling a night camera's grey (infrared) frames, whose faces the night model judges.

The classifier sends every face of a grey frame to its night model (maskwatch.classifier), trained
on grey crops: on grey copies of held-out photos it passed 15 of 143 bare faces as masked (the
colour models 99; 1 of 143 in colour), and on dark, noisy copies it called many masked faces bare
(benchmarks/night_frames.py, docs/site.md#night-and-infrared-cameras). So `detect` and a site's
cameras say when frames are grey.
"""

from __future__ import annotations

from maskwatch.data.grey import NIGHT_WORDS

GREY_WORDS = f"their faces {NIGHT_WORDS} (docs/site.md#night-and-infrared-cameras)"
# A classifier of one's own (`--classifier`) comes without a night model: its colour network answers them.
NO_NIGHT_WORDS = ("their faces are judged by a classifier without a night model, trained on colour (the shipped "
                  "colour models passed 99 of 143 bare faces of grey copies of held-out photos as masked): read a "
                  "marked share with care (docs/site.md#night-and-infrared-cameras)")


def grey_words(processor) -> str:
    """What a grey frame's faces are worth with this processor's classifier: the night model's words,
    or, for a classifier of one's own (no night model), that a colour network judges them."""
    classifier = getattr(getattr(processor, "detector", None), "classifier", None)
    return NO_NIGHT_WORDS if classifier is not None and classifier.night_path is None else GREY_WORDS


def mostly_grey(grey_frames: int, frames: int) -> bool:
    """Whether a person was seen on grey frames more often than not (of the frames their face was
    detected in): marked `infrared`, judged mostly by the night model, in a site's events and counts
    and in `detect`'s summary.json alike."""
    return 2 * grey_frames > frames


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

    def seen(self, grey: bool | None, at: float) -> bool:
        """A detection's reading at `at` seconds (a steady clock); whether the frames turned. None (a
        frame that cannot tell: dark, flat, no face) is no reading: the turn's wait goes on, not reset."""
        if grey is None:
            return False
        if grey == self.grey:
            self._since = None
            return False
        if self._since is None:
            self._since = at
        if at - self._since < self.hold:
            return False
        self.grey, self._since = grey, None
        return True

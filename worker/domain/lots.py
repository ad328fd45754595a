"""A lot's states: what a buy delivered is unsold until it is sold, written off or dust."""

from __future__ import annotations

import enum


class LotState(enum.StrEnum):
    OPEN = "open"  # unsold; the engine places its take-profit and exits
    # Unsold, but its exits were refused again and again (MAX_EXIT_REFUSALS): the engine stops
    # trying and an operator settles it (``python -m worker settle-lot``). It still blocks its
    # slot and counts as a position: the coins may still be held.
    NEEDS_ATTENTION = "needs_attention"
    CLOSED = "closed"  # sold, settled by an operator, or nothing sellable left (dust)


# States in which a lot holds its slot and counts toward MAX_OPEN_POSITIONS.
UNSOLD_STATES = (LotState.OPEN, LotState.NEEDS_ATTENTION)


class Settlement(enum.StrEnum):
    """How an operator closed a lot that needed attention."""

    SOLD_ELSEWHERE = "sold_elsewhere"  # the coins were sold outside the engine, at a given price
    WRITTEN_OFF = "written_off"  # the coins are gone (or worthless): nothing was received

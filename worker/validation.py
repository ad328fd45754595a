"""One readable sentence from a pydantic ``ValidationError``.

Signals, settings and the strategy file each say how one problem reads to whoever wrote the
input (``describe``); walking pydantic's errors and joining them is the same for all three.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pydantic


@dataclass(frozen=True, slots=True)
class Problem:
    """One refused value."""

    loc: tuple[int | str, ...]  # where, as pydantic gives it: ("original_gap", "gap_pct")
    where: str  # the same, dotted: "original_gap.gap_pct"; "" for the input as a whole
    message: str  # pydantic's message, without the "Value error, " of our own validators
    kind: str  # pydantic's error type: "extra_forbidden", "greater_than" ...
    got: Any  # the refused input


def explain(exc: pydantic.ValidationError, describe: Callable[[Problem], str]) -> str:
    """Every problem in ``exc`` as ``describe`` words it, joined by ``; ``."""
    parts = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        problem = Problem(
            loc=loc,
            where=".".join(str(p) for p in loc),
            message=err["msg"].removeprefix("Value error, "),
            kind=err["type"],
            got=err.get("input"),
        )
        parts.append(describe(problem))
    return "; ".join(parts)

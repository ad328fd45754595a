"""``batch_buy_ws`` (Batch): when at least ``min_count`` instruments are at the same time
``drop_pct`` or more below their hour open, buy the ``max_count`` deepest at their last price.

The bucket is the UTC hour: each instrument is bought at most once per hour, and the batch
buys at most ``max_count`` instruments per hour in total (later in the hour, instruments that
become among the deepest are bought until the hour's ``max_count`` is used up).
"""

from __future__ import annotations

import heapq
from decimal import Decimal

from feed.state import HOUR_MS, InstrumentState, Tick
from feed.strategies.base import Candidate, hour_bucket
from worker.strategy_config import BatchBuyParams

STRATEGY = "batch_buy_ws"


class BatchState:
    """The instruments down at least ``drop_pct`` this hour; reset when the hour turns."""

    __slots__ = ("bought", "deep", "hour_idx", "peak", "peaks")

    def __init__(self) -> None:
        self.hour_idx = -1
        # inst_id -> (last / hour_open, last): only instruments that are deep right now.
        self.deep: dict[str, tuple[Decimal, Decimal]] = {}
        self.bought: set[str] = set()
        # The most instruments deep at once this hour (how close the batch came to
        # ``min_count``), and in the hours before (hour -> peak, the last few).
        self.peak = 0
        self.peaks: dict[int, int] = {}

    def roll(self, hour: int) -> None:
        if self.hour_idx >= 0:
            self.peaks[self.hour_idx] = self.peak
            for old in [h for h in self.peaks if h < hour - 2]:
                del self.peaks[old]
        self.hour_idx = hour
        self.peak = 0
        self.deep.clear()
        self.bought.clear()

    def peak_of(self, hour: int) -> int | None:
        """The most instruments deep at once in ``hour``, if it is this hour or a recent one."""
        return self.peak if hour == self.hour_idx else self.peaks.get(hour)


def _depth_key(item: tuple[str, tuple[Decimal, Decimal]]) -> tuple[Decimal, str]:
    return item[1][0], item[0]


class Batch:
    """The strategy with its parameters and its hour's state; ``keep`` (1 - drop_pct) is
    computed once."""

    __slots__ = ("keep", "params", "state")

    def __init__(self, params: BatchBuyParams, state: BatchState | None = None) -> None:
        self.params = params
        self.keep = 1 - params.drop_pct
        self.state = state or BatchState()

    def evaluate(self, state: InstrumentState, tick: Tick) -> list[Candidate]:
        """Observe ``tick``; return the buys it triggers (deepest first), marking them
        bought."""
        batch = self.state
        hour = tick.ts // HOUR_MS
        if hour > batch.hour_idx:
            batch.roll(hour)
        elif hour < batch.hour_idx:
            return []  # a late tick from the previous hour says nothing about this one
        inst_id = tick.inst_id
        if hour != state.hour_idx:  # no open known for this hour (see ``open_for``)
            batch.deep.pop(inst_id, None)
            return []
        hour_open = state.hour_open
        assert hour_open is not None  # set together with hour_idx
        if tick.last > hour_open * self.keep:
            batch.deep.pop(inst_id, None)
            return []
        deep = batch.deep
        deep[inst_id] = (tick.last / hour_open, tick.last)
        if len(deep) > batch.peak:
            batch.peak = len(deep)
        params = self.params
        room = params.max_count - len(batch.bought)
        if len(deep) < params.min_count or room <= 0:
            return []
        out: list[Candidate] = []
        bucket = hour_bucket(hour)
        deepest = heapq.nsmallest(params.max_count, batch.deep.items(), key=_depth_key)
        for inst, (_, last) in deepest:
            if inst in batch.bought:
                continue
            batch.bought.add(inst)
            out.append(Candidate(STRATEGY, inst, hour, bucket, last))
            if len(out) >= room:
                break
        return out

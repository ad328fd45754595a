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

    __slots__ = ("bought", "deep", "hour_idx")

    def __init__(self) -> None:
        self.hour_idx = -1
        # inst_id -> (last / hour_open, last): only instruments that are deep right now.
        self.deep: dict[str, tuple[Decimal, Decimal]] = {}
        self.bought: set[str] = set()

    def roll(self, hour: int) -> None:
        self.hour_idx = hour
        self.deep.clear()
        self.bought.clear()


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
        batch.deep[inst_id] = (tick.last / hour_open, tick.last)
        params = self.params
        room = params.max_count - len(batch.bought)
        if len(batch.deep) < params.min_count or room <= 0:
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

"""``stable_buy_ws`` (Stable): in a calm, liquid market (24h range within ``max_range``, 24h
quote volume at least ``min_volume_usdt``), buy at ``sodUtc0 * (1 - drop_pct)`` once the last
price reaches it; one buy per instrument per UTC day."""

from __future__ import annotations

from feed.parse import day_stats
from feed.state import DAY_MS, InstrumentState, Tick
from feed.strategies.base import Candidate, day_bucket
from worker.strategy_config import StableBuyParams

STRATEGY = "stable_buy_ws"


class Stable:
    """The strategy with its parameters; ``keep`` (1 - drop_pct) is computed once."""

    __slots__ = ("keep", "params")

    def __init__(self, params: StableBuyParams) -> None:
        self.params = params
        self.keep = 1 - params.drop_pct

    def evaluate(self, state: InstrumentState, tick: Tick) -> Candidate | None:
        """The buy ``tick`` triggers, if any."""
        sod = tick.sod_utc0
        if sod is None:
            return None
        limit = sod * self.keep
        if tick.last > limit:
            return None
        stats = day_stats(tick)  # parsed only now that the price has triggered
        if stats is None:
            return None
        high, low, vol = stats
        params = self.params
        if vol < params.min_volume_usdt or (high - low) / low > params.max_range:
            return None
        day = tick.ts // DAY_MS
        if state.fired.get(STRATEGY) == day:
            return None
        return Candidate(STRATEGY, tick.inst_id, day, day_bucket(day), limit)

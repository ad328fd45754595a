"""``hourly_limit_ws`` (Original): buy at ``hour_open * (1 - drop_pct)`` once the last price
reaches it; one buy per instrument per UTC hour."""

from __future__ import annotations

from feed.state import HOUR_MS, InstrumentState, Tick
from feed.strategies.base import Candidate, hour_bucket
from worker.strategy_config import HourlyLimitParams

STRATEGY = "hourly_limit_ws"


class Hourly:
    """The strategy with its parameters; ``keep`` (1 - drop_pct) is computed once."""

    __slots__ = ("keep", "params")

    def __init__(self, params: HourlyLimitParams) -> None:
        self.params = params
        self.keep = 1 - params.drop_pct

    def evaluate(self, state: InstrumentState, tick: Tick) -> Candidate | None:
        """The buy ``tick`` triggers, if any (``state`` already holds ``tick``)."""
        hour = tick.ts // HOUR_MS
        if hour != state.hour_idx:  # no open known for this hour (see ``open_for``)
            return None
        hour_open = state.hour_open
        assert hour_open is not None  # set together with hour_idx
        limit = hour_open * self.keep
        if tick.last > limit or state.fired.get(STRATEGY) == hour:
            return None
        return Candidate(STRATEGY, tick.inst_id, hour, hour_bucket(hour), limit)

"""``hourly_limit_ws`` (Original): buy at ``hour_open * (1 - drop_pct)`` once the last price
reaches it; one buy per instrument per UTC hour."""

from __future__ import annotations

from feed.state import HOUR_MS, InstrumentState, Tick
from feed.strategies.base import Candidate, already_fired, hour_bucket
from worker.strategy_config import HourlyLimitParams

STRATEGY = "hourly_limit_ws"


def evaluate(params: HourlyLimitParams, state: InstrumentState, tick: Tick) -> Candidate | None:
    """The buy ``tick`` triggers, if any (``state`` already holds ``tick``)."""
    hour = tick.ts // HOUR_MS
    hour_open = state.open_for(tick.ts)
    if hour_open is None:
        return None
    limit = hour_open * (1 - params.drop_pct)
    if tick.last > limit or already_fired(state.fired, STRATEGY, hour):
        return None
    return Candidate(STRATEGY, tick.inst_id, hour, hour_bucket(hour), limit)

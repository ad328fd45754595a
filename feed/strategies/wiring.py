"""The feed's one map from a strategy id (``worker.domain.strategies``) to its evaluator.

The engine builds the enabled evaluators from ``EVALUATORS`` in registry order (the order
matters: ``feed.approach`` reads the gap window the gap strategy has just updated) and calls
each on every tick. A new strategy is its module beside the others and one entry here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from feed.state import InstrumentState, Tick
from feed.strategies import batch, gap, hourly, stable
from feed.strategies.base import Candidate
from worker.domain.strategies import BATCH, GAP, HOURLY, STABLE
from worker.strategy_config import StrategyConfig, StrategyParams


class Evaluator(Protocol):
    """A strategy prepared from its parameters: ``evaluate`` returns the buys a tick triggers.

    It may raise ``feed.parse.BadInput`` for a field it parses only once the price triggered.
    """

    @property
    def params(self) -> StrategyParams: ...

    def evaluate(
        self, state: InstrumentState, tick: Tick
    ) -> Candidate | list[Candidate] | None: ...


@dataclass(frozen=True, slots=True)
class Wiring:
    """How to build a strategy's evaluator, and what of the ticker it needs parsed."""

    build: Callable[[StrategyConfig, batch.BatchState], Evaluator]
    day_fields: bool = False  # the ticker's 24h fields (``sodUtc0``, ``high24h`` ...)


EVALUATORS: dict[str, Wiring] = {
    HOURLY.id: Wiring(lambda config, _: hourly.Hourly(config.hourly_limit_ws)),
    GAP.id: Wiring(lambda config, _: gap.Gap(config.original_gap)),
    STABLE.id: Wiring(lambda config, _: stable.Stable(config.stable_buy_ws), day_fields=True),
    BATCH.id: Wiring(lambda config, shared: batch.Batch(config.batch_buy_ws, shared)),
}


def enabled_evaluators(
    config: StrategyConfig, batch_state: batch.BatchState
) -> tuple[Evaluator, ...]:
    """The evaluators of the enabled strategies, in registry order."""
    return tuple(EVALUATORS[s].build(config, batch_state) for s in config.enabled())


def needs_day_fields(config: StrategyConfig) -> bool:
    """Whether an enabled strategy reads the ticker's 24h fields."""
    return any(EVALUATORS[s].day_fields for s in config.enabled())

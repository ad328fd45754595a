"""The strategies this build knows: the one list of their ids, clOrdId codes and names.

The order is the order the feed evaluates them in and the order every listing shows them in.
A new strategy is one line here; ``tests/unit/test_strategy_registry.py`` then says what else
must know it (its parameters in ``worker.strategy_config``, its evaluator in
``feed.strategies.wiring``).
"""

from __future__ import annotations

from dataclasses import dataclass

_CODE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
_ID_CHARS = _CODE_CHARS | {"_"}


@dataclass(frozen=True, slots=True)
class Strategy:
    """One strategy: ``id`` in signals, config tables and the ledger; ``code`` in clOrdIds."""

    id: str
    code: str  # two lowercase letters or digits, after ``lf`` in every clOrdId
    name: str  # what people call it (DESIGN "Strategies")

    def __post_init__(self) -> None:
        if not self.id or not set(self.id) <= _ID_CHARS:
            raise ValueError(f"strategy id {self.id!r}: lowercase letters, digits and _ only")
        if len(self.code) != 2 or not set(self.code) <= _CODE_CHARS:
            raise ValueError(f"strategy code {self.code!r}: two lowercase letters or digits")


HOURLY = Strategy("hourly_limit_ws", "hl", "Original")
GAP = Strategy("original_gap", "og", "Gap")
STABLE = Strategy("stable_buy_ws", "sb", "Stable")
BATCH = Strategy("batch_buy_ws", "bb", "Batch")

REGISTRY: tuple[Strategy, ...] = (HOURLY, GAP, STABLE, BATCH)
BY_ID: dict[str, Strategy] = {s.id: s for s in REGISTRY}
BY_CODE: dict[str, Strategy] = {s.code: s for s in REGISTRY}
STRATEGIES: tuple[str, ...] = tuple(BY_ID)


def display_name(strategy: str) -> str:
    """``Original`` for ``hourly_limit_ws``; an id this build does not know, as it is."""
    known = BY_ID.get(strategy)
    return known.name if known is not None else strategy

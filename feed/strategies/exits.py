"""Stop loss and time exit over the feed's view of open positions.

The view is a hint refreshed from the database every few seconds: a sell signal for a lot
that was sold meanwhile is harmless (the worker re-reads the truth under the slot lock).
Signals are deduplicated per lot per minute; the dedup table holds only lots still open.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol


class Position(Protocol):
    """What the feed reads of an open position (``worker.positions.OpenPosition``)."""

    @property
    def inst_id(self) -> str: ...
    @property
    def strategy(self) -> str: ...
    @property
    def lot_id(self) -> int: ...
    @property
    def avg_px(self) -> Decimal: ...
    @property
    def size(self) -> Decimal: ...
    @property
    def opened_ms(self) -> int: ...
    @property
    def exit_after_ms(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Exit:
    strategy: str
    inst_id: str
    lot_id: int
    reason: str
    minute: int
    px: Decimal | None


def exit_reason(
    position: Position, stop_loss_pct: Decimal, last: Decimal | None, now_ms: int
) -> str | None:
    """``stop_loss``, ``time_exit`` or ``None`` for ``position`` at ``last`` and ``now_ms``."""
    if last is not None and last <= position.avg_px * (1 - stop_loss_pct):
        return "stop_loss"
    if now_ms >= position.exit_after_ms:
        return "time_exit"
    return None


class ExitTracker:
    """Which lots were already signalled in which minute."""

    def __init__(self) -> None:
        self._sent: dict[int, int] = {}

    def check(
        self,
        position: Position,
        stop_loss_pct: Decimal,
        last: Decimal | None,
        bid: Decimal | None,
        now_ms: int,
    ) -> Exit | None:
        reason = exit_reason(position, stop_loss_pct, last, now_ms)
        if reason is None:
            return None
        minute = now_ms // 60_000
        if self._sent.get(position.lot_id) == minute:
            return None
        self._sent[position.lot_id] = minute
        return Exit(position.strategy, position.inst_id, position.lot_id, reason, minute, bid)

    def keep_only(self, lot_ids: Iterable[int]) -> None:
        """Forget lots that are no longer open (bounds the table by the open positions)."""
        keep = set(lot_ids)
        for lot_id in [k for k in self._sent if k not in keep]:
            del self._sent[lot_id]

    def __len__(self) -> int:
        return len(self._sent)

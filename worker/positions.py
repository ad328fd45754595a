"""Read-only views of the ledger for other components (the feed's position cache, reports)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select

from worker.domain.lots import LotState
from worker.ledger.db import Ledger
from worker.ledger.models import Lot
from worker.settings import Settings


@dataclass(frozen=True, slots=True)
class OpenPosition:
    """An unsold lot: what exits (stop loss, time exit) are computed from."""

    inst_id: str
    strategy: str
    lot_id: int
    avg_px: Decimal
    size: Decimal
    opened_ms: int
    exit_after_ms: int


@functools.lru_cache(maxsize=4)
def _ledger(url: str) -> Ledger:
    return Ledger.from_url(url)


def open_positions(settings: Settings) -> list[OpenPosition]:
    """Every unsold lot, straight from the database."""
    with _ledger(settings.database_url).engine.connect() as conn:
        rows = conn.execute(
            select(
                Lot.inst_id,
                Lot.strategy,
                Lot.id,
                Lot.avg_px,
                Lot.size,
                Lot.sold_sz,
                Lot.opened_at,
                Lot.exit_after,
            ).where(Lot.state == LotState.OPEN.value)  # needs_attention: no exits
        ).all()
    return [
        OpenPosition(
            inst_id=r.inst_id,
            strategy=r.strategy,
            lot_id=r.id,
            avg_px=r.avg_px,
            size=r.size - r.sold_sz,
            opened_ms=int(r.opened_at.timestamp() * 1000),
            exit_after_ms=int(r.exit_after.timestamp() * 1000),
        )
        for r in rows
    ]

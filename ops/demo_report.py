"""What the demo reads from the ledger: a progress snapshot, and the final summary tables.

Everything is counted from ``since`` (the demo's start), so a run on a shared PostgreSQL
database reports only its own session.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select

from worker import render
from worker.domain.lots import UNSOLD_STATES
from worker.ledger.db import Ledger
from worker.ledger.models import Fill, Lot, Order, Signal

UNSOLD = [s.value for s in UNSOLD_STATES]  # a lot that needs attention is still held


@dataclass(frozen=True)
class Progress:
    signals: int
    orders: int
    fills: int
    open_positions: int
    closed_lots: int


def progress(ledger: Ledger, since: datetime) -> Progress:
    with ledger.engine.connect() as conn:

        def count(query: Any) -> int:
            return int(conn.execute(query).scalar_one())

        return Progress(
            signals=count(select(func.count()).where(Signal.received_at >= since)),
            orders=count(select(func.count()).where(Order.created_at >= since)),
            fills=count(
                select(func.count(Fill.id))
                .join(Order, Fill.order_id == Order.id)
                .where(Order.created_at >= since)
            ),
            open_positions=count(
                select(func.count()).where(Lot.state.in_(UNSOLD), Lot.opened_at >= since)
            ),
            closed_lots=count(
                select(func.count()).where(Lot.state == "closed", Lot.opened_at >= since)
            ),
        )


def table(title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """The operator commands' table, with the demo's cells (amounts to 4 places)."""
    return render.table(title, header, rows, _cell)


def _cell(value: object) -> str:
    if isinstance(value, Decimal):
        return _fmt(value)
    return str(value)


def _fmt(value: Decimal, places: int = 4) -> str:
    return f"{value.quantize(Decimal(1).scaleb(-places)):,}"


SIGNAL_HEADER = (
    "strategy",
    "buys accepted",
    "buys skipped",
    "sells accepted",
    "sells skipped",
    "invalid",
)


def summary(ledger: Ledger, since: datetime) -> str:
    """Every table a trader wants after a session, from the database."""
    with ledger.engine.connect() as conn:
        signal_rows = conn.execute(
            select(Signal.strategy, Signal.kind, Signal.outcome, func.count())
            .where(Signal.received_at >= since)
            .group_by(Signal.strategy, Signal.kind, Signal.outcome)
        ).all()
        order_rows = conn.execute(
            select(Order.side, Order.purpose, Order.state, func.count())
            .where(Order.created_at >= since)
            .group_by(Order.side, Order.purpose, Order.state)
            .order_by(Order.side, Order.purpose, Order.state)
        ).all()
        fill_rows = conn.execute(
            select(Order.side, func.count(Fill.id), func.coalesce(func.sum(Fill.px * Fill.sz), 0))
            .join(Order, Fill.order_id == Order.id)
            .where(Order.created_at >= since)
            .group_by(Order.side)
            .order_by(Order.side)
        ).all()
        skip_rows = conn.execute(
            select(Signal.reason, func.count())
            .where(Signal.received_at >= since, Signal.outcome == "skipped")
            .group_by(Signal.reason)
            .order_by(func.count().desc())
        ).all()
        open_rows = conn.execute(
            select(Lot.inst_id, Lot.strategy, Lot.size - Lot.sold_sz, Lot.avg_px, Lot.cost)
            .where(Lot.state.in_(UNSOLD), Lot.opened_at >= since)
            .order_by(Lot.inst_id, Lot.strategy)
        ).all()
        pnl_rows = conn.execute(
            select(
                Lot.strategy,
                func.count(),
                func.sum(Lot.cost),
                func.sum(Lot.proceeds),
                func.sum(Lot.proceeds - Lot.cost),
            )
            .where(Lot.state == "closed", Lot.opened_at >= since)
            .group_by(Lot.strategy)
            .order_by(Lot.strategy)
        ).all()

    per_strategy: dict[str, dict[str, int]] = {}
    for strategy, kind, outcome, n in signal_rows:
        row = per_strategy.setdefault(strategy or "?", {})
        key = f"{kind} {outcome}"
        row[key] = row.get(key, 0) + int(n)
    signals = [
        (
            name,
            c.get("buy accepted", 0),
            c.get("buy skipped", 0),
            c.get("sell accepted", 0),
            c.get("sell skipped", 0),
            sum(v for k, v in c.items() if k.endswith("invalid")),
        )
        for name, c in sorted(per_strategy.items())
    ]
    total_pnl = sum((Decimal(r[4]) for r in pnl_rows), Decimal(0))
    pnl = [(s, int(n), Decimal(c), Decimal(p), Decimal(x)) for s, n, c, p, x in pnl_rows]
    parts = [
        table(
            "Signals per strategy",
            SIGNAL_HEADER,
            signals,
        ),
        table(
            "Orders by state",
            ("side", "purpose", "state", "orders"),
            [(s, p, st, int(n)) for s, p, st, n in order_rows],
        ),
        table(
            "Fills",
            ("side", "fills", "value (USDT)"),
            [(s, int(n), Decimal(v)) for s, n, v in fill_rows],
        ),
        table(
            "Skipped signals by reason", ("reason", "signals"), [(r, int(n)) for r, n in skip_rows]
        ),
        table(
            "Open positions",
            ("instrument", "strategy", "size", "avg price", "cost (USDT)"),
            [(i, s, Decimal(z), Decimal(a), Decimal(c)) for i, s, z, a, c in open_rows],
        ),
        table(
            "Realised P&L per strategy (closed lots: proceeds - cost, fees included)",
            ("strategy", "closed lots", "cost", "proceeds", "P&L (USDT)"),
            pnl,
        )
        + f"\n  total realised P&L: {_fmt(total_pnl)} USDT",
    ]
    return "\n\n".join(parts)

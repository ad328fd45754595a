"""Read models: the queries behind the operator commands (``python -m worker ...``).

Each function runs its queries on one session or connection and returns plain values; the
commands print them (``worker.render``) and ``worker.why`` turns them into sentences. Money is
read as ``Decimal`` and computed in Python: never summed, ordered or computed in SQL (SQLite
stores it as text, see ``worker.ledger.models.Money``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from worker.domain.buckets import Bucket
from worker.domain.lots import UNSOLD_STATES
from worker.domain.orders import OPEN_STATES
from worker.ledger.models import (
    ClosestApproach,
    FeedCoverage,
    Fill,
    Lot,
    Order,
    Signal,
)
from worker.ledger.reports import last_reports
from worker.ledger.switches import pauses
from worker.services.lots import needs_attention

V = TypeVar("V")
OPEN = [s.value for s in OPEN_STATES]
UNSOLD = [s.value for s in UNSOLD_STATES]
_ZERO = Decimal(0)


# -- orders, fills, lots ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FillView:
    trade_id: str
    px: Decimal
    sz: Decimal
    fee: Decimal
    fee_ccy: str
    at: datetime


@dataclass(frozen=True, slots=True)
class LotView:
    id: int
    inst_id: str
    strategy: str
    state: str
    size: Decimal
    sold_sz: Decimal
    avg_px: Decimal
    cost: Decimal  # quote paid for ``size``, fees included
    proceeds: Decimal  # quote received, net of fees
    dust_sz: Decimal
    take_profit_px: Decimal
    opened_at: datetime
    exit_after: datetime
    closed_at: datetime | None
    settlement: str
    buy_cl_ord_id: str

    @property
    def remaining(self) -> Decimal:
        return self.size - self.sold_sz

    @property
    def pnl(self) -> Decimal:
        """Realised P&L of a closed lot (proceeds minus cost, every fee included)."""
        return self.proceeds - self.cost


@dataclass(frozen=True, slots=True)
class OrderView:
    id: int
    cl_ord_id: str
    inst_id: str
    strategy: str
    side: str
    purpose: str
    state: str
    px: Decimal
    sz: Decimal
    filled_sz: Decimal
    avg_px: Decimal
    fee: Decimal
    fee_ccy: str
    created_at: datetime
    updated_at: datetime
    last_error: str
    lot_id: int | None
    fills: list[FillView] = field(default_factory=list)
    lot: LotView | None = None  # the lot a buy delivered


def _view(cls: type[V], row: Any, **extra: Any) -> V:
    """A view of an ORM row: the fields the view and the row share, plus ``extra``."""
    names = [f.name for f in fields(cls) if f.init and f.name not in extra]  # type: ignore[arg-type]
    return cls(**{n: getattr(row, n) for n in names if hasattr(row, n)}, **extra)


def order_with_story(s: Session, order_id: int) -> OrderView | None:
    """An order with its fills and, for a buy, the lot it delivered."""
    order = s.get(Order, order_id)
    if order is None:
        return None
    fills = s.scalars(select(Fill).where(Fill.order_id == order_id).order_by(Fill.ts_ms, Fill.id))
    lot = s.scalar(select(Lot).where(Lot.buy_order_id == order_id))
    return _view(
        OrderView,
        order,
        fills=[_view(FillView, f, at=_ms(f.ts_ms)) for f in fills],
        lot=_view(LotView, lot, buy_cl_ord_id=order.cl_ord_id) if lot is not None else None,
    )


def orders(
    s: Session,
    states: Iterable[str] = (),
    inst_id: str | None = None,
    strategy: str | None = None,
    limit: int = 50,
) -> list[OrderView]:
    """Orders, newest first (``open`` among ``states`` means every non-terminal state)."""
    wanted = set(states)
    if "open" in wanted:
        wanted = (wanted - {"open"}) | set(OPEN)
    query = select(Order).order_by(Order.id.desc()).limit(limit)
    if wanted:
        query = query.where(Order.state.in_(sorted(wanted)))
    if inst_id:
        query = query.where(Order.inst_id == inst_id)
    if strategy:
        query = query.where(Order.strategy == strategy)
    return [_view(OrderView, o) for o in s.scalars(query)]


# -- positions and P&L ----------------------------------------------------------------------------


def open_lots(s: Session, inst_id: str | None = None) -> list[LotView]:
    """Every unsold lot (open or needing attention), oldest first."""
    query = (
        select(Lot, Order.cl_ord_id)
        .join(Order, Order.id == Lot.buy_order_id)
        .where(Lot.state.in_(UNSOLD))
        .order_by(Lot.id)
    )
    if inst_id:
        query = query.where(Lot.inst_id == inst_id)
    return [_view(LotView, lot, buy_cl_ord_id=cl) for lot, cl in s.execute(query).all()]


@dataclass(frozen=True, slots=True)
class Position:
    """An unsold lot valued at the last price (None when the exchange did not say)."""

    lot: LotView
    last: Decimal | None
    error: str = ""

    @property
    def cost_remaining(self) -> Decimal:
        lot = self.lot
        return lot.cost * lot.remaining / lot.size if lot.size else _ZERO

    @property
    def value(self) -> Decimal | None:
        return None if self.last is None else self.lot.remaining * self.last

    @property
    def unrealised(self) -> Decimal | None:
        value = self.value
        return None if value is None else value - self.cost_remaining

    @property
    def unrealised_pct(self) -> Decimal | None:
        pnl = self.unrealised
        cost = self.cost_remaining
        return None if pnl is None or not cost else pnl / cost


def value_positions(lots: list[LotView], last_price: Callable[[str], Decimal]) -> list[Position]:
    """Value each lot at ``last_price(inst_id)`` (asked once per instrument); an instrument
    whose price cannot be read is shown without one, with the reason."""
    prices: dict[str, tuple[Decimal | None, str]] = {}
    for inst_id in sorted({lot.inst_id for lot in lots}):
        try:
            prices[inst_id] = (last_price(inst_id), "")
        except Exception as exc:  # the exchange's errors share a root, the transports' do not
            prices[inst_id] = (None, f"{type(exc).__name__}: {exc}"[:200])
    return [Position(lot, *prices[lot.inst_id]) for lot in lots]


@dataclass
class PnlLine:
    """Realised P&L of the lots one strategy closed on one instrument."""

    strategy: str
    inst_id: str
    lots: int = 0
    cost: Decimal = _ZERO
    proceeds: Decimal = _ZERO
    fees: Decimal = _ZERO  # every fee, in the quote currency (a base fee at the fill price)
    pnl: Decimal = _ZERO


def realised_pnl(s: Session, since: datetime | None = None) -> list[PnlLine]:
    """Per strategy and instrument, the lots closed since ``since``: cost, proceeds, fees and
    P&L (proceeds minus cost; fees are already in both)."""
    query = select(Lot).where(Lot.state == "closed").order_by(Lot.id)
    if since is not None:
        query = query.where(Lot.closed_at >= since)
    lots = list(s.scalars(query))
    fees = _fees_by_lot(s, lots)
    lines: dict[tuple[str, str], PnlLine] = {}
    for lot in lots:
        line = lines.setdefault((lot.strategy, lot.inst_id), PnlLine(lot.strategy, lot.inst_id))
        line.lots += 1
        line.cost += lot.cost
        line.proceeds += lot.proceeds
        line.fees += fees.get(lot.id, _ZERO)
        line.pnl += lot.proceeds - lot.cost
    return sorted(lines.values(), key=lambda line: (line.strategy, line.inst_id))


def _fees_by_lot(s: Session, lots: list[Lot]) -> dict[int, Decimal]:
    """The fees of each lot's buy and sells, in quote currency."""
    if not lots:
        return {}
    by_buy = {lot.buy_order_id: lot for lot in lots}
    ids = [lot.id for lot in lots]
    out: dict[int, Decimal] = {}
    rows = s.execute(
        select(Order.id, Order.lot_id, Order.inst_id, Order.fee, Order.fee_ccy, Order.avg_px)
        .where(or_(Order.id.in_(list(by_buy)), Order.lot_id.in_(ids)))
        .where(Order.filled_sz > 0)
    ).all()
    for order_id, lot_id, inst_id, fee, fee_ccy, avg_px in rows:
        owner = by_buy[order_id].id if order_id in by_buy else lot_id
        if owner is None:
            continue
        quote = inst_id.rpartition("-")[2]
        in_quote = fee if fee_ccy in (quote, "") else fee * avg_px
        out[owner] = out.get(owner, _ZERO) + in_quote
    return out


# -- why ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SignalView:
    signal_id: str
    outcome: str
    reason: str
    detail: str
    received_at: datetime
    created_at: datetime | None
    order: OrderView | None


def signals_in_bucket(s: Session, inst_id: str, bucket: Bucket) -> list[SignalView]:
    """The buy signals of ``bucket``: the feed's (its id names the bucket) and any other
    received within it (sent by hand or by a webhook), oldest first."""
    rows = s.scalars(
        select(Signal)
        .where(
            or_(
                Signal.signal_id == bucket.signal_id(inst_id),
                (Signal.inst_id == inst_id)
                & (Signal.strategy == bucket.strategy)
                & (Signal.kind == "buy")
                & (Signal.received_at >= bucket.start)
                & (Signal.received_at < bucket.end),
            )
        )
        .order_by(Signal.received_at)
    ).all()
    out = []
    for row in rows:
        order = order_with_story(s, row.order_id) if row.order_id is not None else None
        created = _ms(row.created_ms) if row.created_ms else None
        out.append(
            SignalView(
                row.signal_id, row.outcome, row.reason, row.detail, row.received_at, created, order
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class Approach:
    """How close a strategy came in one bucket, merged over the feed runs that watched it."""

    reference: Decimal | None
    closest: Decimal | None
    closest_at: datetime | None
    trigger: Decimal
    fired_at: datetime | None
    peak_count: int | None
    detail: str
    first_tick_at: datetime
    complete: bool
    updated_at: datetime
    runs: int

    @property
    def depth(self) -> Decimal | None:
        """How far below its reference the price went: 0.021 for 2.1 %."""
        if self.closest is None or not self.reference:
            return None
        return 1 - self.closest / self.reference


def approach_in_bucket(s: Session, inst_id: str, bucket: Bucket) -> Approach | None:
    rows = list(
        s.scalars(
            select(ClosestApproach).where(
                ClosestApproach.strategy == bucket.strategy,
                ClosestApproach.inst_id == inst_id,
                ClosestApproach.bucket_start == bucket.start,
            )
        )
    )
    if not rows:
        return None

    def ratio(r: ClosestApproach) -> Decimal:
        if r.closest is None or not r.reference:
            return Decimal("Infinity")
        return r.closest / r.reference

    best = min(rows, key=ratio)
    fired = [r.fired_at for r in rows if r.fired_at is not None]
    peaks = [r.peak_count for r in rows if r.peak_count is not None]
    return Approach(
        reference=best.reference if best.closest is not None else rows[-1].reference,
        closest=best.closest,
        closest_at=best.closest_at,
        trigger=best.trigger,
        fired_at=min(fired) if fired else None,
        peak_count=max(peaks) if peaks else None,
        detail=next((r.detail for r in rows if r.detail.startswith("the feed")), best.detail),
        first_tick_at=min(r.first_tick_at for r in rows),
        complete=any(r.complete for r in rows),
        updated_at=max(r.updated_at for r in rows),
        runs=len(rows),
    )


@dataclass(frozen=True, slots=True)
class Heard:
    """When one feed run heard an instrument within one hour (``gap``: its longest silence)."""

    run_id: str
    first: datetime
    last: datetime
    gap: tuple[datetime, datetime] | None
    updated_at: datetime  # when the feed wrote it (a running hour's row is a snapshot)

    def spans(self) -> list[tuple[datetime, datetime]]:
        if self.gap is None:
            return [(self.first, self.last)]
        return [(self.first, self.gap[0]), (self.gap[1], self.last)]


def heard(s: Session, inst_id: str, start: datetime, end: datetime) -> list[Heard]:
    """The feed's coverage of ``inst_id`` within ``[start, end)``."""
    rows = s.scalars(
        select(FeedCoverage)
        .where(
            FeedCoverage.inst_id == inst_id,
            FeedCoverage.last_tick_at >= start,
            FeedCoverage.first_tick_at < end,
        )
        .order_by(FeedCoverage.first_tick_at)
    )
    return [
        Heard(
            r.run_id,
            r.first_tick_at,
            r.last_tick_at,
            (r.gap_start, r.gap_end) if r.gap_start and r.gap_end else None,
            r.updated_at,
        )
        for r in rows
    ]


def heard_others(s: Session, inst_id: str, start: datetime, end: datetime) -> bool:
    """Whether the feed heard any other instrument within ``[start, end)``."""
    found = s.scalar(
        select(FeedCoverage.inst_id)
        .where(
            FeedCoverage.inst_id != inst_id,
            FeedCoverage.last_tick_at > start,
            FeedCoverage.first_tick_at < end,
        )
        .limit(1)
    )
    return found is not None


def heard_around(
    s: Session, inst_id: str, start: datetime, end: datetime
) -> tuple[datetime | None, datetime | None]:
    """The feed's last record of ``inst_id`` before ``start`` and its first after ``end``."""
    before = s.scalar(
        select(func.max(FeedCoverage.last_tick_at)).where(
            FeedCoverage.inst_id == inst_id, FeedCoverage.last_tick_at < start
        )
    )
    after = s.scalar(
        select(func.min(FeedCoverage.first_tick_at)).where(
            FeedCoverage.inst_id == inst_id, FeedCoverage.first_tick_at >= end
        )
    )
    return _aware(before), _aware(after)


def feed_last_heard(s: Session) -> datetime | None:
    """When the feed last wrote a record (any instrument)."""
    return _aware(s.scalar(select(func.max(FeedCoverage.updated_at))))


# -- status ------------------------------------------------------------------------------------


def counts_since(s: Session, since: datetime) -> dict[str, Any]:
    """Signals by outcome and reason, orders by side and state, and fills, since ``since``."""
    signals: Counter[str] = Counter()
    for kind, outcome, reason, n in s.execute(
        select(Signal.kind, Signal.outcome, Signal.reason, func.count())
        .where(Signal.received_at >= since)
        .group_by(Signal.kind, Signal.outcome, Signal.reason)
    ).all():
        signals[f"{kind} {outcome}" + (f" ({reason})" if reason else "")] += int(n)
    orders: Counter[str] = Counter()
    for side, state, n in s.execute(
        select(Order.side, Order.state, func.count())
        .where(Order.created_at >= since)
        .group_by(Order.side, Order.state)
    ).all():
        orders[f"{side} {state}"] += int(n)
    fills = s.scalar(select(func.count(Fill.id)).where(Fill.ts_ms >= int(since.timestamp() * 1000)))
    return {"signals": dict(signals), "orders": dict(orders), "fills": int(fills or 0)}


def lots_by_state(s: Session) -> dict[str, int]:
    return {
        state: int(n)
        for state, n in s.execute(select(Lot.state, func.count()).group_by(Lot.state)).all()
    }


def open_orders_count(s: Session) -> dict[str, int]:
    return {
        side: int(n)
        for side, n in s.execute(
            select(Order.side, func.count()).where(Order.state.in_(OPEN)).group_by(Order.side)
        ).all()
    }


def status_doc(s: Session, since: datetime, now: datetime, interval_seconds: int) -> dict[str, Any]:
    """Everything ``python -m worker status`` shows, as plain values."""

    return {
        "now": now,
        "since": since,
        "paused": [p.describe() for p in pauses(s)],
        "reconciliation": {"periodic": interval_seconds > 0, "interval_seconds": interval_seconds},
        "window": counts_since(s, since),
        "open_orders": open_orders_count(s),
        "lots": lots_by_state(s),
        "needs_attention": needs_attention(s),
        "last_reconcile": {
            r.task: {"finished_at": r.finished_at, "report": r.report} for r in last_reports(s)
        },
        "feed_last_record": feed_last_heard(s),
    }


def _ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _aware(dt: datetime | None) -> datetime | None:
    """Aggregates skip the column type: SQLite hands back naive UTC (or even text)."""
    if dt is None:
        return None
    if isinstance(dt, str):
        dt = datetime.fromisoformat(dt)
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)

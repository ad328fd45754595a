"""Ledger operations inside one transaction. The caller holds the slot lock.

``apply_snapshot`` is the only code that writes an order's state, and it does so through the
transition table of ``worker.domain.orders``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    BindParameter,
    Float,
    Select,
    Table,
    Update,
    bindparam,
    exists,
    func,
    insert,
    literal_column,
    or_,
    select,
    true,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from worker import metrics
from worker.domain.errors import IllegalTransition
from worker.domain.lots import UNSOLD_STATES
from worker.domain.money import InstrumentRules
from worker.domain.orders import (
    OPEN_STATES,
    OrderEvent,
    OrderState,
    apply_event,
    event_for_exchange_state,
)
from worker.domain.sizing import lot_from_fill
from worker.exchange.port import OrderSnapshot
from worker.ledger.db import Executor, Ledger, lock_key
from worker.ledger.models import ORPHAN, EngineFlag, Fill, Lot, Order, Signal
from worker.signals import BuySignal, SellSignal, to_message

OPEN = [s.value for s in OPEN_STATES]


def _constants(values: list[str]) -> list[Any]:
    """Our own state names written into the SQL: an ``IN`` list of bound values would be
    re-rendered ("expanded") on every execution of a statement that is otherwise built once.
    """
    assert all(v.isidentifier() for v in values)
    return [literal_column(f"'{v}'") for v in values]


OPEN_SQL = _constants(OPEN)
# A lot that needs attention is unsold too: it blocks its slot and counts as a position.
UNSOLD_LOT_SQL = _constants([s.value for s in UNSOLD_STATES])


def record_signal(
    ledger: Ledger,
    session: Executor,
    *,
    signal_id: str,
    kind: str,
    outcome: str,
    now: datetime,
    strategy: str | None = None,
    inst_id: str | None = None,
    reason: str = "",
    detail: str = "",
    order_id: int | None = None,
    created_ms: int | None = None,
    payload: dict[str, Any] | None = None,
) -> bool:
    """Record a signal's outcome once; return False if the signal was already recorded."""
    return ledger.insert_ignore(
        session,
        Signal,
        {
            "signal_id": signal_id[:200],
            "kind": kind,
            "strategy": strategy,
            "inst_id": inst_id,
            "outcome": outcome,
            "reason": reason,
            "detail": detail[:500],
            "order_id": order_id,
            "created_ms": created_ms,
            "received_at": now,
            "payload": payload,
        },
    )


def record_outcome(
    ledger: Ledger,
    session: Executor,
    signal: BuySignal | SellSignal,
    now: datetime,
    outcome: str,
    reason: str = "",
    detail: str = "",
    order_id: int | None = None,
) -> bool:
    """Record a valid signal's outcome once (see ``record_signal``)."""
    return record_signal(
        ledger,
        session,
        signal_id=signal.signal_id,
        kind=signal.kind,
        strategy=signal.strategy,
        inst_id=signal.inst_id,
        outcome=outcome,
        reason=reason,
        detail=detail,
        order_id=order_id,
        now=now,
        created_ms=signal.created_at,
        payload=to_message(signal),
    )


def update_outcome(
    session: Executor, signal_id: str, outcome: str, reason: str = "", detail: str = ""
) -> None:
    """Replace a recorded signal's outcome (a sell's ``accepted`` once it ended)."""
    session.execute(
        update(Signal)
        .where(Signal.signal_id == signal_id[:200])
        .values(outcome=outcome, reason=reason[:32], detail=detail[:500])
    )


def _blocker_query(lock_positions: bool) -> Select[Any]:
    inst_id: BindParameter[str] = bindparam("inst_id")
    strategy: BindParameter[str] = bindparam("strategy")
    in_slot = (Order.inst_id == inst_id) & (Order.strategy == strategy)
    recent = in_slot & (Order.side == "buy") & (Order.created_at > bindparam("since"))
    columns: list[Any] = [
        exists().where(Signal.signal_id == bindparam("signal_id")),
        exists().where(in_slot, Order.state.in_(OPEN_SQL)),
        exists().where(
            Lot.inst_id == inst_id, Lot.strategy == strategy, Lot.state.in_(UNSOLD_LOT_SQL)
        ),
        # The cooldown starts only with a buy that bought something: one that was rejected,
        # failed, or canceled or expired unfilled bought nothing. (A cast, not a comparison
        # of the money column with a number: correct however a database stores decimals.)
        exists().where(recent, sql_cast(Order.filled_sz, Float) > 0),
        # The switch for every buy, or the one for this strategy (``worker.ledger.switches``).
        exists().where(
            or_(EngineFlag.name == "paused", EngineFlag.name == bindparam("pause_flag")),
            EngineFlag.enabled.is_(True),
        ),
    ]
    if lock_positions:
        columns.append(func.pg_advisory_xact_lock(POSITIONS_LOCK))
    return select(*columns)


POSITIONS_LOCK = lock_key("open_positions")
# Built once (the hot path binds values instead of building the statement again), keyed by
# ``Ledger.sqlite``: PostgreSQL's also takes the positions lock (see ``open_positions_count``).
BLOCKER_QUERY = {True: _blocker_query(False), False: _blocker_query(True)}
BLOCKER_REASONS = ("duplicate", "slot_busy", "unsold_lot", "cooldown", "paused")


def slot_blocker(
    ledger: Ledger,
    session: Executor,
    inst_id: str,
    strategy: str,
    now: datetime,
    guard_seconds: int,
    signal_id: str | None = None,
) -> str | None:
    """Why the slot cannot buy now, or None: ``duplicate`` (``signal_id`` already recorded),
    ``slot_busy``, ``unsold_lot``, ``cooldown``, ``paused`` (every buy, or this strategy's),
    in that order of precedence (``worker.ledger.facts`` tells the facts behind each).
    One round trip to the database, which on PostgreSQL also takes the transaction-wide
    positions lock that ``open_positions_count`` needs.
    """
    # With no guard window the cooldown looks back to "now": no buy is that recent.
    since = now - timedelta(seconds=guard_seconds) if guard_seconds > 0 else now
    row = session.execute(
        BLOCKER_QUERY[ledger.sqlite],
        {
            "inst_id": inst_id,
            "strategy": strategy,
            "since": since,
            "signal_id": signal_id or "",
            "pause_flag": f"paused:{strategy}",
        },
    ).one()
    hits = row[: len(BLOCKER_REASONS)]
    return next((reason for reason, hit in zip(BLOCKER_REASONS, hits, strict=True) if hit), None)


# Built once.
POSITIONS_QUERY = select(
    select(func.count()).where(Order.side == "buy", Order.state.in_(OPEN_SQL)).scalar_subquery(),
    select(func.count()).where(Lot.state.in_(UNSOLD_LOT_SQL)).scalar_subquery(),
)


def open_positions_count(ledger: Ledger, session: Executor) -> int:
    """Slots holding something: open buys plus unsold lots (risk limit MAX_OPEN_POSITIONS).

    Positions span slots, so the count is taken under a transaction-wide lock that
    serializes the admissions that may add one (on SQLite every write is serialized anyway).
    On PostgreSQL ``slot_blocker`` took that lock in an EARLIER statement: a statement sees
    what was committed before it started, so a count in the very statement that waits for
    the lock could miss the position its holder just committed.
    """
    row = session.execute(POSITIONS_QUERY).one()
    return int(row[0]) + int(row[1])


_ORDERS = cast(Table, Order.__table__)
_SIGNALS = cast(Table, Signal.__table__)
_INTENT_COLUMNS = (
    "cl_ord_id",
    "inst_id",
    "strategy",
    "side",
    "purpose",
    "state",
    "px",
    "sz",
    "signal_id",
    "created_at",
    "updated_at",
    "submitted_at",
    "deadline_at",
)
_SIGNAL_COLUMNS = (
    "signal_id",
    "kind",
    "strategy",
    "inst_id",
    "outcome",
    "reason",
    "detail",
    "created_ms",
    "received_at",
    "payload",
)


def _admit_statements() -> tuple[Any, Any]:
    """The intent's INSERT (SQLite: after ``open_positions_count``, before ``record_outcome``)
    and PostgreSQL's one statement for all three: insert the intent if the positions count
    is below the limit, and the signal's row with it."""
    insert_order = insert(_ORDERS).returning(_ORDERS.c.id)
    values = [bindparam(c, type_=_ORDERS.c[c].type) for c in _INTENT_COLUMNS]
    positions = POSITIONS_QUERY.subquery()
    below_limit = select(*values).where(
        select(positions.c[0] + positions.c[1]).scalar_subquery()
        < bindparam("limit", type_=BigInteger())
    )
    order = (
        insert(_ORDERS)
        .from_select(_INTENT_COLUMNS, below_limit)
        .returning(_ORDERS.c.id)
        .cte("intent")
    )
    signal_values = [bindparam(f"signal_{c}", type_=_SIGNALS.c[c].type) for c in _SIGNAL_COLUMNS]
    signal = (
        postgresql.insert(_SIGNALS)
        .from_select([*_SIGNAL_COLUMNS, "order_id"], select(*signal_values, order.c.id))
        .on_conflict_do_nothing()
    )
    return insert_order, select(order.c.id).add_cte(signal.cte("intent_signal"))


INSERT_INTENT, ADMIT = _admit_statements()


def admit(
    ledger: Ledger,
    session: Executor,
    signal: BuySignal,
    now: datetime,
    cl_ord_id: str,
    px: Decimal,
    sz: Decimal,
    max_positions: int,
    deadline: datetime,
) -> int | None:
    """Unless ``open_positions_count`` has reached ``max_positions`` (then return None and
    write nothing), insert a buy's intent (``pending_submit``, sent no later than
    ``deadline``) and record its signal as
    accepted; return the order's id. Plain INSERTs: the hot path needs no unit of work.

    PostgreSQL: one statement, whose count sees every position committed before it started:
    all of them, since ``slot_blocker`` took the positions lock in an earlier statement.
    """
    values: dict[str, Any] = {
        "cl_ord_id": cl_ord_id,
        "inst_id": signal.inst_id,
        "strategy": signal.strategy,
        "side": "buy",
        "purpose": "entry",
        "state": OrderState.PENDING_SUBMIT.value,
        "px": px,
        "sz": sz,
        "signal_id": signal.signal_id,
        "created_at": now,
        "updated_at": now,
        "submitted_at": now,
        "deadline_at": deadline,
    }
    if ledger.sqlite:
        if open_positions_count(ledger, session) >= max_positions:
            return None
        order_id: int = session.execute(INSERT_INTENT, values).scalar_one()
        record_outcome(ledger, session, signal, now, "accepted", order_id=order_id)
        return order_id
    # The row record_outcome would write, in the same statement as the order.
    values.update(
        limit=max_positions,
        signal_signal_id=signal.signal_id[:200],
        signal_kind=signal.kind,
        signal_strategy=signal.strategy,
        signal_inst_id=signal.inst_id,
        signal_outcome="accepted",
        signal_reason="",
        signal_detail="",
        signal_created_ms=signal.created_at,
        signal_received_at=now,
        signal_payload=to_message(signal),
    )
    admitted: int | None = session.execute(ADMIT, values).scalar_one_or_none()
    return admitted


@dataclass(frozen=True, slots=True)
class Applied:
    """What ``apply_snapshot`` did to one order."""

    before: OrderState
    after: OrderState
    new_fill: bool
    filled_more: bool

    @property
    def became_terminal(self) -> bool:
        """The order just ended: from open, or from an inference the exchange overturned."""
        return self.after.is_terminal and (not self.before.is_terminal or self.revived)

    @property
    def revived(self) -> bool:
        """The exchange showed an order the ledger had inferred rejected or failed."""
        return self.before.is_inferred and self.after != self.before


def apply_snapshot(
    ledger: Ledger, session: Session, order: Order, snap: OrderSnapshot, now: datetime
) -> Applied:
    """Apply what the exchange says about ``order``; stale news never moves it backwards.

    Raise ``IllegalTransition`` when the news contradicts a terminal state we hold.
    """
    before = OrderState(order.state)
    after = apply_event(before, event_for_exchange_state(snap.state))
    new_fill = False
    if snap.fill is not None:
        new_fill = ledger.insert_ignore(
            session,
            Fill,
            {
                "order_id": order.id,
                "inst_id": order.inst_id,
                "trade_id": snap.fill.trade_id,
                "px": snap.fill.px,
                "sz": snap.fill.sz,
                "fee": snap.fill.fee,
                "fee_ccy": snap.fill.fee_ccy,
                "ts_ms": snap.fill.ts_ms,
            },
        )
    # Cumulative figures only grow: an older snapshot arriving late is ignored.
    filled_more = snap.acc_fill_sz > order.filled_sz
    if filled_more or (snap.acc_fill_sz == order.filled_sz and after != before):
        order.filled_sz = snap.acc_fill_sz
        order.avg_px = snap.avg_px
        order.fee = snap.fee
        order.fee_ccy = snap.fee_ccy or order.fee_ccy
    if not order.ord_id and snap.ord_id:
        order.ord_id = snap.ord_id
    order.exchange_updated_ms = max(order.exchange_updated_ms, snap.updated_ms)
    if new_fill and snap.fill is not None:
        metrics.fill(order.side, snap.fill.px, snap.fill.sz)
    if after != before:
        order.state = after.value
        metrics.order_state(order.side, after.value)
    order.updated_at = now
    return Applied(before, after, new_fill, filled_more)


def apply_event_to(order: Order, event: OrderEvent, now: datetime, error: str = "") -> bool:
    """Apply an engine-side event (rejected, not found); return whether the state changed."""
    before = OrderState(order.state)
    after = apply_event(before, event)
    if error:
        order.last_error = error[:300]
    order.updated_at = now
    if after != before:
        order.state = after.value
        metrics.order_state(order.side, after.value)
        return True
    return False


def _accept_statement() -> Update:
    source = OrderState.PENDING_SUBMIT
    target = apply_event(source, OrderEvent.ACCEPTED)
    orders = cast(Table, Order.__table__)
    return (
        update(orders)
        .where(orders.c.id == bindparam("b_order_id"), orders.c.state == source.value)
        .values(
            state=target.value,
            ord_id=bindparam("b_ord_id", type_=orders.c.ord_id.type),
            updated_at=bindparam("b_now", type_=orders.c.updated_at.type),
        )
    )


ACCEPT_IF_PENDING = _accept_statement()


def accept_if_pending(session: Executor, order_id: int, ord_id: str, now: datetime) -> bool:
    """Move a ``pending_submit`` order to the table's target for ACCEPTED in one statement.

    A compare-and-set that needs no slot lock: it only ever moves the order out of
    ``pending_submit``; return False (changing nothing) when the order is already elsewhere.
    """
    result = session.execute(
        ACCEPT_IF_PENDING, {"b_order_id": order_id, "b_ord_id": ord_id, "b_now": now}
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def try_apply_snapshot(
    ledger: Ledger, session: Session, order: Order, snap: OrderSnapshot, now: datetime
) -> Applied | None:
    """``apply_snapshot``, returning None (and recording why) on an illegal transition."""
    try:
        return apply_snapshot(ledger, session, order, snap, now)
    except IllegalTransition as exc:
        order.last_error = f"conflict: {exc}"[:300]
        return None


def lot_size_from_buy(order: Order, rules: InstrumentRules) -> tuple[Decimal, Decimal]:
    """What a buy delivered: ``(size, dust)``. A base-currency fee is taken off first, by the
    rule the buy was sized with (``worker.domain.sizing``)."""
    fee_in_base = order.fee if order.fee_ccy == rules.base_ccy else Decimal(0)
    return lot_from_fill(rules, order.filled_sz, fee_in_base)


def slot_taken_by_another(
    session: Session, inst_id: str, strategy: str, order_id: int | None = None
) -> bool:
    """Whether a buy other than ``order_id`` holds the slot: open, or with an unsold lot."""
    in_slot = (Order.inst_id == inst_id) & (Order.strategy == strategy)
    others = Order.id != order_id if order_id is not None else true()
    open_buy = exists().where(
        in_slot, Order.side == "buy", Order.purpose != ORPHAN, Order.state.in_(OPEN_SQL), others
    )
    lot_others = Lot.buy_order_id != order_id if order_id is not None else true()
    unsold = exists().where(
        Lot.inst_id == inst_id,
        Lot.strategy == strategy,
        Lot.state.in_(UNSOLD_LOT_SQL),
        Lot.orphan.is_(False),
        lot_others,
    )
    return bool(session.execute(select(open_buy | unsold)).scalar())

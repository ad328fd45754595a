"""Orders in the ledger: locking one, and applying what the exchange or the engine says.

``apply_snapshot`` and ``apply_event_to`` are the only code that writes an order's state, and
they do so through the transition table of ``worker.domain.orders``. The caller holds the
order's slot lock (``lock_order``), except for ``accept_if_pending``, a compare-and-set.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any, cast

from sqlalchemy import (
    ARRAY,
    String,
    Table,
    Update,
    any_,
    bindparam,
    exists,
    func,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql.psycopg import dialect as psycopg_dialect
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ClauseElement

from worker import metrics
from worker.domain.errors import IllegalTransition
from worker.domain.orders import OrderEvent, OrderState, apply_event, event_for_exchange_state
from worker.exchange.port import OrderSnapshot
from worker.ledger.db import Executor, Ledger
from worker.ledger.models import ORPHAN, Fill, Lot, Order
from worker.ledger.states import OPEN_SQL, UNSOLD_LOT_SQL

# Built once: the sender's last look at its intent (``worker.services.placement``).
SENDABLE = select(Order.state, Order.deadline_at).where(Order.id == bindparam("order_id"))


def lock_order(
    ledger: Ledger, session: Session, order_id: int, slot: tuple[str, str] | None = None
) -> Order | None:
    """Lock the order's slot (``slot`` when the caller knows it), then return the order as
    it is now."""
    if slot is None:
        order = session.get(Order, order_id)
        if order is None:
            return None
        slot = (order.inst_id, order.strategy)
    ledger.lock_slot(session, *slot)
    return session.execute(
        select(Order).where(Order.id == order_id).execution_options(populate_existing=True)
    ).scalar_one_or_none()


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


def _accept_statement(*, flush: bool = True) -> Update:
    source = OrderState.PENDING_SUBMIT
    target = apply_event(source, OrderEvent.ACCEPTED)
    orders = cast(Table, Order.__table__)
    stmt = (
        update(orders)
        .where(orders.c.id == bindparam("b_order_id"), orders.c.state == source.value)
        .values(
            state=target.value,
            ord_id=bindparam("b_ord_id", type_=orders.c.ord_id.type),
            updated_at=bindparam("b_now", type_=orders.c.updated_at.type),
        )
    )
    if not flush:
        # PostgreSQL, autocommit: the statement is its own transaction, and a row it writes
        # has passed this condition, so that transaction commits without waiting for its WAL
        # flush (set_config(..., true) lasts until the end of the transaction: nothing leaks
        # into the pooled connection).
        stmt = stmt.where(func.set_config("synchronous_commit", "off", true()) == "off")
    return stmt


ACCEPT_IF_PENDING = _accept_statement()
ACCEPT_IF_PENDING_NO_FLUSH = _accept_statement(flush=False)


def _for_lane(stmt: ClauseElement) -> tuple[str, dict[str, Any]]:
    """``stmt`` compiled once for psycopg, as the ledger's lane runs it, and the values it
    binds itself (the caller adds its own parameters)."""
    compiled = stmt.compile(dialect=psycopg_dialect())  # type: ignore[no-untyped-call]
    return str(compiled), dict(compiled.params)


_ACCEPT_ON_LANE = _for_lane(ACCEPT_IF_PENDING_NO_FLUSH.returning(cast(Table, Order.__table__).c.id))


def accept_if_pending(
    session: Executor, order_id: int, ord_id: str, now: datetime, *, flush: bool = True
) -> bool:
    """Move a ``pending_submit`` order to the table's target for ACCEPTED in one statement.

    A compare-and-set that needs no slot lock: it only ever moves the order out of
    ``pending_submit``; return False (changing nothing) when the order is already elsewhere.

    ``flush=False`` (PostgreSQL, a connection in autocommit mode only) commits without
    waiting for the disk (``synchronous_commit = off`` for this statement alone): for the
    record of a fact that the exchange keeps, which a crash of the database may lose but
    nothing contradicts. See ``worker.services.placement.send``.
    """
    stmt = ACCEPT_IF_PENDING if flush else ACCEPT_IF_PENDING_NO_FLUSH
    result = session.execute(stmt, {"b_order_id": order_id, "b_ord_id": ord_id, "b_now": now})
    return bool(result.rowcount)  # type: ignore[attr-defined]


def accept_unflushed(ledger: Ledger, order_id: int, ord_id: str, now: datetime) -> bool:
    """``accept_if_pending(..., flush=False)`` on the ledger's lane (PostgreSQL): the same
    statement, without a pool checkout (the sender runs it right after each placement)."""
    assert ledger.lane is not None, "the lane is PostgreSQL's"
    sql, values = _ACCEPT_ON_LANE
    row = ledger.lane.one(sql, values | {"b_order_id": order_id, "b_ord_id": ord_id, "b_now": now})
    return row is not None


def try_apply_snapshot(
    ledger: Ledger, session: Session, order: Order, snap: OrderSnapshot, now: datetime
) -> Applied | None:
    """``apply_snapshot``, returning None (and recording why) on an illegal transition."""
    try:
        return apply_snapshot(ledger, session, order, snap, now)
    except IllegalTransition as exc:
        order.last_error = f"conflict: {exc}"[:300]
        return None


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


# Our own orders that news about them may move on their own (not orphans, not adopted).
_PLACED = ("entry", "take_profit", "exit")
_ACKNOWLEDGED_ROW = select(
    Order.cl_ord_id, Order.state, Order.filled_sz, Order.ord_id, Order.purpose
)
_ACKNOWLEDGED = _ACKNOWLEDGED_ROW.where(
    Order.cl_ord_id.in_(bindparam("cl_ord_ids", expanding=True))
)
# On the lane, one array parameter instead of one parameter per clOrdId.
_ACKNOWLEDGED_ON_LANE = _for_lane(
    _ACKNOWLEDGED_ROW.where(Order.cl_ord_id == any_(bindparam("cl_ord_ids", type_=ARRAY(String))))
)


def only_acknowledges(ledger: Ledger, snap: OrderSnapshot) -> bool:
    """Whether ``snap`` only repeats what the ledger holds: our order is live, under this
    ordId, with nothing filled, and the news says just that (every placement's first push,
    after the REST answer recorded the acceptance).

    Such news changes nothing ``apply_snapshot`` would decide (no state, fill or figure
    moves) but ``exchange_updated_ms`` and ``updated_at``, which decide nothing: one read
    without locks answers it, instead of a locking transaction that writes. Read without the
    slot lock, it is still exact: news that says no more than the ledger held at one moment
    never moves an order (states never go back, cumulative fills only grow). The orders
    stream asks it too, to keep such news off the broker (``worker.orders_stream``).
    """
    return acknowledgement(ledger, snap) is Acknowledgement.HELD


class Acknowledgement(Enum):
    """What the ledger makes of a push (``acknowledgement``)."""

    HELD = "held"  # it says no more than the ledger holds (``only_acknowledges``)
    # It acknowledges a placement whose answer the ledger has not recorded yet: our intent
    # is still pending_submit under that clOrdId, with no ordId. The placing worker records
    # the same facts from the REST answer in a moment (then it is HELD), or the intent is
    # settled by a lookup: the push adds nothing they will not learn.
    IN_FLIGHT = "in_flight"
    NEWS = "news"  # anything else: only the workers may apply it


def acknowledgement(ledger: Ledger, snap: OrderSnapshot) -> Acknowledgement:
    """Whether ``snap`` is news to the ledger, and if not, why (see ``Acknowledgement``):
    one read without locks, and none for a push that is not an acknowledgement at all."""
    return acknowledgements(ledger, [snap])[0]


def looks_like_acknowledgement(snap: OrderSnapshot) -> bool:
    """Whether ``snap`` only says that an order of ours is live, with nothing filled: the
    one kind of push the ledger may already hold (``acknowledgement``). Asks nothing."""
    return (
        snap.fill is None
        and snap.state is OrderState.LIVE
        and snap.acc_fill_sz == 0
        and bool(snap.cl_ord_id and snap.ord_id)
    )


def acknowledgements(ledger: Ledger, snaps: list[OrderSnapshot]) -> list[Acknowledgement]:
    """``acknowledgement`` of each of ``snaps``, in one read (none when no push looks like
    an acknowledgement)."""
    asked = {snap.cl_ord_id for snap in snaps if looks_like_acknowledgement(snap)}
    found: Sequence[Sequence[Any]] = []
    if asked and ledger.lane is not None:  # PostgreSQL: the stream asks this at every push
        sql, values = _ACKNOWLEDGED_ON_LANE
        found = ledger.lane.all(sql, values | {"cl_ord_ids": sorted(asked)})
    elif asked:
        with ledger.single_statement() as conn:
            found = conn.execute(_ACKNOWLEDGED, {"cl_ord_ids": sorted(asked)}).all()
    rows = {row[0]: (row[1], row[2], row[3], row[4]) for row in found}
    return [
        _verdict(snap, rows) if snap.cl_ord_id in asked else Acknowledgement.NEWS for snap in snaps
    ]


def _verdict(
    snap: OrderSnapshot, rows: dict[str, tuple[str, object, str | None, str]]
) -> Acknowledgement:
    row = rows.get(snap.cl_ord_id)
    if row is None:
        return Acknowledgement.NEWS
    state, filled, ord_id, purpose = row
    if filled != 0 or purpose not in _PLACED:
        return Acknowledgement.NEWS
    if state == OrderState.LIVE and ord_id == snap.ord_id:
        return Acknowledgement.HELD
    if state == OrderState.PENDING_SUBMIT and ord_id is None:
        return Acknowledgement.IN_FLIGHT
    return Acknowledgement.NEWS

"""Applying exchange news (websocket pushes, lookups, reconciliation) to the ledger."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from worker import metrics, notify
from worker.domain.errors import CancelRejected, OrderNotFound, Retryable
from worker.domain.ids import parse_cl_ord_id, sell_cl_ord_id
from worker.domain.lots import LotState
from worker.domain.orders import OrderState, Side
from worker.domain.results import Verdict
from worker.exchange.port import OrderSnapshot, snapshot_from_message
from worker.ledger.models import ORPHAN, Lot, Order
from worker.ledger.orders import (
    lock_order,
    only_acknowledges,
    slot_taken_by_another,
    try_apply_snapshot,
)
from worker.logs import log_event
from worker.runtime import Runtime
from worker.services.exits import place_exit
from worker.services.placement import finish
from worker.services.settle import settle

log = logging.getLogger("limitflow.updates")


def apply_update_message(rt: Runtime, message: Any) -> OrderState | Verdict:
    """Apply one ``apply_order_update`` message; a malformed one is logged and dropped."""
    try:
        if not isinstance(message, dict):
            raise ValueError("an order update must be an object")
        snap = snapshot_from_message(message)
    except (KeyError, ValueError, TypeError) as exc:
        log_event(
            log, "update.invalid", level=logging.WARNING, error=f"{type(exc).__name__}: {exc}"
        )
        return Verdict.INVALID
    return apply_snapshot_and_follow_up(rt, snap)


def find_order(s: Session, snap: OrderSnapshot) -> Order | None:
    if snap.cl_ord_id:
        order = s.scalar(select(Order).where(Order.cl_ord_id == snap.cl_ord_id))
        if order is not None:
            return order
    if snap.ord_id:
        return s.scalar(select(Order).where(Order.ord_id == snap.ord_id))
    return None


def apply_snapshot_and_follow_up(
    rt: Runtime, snap: OrderSnapshot, *, order_id: int | None = None
) -> OrderState | Verdict:
    """Apply ``snap`` under the slot lock, settle a terminal order, send what follows.

    Return the order's state afterwards, ``foreign`` for an order that is not ours (or
    that could not be adopted: then it is canceled), or ``conflict`` when the news
    contradicts a terminal state (logged, not applied).

    The exchange's facts beat the ledger's inferences: an order held as ``rejected`` or
    ``failed`` that the exchange shows is taken back. If another buy holds its slot by
    then, it becomes an orphan: canceled, and what it bought sold at once.
    """
    if order_id is None and only_acknowledges(rt.ledger, snap):
        return OrderState.LIVE
    with rt.ledger.begin() as s:
        found = s.get(Order, order_id) if order_id is not None else find_order(s, snap)
        order = adopt(rt, s, snap) if found is None else lock_order(rt.ledger, s, found.id)
        unadoptable = order is None
        if order is not None:
            if OrderState(order.state).is_inferred:
                _take_back(s, order, snap)
            applied = try_apply_snapshot(rt.ledger, s, order, snap, rt.now())
            if applied is None:
                log_event(
                    log,
                    "order.conflict",
                    level=logging.ERROR,
                    cl_ord_id=order.cl_ord_id,
                    state=order.state,
                    reported=snap.state.value,
                )
                return Verdict.CONFLICT
            intents, freed = settle(rt, s, order, became_terminal=applied.became_terminal)
            state = OrderState(order.state)
            filled = _fill_alert(order) if applied.became_terminal else None
            orphan = _orphan_follow_up(s, order)
            if applied.after != applied.before or applied.new_fill:
                log_event(
                    log,
                    "order.updated",
                    cl_ord_id=order.cl_ord_id,
                    inst_id=order.inst_id,
                    before=applied.before.value,
                    after=applied.after.value,
                    filled=order.filled_sz,
                )
    if unadoptable:
        cancel_orphan(rt, snap)
        return Verdict.FOREIGN
    finish(rt, intents, freed)
    if filled is not None:
        notify.alert("fill", *filled)
    if orphan.cancel:
        cancel_orphan(rt, snap)
    if orphan.lot_id is not None:
        # Nothing rests for an orphan's new lot: its exit is placed at once, at the bid.
        place_exit(rt, orphan.lot_id, None, "orphan")
    return state


def _fill_alert(order: Order) -> tuple[str, str] | None:
    """What to tell the operator about an order that ended with something filled."""
    if order.filled_sz <= 0:
        return None
    verb = "bought" if order.side == "buy" else "sold"
    title = f"{verb} {order.filled_sz} {order.inst_id} at {order.avg_px} ({order.strategy})"
    body = f"Order {order.cl_ord_id} ({order.purpose}) ended {order.state}."
    return title, body


def _take_back(s: Session, order: Order, snap: OrderSnapshot) -> None:
    """The exchange shows an order the ledger inferred gone: keep it, or make it an orphan
    when another buy holds its slot by now."""
    keep = order.side != Side.BUY or not slot_taken_by_another(
        s, order.inst_id, order.strategy, order.id
    )
    if not keep:
        order.purpose = ORPHAN
    log_event(
        log,
        "order.taken_back",
        level=logging.WARNING,
        cl_ord_id=order.cl_ord_id,
        inst_id=order.inst_id,
        inferred=order.state,
        reported=snap.state.value,
        orphan=not keep,
    )


@dataclass(frozen=True, slots=True)
class _OrphanFollowUp:
    cancel: bool = False  # still resting: cancel it on the exchange
    lot_id: int | None = None  # its lot: sell it at the bid


def _orphan_follow_up(s: Session, order: Order) -> _OrphanFollowUp:
    if order.purpose != ORPHAN:
        return _OrphanFollowUp()
    if not OrderState(order.state).is_terminal:
        return _OrphanFollowUp(cancel=True)
    lot_id = s.scalar(
        select(Lot.id).where(
            Lot.buy_order_id == order.id, Lot.state == LotState.OPEN.value, Lot.orphan
        )
    )
    return _OrphanFollowUp(lot_id=lot_id)


def cancel_orphan(rt: Runtime, snap: OrderSnapshot) -> bool:
    """Cancel an order of ours that the ledger cannot keep; return whether it was asked.

    Only a resting order needs it; a refusal (already done) or a network error leaves it to
    the next reconciliation run, which sees it again.
    """
    if snap.state.is_terminal:
        return False
    try:
        rt.exchange.cancel_order(snap.inst_id, ord_id=snap.ord_id or None, cl_ord_id=snap.cl_ord_id)
    except (CancelRejected, OrderNotFound, Retryable) as exc:
        log_event(
            log,
            "order.orphan_cancel_failed",
            level=logging.WARNING,
            cl_ord_id=snap.cl_ord_id,
            error=type(exc).__name__,
        )
        return False
    log_event(log, "order.orphan_canceled", level=logging.WARNING, cl_ord_id=snap.cl_ord_id)
    return True


def adopt(rt: Runtime, s: Session, snap: OrderSnapshot) -> Order | None:
    """Create the row for an order of ours (by clOrdId prefix) that the ledger lacks."""
    parsed = parse_cl_ord_id(snap.cl_ord_id)
    if parsed is None:
        return None
    strategy, side = parsed
    rt.ledger.lock_slot(s, snap.inst_id, strategy)
    existing = find_order(s, snap)
    if existing is not None:  # adopted meanwhile by someone holding the lock before us
        return existing
    now = rt.now()
    # Another buy holding the slot makes it an orphan: canceled, what it bought sold.
    taken = side == Side.BUY and slot_taken_by_another(s, snap.inst_id, strategy)
    order = Order(
        cl_ord_id=snap.cl_ord_id,
        ord_id=snap.ord_id or None,
        inst_id=snap.inst_id,
        strategy=strategy,
        side=side,
        purpose=ORPHAN if taken else "adopted",
        state=OrderState.PENDING_SUBMIT.value,
        px=snap.px,
        sz=snap.sz,
        lot_id=_lot_of_sell(s, snap.inst_id, strategy, snap.cl_ord_id)
        if side == Side.SELL
        else None,
        created_at=now,
        updated_at=now,
        submitted_at=now,
        last_error="adopted from the exchange",
    )
    try:
        with s.begin_nested():
            s.add(order)
            s.flush()
    except IntegrityError:
        log_event(log, "order.adopt_conflict", level=logging.ERROR, cl_ord_id=snap.cl_ord_id)
        return None
    log_event(log, "order.adopted", cl_ord_id=snap.cl_ord_id, inst_id=snap.inst_id, side=side)
    metrics.order_state(side, OrderState.PENDING_SUBMIT.value)
    return order


def _lot_of_sell(s: Session, inst_id: str, strategy: str, cl_ord_id: str) -> int | None:
    """Find the lot whose sell clOrdId this is (they derive from lot id and attempt)."""
    lots = s.scalars(select(Lot).where(Lot.inst_id == inst_id, Lot.strategy == strategy))
    for lot in lots:
        for attempt in range(1, lot.sell_attempts + 4):
            if sell_cl_ord_id(strategy, lot.id, attempt) == cl_ord_id:
                return lot.id
    return None

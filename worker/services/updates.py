"""Applying exchange news (websocket pushes, lookups, reconciliation) to the ledger."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from worker.domain.ids import parse_cl_ord_id, sell_cl_ord_id
from worker.domain.orders import OrderState
from worker.exchange.port import OrderSnapshot, snapshot_from_message
from worker.ledger import ops
from worker.ledger.models import Lot, Order
from worker.logs import log_event
from worker.runtime import Runtime
from worker.services.orders import lock_order
from worker.services.settle import finish, settle

log = logging.getLogger("limitflow.updates")


def apply_update_message(rt: Runtime, message: Any) -> str:
    """Apply one ``apply_order_update`` message; a malformed one is logged and dropped."""
    try:
        if not isinstance(message, dict):
            raise ValueError("an order update must be an object")
        snap = snapshot_from_message(message)
    except (KeyError, ValueError, TypeError) as exc:
        log_event(
            log, "update.invalid", level=logging.WARNING, error=f"{type(exc).__name__}: {exc}"
        )
        return "invalid"
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
) -> str:
    """Apply ``snap`` under the slot lock, settle a terminal order, send what follows.

    Return the order's state afterwards, ``foreign`` for an order that is not ours, or
    ``conflict`` when the news contradicts a terminal state (logged, not applied).
    """
    with rt.ledger.begin() as s:
        found = s.get(Order, order_id) if order_id is not None else find_order(s, snap)
        if found is None:
            order = adopt(rt, s, snap)
            if order is None:
                return "foreign"
        else:
            locked = lock_order(rt, s, found.id)
            assert locked is not None
            order = locked
        applied = ops.try_apply_snapshot(rt.ledger, s, order, snap, rt.now())
        if applied is None:
            log_event(
                log,
                "order.conflict",
                level=logging.ERROR,
                cl_ord_id=order.cl_ord_id,
                state=order.state,
                reported=snap.state.value,
            )
            return "conflict"
        intents, freed = settle(rt, s, order, became_terminal=applied.became_terminal)
        state = order.state
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
    finish(rt, intents, freed)
    return state


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
    order = Order(
        cl_ord_id=snap.cl_ord_id,
        ord_id=snap.ord_id or None,
        inst_id=snap.inst_id,
        strategy=strategy,
        side=side,
        purpose="adopted",
        state=OrderState.PENDING_SUBMIT.value,
        px=snap.px,
        sz=snap.sz,
        lot_id=_lot_of_sell(s, snap.inst_id, strategy, snap.cl_ord_id) if side == "sell" else None,
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
    return order


def _lot_of_sell(s: Session, inst_id: str, strategy: str, cl_ord_id: str) -> int | None:
    """Find the lot whose sell clOrdId this is (they derive from lot id and attempt)."""
    lots = s.scalars(select(Lot).where(Lot.inst_id == inst_id, Lot.strategy == strategy))
    for lot in lots:
        for attempt in range(1, lot.sell_attempts + 4):
            if sell_cl_ord_id(strategy, lot.id, attempt) == cl_ord_id:
                return lot.id
    return None

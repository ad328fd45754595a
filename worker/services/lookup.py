"""Looking an order up by ``clOrdId`` and applying what the exchange says about it.

The only way the engine learns what became of a placement it is unsure of (promise 2: never
send again, look it up). Run by the ``verify_order`` task, by reconciliation, and by the
sell path to confirm a cancel.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from worker.domain.deadlines import absence_is_final
from worker.domain.errors import OrderNotFound, Retryable
from worker.domain.orders import OrderEvent, OrderState
from worker.domain.results import Verdict
from worker.ledger.models import Order
from worker.ledger.orders import apply_event_to, lock_order
from worker.logs import log_event
from worker.runtime import Runtime
from worker.services.placement import finish
from worker.services.settle import settle
from worker.services.updates import apply_snapshot_and_follow_up

log = logging.getLogger("limitflow.orders")


def lookup(
    rt: Runtime, order_id: int, *, declare_missing_after: float | None = None
) -> OrderState | Verdict:
    """Ask the exchange about an order by clOrdId and apply the answer.

    Return the order's state afterwards, ``missing`` when the exchange has no such order and
    it may not be declared failed yet, or ``unknown`` when the exchange did not answer.
    ``declare_missing_after``: a pending intent older than this many seconds that the
    exchange explicitly does not know is marked ``failed``.
    """
    with rt.ledger.begin() as s:
        order = s.get(Order, order_id)
        if order is None:
            return Verdict.GONE
        inst_id, cl_ord_id, ord_id = order.inst_id, order.cl_ord_id, order.ord_id
    try:
        snap = rt.exchange.get_order(inst_id, cl_ord_id=cl_ord_id, ord_id=ord_id)
    except OrderNotFound:
        return _not_found(rt, order_id, declare_missing_after)
    except Retryable:
        return Verdict.UNKNOWN
    return apply_snapshot_and_follow_up(rt, snap, order_id=order_id)


def _not_found(
    rt: Runtime, order_id: int, declare_missing_after: float | None
) -> OrderState | Verdict:
    if declare_missing_after is None:
        return Verdict.MISSING
    with rt.ledger.begin() as s:
        order = lock_order(rt.ledger, s, order_id)
        assert order is not None
        state = OrderState(order.state)
        if state is OrderState.PENDING_SUBMIT and not _may_be_declared_never_placed(
            rt, order, declare_missing_after
        ):
            return Verdict.MISSING
        if state.is_terminal:
            return state
        apply_event_to(order, OrderEvent.NOT_FOUND, rt.now(), "not found on the exchange")
        new_state = OrderState(order.state)
        intents, freed = settle(rt, s, order, became_terminal=True)
    log_event(log, "order.not_found", order_id=order_id, state=new_state)
    finish(rt, intents, freed)
    return new_state


def _may_be_declared_never_placed(rt: Runtime, order: Order, min_age_seconds: float) -> bool:
    """An intent the exchange does not know failed only when it is old enough and its
    request can no longer land: its deadline plus the clock skew has passed (promise 4)."""
    now = rt.now()
    if now - order.created_at < timedelta(seconds=min_age_seconds):
        return False
    if order.deadline_at is None:
        return True  # written before deadlines existed: the pending timeout alone decides
    return absence_is_final(now, order.deadline_at, rt.exchange.clock_skew_ms())

"""Sending intents to the exchange and applying what it answers.

An intent is an order row in ``pending_submit`` written (and committed) before anything is
sent. Only the call that wrote an intent sends it, once. Whatever happens afterwards is
learned by looking the order up by ``clOrdId``, never by sending it again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from worker import metrics
from worker.domain.deadlines import absence_is_final, to_epoch_ms
from worker.domain.errors import (
    DuplicateClientOrderId,
    Fatal,
    OrderNotFound,
    RequestExpired,
    Retryable,
)
from worker.domain.orders import OrderEvent, OrderState
from worker.exchange.port import OrderRequest, Side
from worker.ledger import ops
from worker.ledger.models import Order
from worker.logs import log_event
from worker.runtime import Runtime
from worker.services.lots import NeedsAttention, note_exit_refused

log = logging.getLogger("limitflow.orders")

VERIFY_ORDER = "limitflow.verify_order"
# After an ambiguous placement: look the order up after 2, 5 and 10 seconds.
VERIFY_DELAYS = (2.0, 3.0, 5.0)


@dataclass(frozen=True, slots=True)
class Intent:
    """An order row that was just written, with everything needed to send it."""

    order_id: int
    inst_id: str
    strategy: str
    side: Side
    px: Decimal
    sz: Decimal
    cl_ord_id: str

    @classmethod
    def of(cls, order: Order) -> Intent:
        return cls(
            order.id,
            order.inst_id,
            order.strategy,
            order.side,  # type: ignore[arg-type]
            order.px,
            order.sz,
            order.cl_ord_id,
        )


def lock_order(
    rt: Runtime, session: Session, order_id: int, slot: tuple[str, str] | None = None
) -> Order | None:
    """Lock the order's slot (``slot`` when the caller knows it), then return the order as
    it is now."""
    if slot is None:
        order = session.get(Order, order_id)
        if order is None:
            return None
        slot = (order.inst_id, order.strategy)
    rt.ledger.lock_slot(session, *slot)
    return session.execute(
        select(Order).where(Order.id == order_id).execution_options(populate_existing=True)
    ).scalar_one_or_none()


# Built once: the sender's last look at its intent.
SENDABLE = select(Order.state, Order.deadline_at).where(Order.id == bindparam("order_id"))


def send(rt: Runtime, intent: Intent) -> str:
    """Send an intent once; return ``live``, ``rejected``, ``unknown``, or the state the
    intent was found in when it may no longer be sent.

    The row is read again just before sending: only a ``pending_submit`` intent whose
    deadline is still ahead goes out, with that deadline as OKX ``expTime``. One that missed
    its deadline was never sent by anyone (only its writer sends it): it failed.
    """
    with rt.ledger.single_statement() as conn:
        row = conn.execute(SENDABLE, {"order_id": intent.order_id}).one_or_none()
    if row is None:
        return "gone"
    state, deadline = row
    if state != OrderState.PENDING_SUBMIT.value:
        return str(state)  # settled meanwhile (purge_pending, a push): nothing to send
    if deadline is not None and rt.now() >= deadline:
        return _missed_deadline(rt, intent)
    exp_time_ms = to_epoch_ms(deadline) if deadline is not None else None
    request = OrderRequest(
        intent.inst_id,
        intent.side,
        intent.px,
        intent.sz,
        intent.cl_ord_id,
        exp_time_ms=exp_time_ms,
    )
    try:
        placement = rt.exchange.place_order(request)
    except DuplicateClientOrderId:
        # The exchange already holds a pending order with our clOrdId: it is ours.
        return lookup(rt, intent.order_id)
    except Fatal as exc:
        _mark_rejected(rt, intent, exc)
        return "rejected"
    except Retryable as exc:
        log_event(
            log,
            "order.ambiguous",
            level=logging.WARNING,
            cl_ord_id=intent.cl_ord_id,
            inst_id=intent.inst_id,
            error=type(exc).__name__,
        )
        _note_error(rt, intent.order_id, f"{type(exc).__name__}: {exc}")
        rt.schedule(VERIFY_ORDER, [intent.order_id, 0], countdown=VERIFY_DELAYS[0])
        return "unknown"
    with rt.ledger.single_statement() as conn:
        accepted = ops.accept_if_pending(conn, intent.order_id, placement.ord_id, rt.now())
    if accepted:
        metrics.order_state(intent.side, OrderState.LIVE.value)
    else:
        # News overtook the answer (a fill pushed first, say), or the ledger gave up on the
        # intent meanwhile: the exchange's current word on it settles which.
        lookup(rt, intent.order_id)
    log_event(
        log,
        "order.placed",
        cl_ord_id=intent.cl_ord_id,
        ord_id=placement.ord_id,
        inst_id=intent.inst_id,
        side=intent.side,
        px=intent.px,
        sz=intent.sz,
    )
    return "live"


def _missed_deadline(rt: Runtime, intent: Intent) -> str:
    """Fail an intent that was never sent because its deadline passed first."""
    from worker.services.settle import finish, settle

    with rt.ledger.begin() as s:
        order = lock_order(rt, s, intent.order_id, (intent.inst_id, intent.strategy))
        if order is None:
            return "gone"
        if order.state != OrderState.PENDING_SUBMIT.value:
            return order.state
        ops.apply_event_to(order, OrderEvent.NOT_FOUND, rt.now(), "not sent: deadline passed")
        intents, freed = settle(rt, s, order, became_terminal=True)
        state = order.state
    log_event(
        log,
        "order.deadline_missed",
        level=logging.WARNING,
        cl_ord_id=intent.cl_ord_id,
        inst_id=intent.inst_id,
        side=intent.side,
    )
    finish(rt, intents, freed)
    return state


def _note_error(rt: Runtime, order_id: int, error: str) -> None:
    with rt.ledger.begin() as s:
        order = lock_order(rt, s, order_id)
        if order is not None:
            order.last_error = error[:300]


def _mark_rejected(rt: Runtime, intent: Intent, exc: Exception) -> None:
    error = f"{type(exc).__name__}: {exc}"
    attention: NeedsAttention | None = None
    with rt.ledger.begin() as s:
        order = lock_order(rt, s, intent.order_id)
        assert order is not None
        changed = ops.apply_event_to(order, OrderEvent.REJECTED, rt.now(), error)
        if changed and not isinstance(exc, RequestExpired):
            # An explicit refusal of a lot's exit counts toward needs_attention (a request
            # that merely arrived too late refused nothing).
            attention = note_exit_refused(s, order, rt.settings.MAX_EXIT_REFUSALS, error)
    log_event(
        log,
        "order.rejected",
        level=logging.WARNING,
        cl_ord_id=intent.cl_ord_id,
        inst_id=intent.inst_id,
        side=intent.side,
        error=str(exc),
    )
    if attention is not None:
        attention.log()
    if intent.side == "buy":
        rt.slot_freed(intent.inst_id, intent.strategy)


def lookup(rt: Runtime, order_id: int, *, declare_missing_after: float | None = None) -> str:
    """Ask the exchange about an order by clOrdId and apply the answer.

    Return the order's state afterwards, ``missing`` when the exchange has no such order and
    it may not be declared failed yet, or ``unknown`` when the exchange did not answer.
    ``declare_missing_after``: a pending intent older than this many seconds that the
    exchange explicitly does not know is marked ``failed``.
    """
    with rt.ledger.begin() as s:
        order = s.get(Order, order_id)
        if order is None:
            return "gone"
        inst_id, cl_ord_id, ord_id = order.inst_id, order.cl_ord_id, order.ord_id
    try:
        snap = rt.exchange.get_order(inst_id, cl_ord_id=cl_ord_id, ord_id=ord_id)
    except OrderNotFound:
        return _not_found(rt, order_id, declare_missing_after)
    except Retryable:
        return "unknown"
    from worker.services.updates import apply_snapshot_and_follow_up

    return apply_snapshot_and_follow_up(rt, snap, order_id=order_id)


def _not_found(rt: Runtime, order_id: int, declare_missing_after: float | None) -> str:
    if declare_missing_after is None:
        return "missing"
    from worker.services.settle import finish, settle

    with rt.ledger.begin() as s:
        order = lock_order(rt, s, order_id)
        assert order is not None
        state = OrderState(order.state)
        if state is OrderState.PENDING_SUBMIT and not _may_be_declared_never_placed(
            rt, order, declare_missing_after
        ):
            return "missing"
        if state.is_terminal:
            return state.value
        ops.apply_event_to(order, OrderEvent.NOT_FOUND, rt.now(), "not found on the exchange")
        new_state = order.state
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

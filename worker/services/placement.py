"""Sending intents to the exchange, once.

An intent is an order row in ``pending_submit`` written (and committed) before anything is
sent. Only the call that wrote an intent sends it, once. Whatever happens afterwards is
learned by looking the order up by ``clOrdId`` (``worker.services.lookup``, run by the
``verify_order`` task that ``send`` schedules), never by sending it again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from worker import metrics
from worker.domain.deadlines import to_epoch_ms
from worker.domain.errors import DuplicateClientOrderId, Fatal, RequestExpired, Retryable
from worker.domain.orders import OrderEvent, OrderState, Side
from worker.domain.results import Verdict
from worker.exchange.port import OrderRequest
from worker.ledger.orders import (
    SENDABLE,
    accept_if_pending,
    accept_unflushed,
    apply_event_to,
    lock_order,
)
from worker.logs import log_event
from worker.runtime import Runtime
from worker.services.intents import Intent
from worker.services.lots import NeedsAttention, note_exit_refused
from worker.services.settle import Slot, settle
from worker.task_names import VERIFY_ORDER

log = logging.getLogger("limitflow.orders")

# After an ambiguous placement: look the order up after 2, 5 and 10 seconds.
VERIFY_DELAYS = (2.0, 3.0, 5.0)


def finish(rt: Runtime, intents: list[Intent], freed: list[Slot]) -> None:
    """After commit: announce freed slots and send the new intents."""
    for slot in freed:
        rt.slot_freed(*slot)
    for intent in intents:
        send(rt, intent)


@dataclass(frozen=True, slots=True)
class JustCommitted:
    """What the writer of an intent knows of it, having committed it in the same call a
    moment ago: it is ``pending_submit`` and its deadline (``deadline_at``) is ``deadline``."""

    deadline: datetime


def send(
    rt: Runtime, intent: Intent, committed: JustCommitted | None = None
) -> OrderState | Verdict:
    """Send an intent once; return ``live``, ``rejected``, ``unknown`` (the answer is to
    come: a lookup is scheduled), or the state the intent was found in when it may no longer
    be sent (``gone`` when there is no such row).

    Only a ``pending_submit`` intent whose deadline is still ahead goes out, with that
    deadline as OKX ``expTime``. One that missed its deadline was never sent by anyone (only
    its writer sends it): it failed.

    The row is read again just before sending, unless ``committed`` says what it holds: only
    the call that committed the intent a moment ago may say so (the buy path, right after
    ``try_admit``), and then the read could not find anything else, because nobody else
    moves a young ``pending_submit`` intent out of that state:

    - ``purge_pending`` and ``sync_active_orders`` leave an intent alone until it is
      ``PENDING_TIMEOUT_SECONDS`` old, and even then declare it ``failed`` only once its
      deadline plus the clock skew has passed (``lookup``); the deadline is checked here
      before sending, so a writer that stalled past it goes the slow way
      (``_missed_deadline``: slot lock, fresh read);
    - a push or a lookup can only report an order the exchange holds, and its ``clOrdId`` has
      not been sent: it is derived from a signal that the ledger admits once (a redelivered
      signal is a ``duplicate``), and ``cl_ord_id`` is unique in the ledger;
    - an operator's ``cancel-buys`` marks the intent ``cancel_requested_at`` and looks it up,
      which cannot declare it failed before its deadline; it does not read that mark here
      either way;
    - nothing deletes an intent.

    Every other caller (sells, the orders that ``settle`` creates, retries) reads the row.
    """
    if committed is None:
        with rt.ledger.single_statement() as conn:
            row = conn.execute(SENDABLE, {"order_id": intent.order_id}).one_or_none()
        if row is None:
            return Verdict.GONE
        state, deadline = OrderState(row[0]), row[1]
        if state is not OrderState.PENDING_SUBMIT:
            return state  # settled meanwhile (purge_pending, a push): nothing to send
    else:
        deadline = committed.deadline
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
        # The exchange already holds a pending order with our clOrdId: it is ours. The
        # lookup task takes its state (it runs at once, on any worker).
        log_event(log, "order.duplicate", cl_ord_id=intent.cl_ord_id, inst_id=intent.inst_id)
        rt.schedule(VERIFY_ORDER, [intent.order_id, 0], countdown=None)
        return Verdict.UNKNOWN
    except Fatal as exc:
        _mark_rejected(rt, intent, exc)
        return OrderState.REJECTED
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
        return Verdict.UNKNOWN
    # PostgreSQL commits this without waiting for the disk (SQLite has no such switch): should
    # the database crash before the flush, the order is found ``pending_submit`` again, and
    # ``purge_pending`` takes the exchange's word for it, as for any answer that never
    # arrived. Any later commit that builds on ``live`` (a fill, a cancel) is flushed, and
    # flushes this one with it.
    if rt.ledger.lane is not None:
        accepted = accept_unflushed(rt.ledger, intent.order_id, placement.ord_id, rt.now())
    else:
        with rt.ledger.single_statement() as conn:
            accepted = accept_if_pending(conn, intent.order_id, placement.ord_id, rt.now())
    if accepted:
        metrics.order_state(intent.side, OrderState.LIVE.value)
    else:
        # News overtook the answer (a fill pushed first, say), or the ledger gave up on the
        # intent meanwhile: the exchange's current word on it settles which (the lookup task,
        # at once).
        rt.schedule(VERIFY_ORDER, [intent.order_id, 0], countdown=None)
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
    return OrderState.LIVE


def _missed_deadline(rt: Runtime, intent: Intent) -> OrderState | Verdict:
    """Fail an intent that was never sent because its deadline passed first."""
    with rt.ledger.begin() as s:
        order = lock_order(rt.ledger, s, intent.order_id, (intent.inst_id, intent.strategy))
        if order is None:
            return Verdict.GONE
        if order.state != OrderState.PENDING_SUBMIT:
            return OrderState(order.state)
        apply_event_to(order, OrderEvent.NOT_FOUND, rt.now(), "not sent: deadline passed")
        intents, freed = settle(rt, s, order, became_terminal=True)
        state = OrderState(order.state)
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
        order = lock_order(rt.ledger, s, order_id)
        if order is not None:
            order.last_error = error[:300]


def _mark_rejected(rt: Runtime, intent: Intent, exc: Exception) -> None:
    error = f"{type(exc).__name__}: {exc}"
    attention: NeedsAttention | None = None
    with rt.ledger.begin() as s:
        order = lock_order(rt.ledger, s, intent.order_id)
        assert order is not None
        changed = apply_event_to(order, OrderEvent.REJECTED, rt.now(), error)
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
    if intent.side == Side.BUY:
        rt.slot_freed(intent.inst_id, intent.strategy)

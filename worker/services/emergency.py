"""Emergency commands: cancel every open buy, sell every unsold lot.

Both go through the engine's normal paths under the slot locks: a cancel is requested from the
exchange and then the order is looked up (``lookup`` applies what the exchange says, including
fills that arrived meanwhile, and places a take-profit for what a canceled buy bought); a lot
is sold by a ``manual`` sell signal (``process_sell``: cancel its resting sells, confirm, sell
the rest at the best bid).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from sqlalchemy import select

from worker.domain.errors import CancelRejected, OrderNotFound, Retryable
from worker.domain.lots import UNSOLD_STATES
from worker.domain.orders import OrderState, Side
from worker.domain.results import Verdict
from worker.ledger.models import Lot, Order
from worker.ledger.orders import lock_order
from worker.logs import log_event
from worker.readmodels import OPEN
from worker.runtime import Runtime
from worker.services.lookup import lookup
from worker.services.sell import process_sell

log = logging.getLogger("limitflow.emergency")
UNSOLD = [s.value for s in UNSOLD_STATES]


@dataclass(frozen=True, slots=True)
class Canceled:
    """What became of one open buy."""

    cl_ord_id: str
    inst_id: str
    strategy: str
    before: str
    after: str  # the state after the lookup, ``unknown`` or ``missing``
    note: str = ""


def cancel_buys(rt: Runtime, inst_id: str | None = None) -> list[Canceled]:
    """Request the cancel of every open buy (of ``inst_id``), then look each one up."""
    query = select(Order.id).where(Order.side == Side.BUY, Order.state.in_(OPEN)).order_by(Order.id)
    if inst_id:
        query = query.where(Order.inst_id == inst_id)
    with rt.ledger.begin() as s:
        ids = list(s.scalars(query))
    return [_cancel_one(rt, order_id) for order_id in ids]


def _cancel_one(rt: Runtime, order_id: int) -> Canceled:
    with rt.ledger.begin() as s:
        order = lock_order(rt.ledger, s, order_id)
        if order is None:
            return Canceled("?", "?", "?", Verdict.GONE, Verdict.GONE)
        before = order.state
        facts = (order.cl_ord_id, order.inst_id, order.strategy)
        if before not in OPEN:
            return Canceled(*facts, before, before, "ended meanwhile")
        order.cancel_requested_at = rt.now()
        ord_id, cl_ord_id = order.ord_id, order.cl_ord_id
    note = ""
    try:
        rt.exchange.cancel_order(facts[1], ord_id=ord_id, cl_ord_id=cl_ord_id)
    except CancelRejected as exc:
        note = f"the exchange refused the cancel: {exc}"  # already filled or canceled
    except OrderNotFound:
        note = "the exchange does not know it (yet)"
    except Retryable as exc:
        note = f"the cancel request went unanswered: {type(exc).__name__}"
    after = lookup(rt, order_id, declare_missing_after=rt.settings.PENDING_TIMEOUT_SECONDS)
    if after in (Verdict.MISSING, OrderState.PENDING_SUBMIT):
        note = "not on the exchange yet: purge_pending settles it after its deadline"
    log_event(log, "order.cancel_requested", cl_ord_id=cl_ord_id, before=before, after=after)
    return Canceled(*facts, before, after, note)


@dataclass(frozen=True, slots=True)
class Flattened:
    """What a manual sell signal did for one slot."""

    inst_id: str
    strategy: str
    lots: list[int]
    outcome: str  # done | failed | not_done
    detail: str


def flatten(rt: Runtime, inst_id: str | None = None) -> list[Flattened]:
    """Sell every unsold lot (of ``inst_id``) at the best bid, slot by slot."""
    query = select(Lot.inst_id, Lot.strategy, Lot.id).where(Lot.state.in_(UNSOLD))
    if inst_id:
        query = query.where(Lot.inst_id == inst_id)
    slots: dict[tuple[str, str], list[int]] = {}
    with rt.ledger.begin() as s:
        for inst, strategy, lot_id in s.execute(query.order_by(Lot.id)).all():
            slots.setdefault((inst, strategy), []).append(lot_id)
    out = []
    stamp = int(time.time() * 1000)
    for (inst, strategy), lots in slots.items():
        message = {
            "v": 1,
            "kind": "sell",
            "signal_id": f"flatten:{strategy}:{inst}:{stamp}",
            "strategy": strategy,
            "inst_id": inst,
            "reason": "manual",
            "created_at": stamp,
        }
        try:
            result = process_sell(rt, message)
        except Retryable as exc:
            out.append(Flattened(inst, strategy, lots, "not_done", f"{exc}: run flatten again"))
            continue
        out.append(Flattened(inst, strategy, lots, result.outcome, result.detail))
    return out

"""The sell path: exits for unsold lots (stop loss, time exit, manual), retried until done.

A sell signal names a slot. For each unsold lot there: cancel its resting take-profit and
confirm the cancel with the exchange (if it filled meanwhile, the lot is sold and nothing
more is done), then sell what remains at the best bid.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from worker.domain.errors import CancelRejected, InvalidSignal, OrderNotFound, Retryable
from worker.domain.orders import OPEN_STATES
from worker.ledger import ops
from worker.ledger.models import Lot, Order
from worker.logs import log_event
from worker.runtime import Runtime
from worker.services.buy import record_invalid
from worker.services.orders import Intent, lookup
from worker.services.settle import close_if_done, finish, new_sell_intent
from worker.signals import parse_sell

log = logging.getLogger("limitflow.sell")
OPEN = [s.value for s in OPEN_STATES]


class SellNotDone(Retryable):
    """A resting order did not confirm its cancel yet: try the sell again shortly."""


@dataclass(frozen=True, slots=True)
class SellResult:
    signal_id: str
    slot: str
    outcome: str  # sold | nothing_to_sell | invalid
    reason: str = ""
    lots: int = 0


def process_sell(rt: Runtime, message: Any) -> SellResult:
    """Exit every unsold lot of the signal's slot; raise ``Retryable`` to be retried."""
    try:
        signal = parse_sell(message)
    except InvalidSignal as exc:
        signal_id = record_invalid(rt, message, "sell", str(exc))
        return SellResult(signal_id, "-", "invalid", str(exc))
    slot_name = f"{signal.inst_id}/{signal.strategy}"
    with rt.ledger.begin() as s:
        ops.record_outcome(rt.ledger, s, signal, rt.now(), "accepted", signal.reason)
        lot_ids = list(
            s.scalars(
                select(Lot.id).where(
                    Lot.inst_id == signal.inst_id,
                    Lot.strategy == signal.strategy,
                    Lot.state == "open",
                )
            )
        )
    for lot_id in lot_ids:
        exit_lot(rt, lot_id, signal.px, signal.reason)
    return SellResult(
        signal.signal_id,
        slot_name,
        "sold" if lot_ids else "nothing_to_sell",
        signal.reason,
        len(lot_ids),
    )


def exit_lot(rt: Runtime, lot_id: int, px: Any, reason: str) -> str:
    """Replace a lot's resting sells by a sell at the best bid; return what happened.

    An exit already resting at or below the bid is left alone; one the market fell away
    from is canceled and placed again at the new bid.
    """
    with rt.ledger.begin() as s:
        lot = s.get(Lot, lot_id)
        if lot is None or lot.state != "open":
            return "closed"
        inst_id = lot.inst_id
    bid = px if px is not None else rt.exchange.ticker(inst_id).bid_px
    with rt.ledger.begin() as s:
        lot = s.get(Lot, lot_id)
        if lot is None or lot.state != "open":
            return "closed"
        rt.ledger.lock_slot(s, lot.inst_id, lot.strategy)
        resting = list(
            s.scalars(select(Order).where(Order.lot_id == lot_id, Order.state.in_(OPEN)))
        )
        if any(o.purpose == "exit" and o.px <= bid for o in resting):
            return "exiting"
        for order in resting:
            order.cancel_requested_at = rt.now()
        to_cancel = [(o.id, o.inst_id, o.ord_id, o.cl_ord_id) for o in resting]
    for order_id, inst_id, ord_id, cl_ord_id in to_cancel:
        # Already filled or canceled: the lookup below tells which.
        with contextlib.suppress(CancelRejected, OrderNotFound):
            rt.exchange.cancel_order(inst_id, ord_id=ord_id, cl_ord_id=cl_ord_id)
        state = lookup(rt, order_id, declare_missing_after=rt.settings.PENDING_TIMEOUT_SECONDS)
        if state in ("live", "partially_filled", "pending_submit", "missing", "unknown"):
            raise SellNotDone(f"order {cl_ord_id} is still {state} after a cancel request")

    intent: Intent | None = None
    with rt.ledger.begin() as s:
        lot = s.get(Lot, lot_id)
        assert lot is not None
        rt.ledger.lock_slot(s, lot.inst_id, lot.strategy)
        s.refresh(lot)
        if lot.state != "open":
            return "sold_meanwhile"
        if s.scalar(select(Order.id).where(Order.lot_id == lot_id, Order.state.in_(OPEN))):
            return "exiting"
        rules = rt.rules(lot.inst_id)
        freed = close_if_done(rt, lot, rules)
        if not freed:
            intent = new_sell_intent(rt, s, lot, rules.price_down(bid), rules, "exit")
    if intent is None:
        finish(rt, [], freed)
        return "dust"
    log_event(log, "lot.exit", lot_id=lot_id, reason=reason, px=intent.px, sz=intent.sz)
    finish(rt, [intent], [])
    return "exit_placed"


def sell_lot_on_schedule(rt: Runtime, lot_id: int) -> str:
    """Reconciliation's backstop for a lot with nothing resting: a take-profit or an exit."""
    with rt.ledger.begin() as s:
        lot = s.get(Lot, lot_id)
        if lot is None or lot.state != "open":
            return "closed"
        overdue = rt.now() >= lot.exit_after
    if overdue:
        return exit_lot(rt, lot_id, None, "time_exit")
    with rt.ledger.begin() as s:
        lot = s.get(Lot, lot_id)
        assert lot is not None
        rt.ledger.lock_slot(s, lot.inst_id, lot.strategy)
        s.refresh(lot)
        if lot.state != "open" or s.scalar(
            select(Order.id).where(Order.lot_id == lot_id, Order.state.in_(OPEN))
        ):
            return "resting"
        rules = rt.rules(lot.inst_id)
        freed = close_if_done(rt, lot, rules)
        if freed:
            intents = []
        else:
            intents = [new_sell_intent(rt, s, lot, lot.take_profit_px, rules, "take_profit")]
    finish(rt, intents, freed)
    return "take_profit_placed" if intents else "dust"

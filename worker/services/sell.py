"""The sell path: exits for unsold lots (stop loss, time exit, manual), retried until done.

A sell signal names a slot. For each unsold lot there: cancel its resting take-profit and
confirm the cancel with the exchange (if it filled meanwhile, the lot is sold and nothing
more is done), then sell what remains at the best bid. A lot that needs attention (its exits
were refused too often) is left to the operator.

The signal is recorded ``accepted`` when it arrives, then ``done`` once every lot's exit is
placed (or nothing was left to sell), or ``failed``: an exit refused, a lot that needs
attention, or (``record_sell_failed``) the exchange failing until the task ran out of retries.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from worker.domain.errors import CancelRejected, InvalidSignal, OrderNotFound, Retryable
from worker.domain.lots import UNSOLD_STATES, LotState
from worker.domain.orders import OPEN_STATES, OrderState
from worker.domain.results import EXIT_DONE, ExitResult, Verdict
from worker.ledger.models import Lot, Order
from worker.ledger.signals import record_outcome, update_outcome
from worker.runtime import Runtime
from worker.services.buy import record_invalid
from worker.services.exits import not_open, sell_at
from worker.services.lookup import lookup
from worker.services.placement import finish
from worker.services.settle import close_if_done, new_sell_intent
from worker.signals import SellSignal, parse_sell

log = logging.getLogger("limitflow.sell")
OPEN = [s.value for s in OPEN_STATES]
UNSOLD = [s.value for s in UNSOLD_STATES]
# Still resting, or its cancel not confirmed: the sell is tried again shortly.
NOT_CONFIRMED = frozenset(
    {
        OrderState.LIVE,
        OrderState.PARTIALLY_FILLED,
        OrderState.PENDING_SUBMIT,
        Verdict.MISSING,
        Verdict.UNKNOWN,
    }
)


class SellNotDone(Retryable):
    """A resting order did not confirm its cancel yet: try the sell again shortly."""


@dataclass(frozen=True, slots=True)
class SellResult:
    signal_id: str
    slot: str
    outcome: str  # done | failed | invalid (as recorded)
    reason: str = ""
    lots: int = 0
    detail: str = ""


def process_sell(rt: Runtime, message: Any) -> SellResult:
    """Exit every unsold lot of the signal's slot; raise ``Retryable`` to be retried."""
    try:
        signal = parse_sell(message)
    except InvalidSignal as exc:
        signal_id = record_invalid(rt, message, "sell", str(exc))
        return SellResult(signal_id, "-", "invalid", str(exc))
    with rt.ledger.begin() as s:
        record_outcome(rt.ledger, s, signal, rt.now(), "accepted", signal.reason)
        lots = s.execute(
            select(Lot.id, Lot.state)
            .where(
                Lot.inst_id == signal.inst_id,
                Lot.strategy == signal.strategy,
                Lot.state.in_(UNSOLD),
            )
            .order_by(Lot.id)
        ).all()
    results = [
        (
            lot_id,
            ExitResult.NEEDS_ATTENTION
            if state == LotState.NEEDS_ATTENTION
            else exit_lot(rt, lot_id, signal.px, signal.reason),
        )
        for lot_id, state in lots
    ]
    failed = [result for _, result in results if result not in EXIT_DONE]
    outcome, reason = ("failed", failed[0]) if failed else ("done", signal.reason)
    detail = "; ".join(f"lot {lot_id}: {result}" for lot_id, result in results)
    detail = f"{signal.reason}: {detail or 'nothing to sell'}"
    return _ended(rt, signal, outcome, reason, detail, len(results))


def record_sell_failed(rt: Runtime, message: Any, error: str) -> SellResult:
    """Record a valid sell signal that the exchange kept failing (the task's last retry);
    reconciliation keeps selling its lots."""
    signal = parse_sell(message)
    with rt.ledger.begin() as s:
        record_outcome(rt.ledger, s, signal, rt.now(), "accepted", signal.reason)
    return _ended(rt, signal, "failed", "exchange_error", f"{signal.reason}: {error}")


def _ended(
    rt: Runtime, signal: SellSignal, outcome: str, reason: str, detail: str, lots: int = 0
) -> SellResult:
    with rt.ledger.begin() as s:
        update_outcome(s, signal.signal_id, outcome, reason, detail)
    slot_name = f"{signal.inst_id}/{signal.strategy}"
    return SellResult(signal.signal_id, slot_name, outcome, reason, lots, detail)


def exit_lot(rt: Runtime, lot_id: int, px: Any, reason: str) -> ExitResult:
    """Replace a lot's resting sells by a sell at the best bid; return what happened.

    An exit already resting at or below the bid is left alone; one the market fell away
    from is canceled and placed again at the new bid.
    """
    with rt.ledger.begin() as s:
        lot = s.get(Lot, lot_id)
        if lot is None or lot.state != LotState.OPEN:
            return not_open(lot)
        inst_id = lot.inst_id
    bid = px if px is not None else rt.exchange.ticker(inst_id).bid_px
    with rt.ledger.begin() as s:
        lot = s.get(Lot, lot_id)
        if lot is None or lot.state != LotState.OPEN:
            return not_open(lot)
        rt.ledger.lock_slot(s, lot.inst_id, lot.strategy)
        resting = list(
            s.scalars(select(Order).where(Order.lot_id == lot_id, Order.state.in_(OPEN)))
        )
        if any(o.purpose == "exit" and o.px <= bid for o in resting):
            return ExitResult.EXITING
        for order in resting:
            order.cancel_requested_at = rt.now()
        to_cancel = [(o.id, o.inst_id, o.ord_id, o.cl_ord_id) for o in resting]
    for order_id, inst_id, ord_id, cl_ord_id in to_cancel:
        # Already filled or canceled: the lookup below tells which.
        with contextlib.suppress(CancelRejected, OrderNotFound):
            rt.exchange.cancel_order(inst_id, ord_id=ord_id, cl_ord_id=cl_ord_id)
        state = lookup(rt, order_id, declare_missing_after=rt.settings.PENDING_TIMEOUT_SECONDS)
        if state in NOT_CONFIRMED:
            raise SellNotDone(f"order {cl_ord_id} is still {state} after a cancel request")

    return sell_at(rt, lot_id, bid, reason)


def sell_lot_on_schedule(rt: Runtime, lot_id: int) -> ExitResult:
    """Reconciliation's backstop for a lot with nothing resting: a take-profit or an exit."""
    with rt.ledger.begin() as s:
        lot = s.get(Lot, lot_id)
        if lot is None or lot.state != LotState.OPEN:
            return not_open(lot)
        overdue = rt.now() >= lot.exit_after
    if overdue:
        return exit_lot(rt, lot_id, None, "time_exit")
    with rt.ledger.begin() as s:
        lot = s.get(Lot, lot_id)
        assert lot is not None
        rt.ledger.lock_slot(s, lot.inst_id, lot.strategy)
        s.refresh(lot)
        if lot.state != LotState.OPEN or s.scalar(
            select(Order.id).where(Order.lot_id == lot_id, Order.state.in_(OPEN))
        ):
            return ExitResult.RESTING
        rules = rt.rules(lot.inst_id)
        freed = close_if_done(rt, lot, rules)
        if freed:
            intents = []
        else:
            intents = [new_sell_intent(rt, s, lot, lot.take_profit_px, rules, "take_profit")]
    finish(rt, intents, freed)
    return ExitResult.TAKE_PROFIT_PLACED if intents else ExitResult.DUST

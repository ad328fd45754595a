"""Placing a lot's exit at the best bid, once nothing rests for it (the sell path's last step).

Below the sell path (``worker.services.sell``, which first cancels what rests and confirms it)
and the exchange's news (``worker.services.updates``, which sells an orphan's new lot at once).
"""

from __future__ import annotations

import logging
from decimal import Decimal

from sqlalchemy import select

from worker import notify
from worker.domain.lots import LotState
from worker.domain.orders import OPEN_STATES, OrderState
from worker.domain.results import ExitResult
from worker.ledger.models import Lot, Order
from worker.logs import log_event
from worker.runtime import Runtime
from worker.services.intents import Intent
from worker.services.placement import finish, send
from worker.services.settle import close_if_done, new_sell_intent

log = logging.getLogger("limitflow.sell")
OPEN = [s.value for s in OPEN_STATES]


def place_exit(rt: Runtime, lot_id: int, px: Decimal | None, reason: str) -> ExitResult:
    """Sell what remains of an open lot at ``px`` or else the best bid, unless a sell already
    rests for it (then ``exiting``: ``worker.services.sell.exit_lot`` replaces resting sells).
    """
    with rt.ledger.begin() as s:
        lot = s.get(Lot, lot_id)
        if lot is None or lot.state != LotState.OPEN:
            return not_open(lot)
        inst_id = lot.inst_id
    bid = px if px is not None else rt.exchange.ticker(inst_id).bid_px
    return sell_at(rt, lot_id, bid, reason)


def sell_at(rt: Runtime, lot_id: int, bid: Decimal, reason: str) -> ExitResult:
    """Under the slot lock: unless a sell rests for the lot, place its exit at ``bid`` (or
    close it as dust); then send it and say what happened."""
    intent: Intent | None = None
    with rt.ledger.begin() as s:
        lot = s.get(Lot, lot_id)
        assert lot is not None
        rt.ledger.lock_slot(s, lot.inst_id, lot.strategy)
        s.refresh(lot)
        if lot.state != LotState.OPEN:
            if lot.state == LotState.CLOSED:
                return ExitResult.SOLD_MEANWHILE
            return not_open(lot)
        if s.scalar(select(Order.id).where(Order.lot_id == lot_id, Order.state.in_(OPEN))):
            return ExitResult.EXITING
        rules = rt.rules(lot.inst_id)
        freed = close_if_done(rt, lot, rules)
        if not freed:
            intent = new_sell_intent(rt, s, lot, rules.price_down(bid), rules, "exit")
    if intent is None:
        finish(rt, [], freed)
        return ExitResult.DUST
    log_event(log, "lot.exit", lot_id=lot_id, reason=reason, px=intent.px, sz=intent.sz)
    if reason in ("stop_loss", "time_exit"):
        what = "stop loss" if reason == "stop_loss" else "time exit"
        notify.alert(
            reason,
            f"{what}: selling {intent.sz} {intent.inst_id} at {intent.px} ({intent.strategy})",
            f"Lot {lot_id}: its take-profit was canceled; the exit sells at the best bid.",
        )
    if send(rt, intent) != OrderState.REJECTED:
        return ExitResult.EXIT_PLACED
    with rt.ledger.begin() as s:
        lot = s.get(Lot, lot_id)
        refused_too_often = lot is not None and lot.state == LotState.NEEDS_ATTENTION
    return ExitResult.NEEDS_ATTENTION if refused_too_often else ExitResult.EXIT_REJECTED


def not_open(lot: Lot | None) -> ExitResult:
    """``closed`` for a lot that is gone or closed, else its state (``needs_attention``)."""
    return ExitResult.CLOSED if lot is None else ExitResult(lot.state)

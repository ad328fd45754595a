"""What follows when an order ends: lots from buys, accounting from sells, freed slots.

Inside the transaction that holds the slot lock; nothing here sends orders (``placement`` does).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from worker import metrics
from worker.domain.deadlines import placement_deadline
from worker.domain.errors import InvalidInstrument, Retryable
from worker.domain.ids import sell_cl_ord_id
from worker.domain.lots import UNSOLD_STATES, LotState
from worker.domain.money import InstrumentRules
from worker.domain.orders import OrderState, Side
from worker.domain.sizing import is_dust, lot_of_buy, sellable_rest
from worker.ledger.models import ORPHAN, Lot, Order
from worker.logs import log_event
from worker.runtime import Runtime
from worker.services.intents import Intent

log = logging.getLogger("limitflow.settle")

Slot = tuple[str, str]


def settle(
    rt: Runtime, s: Session, order: Order, *, became_terminal: bool
) -> tuple[list[Intent], list[Slot]]:
    """Do what an order's end implies; return intents to send and slots that freed (the
    caller hands both to ``worker.services.placement.finish`` after commit).

    Runs inside the transaction that holds the order's slot lock.
    """
    if not became_terminal:
        return [], []
    if order.side == Side.BUY:
        return _buy_ended(rt, s, order)
    return _sell_ended(rt, s, order)


def _buy_ended(rt: Runtime, s: Session, order: Order) -> tuple[list[Intent], list[Slot]]:
    slot = (order.inst_id, order.strategy)
    if order.filled_sz <= 0:
        return [], [slot]
    if s.scalar(select(Lot.id).where(Lot.buy_order_id == order.id)) is not None:
        return [], []
    try:
        # A suspended instrument's rules still settle what was bought on it.
        rules = rt.rules(order.inst_id, require_live=False)
    except (InvalidInstrument, Retryable) as exc:
        # The fill is recorded with the order's state; reconciliation makes the lot later.
        log_event(
            log,
            "lot.deferred",
            level=logging.WARNING,
            cl_ord_id=order.cl_ord_id,
            inst_id=order.inst_id,
            error=f"{type(exc).__name__}: {exc}",
        )
        return [], []
    params = rt.settings.strategies.params(order.strategy)
    size, dust = lot_of_buy(rules, order.filled_sz, order.fee, order.fee_ccy)
    now = rt.now()
    orphan = order.purpose == ORPHAN
    cost = order.filled_sz * order.avg_px
    if order.fee_ccy == rules.quote_ccy:
        cost += order.fee
    lot = Lot(
        buy_order_id=order.id,
        inst_id=order.inst_id,
        strategy=order.strategy,
        state=LotState.OPEN.value if size > 0 else LotState.CLOSED.value,
        size=size,
        avg_px=order.avg_px,
        cost=cost,
        dust_sz=dust,
        take_profit_px=rules.price_up(order.avg_px * (1 + params.take_profit_pct)),
        opened_at=now,
        # An orphan's lot is sold at once (the slot belongs to another buy).
        exit_after=now if orphan else now + timedelta(seconds=params.max_hold_seconds),
        closed_at=None if size > 0 else now,
        orphan=orphan,
    )
    s.add(lot)
    s.flush()
    log_event(
        log,
        "lot.opened",
        lot_id=lot.id,
        inst_id=lot.inst_id,
        strategy=lot.strategy,
        size=size,
        avg_px=order.avg_px,
        dust=dust,
    )
    if size <= 0:
        return [], [slot]
    if orphan:
        return [], []  # the caller sells it at the bid; reconciliation is the backstop
    return [new_sell_intent(rt, s, lot, lot.take_profit_px, rules, "take_profit")], []


def _sell_ended(rt: Runtime, s: Session, order: Order) -> tuple[list[Intent], list[Slot]]:
    if order.lot_id is None:
        return [], []
    lot = s.get(Lot, order.lot_id)
    # A lot that needs attention still takes a late fill: it may even close the lot.
    if lot is None or lot.state not in UNSOLD_STATES:
        return [], []
    quote_ccy = order.inst_id.rpartition("-")[2]
    if order.filled_sz > 0:
        lot.sold_sz += order.filled_sz
        fee = order.fee if order.fee_ccy == quote_ccy else Decimal(0)
        lot.proceeds += order.filled_sz * order.avg_px - fee
    try:
        rules = rt.rules(order.inst_id, require_live=False)
    except (InvalidInstrument, Retryable):
        return [], []  # what was sold is booked; the lot closes on a later run
    return [], close_if_done(rt, lot, rules)


def close_if_done(rt: Runtime, lot: Lot, rules: InstrumentRules) -> list[Slot]:
    """Close a lot whose remainder is below ``minSz`` (kept as dust); return freed slots."""
    if lot.state not in UNSOLD_STATES or not is_dust(rules, lot.size, lot.sold_sz):
        return []
    lot.dust_sz += lot.size - lot.sold_sz
    lot.state = LotState.CLOSED.value
    lot.closed_at = rt.now()
    log_event(
        log,
        "lot.closed",
        lot_id=lot.id,
        inst_id=lot.inst_id,
        strategy=lot.strategy,
        pnl=lot.proceeds - lot.cost,
    )
    return [(lot.inst_id, lot.strategy)]


def new_sell_intent(
    rt: Runtime, s: Session, lot: Lot, px: Decimal, rules: InstrumentRules, purpose: str
) -> Intent:
    """Write a sell intent for what remains of ``lot``; the caller sends it after commit.

    Only an ``open`` lot is sold: one that needs attention waits for an operator.
    """
    assert lot.state == LotState.OPEN, f"lot {lot.id} is {lot.state}: no exits are placed"
    lot.sell_attempts += 1
    now = rt.now()
    order = Order(
        cl_ord_id=sell_cl_ord_id(lot.strategy, lot.id, lot.sell_attempts),
        inst_id=lot.inst_id,
        strategy=lot.strategy,
        side=Side.SELL.value,
        purpose=purpose,
        state=OrderState.PENDING_SUBMIT.value,
        px=px,
        sz=sellable_rest(rules, lot.size, lot.sold_sz),
        lot_id=lot.id,
        created_at=now,
        updated_at=now,
        submitted_at=now,
        deadline_at=placement_deadline(now, rt.settings.PENDING_TIMEOUT_SECONDS),
    )
    s.add(order)
    s.flush()
    metrics.order_state(Side.SELL, OrderState.PENDING_SUBMIT.value)
    return Intent.of(order)

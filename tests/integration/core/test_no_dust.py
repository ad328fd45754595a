"""No unsellable dust: a buy is sized so that what it nets after the fee is a sellable lot.

XRP-USDT here has ``lotSz = minSz = 1``; OKX takes a buy's fee (0.1%) in XRP, so a buy of one
XRP delivers 0.999: below ``minSz``, never sellable.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select

from tests.builders import buy_message
from tests.integration.core.conftest import Engine, with_settings
from worker.ledger.models import Lot, Order, Signal
from worker.services.buy import process_buy


def _rows(engine: Engine, model: type) -> list:  # type: ignore[type-arg]
    with engine.rt.ledger.begin() as s:
        return list(s.scalars(select(model).order_by(model.id)))


def test_a_budget_that_buys_exactly_min_size_is_skipped_below_min_size(engine: Engine) -> None:
    msg = buy_message(inst_id="XRP-USDT", px="0.5", quote_sz="0.5")  # exactly 1 XRP

    result = process_buy(engine.rt, msg)

    assert (result.outcome, result.reason) == ("skipped", "below_min_size")
    [signal] = _rows_signal(engine, msg["signal_id"])
    assert "nets 0.999" in signal.detail and "needs a buy of 2 (1 USDT)" in signal.detail
    assert _rows(engine, Order) == [] and engine.venue.orders() == []


def test_a_budget_for_two_buys_two_and_the_lot_is_sellable(engine: Engine) -> None:
    msg = buy_message(inst_id="XRP-USDT", px="0.5", quote_sz="1")
    assert process_buy(engine.rt, msg).order_state == "live"
    engine.settle_price("XRP-USDT", "0.5")

    [buy, take_profit] = _rows(engine, Order)
    assert (buy.sz, buy.filled_sz, buy.fee) == (2, 2, Decimal("0.002"))
    [lot] = _rows(engine, Lot)
    assert (lot.state, lot.size, lot.dust_sz) == ("open", 1, Decimal("0.998"))
    assert take_profit.purpose == "take_profit" and take_profit.sz == 1
    assert take_profit.state == "live"  # the exchange took it: a whole lot, not dust


def test_the_fee_bound_is_a_setting(engine: Engine) -> None:
    with_settings(engine, FEE_RATE_BOUND="0")  # e.g. an account that pays no fee in the base
    msg = buy_message(inst_id="XRP-USDT", px="0.5", quote_sz="0.5")
    assert process_buy(engine.rt, msg).order_state == "live"


def _rows_signal(engine: Engine, signal_id: str) -> list[Signal]:
    with engine.rt.ledger.begin() as s:
        return [row for row in [s.get(Signal, signal_id)] if row is not None]

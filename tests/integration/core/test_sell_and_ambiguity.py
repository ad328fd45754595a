"""Fills, lots, take-profits, exits, and placements whose outcome was unknown."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from tests.builders import buy_message, sell_message
from tests.integration.core.conftest import Engine, with_settings
from tests.venues import skip_unsupported
from worker.ledger.models import Fill, Lot, Order
from worker.services.buy import process_buy
from worker.services.lookup import lookup
from worker.services.reconcile import purge_pending
from worker.services.sell import process_sell
from worker.task_names import VERIFY_ORDER


def rows(engine: Engine, model: type) -> list:  # type: ignore[type-arg]
    with engine.rt.ledger.begin() as s:
        return list(s.scalars(select(model).order_by(model.id)))


def buy_and_fill(engine: Engine, **kw: str) -> Order:
    msg = buy_message(**kw)
    assert process_buy(engine.rt, msg).order_state == "live"
    engine.settle_price(msg["inst_id"], msg["px"])  # the market comes down to the limit
    return [o for o in rows(engine, Order) if o.side == "buy"][-1]


def test_a_filled_buy_opens_a_lot_net_of_fee_and_rests_a_take_profit(engine: Engine) -> None:
    buy = buy_and_fill(engine, px="60000")
    assert buy.state == "filled" and buy.filled_sz == Decimal("0.00016666")
    [lot] = rows(engine, Lot)
    # The fee (0.1%) was charged in BTC: the lot is what arrived, rounded down to lotSz.
    assert lot.size == Decimal("0.00016649") and lot.state == "open"
    assert lot.dust_sz == Decimal("0.00000000334")
    [tp] = [o for o in rows(engine, Order) if o.side == "sell"]
    assert tp.purpose == "take_profit" and tp.state == "live"
    assert tp.px == Decimal("60600.0") and tp.sz == lot.size  # avg * 1.01, rounded up to tick
    assert tp.cl_ord_id.startswith("lfhls") and len(tp.cl_ord_id) == 29


def test_take_profit_fill_closes_the_lot_and_the_slot_frees(engine: Engine) -> None:
    with_settings(engine, BUY_GUARD_WINDOW_SECONDS=0)
    buy_and_fill(engine)
    engine.rt.cache.clear()
    assert process_buy(engine.rt, buy_message()).reason == "slot_busy"  # the take-profit rests
    engine.settle_price("BTC-USDT", "60600")
    [lot] = rows(engine, Lot)
    assert lot.state == "closed" and lot.sold_sz == lot.size
    assert lot.proceeds - lot.cost > 0
    engine.rt.cache.clear()
    assert process_buy(engine.rt, buy_message()).outcome == "accepted"


def test_cooldown_blocks_a_new_buy_after_a_round_trip(engine: Engine) -> None:
    buy_and_fill(engine)
    engine.settle_price("BTC-USDT", "60600")
    engine.rt.cache.clear()
    assert process_buy(engine.rt, buy_message()).reason == "cooldown"
    engine.clock.advance(7201)
    engine.rt.cache.clear()
    later = buy_message(created_at=int(engine.clock().timestamp() * 1000))
    assert process_buy(engine.rt, later).outcome == "accepted"


def test_stop_loss_cancels_the_take_profit_and_sells_at_the_bid(engine: Engine) -> None:
    buy_and_fill(engine)
    engine.venue.set_price("BTC-USDT", Decimal("56000"), Decimal("55990"), Decimal("56010"))
    result = process_sell(engine.rt, sell_message(reason="stop_loss"))
    assert result.outcome == "done" and result.lots == 1
    sells = [o for o in rows(engine, Order) if o.side == "sell"]
    assert [(o.purpose, o.state) for o in sells] == [("take_profit", "canceled"), ("exit", "live")]
    assert sells[1].px == Decimal("55990")
    engine.pump()
    engine.settle_price("BTC-USDT", "55990")
    [lot] = rows(engine, Lot)
    assert lot.state == "closed"


def test_a_partly_filled_take_profit_leaves_only_the_rest_to_exit(engine: Engine) -> None:
    buy_and_fill(engine)
    [tp] = [o for o in rows(engine, Order) if o.side == "sell"]
    engine.venue.fill(tp.cl_ord_id, Decimal("0.0001"))
    engine.pump()
    engine.venue.set_price("BTC-USDT", Decimal("56000"))
    process_sell(engine.rt, sell_message())
    exit_order = next(o for o in rows(engine, Order) if o.purpose == "exit")
    assert exit_order.sz == Decimal("0.00006649")


def test_a_failed_sell_leaves_exactly_that_lot_unsold_until_it_sells(engine: Engine) -> None:
    """The incident: a sell that partly fails must neither lose the lot nor block forever."""
    with_settings(engine, BUY_GUARD_WINDOW_SECONDS=0)
    buy_and_fill(engine, strategy="hourly_limit_ws")
    buy_and_fill(engine, strategy="batch_buy_ws")
    engine.venue.set_price("BTC-USDT", Decimal("56000"))
    engine.pump()
    skip_unsupported(engine.venue, "place_order", "reject")  # the first exit is refused
    process_sell(engine.rt, sell_message("hourly_limit_ws"))
    process_sell(engine.rt, sell_message("batch_buy_ws"))
    lots = {lot.strategy: lot for lot in rows(engine, Lot)}
    assert lots["hourly_limit_ws"].state == "open"  # unsold, retried later
    engine.settle_price("BTC-USDT", "56000")
    lots = {lot.strategy: lot for lot in rows(engine, Lot)}
    assert lots["batch_buy_ws"].state == "closed"
    engine.rt.cache.clear()
    assert process_buy(engine.rt, buy_message("hourly_limit_ws")).reason == "unsold_lot"
    process_sell(engine.rt, sell_message("hourly_limit_ws"))
    engine.settle_price("BTC-USDT", "56000")
    lots = {lot.strategy: lot for lot in rows(engine, Lot)}
    assert lots["hourly_limit_ws"].state == "closed"
    engine.rt.cache.clear()
    assert process_buy(engine.rt, buy_message("hourly_limit_ws")).outcome == "accepted"


def test_fills_are_counted_once_per_trade_id(engine: Engine) -> None:
    process_buy(engine.rt, buy_message())
    engine.venue.set_price("BTC-USDT", Decimal("60000"))
    pushes = engine.venue.drain_updates()
    for snap in pushes + pushes + list(reversed(pushes)):
        engine.apply(snap)
    fills = rows(engine, Fill)
    assert len(fills) == len({f.trade_id for f in fills}) == 1
    [buy] = [o for o in rows(engine, Order) if o.side == "buy"]
    assert buy.filled_sz == fills[0].sz and buy.state == "filled"
    assert len(rows(engine, Lot)) == 1


@pytest.mark.parametrize("fills_at_once", [False, True], ids=["rests", "fills-at-once"])
def test_accept_then_timeout_gives_one_order_not_two(engine: Engine, fills_at_once: bool) -> None:
    if fills_at_once:
        # Once the first order is filled OKX accepts the same clOrdId again: a resend would
        # buy twice. Only a lookup is safe.
        engine.venue.set_price("BTC-USDT", Decimal("59000"))
    engine.venue.inject("place_order", "accept_then_timeout")
    msg = buy_message()
    result = process_buy(engine.rt, msg)
    assert result.order_state == "unknown"
    [order] = rows(engine, Order)
    assert order.state == "pending_submit"
    assert engine.scheduler.sent[0][:2] == (VERIFY_ORDER, [order.id, 0])
    # A redelivered copy of the same task must look up, not place again.
    engine.rt.cache.clear()
    assert process_buy(engine.rt, msg).outcome == "duplicate"
    assert lookup(engine.rt, order.id) == ("filled" if fills_at_once else "live")
    assert engine.venue.placements_for(order.cl_ord_id) == 1
    assert len([o for o in engine.venue.orders() if o.side == "buy"]) == 1


def test_a_placement_that_never_landed_is_failed_after_the_timeout(engine: Engine) -> None:
    engine.venue.inject("place_order", "timeout")
    process_buy(engine.rt, buy_message())
    [order] = rows(engine, Order)
    assert purge_pending(engine.rt)["unchanged"] == 0  # too young to judge: not even looked at
    assert lookup(engine.rt, order.id) == "missing"
    engine.clock.advance(61)
    report = purge_pending(engine.rt)
    assert report["cleaned"] == 1
    [order] = rows(engine, Order)
    assert order.state == "failed"
    engine.rt.cache.clear()
    later = buy_message(created_at=int(engine.clock().timestamp() * 1000))
    assert process_buy(engine.rt, later).order_state == "live"  # slot free again


def test_an_error_during_purge_never_fails_an_order(engine: Engine) -> None:
    engine.venue.inject("place_order", "timeout")
    process_buy(engine.rt, buy_message())
    engine.clock.advance(61)
    for mode in ("unavailable", "rate_limited", "timeout"):
        engine.venue.inject("get_order", mode)
        assert purge_pending(engine.rt)["unknown"] == 1
        [order] = rows(engine, Order)
        assert order.state == "pending_submit"


def test_an_exit_the_market_fell_away_from_is_placed_again_lower(engine: Engine) -> None:
    buy_and_fill(engine)
    engine.venue.set_price("BTC-USDT", Decimal("56000"), Decimal("55990"), Decimal("56010"))
    # The feed saw a bid of 56100 a moment ago: the exit rests there, above the market.
    process_sell(engine.rt, sell_message(px="56100"))
    engine.pump()
    # The next stop-loss carries the lower bid: the exit is canceled and placed again.
    process_sell(engine.rt, sell_message(px="55990"))
    engine.pump()
    exits = [(o.px, o.state) for o in rows(engine, Order) if o.purpose == "exit"]
    assert exits == [(Decimal("56100"), "canceled"), (Decimal("55990"), "filled")]
    [lot] = rows(engine, Lot)
    assert lot.state == "closed"


def test_an_exit_resting_at_or_below_the_bid_is_left_alone(engine: Engine) -> None:
    buy_and_fill(engine)
    engine.venue.set_price("BTC-USDT", Decimal("56000"), Decimal("55990"), Decimal("56010"))
    process_sell(engine.rt, sell_message(px="56100"))
    process_sell(engine.rt, sell_message(px="56100"))
    process_sell(engine.rt, sell_message(px="56200"))
    exits = [(o.px, o.state) for o in rows(engine, Order) if o.purpose == "exit"]
    assert exits == [(Decimal("56100"), "live")]

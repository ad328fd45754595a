"""What a signal's recorded outcome says, and the small holes around it (issue 7, item 8)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.builders import buy_message, sell_message
from tests.integration.core.conftest import Engine, with_settings
from tests.venues import skip_unsupported
from worker.ledger.models import Order, Signal
from worker.runtime import set_runtime
from worker.services.buy import process_buy
from worker.services.reconcile import sync_active_orders
from worker.services.sell import process_sell


def signal_row(engine: Engine, signal_id: str) -> Signal:
    with engine.rt.ledger.begin() as s:
        row = s.get(Signal, signal_id)
        assert row is not None, f"signal {signal_id} was not recorded"
        s.expunge(row)
        return row


def orders(engine: Engine) -> list[Order]:
    with engine.rt.ledger.begin() as s:
        return list(s.scalars(select(Order).order_by(Order.id)))


def buy_and_fill(engine: Engine) -> None:
    msg = buy_message(px="60000")
    assert process_buy(engine.rt, msg).order_state == "live"
    engine.settle_price("BTC-USDT", "60000")


# -- a sell signal's outcome -------------------------------------------------------------------


def test_a_sell_signal_is_recorded_done_once_its_exit_is_placed(engine: Engine) -> None:
    buy_and_fill(engine)
    engine.venue.set_price("BTC-USDT", Decimal("56000"), Decimal("55990"), Decimal("56010"))
    msg = sell_message(reason="stop_loss")
    process_sell(engine.rt, msg)
    row = signal_row(engine, msg["signal_id"])
    assert (row.kind, row.outcome, row.reason) == ("sell", "done", "stop_loss")
    assert "exit_placed" in row.detail
    nothing = sell_message("original_gap")
    process_sell(engine.rt, nothing)
    row = signal_row(engine, nothing["signal_id"])
    assert (row.outcome, row.detail) == ("done", "stop_loss: nothing to sell")


def test_a_sell_signal_whose_exit_is_refused_is_recorded_failed(engine: Engine) -> None:
    buy_and_fill(engine)
    skip_unsupported(engine.venue, "place_order", "reject")
    msg = sell_message(px="56000")
    process_sell(engine.rt, msg)
    row = signal_row(engine, msg["signal_id"])
    assert (row.outcome, row.reason) == ("failed", "exit_rejected")


def test_a_sell_signal_that_fails_after_its_retries_is_recorded_failed(engine: Engine) -> None:
    """The real task, run the way Celery runs its last retry: the outcome says it failed."""
    from worker.tasks import process_sell_signal

    buy_and_fill(engine)
    engine.venue.inject("ticker", "unavailable", times=50)  # no best bid: cannot exit
    msg = sell_message()
    set_runtime(engine.rt)
    try:
        last = process_sell_signal.max_retries
        result = process_sell_signal.apply(args=[msg], retries=last)
    finally:
        set_runtime(None)
        engine.venue.clear_faults()
    assert result.successful(), result.traceback
    row = signal_row(engine, msg["signal_id"])
    assert (row.outcome, row.reason) == ("failed", "exchange_error")
    assert row.detail.startswith("stop_loss: ExchangeUnavailable")


# -- invalid messages do not burn their id -------------------------------------------------------


def test_an_invalid_message_does_not_burn_its_signal_id(engine: Engine) -> None:
    bad = buy_message(signal_id="hourly_limit_ws:BTC-USDT:fix", px="-5")
    assert process_buy(engine.rt, bad).outcome == "invalid"
    good = buy_message(signal_id="hourly_limit_ws:BTC-USDT:fix")
    result = process_buy(engine.rt, good)
    assert (result.outcome, result.order_state) == ("accepted", "live")
    assert signal_row(engine, good["signal_id"]).outcome == "accepted"
    with engine.rt.ledger.begin() as s:
        [invalid] = s.scalars(select(Signal).where(Signal.outcome == "invalid"))
        # Still recorded, under an id of its own, naming the id it carried.
        assert "hourly_limit_ws:BTC-USDT:fix" in invalid.detail
        assert invalid.payload is not None and invalid.payload["px"] == "-5"


# -- enabled = false ------------------------------------------------------------------------------


def test_a_buy_for_a_disabled_strategy_is_skipped_by_the_worker(
    engine: Engine, tmp_path: Path
) -> None:
    config = tmp_path / "strategies.toml"
    config.write_text("[original_gap]\nenabled = false\n")
    with_settings(engine, STRATEGY_CONFIG=str(config))
    by_hand = buy_message("original_gap")
    result = process_buy(engine.rt, by_hand)
    assert (result.outcome, result.reason) == ("skipped", "disabled")
    row = signal_row(engine, by_hand["signal_id"])
    assert row.reason == "disabled" and "STRATEGY_CONFIG" in row.detail
    assert orders(engine) == []
    assert process_buy(engine.rt, buy_message("hourly_limit_ws")).outcome == "accepted"


# -- the cooldown counts only buys that bought something ------------------------------------------


@pytest.mark.parametrize("how", ["canceled", "expired"])
def test_a_buy_that_filled_nothing_does_not_start_the_cooldown(engine: Engine, how: str) -> None:
    first = buy_message()
    assert process_buy(engine.rt, first).order_state == "live"
    [buy] = orders(engine)
    if how == "canceled":
        engine.venue.cancel_order("BTC-USDT", cl_ord_id=buy.cl_ord_id)
        engine.pump()
    else:  # nothing filled within BUY_ORDER_TTL_SECONDS: reconciliation cancels it
        engine.clock.advance(engine.rt.settings.BUY_ORDER_TTL_SECONDS + 1)
        sync_active_orders(engine.rt)
    [buy] = orders(engine)
    assert buy.state == "canceled" and buy.filled_sz == 0
    engine.rt.cache.clear()
    again = buy_message(created_at=int(engine.clock().timestamp() * 1000))
    result = process_buy(engine.rt, again)
    assert (result.outcome, result.reason) == ("accepted", "")


def test_a_buy_that_filled_a_little_still_starts_the_cooldown(engine: Engine) -> None:
    first = buy_message()
    process_buy(engine.rt, first)
    [buy] = orders(engine)
    engine.venue.fill(buy.cl_ord_id, Decimal("0.00002"))
    engine.venue.cancel_order("BTC-USDT", cl_ord_id=buy.cl_ord_id)
    engine.pump()
    [buy] = [o for o in orders(engine) if o.side == "buy"]
    assert buy.state == "canceled" and buy.filled_sz == Decimal("0.00002")
    engine.settle_price("BTC-USDT", "60600")  # the little lot's take-profit fills
    engine.rt.cache.clear()
    assert process_buy(engine.rt, buy_message()).reason == "cooldown"

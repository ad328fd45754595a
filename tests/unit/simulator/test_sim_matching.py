"""Matching: fills, partial fills, fees, rounding checks, clOrdId uniqueness, balances."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sim_unit_helpers import Clock, Recorder, order, set_quote

from simulator.matching import Engine


def test_resting_buy_fills_when_ask_reaches_its_price(engine: Engine, recorder: Recorder) -> None:
    placed = engine.place(order(px="99", clOrdId="b1"))
    assert placed["sCode"] == "0" and placed["sMsg"] == "Order placed"
    assert len(placed["ordId"]) == 19 and placed["ordId"].isdigit()
    set_quote(engine, bid="99.1", ask="99.2")
    assert engine.orders[placed["ordId"]].state == "live"
    set_quote(engine, bid="98.9", ask="99")
    filled = engine.orders[placed["ordId"]]
    assert filled.state == "filled"
    assert recorder.states() == ["live", "filled"]
    fill = recorder.updates[-1][2]
    assert fill is not None and fill.exec_type == "M" and fill.px == Decimal(99)


def test_crossing_buy_takes_at_the_ask(engine: Engine, recorder: Recorder) -> None:
    placed = engine.place(order(px="101", sz="0.2"))
    data = engine.orders[placed["ordId"]].to_okx()
    assert data["state"] == "filled"
    assert data["fillPx"] == "100.1" and data["avgPx"] == "100.1"
    assert recorder.updates[-1][2] is not None and recorder.updates[-1][2].exec_type == "T"


def test_big_order_fills_in_parts_with_cumulative_size(engine: Engine) -> None:
    placed = engine.place(order(px="101", sz="2.5"))
    o = engine.orders[placed["ordId"]]
    assert (o.state, o.acc_fill_sz) == ("partially_filled", Decimal(1))
    set_quote(engine, bid="100", ask="100.1")
    assert o.acc_fill_sz == Decimal(2)
    set_quote(engine, bid="100", ask="100.1")
    assert (o.state, o.acc_fill_sz) == ("filled", Decimal("2.5"))
    assert [f.sz for f in o.fills] == [Decimal(1), Decimal(1), Decimal("0.5")]
    assert o.to_okx()["fillSz"] == "0.5"  # the last fill only
    assert o.to_okx()["accFillSz"] == "2.5"


def test_fees_are_negative_base_for_buys_and_quote_for_sells(engine: Engine) -> None:
    buy = engine.orders[engine.place(order(px="101", sz="0.1"))["ordId"]].to_okx()
    assert (buy["fee"], buy["feeCcy"]) == ("-0.0001", "BTC")
    sell = engine.place(order(side="sell", px="100", sz="0.1"))
    data = engine.orders[sell["ordId"]].to_okx()
    assert (data["fee"], data["feeCcy"]) == ("-0.01", "USDT")  # 0.1 * 100 * 0.001


def test_balances_move_by_fills_and_fees(engine: Engine) -> None:
    engine.place(order(px="101", sz="0.1"))  # buys 0.1 at 100.1
    assert engine.accounts.cash["USDT"] == Decimal(10000) - Decimal("10.01")
    assert engine.accounts.cash["BTC"] == Decimal(1) + Decimal("0.1") - Decimal("0.0001")
    assert engine.accounts.frozen.get("USDT", 0) == 0


def test_resting_orders_freeze_and_cancel_releases(engine: Engine) -> None:
    placed = engine.place(order(px="90", sz="1"))
    assert engine.accounts.frozen["USDT"] == Decimal(90)
    assert engine.accounts.available("USDT") == Decimal(9910)
    result = engine.cancel({"instId": "BTC-USDT", "ordId": placed["ordId"]})
    assert result["sCode"] == "0"
    assert engine.accounts.frozen["USDT"] == 0
    assert engine.orders[placed["ordId"]].cancel_source == "1"


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"px": "99.05"}, "51000"),  # not a multiple of tickSz 0.1
        ({"sz": "0.000000001"}, "51121"),  # finer than lotSz 0.00000001
        ({"sz": "0.000005"}, "51020"),  # below minSz 0.00001
        ({"instId": "NOPE-USDT"}, "51001"),
        ({"tdMode": "cross"}, "51000"),
        ({"ordType": "market"}, "51000"),
        ({"side": "hold"}, "51000"),
        ({"px": ""}, "51204"),
        ({"clOrdId": "has-dash"}, "51000"),
        ({"sz": "200"}, "51131"),  # 200 * 99 USDT > 10000
    ],
)
def test_refusals_use_okx_codes(engine: Engine, fields: dict[str, str], code: str) -> None:
    result = engine.place(order(**fields))
    assert (result["sCode"], result["ordId"]) == (code, "")
    assert result["sMsg"]
    assert not engine.orders


def test_sell_needs_base_balance(engine: Engine) -> None:
    assert engine.place(order(side="sell", px="200", sz="1.5"))["sCode"] == "51131"


def test_client_order_id_unique_only_among_pending(engine: Engine) -> None:
    first = engine.place(order(px="90", clOrdId="dup1"))
    assert engine.place(order(px="90", clOrdId="dup1"))["sCode"] == "51016"
    engine.cancel({"instId": "BTC-USDT", "clOrdId": "dup1"})
    again = engine.place(order(px="90", clOrdId="dup1"))
    assert again["sCode"] == "0" and again["ordId"] != first["ordId"]
    assert engine.placements["dup1"] == 2
    latest = engine.find("BTC-USDT", "", "dup1")
    assert latest is not None and latest.ord_id == again["ordId"]


def test_batch_rejects_repeated_client_id_within_the_request(engine: Engine) -> None:
    seen: set[str] = set()
    assert engine.place(order(px="101", sz="0.1", clOrdId="same"), seen)["sCode"] == "0"
    assert engine.place(order(px="101", sz="0.1", clOrdId="same"), seen)["sCode"] == "51016"


def test_post_only_that_would_take_is_canceled(engine: Engine) -> None:
    placed = engine.place(order(ordType="post_only", px="101"))
    o = engine.orders[placed["ordId"]]
    assert placed["sCode"] == "0"
    assert (o.state, o.cancel_source, o.acc_fill_sz) == ("canceled", "31", 0)
    assert engine.accounts.frozen["USDT"] == 0


def test_ioc_fills_what_it_can_and_cancels_the_rest(engine: Engine) -> None:
    o = engine.orders[engine.place(order(ordType="ioc", px="101", sz="1.5"))["ordId"]]
    assert (o.state, o.acc_fill_sz, o.cancel_source) == ("canceled", Decimal(1), "14")


def test_fok_fills_all_or_nothing(engine: Engine) -> None:
    big = engine.orders[engine.place(order(ordType="fok", px="101", sz="1.5"))["ordId"]]
    assert (big.state, big.acc_fill_sz, big.cancel_source) == ("canceled", 0, "13")
    small = engine.orders[engine.place(order(ordType="fok", px="101", sz="0.5"))["ordId"]]
    assert small.state == "filled"


def test_cancel_of_finished_or_unknown_order_is_51400(engine: Engine) -> None:
    done = engine.place(order(px="101", sz="0.1"))
    assert engine.cancel({"instId": "BTC-USDT", "ordId": done["ordId"]})["sCode"] == "51400"
    assert engine.cancel({"instId": "BTC-USDT", "ordId": "1234"})["sCode"] == "51400"


def test_canceled_unfilled_orders_leave_history_after_retention(
    engine: Engine, clock: Clock
) -> None:
    canceled = engine.place(order(px="90"))["ordId"]
    filled = engine.place(order(px="101", sz="0.1"))["ordId"]
    engine.cancel({"instId": "BTC-USDT", "ordId": canceled})
    clock.ms += 7199 * 1000
    assert {o.ord_id for o in engine.history_orders()} == {canceled, filled}
    clock.ms += 2 * 1000
    assert {o.ord_id for o in engine.history_orders()} == {filled}
    assert engine.find("BTC-USDT", canceled, "") is None


def test_forget_drops_only_terminal_orders(engine: Engine) -> None:
    live = engine.place(order(px="90"))["ordId"]
    done = engine.place(order(px="101", sz="0.1"))["ordId"]
    assert engine.forget(live) is False
    assert engine.forget(done) is True
    assert engine.find("BTC-USDT", done, "") is None

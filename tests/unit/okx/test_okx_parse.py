"""Recorded real OKX answers parse into the port's types."""

from __future__ import annotations

from decimal import Decimal

import pytest
from okx_fixtures import INSTRUMENTS_BODY, LIVE_PUSH_ITEM, ORDERS_PUSH, recorded

from worker.domain.orders import OrderState
from worker.exchange.okx.errors import MalformedResponse
from worker.exchange.okx.parse import (
    parse_instrument,
    parse_order,
    parse_placement,
    parse_server_time,
    parse_ticker,
)
from worker.exchange.port import Fill, snapshot_from_message, snapshot_to_message

D = Decimal


def test_filled_spot_order_from_fetch_order() -> None:
    snap = parse_order(recorded("fetchOrder")["data"][0])
    assert snap.inst_id == "LTC-USDT"
    assert snap.ord_id == "1339107111507525632"
    assert snap.cl_ord_id == "e847386590ce4dBC6f7ae74854f6a617"
    assert snap.side == "buy"
    assert snap.state is OrderState.FILLED
    assert snap.px == 0  # a market order has px ""
    assert (snap.sz, snap.acc_fill_sz, snap.avg_px) == (D("0.1"), D("0.1"), D("101.58"))
    # OKX says -0.0001 LTC; the port counts what was charged as positive.
    assert (snap.fee, snap.fee_ccy) == (D("0.0001"), "LTC")
    assert (snap.created_ms, snap.updated_ms) == (1712410901848, 1712410901852)
    assert snap.fill == Fill("58148845", D("101.58"), D("0.1"), D("0.0001"), "LTC", 1712410901850)
    assert snap.tag == "e847386590ce4dBC"


def test_open_order_has_no_fill_and_zero_avg_px() -> None:
    snap = parse_order(recorded("fetchOpenOrders")["data"][0])
    assert snap.state is OrderState.LIVE
    assert (snap.px, snap.sz, snap.acc_fill_sz, snap.avg_px) == (D("0.2"), D(50), D(0), D(0))
    assert snap.fee == 0 and snap.fill is None


def test_closed_order_snapshot_roundtrips_through_the_task_message() -> None:
    snap = parse_order(recorded("fetchClosedOrders")["data"][0])
    assert snap.state is OrderState.FILLED
    assert snapshot_from_message(snapshot_to_message(snap)) == snap


def test_push_fill_uses_fill_fee_and_positive_sign() -> None:
    snap = parse_order(ORDERS_PUSH["data"][0])
    assert snap.state is OrderState.FILLED and snap.side == "sell"
    assert snap.fee == D("0.02522168")
    assert snap.fill is not None
    assert snap.fill.trade_id == "242589207"
    assert (snap.fill.px, snap.fill.sz, snap.fill.fee) == (
        D("31527.1"),
        D("0.001"),
        D("0.02522168"),
    )
    assert (snap.fill.fee_ccy, snap.fill.ts_ms) == ("USDT", 1654084353263)


def test_live_push_with_empty_avg_px() -> None:
    snap = parse_order(LIVE_PUSH_ITEM)
    assert snap.state is OrderState.LIVE
    assert snap.avg_px == 0 and snap.fill is None
    item = {**LIVE_PUSH_ITEM, "avgPx": "0"}
    assert parse_order(item).avg_px == 0


def test_rebate_is_a_negative_charge() -> None:
    item = {**ORDERS_PUSH["data"][0], "fee": "0.01", "fillFee": "0.01"}
    snap = parse_order(item)
    assert snap.fee == D("-0.01")
    assert snap.fill is not None and snap.fill.fee == D("-0.01")


@pytest.mark.parametrize(
    ("raw", "state"),
    [
        ("live", OrderState.LIVE),
        ("partially_filled", OrderState.PARTIALLY_FILLED),
        ("filled", OrderState.FILLED),
        ("canceled", OrderState.CANCELED),
        ("mmp_canceled", OrderState.CANCELED),
    ],
)
def test_state_strings(raw: str, state: OrderState) -> None:
    assert parse_order({**LIVE_PUSH_ITEM, "state": raw}).state is state


@pytest.mark.parametrize(
    "change", [{"state": "weird"}, {"side": "short"}, {"ordId": ""}, {"sz": "1e"}, {"cTime": "x"}]
)
def test_bad_order_is_malformed(change: dict[str, str]) -> None:
    with pytest.raises(MalformedResponse):
        parse_order({**LIVE_PUSH_ITEM, **change})


def test_rest_partial_fill_leaves_fill_fee_to_the_cumulative_fee() -> None:
    item = {**recorded("fetchOrder")["data"][0], "accFillSz": "0.3", "fee": "-0.0003"}
    snap = parse_order(item)
    assert snap.fee == D("0.0003")
    assert snap.fill is not None and snap.fill.fee == 0


def test_create_order_placement() -> None:
    placement = parse_placement(recorded("createOrder")["data"][0])
    assert placement.ord_id == "2896576259728695296"
    assert placement.cl_ord_id == "6b9ad766b55dBCDE63969a1144bfb943"
    assert placement.ts_ms == 1758827099512


def test_ticker() -> None:
    t = parse_ticker(recorded("fetchTicker")["data"][0])
    assert (t.inst_id, t.last, t.bid_px, t.ask_px) == (
        "BTC-USDT",
        D("73384.8"),
        D("73384.7"),
        D("73384.8"),
    )
    assert t.ts_ms == 1710328243709


def test_server_time() -> None:
    assert parse_server_time(recorded("fetchTime")["data"][0]) == 1712250348676


def test_instruments() -> None:
    rules = {r.inst_id: r for r in map(parse_instrument, INSTRUMENTS_BODY["data"])}
    btc = rules["BTC-USDT"]
    assert (btc.tick_sz, btc.lot_sz, btc.min_sz) == (D("0.1"), D("0.00000001"), D("0.00001"))
    assert (btc.base_ccy, btc.quote_ccy, btc.live) == ("BTC", "USDT", True)
    assert rules["ETH-USDT"].tick_sz == D("0.01")
    assert rules["OLD-USDT"].live is False

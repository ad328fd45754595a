"""The simulator's objects carry the same keys, typed the same way, as recorded OKX answers.

``data/ccxt-response-okx.subset.json`` is a verbatim copy of real OKX responses recorded by
ccxt (provenance: /work/shared/okx/README.md). The instrument and ``orders`` push key sets
come from the OKX docs examples quoted in PROTOCOL.md §5.7 and §3.2.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sim_unit_helpers import order

from simulator.candles import Candle
from simulator.config import SimConfig
from simulator.core import Simulator
from simulator.instruments import make_instrument
from simulator.matching import Engine

FIXTURE = Path(__file__).parent / "data" / "ccxt-response-okx.subset.json"

DOC_INSTRUMENT_KEYS = set(
    [
        "alias",
        "auctionEndTime",
        "baseCcy",
        "category",
        "ctMult",
        "ctType",
        "ctVal",
        "ctValCcy",
        "contTdSwTime",
        "expTime",
        "futureSettlement",
        "groupId",
        "instFamily",
        "instId",
        "instType",
        "lever",
        "listTime",
        "lotSz",
        "maxIcebergSz",
        "maxLmtAmt",
        "maxLmtSz",
        "maxMktAmt",
        "maxMktSz",
        "maxStopSz",
        "maxTriggerSz",
        "maxTwapSz",
        "minSz",
        "optType",
        "openType",
        "preMktSwTime",
        "quoteCcy",
        "tradeQuoteCcyList",
        "settleCcy",
        "state",
        "ruleType",
        "stk",
        "tickSz",
        "uly",
        "instIdCode",
        "instCategory",
        "upcChg",
    ]
)
DOC_ORDERS_PUSH_KEYS = set(
    [
        "accFillSz",
        "algoClOrdId",
        "algoId",
        "amendResult",
        "amendSource",
        "avgPx",
        "cancelSource",
        "category",
        "ccy",
        "clOrdId",
        "code",
        "cTime",
        "execType",
        "fee",
        "feeCcy",
        "fillFee",
        "fillFeeCcy",
        "fillNotionalUsd",
        "fillPx",
        "fillSz",
        "fillPnl",
        "fillTime",
        "fillPxVol",
        "fillPxUsd",
        "fillMarkVol",
        "fillFwdPx",
        "fillMarkPx",
        "fillIdxPx",
        "instId",
        "instType",
        "lever",
        "msg",
        "notionalUsd",
        "ordId",
        "ordType",
        "pnl",
        "posSide",
        "px",
        "pxUsd",
        "pxVol",
        "pxType",
        "quickMgnType",
        "rebate",
        "rebateCcy",
        "reduceOnly",
        "reqId",
        "side",
        "attachAlgoClOrdId",
        "slOrdPx",
        "slTriggerPx",
        "slTriggerPxType",
        "source",
        "state",
        "stpId",
        "stpMode",
        "sz",
        "tag",
        "tdMode",
        "tgtCcy",
        "tpOrdPx",
        "tpTriggerPx",
        "tpTriggerPxType",
        "attachAlgoOrds",
        "tradeId",
        "tradeQuoteCcy",
        "lastPx",
        "uTime",
        "isTpLimit",
        "linkedAlgoOrd",
    ]
)


def recorded(method: str, index: int = 0) -> dict[str, Any]:
    fixture = json.loads(FIXTURE.read_text())
    response: dict[str, Any] = fixture["methods"][method][index]["httpResponse"]
    return response


def same_types(ours: dict[str, Any], theirs: dict[str, Any]) -> None:
    """Every key typed as in the recording (numbers as strings, lists as lists)."""
    assert set(ours) == set(theirs)
    for key, value in theirs.items():
        assert type(ours[key]) is type(value), key


@pytest.fixture(scope="module")
def sim() -> Simulator:
    return Simulator(SimConfig(paused=True, instruments=("BTC-USDT",), warmup_hours=2))


def test_order_object_matches_recorded_spot_order(engine: Engine) -> None:
    placed = engine.place(order(px="101", sz="0.1", clOrdId="abc"))
    ours = engine.orders[placed["ordId"]].to_okx()
    theirs = recorded("fetchOrder")["data"][0]
    same_types(ours, theirs)
    assert ours["state"] == theirs["state"] == "filled"


def test_live_order_has_empty_fill_fields_like_recorded_open_order(engine: Engine) -> None:
    ours = engine.orders[engine.place(order(px="90"))["ordId"]].to_okx()
    theirs = recorded("fetchOpenOrders")["data"][0]
    for key in ("avgPx", "fillPx", "fillTime", "tradeId", "fillSz", "accFillSz", "fee"):
        assert ours[key] == theirs[key], key
    assert set(theirs) <= set(ours)


def test_place_order_entry_matches_recorded_create_order(engine: Engine) -> None:
    ours = engine.place(order(px="90", clOrdId="abc", tag="limitflow"))
    theirs = recorded("createOrder")["data"][0]
    same_types(ours, theirs)
    assert ours["sMsg"] == theirs["sMsg"] == "Order placed"


def test_ticker_matches_recorded_ticker(sim: Simulator) -> None:
    ours = sim.markets["BTC-USDT"].ticker()
    theirs = recorded("fetchTicker")["data"][0]
    same_types(ours, theirs)
    for key in ours.keys() - {"instType", "instId"}:
        Decimal(ours[key])  # every number parses


def test_candle_rows_match_recorded_candles(sim: Simulator) -> None:
    rows = sim.markets["BTC-USDT"].candles("1H").rows(3)
    theirs = recorded("fetchOHLCV")["data"]
    assert len(rows) == 3
    for row in rows:
        assert len(row) == len(theirs[0]) == 9
        assert all(isinstance(v, str) for v in row)
    assert int(rows[0][0]) > int(rows[1][0])  # newest first
    assert [r[8] for r in rows] == ["0", "1", "1"]
    assert Candle(0, Decimal(1)).row(True)[8] == theirs[0][8]


def test_time_and_status_payloads_match_recorded(sim: Simulator) -> None:
    theirs = recorded("fetchTime")
    ours = {"code": "0", "data": [{"ts": str(sim.clock.now_ms())}], "msg": ""}
    same_types(ours, theirs)
    same_types(ours["data"][0], theirs["data"][0])
    assert recorded("fetchStatus")["data"] == []


def test_instrument_has_the_documented_keys() -> None:
    ours = make_instrument("BTC-USDT").to_okx()
    assert set(ours) == DOC_INSTRUMENT_KEYS
    assert (ours["tickSz"], ours["lotSz"], ours["minSz"]) == ("0.1", "0.00000001", "0.00001")


def test_orders_push_has_the_documented_keys(engine: Engine) -> None:
    placed = engine.place(order(px="101", sz="0.1"))
    o = engine.orders[placed["ordId"]]
    push = o.to_push(o.last_fill, Decimal(100))
    assert set(push) >= DOC_ORDERS_PUSH_KEYS
    assert push["fillFee"] == "-0.0001" and push["execType"] == "T"
    assert all(isinstance(push[k], str) for k in ("fillSz", "fillPx", "accFillSz", "fee"))

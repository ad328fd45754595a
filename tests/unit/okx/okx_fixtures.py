"""Recorded real OKX answers (ccxt static fixtures) and docs examples, loaded by name."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

FIXTURE_DIR = Path("/work/shared/okx")
for _candidate in (Path(__file__).resolve().parents[3].parent / "shared" / "okx", FIXTURE_DIR):
    if (_candidate / "ccxt-response-okx.subset.json").exists():
        FIXTURE_DIR = _candidate
        break


@cache
def _responses() -> dict[str, Any]:
    with (FIXTURE_DIR / "ccxt-response-okx.subset.json").open() as f:
        methods: dict[str, Any] = json.load(f)["methods"]
    return methods


def recorded(method: str, index: int = 0) -> dict[str, Any]:
    """The recorded HTTP body of a ccxt call (``fetchOrder``, ``fetchTicker``, ...)."""
    body: dict[str, Any] = _responses()[method][index]["httpResponse"]
    return json.loads(json.dumps(body))  # a private copy: tests may edit it


# PROTOCOL.md 5.7: the docs SPOT instrument and an older real record (XChange PR #4114).
INSTRUMENTS_BODY: dict[str, Any] = {
    "code": "0",
    "msg": "",
    "data": [
        {
            "alias": "",
            "auctionEndTime": "",
            "baseCcy": "BTC",
            "category": "1",
            "ctMult": "",
            "ctType": "",
            "ctVal": "",
            "ctValCcy": "",
            "contTdSwTime": "1704876947000",
            "expTime": "",
            "futureSettlement": False,
            "groupId": "1",
            "instFamily": "",
            "instId": "BTC-USDT",
            "instType": "SPOT",
            "lever": "10",
            "listTime": "1606468572000",
            "lotSz": "0.00000001",
            "maxIcebergSz": "9999999999.0000000000000000",
            "maxLmtAmt": "1000000",
            "maxLmtSz": "9999999999",
            "maxMktAmt": "1000000",
            "maxMktSz": "",
            "maxStopSz": "",
            "maxTriggerSz": "9999999999.0000000000000000",
            "maxTwapSz": "9999999999.0000000000000000",
            "minSz": "0.00001",
            "optType": "",
            "openType": "call_auction",
            "preMktSwTime": "",
            "quoteCcy": "USDT",
            "tradeQuoteCcyList": ["USDT"],
            "settleCcy": "",
            "state": "live",
            "ruleType": "normal",
            "stk": "",
            "tickSz": "0.1",
            "uly": "",
            "instIdCode": 1000000000,
            "instCategory": "1",
            "upcChg": [{"param": "tickSz", "newValue": "0.0001", "effTime": "1704876947000"}],
        },
        {
            "alias": "",
            "baseCcy": "ETH",
            "category": "1",
            "ctMult": "",
            "ctType": "",
            "ctVal": "",
            "ctValCcy": "",
            "expTime": "",
            "instId": "ETH-USDT",
            "instType": "SPOT",
            "lever": "10",
            "listTime": "1548133413000",
            "lotSz": "0.000001",
            "minSz": "0.001",
            "optType": "",
            "quoteCcy": "USDT",
            "settleCcy": "",
            "state": "live",
            "stk": "",
            "tickSz": "0.01",
            "uly": "",
        },
        {
            "instId": "OLD-USDT",
            "instType": "SPOT",
            "baseCcy": "OLD",
            "quoteCcy": "USDT",
            "lotSz": "1",
            "minSz": "1",
            "tickSz": "0.001",
            "state": "suspend",
        },
    ],
}

# PROTOCOL.md 3.2: the docs example push of a filled spot limit sell on the orders channel.
ORDERS_PUSH: dict[str, Any] = {
    "arg": {
        "channel": "orders",
        "instType": "SPOT",
        "instId": "BTC-USDT",
        "uid": "614488474791936",
    },
    "data": [
        {
            "accFillSz": "0.001",
            "algoClOrdId": "",
            "algoId": "",
            "amendResult": "",
            "amendSource": "",
            "avgPx": "31527.1",
            "cancelSource": "",
            "category": "normal",
            "ccy": "",
            "clOrdId": "",
            "code": "0",
            "cTime": "1654084334977",
            "execType": "M",
            "fee": "-0.02522168",
            "feeCcy": "USDT",
            "fillFee": "-0.02522168",
            "fillFeeCcy": "USDT",
            "fillNotionalUsd": "31.50818374",
            "fillPx": "31527.1",
            "fillSz": "0.001",
            "fillPnl": "0.01",
            "fillTime": "1654084353263",
            "instId": "BTC-USDT",
            "instType": "SPOT",
            "lever": "0",
            "msg": "",
            "notionalUsd": "31.50818374",
            "ordId": "452197707845865472",
            "ordType": "limit",
            "pnl": "0",
            "posSide": "",
            "px": "31527.1",
            "rebate": "0",
            "rebateCcy": "BTC",
            "reduceOnly": "false",
            "side": "sell",
            "state": "filled",
            "sz": "0.001",
            "tag": "",
            "tdMode": "cash",
            "tgtCcy": "",
            "tradeId": "242589207",
            "tradeQuoteCcy": "USDT",
            "lastPx": "38892.2",
            "uTime": "1654084353264",
            "isTpLimit": "false",
            "linkedAlgoOrd": {"algoId": ""},
        }
    ],
}

# PROTOCOL.md 3.2: an older real live push (ccxt comment), avgPx "" and no fill.
LIVE_PUSH_ITEM: dict[str, Any] = {
    "accFillSz": "0",
    "amendResult": "",
    "avgPx": "",
    "cTime": "1634548275191",
    "category": "normal",
    "ccy": "",
    "clOrdId": "e847386590ce4dBC330547db94a08ba0",
    "code": "0",
    "execType": "",
    "fee": "0",
    "feeCcy": "USDT",
    "fillFee": "0",
    "fillFeeCcy": "",
    "fillNotionalUsd": "",
    "fillPx": "",
    "fillSz": "0",
    "fillTime": "",
    "instId": "ETH-USDT",
    "instType": "SPOT",
    "lever": "",
    "msg": "",
    "notionalUsd": "451.4516256",
    "ordId": "370257534141235201",
    "ordType": "limit",
    "pnl": "0",
    "posSide": "",
    "px": "60000",
    "rebate": "0",
    "rebateCcy": "ETH",
    "reduceOnly": "false",
    "side": "sell",
    "slOrdPx": "",
    "slTriggerPx": "",
    "state": "live",
    "sz": "0.007526",
    "tag": "",
    "tdMode": "cash",
    "tgtCcy": "",
    "tpOrdPx": "",
    "tpTriggerPx": "",
    "tradeId": "",
    "uTime": "1634548275191",
}

"""The feed reads instruments with the OKX adapter's parser and skips what it cannot read."""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

import httpx
import pytest

from feed.rest import PublicRest

BTC = {
    "instId": "BTC-USDT",
    "baseCcy": "BTC",
    "quoteCcy": "USDT",
    "tickSz": "0.1",
    "lotSz": "0.00000001",
    "minSz": "0.00001",
    "state": "live",
}


def rest_answering(items: list[Any]) -> PublicRest:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/api/v5/public/instruments"
        return httpx.Response(200, json={"code": "0", "msg": "", "data": items})

    client = httpx.Client(base_url="http://okx.test", transport=httpx.MockTransport(handler))
    return PublicRest("http://okx.test", client=client)


def test_currencies_fall_back_on_the_instrument_id() -> None:
    # A peer that leaves out baseCcy/quoteCcy: a spot id is BASE-QUOTE.
    item = {k: v for k, v in BTC.items() if k not in ("baseCcy", "quoteCcy")}
    [rules] = rest_answering([item]).instruments()
    assert (rules.base_ccy, rules.quote_ccy) == ("BTC", "USDT")
    assert (rules.tick_sz, rules.lot_sz, rules.live) == (Decimal("0.1"), Decimal("1e-8"), True)


@pytest.mark.parametrize(
    "bad",
    [
        {**BTC, "instId": "ZERO-USDT", "tickSz": "0"},
        {**BTC, "instId": "NOLOT-USDT", "lotSz": ""},
        {**BTC, "instId": "WORD-USDT", "tickSz": "abc"},
        {k: v for k, v in BTC.items() if k != "instId"},
        ["not", "an", "object"],
    ],
    ids=["tick-size-zero", "no-lot-size", "tick-size-not-a-number", "no-id", "not-an-object"],
)
def test_an_unreadable_instrument_is_skipped_and_logged(
    bad: Any, caplog: pytest.LogCaptureFixture
) -> None:
    eth = {**BTC, "instId": "ETH-USDT", "baseCcy": "ETH"}
    with caplog.at_level(logging.INFO, logger="limitflow.feed"):
        got = rest_answering([BTC, bad, eth]).instruments()
    assert [r.inst_id for r in got] == ["BTC-USDT", "ETH-USDT"]
    assert [r.getMessage() for r in caplog.records].count("feed.instrument_unreadable") == 1

"""``OkxExchange`` against a real local HTTP server speaking recorded OKX answers."""

from __future__ import annotations

import json
import logging
import socket
import time
from decimal import Decimal
from typing import Any

import pytest
from okx_testserver import CREDENTIALS, KEY, PASSPHRASE, SECRET, FakeOkx, Reply, fail, ok

from worker.domain.errors import (
    AuthenticationError,
    CancelRejected,
    DuplicateClientOrderId,
    ExchangeUnavailable,
    InsufficientFunds,
    InvalidInstrument,
    OrderNotFound,
    RateLimited,
    StateUnknown,
)
from worker.domain.orders import OrderState
from worker.exchange.okx.adapter import OkxExchange
from worker.exchange.okx.ratelimit import OkxRequestPacer
from worker.exchange.okx.rest import OkxRestClient
from worker.exchange.port import Exchange, OrderRequest, Placement

TRADE_ORDER = "/api/v5/trade/order"
PENDING = "/api/v5/trade/orders-pending"
REQ = OrderRequest(
    "BTC-USDT", "buy", Decimal("61234.50"), Decimal("0.00016000"), "lfhlb0123456789abcdef01234567"
)

# Real recorded answers (ccxt fixtures, PROTOCOL.md 5.1 / 5.4).
PLACED = {
    "clOrdId": REQ.cl_ord_id,
    "ordId": "2896576259728695296",
    "sCode": "0",
    "sMsg": "Order placed",
    "tag": "limitflow",
    "ts": "1758827099512",
}


def order_item(ord_id: str, state: str = "live", **over: str) -> dict[str, Any]:
    item = {
        "accFillSz": "0",
        "avgPx": "",
        "cTime": "1724733617998",
        "clOrdId": f"c{ord_id}",
        "fee": "0",
        "feeCcy": "BTC",
        "fillPx": "",
        "fillSz": "0",
        "fillTime": "",
        "instId": "BTC-USDT",
        "instType": "SPOT",
        "ordId": ord_id,
        "ordType": "limit",
        "px": "13013.5",
        "side": "buy",
        "state": state,
        "sz": "0.001",
        "tag": "",
        "tdMode": "cash",
        "tradeId": "",
        "uTime": "1724733617998",
    }
    item.update(over)
    return item


def test_satisfies_the_port(exchange: OkxExchange) -> None:
    assert isinstance(exchange, Exchange)


def test_place_sends_a_signed_cash_limit_order(fake: FakeOkx, exchange: OkxExchange) -> None:
    fake.script("POST", TRADE_ORDER, ok([PLACED]))
    placement = exchange.place_order(REQ)
    assert placement == Placement("2896576259728695296", REQ.cl_ord_id, 1758827099512)
    (seen,) = fake.requests(TRADE_ORDER)
    assert fake.bad_signatures == 0
    assert json.loads(seen.body) == {
        "instId": "BTC-USDT",
        "tdMode": "cash",
        "clOrdId": REQ.cl_ord_id,
        "side": "buy",
        "ordType": "limit",
        "px": "61234.5",
        "sz": "0.00016",
        "tag": "limitflow",
    }
    assert seen.headers["x-simulated-trading"] == "1"
    assert seen.headers["OK-ACCESS-TIMESTAMP"].endswith("Z")


def test_live_mode_sends_no_demo_header(fake: FakeOkx) -> None:
    fake.script("POST", TRADE_ORDER, ok([PLACED]))
    with OkxRestClient(fake.rest_url, CREDENTIALS, demo=False, pacer=OkxRequestPacer()) as rest:
        OkxExchange(rest).place_order(REQ)
    assert "x-simulated-trading" not in fake.requests(TRADE_ORDER)[0].headers


def test_get_query_is_part_of_the_signature(fake: FakeOkx, exchange: OkxExchange) -> None:
    fake.script("GET", TRADE_ORDER, ok([order_item("7")]))
    snap = exchange.get_order("BTC-USDT", cl_ord_id="c7")
    assert snap.ord_id == "7" and snap.state is OrderState.LIVE
    assert fake.requests(TRADE_ORDER)[0].path_qs == f"{TRADE_ORDER}?instId=BTC-USDT&clOrdId=c7"
    assert fake.bad_signatures == 0


def test_wrong_secret_is_an_authentication_error(fake: FakeOkx) -> None:
    from pydantic import SecretStr

    from worker.exchange.okx.rest import Credentials

    bad = Credentials(SecretStr(KEY), SecretStr("wrong"), SecretStr(PASSPHRASE))
    rest = OkxRestClient(fake.rest_url, bad, pacer=OkxRequestPacer())
    with rest, pytest.raises(AuthenticationError) as info:
        OkxExchange(rest).get_order("BTC-USDT", ord_id="1")
    assert info.value.code == "50113"


def test_duplicate_client_order_id(fake: FakeOkx, exchange: OkxExchange) -> None:
    item = {
        "clOrdId": REQ.cl_ord_id,
        "ordId": "",
        "sCode": "51016",
        "sMsg": "Duplicated client order ID",
        "tag": "",
    }
    fake.script("POST", TRADE_ORDER, fail("1", "Operation failed.", data=[item]))
    with pytest.raises(DuplicateClientOrderId) as info:
        exchange.place_order(REQ)
    assert info.value.code == "51016"


def test_refusal_inside_data_is_read(fake: FakeOkx, exchange: OkxExchange) -> None:
    item = {
        "clOrdId": "",
        "ordId": "",
        "sCode": "51119",
        "sMsg": "Order placement failed due to insufficient balance. ",
        "tag": "",
    }
    fake.script("POST", TRADE_ORDER, fail("1", data=[item]))
    with pytest.raises(InsufficientFunds):
        exchange.place_order(REQ)


def test_http_429_is_rate_limited(fake: FakeOkx, exchange: OkxExchange) -> None:
    fake.script("POST", TRADE_ORDER, Reply({"msg": "Too Many Requests", "code": "50011"}, 429))
    with pytest.raises(RateLimited):
        exchange.place_order(REQ)


def test_429_drains_the_bucket_so_the_next_request_waits(fake: FakeOkx) -> None:
    fake.script("GET", PENDING, Reply({"msg": "Too Many Requests", "code": "50011"}, 429))
    fake.script("GET", PENDING, ok([]))
    with OkxRestClient(fake.rest_url, CREDENTIALS, pacer=OkxRequestPacer()) as rest:
        ex = OkxExchange(rest)
        with pytest.raises(RateLimited):
            list(ex.list_pending())
        start = time.monotonic()
        assert list(ex.list_pending()) == []
    assert time.monotonic() - start >= 2.0 / 60 * 0.9


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_error_page_is_state_unknown(
    fake: FakeOkx, exchange: OkxExchange, status: int
) -> None:
    # A gateway's HTML page: the order may have reached the matching engine.
    fake.script("POST", TRADE_ORDER, Reply("<html>bad gateway</html>", status, raw=True))
    with pytest.raises(StateUnknown):
        exchange.place_order(REQ)


def test_busy_code_is_unavailable(fake: FakeOkx, exchange: OkxExchange) -> None:
    fake.script("POST", TRADE_ORDER, fail("50013", "Systems are busy", status=429))
    with pytest.raises(RateLimited):  # HTTP 429 wins: back off
        exchange.place_order(REQ)
    fake.script("POST", TRADE_ORDER, fail("50001", "Service temporarily unavailable"))
    with pytest.raises(ExchangeUnavailable):
        exchange.place_order(REQ)


def test_timeout_is_state_unknown(fake: FakeOkx, exchange: OkxExchange) -> None:
    fake.script("POST", TRADE_ORDER, Reply({"code": "0", "data": [PLACED]}, delay=1.0))
    with pytest.raises(StateUnknown):
        exchange.place_order(REQ)


def test_unreadable_body_is_state_unknown(fake: FakeOkx, exchange: OkxExchange) -> None:
    fake.script("POST", TRADE_ORDER, Reply("{not json", 200, raw=True))
    with pytest.raises(StateUnknown):
        exchange.place_order(REQ)


def test_connection_refused_is_state_unknown_without_secrets() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    rest = OkxRestClient(f"http://127.0.0.1:{port}", CREDENTIALS, pacer=OkxRequestPacer())
    with rest, pytest.raises(StateUnknown) as info:
        OkxExchange(rest).place_order(REQ)
    text = f"{info.value} {info.value!r} {rest!r} {CREDENTIALS!r}"
    for secret in (KEY, SECRET, PASSPHRASE):
        assert secret not in text


def test_not_found_only_on_51603(fake: FakeOkx, exchange: OkxExchange) -> None:
    fake.script("GET", TRADE_ORDER, fail("51603", "Order does not exist"))
    with pytest.raises(OrderNotFound):
        exchange.get_order("BTC-USDT", cl_ord_id="x")
    fake.script("GET", TRADE_ORDER, ok([]))
    with pytest.raises(StateUnknown):  # an empty answer is not "does not exist"
        exchange.get_order("BTC-USDT", cl_ord_id="x")


def test_cancel(fake: FakeOkx, exchange: OkxExchange) -> None:
    path = "/api/v5/trade/cancel-order"
    fake.script("POST", path, ok([{"clOrdId": "", "ordId": "12", "sCode": "0", "sMsg": ""}]))
    exchange.cancel_order("BTC-USDT", ord_id="12")
    assert json.loads(fake.requests(path)[0].body) == {"instId": "BTC-USDT", "ordId": "12"}
    item = {"clOrdId": "", "ordId": "12", "sCode": "51400", "sMsg": "filled"}
    fake.script("POST", path, fail("1", data=[item]))
    with pytest.raises(CancelRejected):
        exchange.cancel_order("BTC-USDT", ord_id="12")


def test_pending_orders_page_with_after(fake: FakeOkx, exchange: OkxExchange) -> None:
    ids = [str(10_000 - i) for i in range(205)]
    pages = [ids[:100], ids[100:200], ids[200:]]
    fake.script("GET", PENDING, *(ok([order_item(i) for i in page]) for page in pages))
    got = [s.ord_id for s in exchange.list_pending()]
    assert got == ids
    queries = [s.path_qs for s in fake.requests(PENDING)]
    assert queries == [
        f"{PENDING}?instType=SPOT&limit=100",
        f"{PENDING}?instType=SPOT&after={ids[99]}&limit=100",
        f"{PENDING}?instType=SPOT&after={ids[199]}&limit=100",
    ]


def test_instruments_are_cached_and_checked(fake: FakeOkx, exchange: OkxExchange) -> None:
    from okx_fixtures_path import INSTRUMENTS_BODY

    path = "/api/v5/public/instruments"
    fake.default("GET", path, Reply(INSTRUMENTS_BODY))
    assert exchange.instrument("BTC-USDT").tick_sz == Decimal("0.1")
    assert exchange.instrument("ETH-USDT").lot_sz == Decimal("0.000001")
    assert len(fake.requests(path)) == 1  # one request for the whole table
    assert "OK-ACCESS-KEY" not in fake.requests(path)[0].headers  # public: not signed
    with pytest.raises(InvalidInstrument):
        exchange.instrument("OLD-USDT")  # suspended
    fake.script("GET", path, fail("51001", "Instrument ID does not exist"))
    with pytest.raises(InvalidInstrument):
        exchange.instrument("NOPE-USDT")
    assert {r.inst_id for r in exchange.list_instruments()} == {"BTC-USDT", "ETH-USDT"}


def test_ticker_and_time(
    fake: FakeOkx, exchange: OkxExchange, caplog: pytest.LogCaptureFixture
) -> None:
    from okx_fixtures_path import recorded

    fake.script("GET", "/api/v5/market/ticker", Reply(recorded("fetchTicker")))
    assert exchange.ticker("BTC-USDT").last == Decimal("73384.8")
    fake.script("GET", "/api/v5/public/time", Reply(recorded("fetchTime")))  # year 2024
    with caplog.at_level(logging.WARNING, logger="limitflow.okx"):
        assert exchange.server_time() == 1712250348676
    assert any("okx.clock_skew" in r.getMessage() for r in caplog.records)
    now_ms = int(time.time() * 1000)
    fake.script("GET", "/api/v5/public/time", ok([{"ts": str(now_ms)}]))
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="limitflow.okx"):
        exchange.server_time()
    assert not caplog.records

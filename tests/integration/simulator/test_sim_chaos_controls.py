"""Controls the chaos soak needs: suspended instruments, the placement log, push faults on the
private orders channel, and a frozen market."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import websocket
from sim_socket_helpers import SignedClient, WsClient, limit_order, login_args

from simulator import SimulatorHandle
from simulator.control import SimControl, SimControlError


@pytest.fixture
def orders_ws(sim: SimulatorHandle) -> Iterator[WsClient]:
    client = WsClient(f"{sim.ws_url}/private")
    client.send(login_args())
    client.wait_for(lambda m: m.get("event") == "login")
    client.send({"op": "subscribe", "args": [{"channel": "orders", "instType": "SPOT"}]})
    client.wait_for(lambda m: m.get("event") == "subscribe")
    yield client
    client.close()


def _pushes(client: WsClient, timeout: float = 1.0) -> list[dict[str, Any]]:
    """Every orders push that arrives within ``timeout`` seconds."""
    found: list[dict[str, Any]] = []
    while True:
        try:
            msg = client.wait_for(lambda m: m.get("arg", {}).get("channel") == "orders", timeout)
        except (TimeoutError, websocket.WebSocketTimeoutException):
            return found
        found.append(msg["data"][0])
        timeout = 0.3


def _instrument_state(okx: SignedClient, inst_id: str) -> str:
    items = okx.get("/api/v5/public/instruments", instType="SPOT", instId=inst_id)["data"]
    return str(items[0]["state"])


def test_suspended_instrument_is_listed_refuses_orders_and_does_not_trade(
    okx: SignedClient, ctl: SimControl
) -> None:
    ctl.price("ETH-USDT", "3000")
    resting = okx.post("/api/v5/trade/order", limit_order("ETH-USDT", px="2900", sz="0.01"))
    assert resting["code"] == "0"
    assert ctl.instrument_state("ETH-USDT", "suspend")["state"] == "suspend"
    assert _instrument_state(okx, "ETH-USDT") == "suspend"
    assert _instrument_state(okx, "BTC-USDT") == "live"
    refused = okx.post("/api/v5/trade/order", limit_order("ETH-USDT", px="2900", sz="0.01"))
    assert (refused["code"], refused["data"][0]["sCode"]) == ("1", "51022")
    ord_id = resting["data"][0]["ordId"]
    ctl.price("ETH-USDT", "2800")  # crosses the resting buy: no trading while suspended
    found = okx.get("/api/v5/trade/order", instId="ETH-USDT", ordId=ord_id)["data"][0]
    assert found["state"] == "live"
    assert ctl.status()["suspended"] == ["ETH-USDT"]
    ctl.instrument_state("ETH-USDT", "live")
    assert _instrument_state(okx, "ETH-USDT") == "live"
    ctl.price("ETH-USDT", "2800")
    found = okx.get("/api/v5/trade/order", instId="ETH-USDT", ordId=ord_id)["data"][0]
    assert found["state"] == "filled"
    with pytest.raises(SimControlError, match="state must be"):
        ctl.instrument_state("ETH-USDT", "delisted")


def test_reset_makes_instruments_live_again(okx: SignedClient, ctl: SimControl) -> None:
    ctl.instrument_state("BTC-USDT", "suspend")
    ctl.reset()
    assert _instrument_state(okx, "BTC-USDT") == "live"


def test_placement_log_keeps_refused_and_fault_hit_requests(
    okx: SignedClient, ctl: SimControl
) -> None:
    ctl.price("BTC-USDT", "100")
    assert okx.post("/api/v5/trade/order", limit_order(px="90", clOrdId="pl1"))["code"] == "0"
    again = okx.post("/api/v5/trade/order", limit_order(px="90", clOrdId="pl1"))
    assert again["data"][0]["sCode"] == "51016"
    ctl.fault("place_order", "http_500")
    assert okx.send("POST", "/api/v5/trade/order", body=limit_order(clOrdId="pl2")).status_code
    batch = [limit_order(px="90", clOrdId="pl3"), limit_order(px="90", clOrdId="pl4")]
    assert okx.post("/api/v5/trade/batch-orders", batch)["code"] == "0"
    log = ctl.placement_requests()
    assert [(r["cl_ord_id"], r["source"], r["fault"], r["s_code"]) for r in log] == [
        ("pl1", "order", "", "0"),
        ("pl1", "order", "", "51016"),
        ("pl2", "order", "http_500", ""),
        ("pl3", "batch", "", "0"),
        ("pl4", "batch", "", "0"),
    ]
    assert log[0]["ord_id"] and log[1]["ord_id"] == ""
    assert log[2]["processed_ms"] is None  # answered by the fault, never reached the venue
    assert ctl.placements("pl1") == 1  # the order book's counter: accepted placements only
    ctl.reset()
    assert ctl.placement_requests() == []


def test_placement_log_shows_a_delayed_request_landing_late(
    okx: SignedClient, ctl: SimControl
) -> None:
    ctl.price("BTC-USDT", "100")
    ctl.clock(resume=True)
    try:
        ctl.fault("place_order", "latency", seconds=0.6)
        assert okx.post("/api/v5/trade/order", limit_order(px="90", clOrdId="late1"))["code"] == "0"
    finally:
        ctl.clock(pause=True)
    (entry,) = ctl.placement_requests()
    assert entry["fault"] == "latency" and entry["s_code"] == "0"
    assert entry["processed_ms"] - entry["received_ms"] >= 500


def test_orders_pushes_can_be_dropped_or_sent_twice(
    orders_ws: WsClient, okx: SignedClient, ctl: SimControl
) -> None:
    ctl.price("BTC-USDT", "100")
    ctl.push_fault("drop", times=1)
    assert okx.post("/api/v5/trade/order", limit_order(px="90", clOrdId="pd1"))["code"] == "0"
    assert _pushes(orders_ws) == []
    ctl.push_fault("duplicate", times=1)
    assert okx.post("/api/v5/trade/order", limit_order(px="90", clOrdId="pd2"))["code"] == "0"
    twice = _pushes(orders_ws)
    assert [p["clOrdId"] for p in twice] == ["pd2", "pd2"] and twice[0] == twice[1]
    assert okx.post("/api/v5/trade/order", limit_order(px="90", clOrdId="pd3"))["code"] == "0"
    assert [p["clOrdId"] for p in _pushes(orders_ws)] == ["pd3"]  # both faults used up
    status = ctl.status()
    assert (status["pushesDropped"], status["pushesDuplicated"]) == (1, 1)


def test_push_faults_ignore_rest_faults_and_the_other_way_round(
    okx: SignedClient, ctl: SimControl
) -> None:
    ctl.fault("any", "http_500", times=1)
    ctl.push_fault("drop", times=1)
    response = okx.send("POST", "/api/v5/trade/order", body=limit_order(px="90"))
    assert response.status_code == 500  # the REST fault, not the push fault, was used
    with pytest.raises(SimControlError, match="mode of orders_push"):
        ctl.fault("orders_push", "http_500")


def test_frozen_market_keeps_its_quotes_while_the_clock_runs(
    okx: SignedClient, ctl: SimControl
) -> None:
    def last() -> str:
        return str(okx.get("/api/v5/market/ticker", instId="DOGE-USDT")["data"][0]["last"])

    ctl.freeze_market()
    before = last()
    ctl.advance(600)
    assert last() == before
    ctl.freeze_market(False)
    ctl.advance(600)
    assert last() != before

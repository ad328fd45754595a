"""Injected faults: HTTP errors, rate limits, latency, and answers that never come."""

from __future__ import annotations

import time

import httpx
import pytest
from sim_socket_helpers import SignedClient, limit_order

from simulator.control import SimControl


@pytest.mark.parametrize(
    ("mode", "status", "code"),
    [("http_500", 500, "50001"), ("rate_limit_429", 429, "50011"), ("code_50011", 200, "50011")],
)
def test_error_modes_refuse_without_placing(
    okx: SignedClient, ctl: SimControl, mode: str, status: int, code: str
) -> None:
    ctl.fault("place_order", mode, times=1)
    response = okx.send("POST", "/api/v5/trade/order", body=limit_order(px="90", clOrdId="f1"))
    assert (response.status_code, response.json()["code"]) == (status, code)
    assert ctl.placements("f1") == 0
    ok = okx.post("/api/v5/trade/order", limit_order(px="90", clOrdId="f1"))
    assert ok["code"] == "0"  # the fault was used up


def test_faults_only_hit_their_operation(okx: SignedClient, ctl: SimControl) -> None:
    ctl.fault("get_order", "http_500", times=2)
    assert okx.post("/api/v5/trade/order", limit_order(px="90"))["code"] == "0"
    query = {"instId": "BTC-USDT", "ordId": "1"}
    assert okx.send("GET", "/api/v5/trade/order", query).status_code == 500
    ctl.fault("any", "code_50011")
    assert okx.get("/api/v5/trade/orders-pending")["code"] == "50011"


def test_latency(okx: SignedClient, ctl: SimControl) -> None:
    ctl.fault("orders_pending", "latency", seconds=0.5)
    started = time.monotonic()
    assert okx.get("/api/v5/trade/orders-pending")["code"] == "0"
    assert time.monotonic() - started >= 0.5


def test_accept_then_timeout_places_the_order(okx: SignedClient, ctl: SimControl) -> None:
    ctl.price("BTC-USDT", "100")
    ctl.fault("place_order", "accept_then_timeout", seconds=5)
    body = limit_order(px="90", clOrdId="att1")
    with pytest.raises(httpx.ReadTimeout):
        okx.send("POST", "/api/v5/trade/order", body=body, timeout=0.5)
    assert ctl.placements("att1") == 1
    found = okx.get("/api/v5/trade/order", instId="BTC-USDT", clOrdId="att1")
    assert found["data"][0]["state"] == "live"


def test_timeout_does_not_place(okx: SignedClient, ctl: SimControl) -> None:
    ctl.fault("place_order", "timeout", seconds=5)
    with pytest.raises(httpx.ReadTimeout):
        okx.send("POST", "/api/v5/trade/order", body=limit_order(clOrdId="to1"), timeout=0.5)
    assert ctl.placements("to1") == 0
    assert okx.get("/api/v5/trade/order", instId="BTC-USDT", clOrdId="to1")["code"] == "51603"


def test_bad_fault_request_is_refused(ctl: SimControl) -> None:
    with pytest.raises(Exception, match="mode must be one of"):
        ctl.fault("place_order", "explode")

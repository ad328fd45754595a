"""Websockets: subscribe events, errors, ping/pong, login, orders pushes, closes and notices."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import websocket
from sim_socket_helpers import SignedClient, WsClient, limit_order, login_args

from simulator import SimulatorHandle, start_simulator
from simulator.control import SimControl


@pytest.fixture
def public(sim: SimulatorHandle) -> Iterator[WsClient]:
    client = WsClient(f"{sim.ws_url}/public")
    yield client
    client.close()


@pytest.fixture
def private(sim: SimulatorHandle) -> Iterator[WsClient]:
    client = WsClient(f"{sim.ws_url}/private")
    yield client
    client.close()


def event(name: str) -> Any:
    return lambda m: m.get("event") == name


def test_subscribe_answers_one_event_per_arg(public: WsClient) -> None:
    args = [
        {"channel": "tickers", "instId": "BTC-USDT"},
        {"channel": "trades", "instId": "ETH-USDT"},
    ]
    public.send({"id": "1512", "op": "subscribe", "args": args})
    first, second = public.wait_for(event("subscribe")), public.wait_for(event("subscribe"))
    assert [first["arg"], second["arg"]] == args
    assert first["id"] == "1512" and len(first["connId"]) == 8
    public.send({"op": "unsubscribe", "args": args[:1]})
    assert public.wait_for(event("unsubscribe"))["arg"] == args[0]


def test_ticker_pushes_follow_the_price(public: WsClient, ctl: SimControl) -> None:
    public.send({"op": "subscribe", "args": [{"channel": "tickers", "instId": "ETH-USDT"}]})
    public.wait_for(event("subscribe"))
    ctl.price("ETH-USDT", "2500.5")
    push = public.wait_for(lambda m: "data" in m and m["data"][0]["last"] == "2500.5")
    assert push["arg"] == {"channel": "tickers", "instId": "ETH-USDT"}
    assert set(push["data"][0]) >= {"askPx", "bidPx", "open24h", "sodUtc0", "sodUtc8", "ts"}


@pytest.mark.parametrize(
    ("request_text", "code"),
    [
        ('{"op": "subscribe", "argss": []}', "60012"),
        ("not json", "60012"),
        ('{"op": "subscribe", "args": [{"channel": "tickerz", "instId": "BTC-USDT"}]}', "60018"),
        ('{"op": "subscribe", "args": [{"channel": "tickers", "instId": "NOPE-USDT"}]}', "60018"),
        ('{"op": "subscribe", "args": [{"channel": "candle1H", "instId": "BTC-USDT"}]}', "64001"),
    ],
)
def test_bad_requests_get_error_events(public: WsClient, request_text: str, code: str) -> None:
    public.send(request_text)
    error = public.wait_for(event("error"))
    assert error["code"] == code and error["connId"]


def test_text_ping_gets_text_pong(public: WsClient) -> None:
    public.send("ping")
    assert public.recv_text() == "pong"


def test_candles_on_business(sim: SimulatorHandle, ctl: SimControl) -> None:
    client = WsClient(f"{sim.ws_url}/business")
    try:
        client.send({"op": "subscribe", "args": [{"channel": "candle1H", "instId": "BTC-USDT"}]})
        client.wait_for(event("subscribe"))
        ctl.price("BTC-USDT", "64000")
        push = client.wait_for(
            lambda m: m.get("arg", {}).get("channel") == "candle1H" and "data" in m
        )
        row = push["data"][0]
        assert len(row) == 9 and row[4] == "64000" and row[8] == "0"
        client.send({"op": "subscribe", "args": [{"channel": "tickers", "instId": "BTC-USDT"}]})
        assert client.wait_for(event("error"))["code"] == "60018"
    finally:
        client.close()


def test_orders_need_login(private: WsClient) -> None:
    private.send({"op": "subscribe", "args": [{"channel": "orders", "instType": "SPOT"}]})
    assert private.wait_for(event("error"))["code"] == "60011"
    private.send(login_args(passphrase="wrong"))
    assert private.wait_for(event("error"))["code"] == "60024"
    private.send(login_args(ts=str(int(time.time()) - 60)))
    assert private.wait_for(event("error"))["code"] == "60006"


def test_orders_channel_pushes_every_change(
    private: WsClient, okx: SignedClient, ctl: SimControl
) -> None:
    private.send(login_args())
    login = private.wait_for(event("login"))
    assert (login["code"], login["msg"]) == ("0", "")
    private.send({"op": "subscribe", "args": [{"channel": "orders", "instType": "SPOT"}]})
    private.wait_for(event("subscribe"))
    ctl.price("BTC-USDT", "100", askSz="0.003", bidSz="0.003")
    ord_id = okx.post("/api/v5/trade/order", limit_order(px="99", sz="0.005", clOrdId="ws1"))[
        "data"
    ][0]["ordId"]
    pushes = lambda: private.wait_for(lambda m: m.get("arg", {}).get("channel") == "orders")  # noqa: E731
    live = pushes()
    assert live["arg"]["instType"] == "SPOT" and live["arg"]["uid"]
    assert live["data"][0]["state"] == "live" and live["data"][0]["ordId"] == ord_id
    ctl.price("BTC-USDT", "99", askSz="0.003", bidSz="0.003")
    part = pushes()["data"][0]
    assert (part["state"], part["fillSz"], part["accFillSz"]) == (
        "partially_filled",
        "0.003",
        "0.003",
    )
    assert part["fillPx"] == "99" and part["tradeId"] and part["execType"] == "M"
    assert Decimal(part["fillFee"]) == Decimal("-0.000003") and part["fillFeeCcy"] == "BTC"
    ctl.price("BTC-USDT", "99", askSz="0.003", bidSz="0.003")
    done = pushes()["data"][0]
    assert (done["state"], done["fillSz"], done["accFillSz"]) == ("filled", "0.002", "0.005")
    assert done["tradeId"] != part["tradeId"]
    assert done["fee"] == "-0.000005"


def test_notice_stop_pong_and_idle_close(sim: SimulatorHandle, ctl: SimControl) -> None:
    client = WsClient(f"{sim.ws_url}/public")
    try:
        client.send("ping")
        assert client.recv_text() == "pong"
        assert ctl.ws("notice_64008", "public") >= 1
        notice = client.wait_for(event("notice"))
        assert notice["code"] == "64008"
        ctl.ws("stop_pong", "public")
        client.send("ping")
        with pytest.raises(websocket.WebSocketTimeoutException):
            client.recv_text(timeout=0.5)
        ctl.ws("idle_close_4004", "public")
        assert client.close_code() == 4004
    finally:
        client.close()


def test_drop_cuts_the_connection(sim: SimulatorHandle, ctl: SimControl) -> None:
    client = WsClient(f"{sim.ws_url}/private")
    try:
        client.send("ping")
        assert client.recv_text() == "pong"
        ctl.ws("drop", "private")
        with pytest.raises(websocket.WebSocketConnectionClosedException):
            client.recv_text(timeout=2)
    finally:
        client.close()


@pytest.fixture(scope="module")
def fast_sim() -> Iterator[SimulatorHandle]:
    handle = start_simulator(
        port=0, instruments="BTC-USDT", warmup_hours=0, step_seconds=0.02, ws_idle_timeout=1.0
    )
    yield handle
    handle.stop()


def test_idle_connection_is_closed_with_4004(fast_sim: SimulatorHandle) -> None:
    client = WsClient(f"{fast_sim.ws_url}/public")
    try:
        started = time.monotonic()
        assert client.close_code(timeout=5) == 4004
        assert 0.9 <= time.monotonic() - started <= 3
    finally:
        client.close()


def test_tickers_at_most_every_100_ms(fast_sim: SimulatorHandle) -> None:
    client = WsClient(f"{fast_sim.ws_url}/public")
    try:
        client.send({"op": "subscribe", "args": [{"channel": "tickers", "instId": "BTC-USDT"}]})
        stamps = []
        deadline = time.monotonic() + 0.8
        while time.monotonic() < deadline:
            msg = client.wait_for(lambda m: "data" in m)
            stamps.append(int(msg["data"][0]["ts"]))
        assert len(stamps) >= 3
        assert all(b - a >= 100 for a, b in itertools.pairwise(stamps))
    finally:
        client.close()


def test_advancing_the_clock_pushes_every_step(public: WsClient, ctl: SimControl) -> None:
    public.send({"op": "subscribe", "args": [{"channel": "tickers", "instId": "DOGE-USDT"}]})
    public.wait_for(event("subscribe"))
    start = int(ctl.status()["now"])
    end = int(ctl.advance(600)["now"])
    stamps: list[int] = []
    while not stamps or stamps[-1] < end - 1000:
        stamps.append(int(public.wait_for(lambda m: "data" in m)["data"][0]["ts"]))
    assert len(stamps) >= 599
    assert stamps == sorted(stamps) and stamps[0] > start - 1000


def test_a_ticker_is_stamped_when_it_is_sent_not_when_it_is_queued(
    sim: SimulatorHandle, ctl: SimControl
) -> None:
    """Tick to order starts when the simulator sends the ticker. A subscriber that reads
    nothing backs the pushes up in the simulator's outbox: those still queued when the
    subscriber starts reading are stamped after that moment, though every one of them was
    queued (and, stamped on queueing, would have been stamped) before it."""
    import socket

    slow = websocket.create_connection(
        f"{sim.ws_url}/public", timeout=5, sockopt=((socket.SOL_SOCKET, socket.SO_RCVBUF, 4096),)
    )
    try:
        slow.send('{"op": "subscribe", "args": [{"channel": "tickers", "instId": "ETH-USDT"}]}')
        assert "subscribe" in slow.recv()
        moves = [{"instId": "ETH-USDT", "last": f"{2500 + i / 100:.2f}"} for i in range(15000)]
        answered = ctl.prices(moves)  # queued at once; the writer is stuck on the socket
        reading_from_us = time.time_ns() // 1000
        last = moves[-1]["last"]
        while json.loads(slow.recv())["data"][0]["last"] != last:
            pass
    finally:
        slow.close()
    stamps = ctl.timeline()["tickers"]["ETH-USDT"]
    first = answered[0]
    assert first is not None and first < reading_from_us  # nothing held the first one up
    assert None in answered  # the call gave up waiting for the backed-up ones
    assert stamps == sorted(stamps) and len(stamps) == 1000  # the timeline's bound
    assert stamps[-1] > reading_from_us


def test_timeline_stamps_ticker_pushes_and_order_requests_on_the_simulators_clock(
    public: WsClient, ctl: SimControl, sim: SimulatorHandle
) -> None:
    public.send({"op": "subscribe", "args": [{"channel": "tickers", "instId": "ETH-USDT"}]})
    public.wait_for(event("subscribe"))
    assert ctl.price_with_time("BTC-USDT", "60000") is None  # nobody subscribes to it
    before_us = time.time_ns() // 1000
    sent_us = ctl.price_with_time("ETH-USDT", "2500.5")
    [burst_us] = ctl.prices([{"instId": "ETH-USDT", "last": "2500.6"}])
    public.wait_for(lambda m: "data" in m and m["data"][0]["last"] == "2500.6")
    okx = SignedClient(sim.rest_url)
    try:
        order = limit_order("ETH-USDT", px="2000", sz="0.01", clOrdId="lftimeline1")
        assert okx.post("/api/v5/trade/order", order)["code"] == "0"
        okx.get("/api/v5/public/instruments", instType="SPOT")
    finally:
        okx.close()

    timeline = ctl.timeline()
    assert sent_us is not None and burst_us is not None
    assert before_us <= sent_us <= burst_us
    assert timeline["tickers"]["ETH-USDT"][-2:] == [sent_us, burst_us]
    assert "BTC-USDT" not in timeline["tickers"]
    received = timeline["orders"]["lftimeline1"]
    assert received["instId"] == "ETH-USDT" and received["us"] > burst_us
    assert timeline["requests"]["/api/v5/public/instruments"] == 1
    ctl.reset()
    assert ctl.timeline() == {"tickers": {}, "orders": {}, "requests": {}}

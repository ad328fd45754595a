"""``OkxExchange`` and the orders stream against the project's local OKX simulator."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from pydantic import SecretStr

from worker.app import APPLY_ORDER_UPDATE, SYNC_ACTIVE_ORDERS
from worker.domain.errors import (
    CancelRejected,
    DuplicateClientOrderId,
    ExchangeUnavailable,
    InvalidInstrument,
    OrderNotFound,
    RateLimited,
    StateUnknown,
)
from worker.domain.orders import OrderState
from worker.exchange.okx.adapter import OkxExchange
from worker.exchange.okx.private_stream import OrdersStream, Timing
from worker.exchange.okx.ratelimit import OkxRequestPacer
from worker.exchange.okx.rest import Credentials, OkxRestClient
from worker.exchange.port import OrderRequest
from worker.settings import SIM_API_KEY, SIM_API_PASSPHRASE, SIM_API_SECRET

simulator = pytest.importorskip("simulator")
SimControl = pytest.importorskip("simulator.control").SimControl

CREDENTIALS = Credentials(
    SecretStr(SIM_API_KEY), SecretStr(SIM_API_SECRET), SecretStr(SIM_API_PASSPHRASE)
)


@pytest.fixture(scope="module")
def sim() -> Iterator[Any]:
    handle = simulator.start_simulator(
        port=0, paused=True, instruments="BTC-USDT,ETH-USDT", warmup_hours=2
    )
    yield handle
    handle.stop()


@pytest.fixture
def ctl(sim: Any) -> Iterator[Any]:
    control = SimControl(sim.rest_url)
    control.reset()
    yield control
    control.reset()
    control.close()


@pytest.fixture
def ex(sim: Any, ctl: Any) -> Iterator[OkxExchange]:
    exchange = OkxExchange(
        OkxRestClient(sim.rest_url, CREDENTIALS, timeout=0.5, pacer=OkxRequestPacer())
    )
    yield exchange
    exchange.close()


def buy(ex: OkxExchange, suffix: str) -> OrderRequest:
    """A buy 10 % below the market, sized to about 10 USDT (rests on the book)."""
    rules = ex.instrument("BTC-USDT")
    px = rules.price_down(ex.ticker("BTC-USDT").last * Decimal("0.9"))
    return OrderRequest("BTC-USDT", "buy", px, rules.size_down(Decimal(10) / px), suffix)


def cl(n: int) -> str:
    return f"lfhlb{n:024x}"


def test_order_lifecycle(ex: OkxExchange, ctl: Any) -> None:
    req = buy(ex, cl(1))
    placement = ex.place_order(req)
    snap = ex.get_order("BTC-USDT", cl_ord_id=req.cl_ord_id)
    assert (snap.ord_id, snap.state, snap.px, snap.sz) == (
        placement.ord_id,
        OrderState.LIVE,
        req.px,
        req.sz,
    )
    assert snap.tag == "limitflow"
    assert [s.ord_id for s in ex.list_pending("BTC-USDT")] == [placement.ord_id]
    with pytest.raises(DuplicateClientOrderId):
        ex.place_order(req)
    ex.cancel_order("BTC-USDT", ord_id=placement.ord_id)
    assert ex.get_order("BTC-USDT", ord_id=placement.ord_id).state is OrderState.CANCELED
    with pytest.raises(CancelRejected):
        ex.cancel_order("BTC-USDT", ord_id=placement.ord_id)
    assert list(ex.list_pending()) == []


def test_fill_reports_fee_as_charged(ex: OkxExchange, ctl: Any) -> None:
    req = buy(ex, cl(2))
    placement = ex.place_order(req)
    ctl.fill(ord_id=placement.ord_id)
    snap = ex.get_order("BTC-USDT", ord_id=placement.ord_id)
    assert snap.state is OrderState.FILLED and snap.acc_fill_sz == req.sz
    assert snap.fee > 0 and snap.fee_ccy == "BTC"  # spot buys pay the fee in base currency
    assert snap.fill is not None and snap.fill.sz == req.sz
    assert list(ex.list_pending()) == []  # filled: no longer pending


def test_unknown_order_and_instrument(ex: OkxExchange) -> None:
    with pytest.raises(OrderNotFound):
        ex.get_order("BTC-USDT", cl_ord_id=cl(99))
    with pytest.raises(InvalidInstrument):
        ex.instrument("NOPE-USDT")


def test_faults_map_to_retryable_errors(ex: OkxExchange, ctl: Any) -> None:
    req = buy(ex, cl(3))
    ctl.fault("place_order", "http_500")
    with pytest.raises(ExchangeUnavailable):
        ex.place_order(req)
    ctl.fault("place_order", "rate_limit_429")
    with pytest.raises(RateLimited):
        ex.place_order(req)
    ctl.fault("place_order", "accept_then_timeout", seconds=1.0)
    with pytest.raises(StateUnknown):
        ex.place_order(req)
    # The ambiguous placement did land: look it up instead of sending it again.
    assert ex.get_order("BTC-USDT", cl_ord_id=req.cl_ord_id).state is OrderState.LIVE


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, list[object]]] = []
        self.lock = threading.Lock()

    def __call__(self, name: str, args: list[object]) -> None:
        with self.lock:
            self.calls.append((name, args))

    def named(self, name: str) -> list[list[object]]:
        with self.lock:
            return [a for n, a in self.calls if n == name]


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_orders_stream_against_the_simulator(sim: Any, ex: OkxExchange, ctl: Any) -> None:
    recorder = Recorder()
    timing = Timing(poll=0.05, backoff_base=0.05, backoff_max=0.2, ping_after=5, pong_timeout=5)
    stream = OrdersStream(f"{sim.ws_url}/private", CREDENTIALS, recorder, timing=timing)
    thread = threading.Thread(target=stream.run, daemon=True)
    thread.start()
    try:
        assert stream.ready.wait(5)
        placement = ex.place_order(buy(ex, cl(4)))
        ctl.fill(ord_id=placement.ord_id)
        wait_for(
            lambda: any(
                isinstance(m := a[0], dict) and m["state"] == "filled"
                for a in recorder.named(APPLY_ORDER_UPDATE)
            )
        )
        filled = [
            a[0]
            for a in recorder.named(APPLY_ORDER_UPDATE)
            if isinstance(a[0], dict) and a[0]["state"] == "filled"
        ]
        assert len(filled) == 1 and isinstance(filled[0], dict)
        assert filled[0]["ord_id"] == placement.ord_id and "fill" in filled[0]

        assert len(recorder.named(SYNC_ACTIVE_ORDERS)) == 1  # asked on the first connection
        ctl.ws("drop", "private")
        wait_for(lambda: len(recorder.named(SYNC_ACTIVE_ORDERS)) == 2)
        ctl.ws("notice_64008", "private")
        wait_for(lambda: len(recorder.named(SYNC_ACTIVE_ORDERS)) == 3)
    finally:
        stream.stop()
        thread.join(5)
    assert not thread.is_alive()

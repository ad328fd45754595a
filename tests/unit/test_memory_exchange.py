"""The in-memory venue: OKX semantics locally, and the same through a served proxy."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from decimal import Decimal

import pytest

from worker.domain import errors
from worker.domain.errors import (
    DuplicateClientOrderId,
    ExchangeError,
    ExchangeUnavailable,
    InsufficientFunds,
    InvalidInstrument,
    OrderNotFound,
    OrderRejected,
    RateLimited,
    Retryable,
    StateUnknown,
)
from worker.domain.money import InstrumentRules
from worker.domain.orders import OrderState
from worker.exchange.factory import build_exchange
from worker.exchange.memory import InMemoryExchange, connect_memory_exchange, serve_memory_exchange
from worker.exchange.memory_server import MemoryExchangeClient, MemoryExchangeServer
from worker.exchange.port import Exchange, OrderRequest
from worker.settings import load_settings

D = Decimal
BTC = InstrumentRules("BTC-USDT", D("0.1"), D("0.0001"), D("0.001"), "BTC", "USDT")
ETH = InstrumentRules("ETH-USDT", D("0.01"), D("0.001"), D("0.01"), "ETH", "USDT")


def req(
    cl: str = "c1", side: str = "buy", px: str = "99", sz: str = "1", inst: str = "BTC-USDT"
) -> OrderRequest:
    return OrderRequest(inst, side, D(px), D(sz), cl)  # type: ignore[arg-type]


@pytest.fixture
def venue() -> InMemoryExchange:
    x = InMemoryExchange()
    x.add_instrument(BTC)
    x.add_instrument(ETH)
    x.set_price("BTC-USDT", D("100"))
    return x


@pytest.fixture
def served(venue: InMemoryExchange) -> Iterator[MemoryExchangeServer]:
    with serve_memory_exchange(venue) as server:
        yield server


def code_of(fn: Callable[[], object]) -> tuple[str, str | None]:
    try:
        fn()
    except ExchangeError as exc:
        return type(exc).__name__, exc.code
    return "ok", None


# -- instruments and placement rules -------------------------------------------------------


def test_both_the_venue_and_the_client_satisfy_the_port() -> None:
    assert isinstance(InMemoryExchange(), Exchange)
    assert isinstance(connect_memory_exchange("memory://127.0.0.1:1"), Exchange)
    settings = load_settings({"LIMITFLOW_EXCHANGE": "memory://127.0.0.1:5"})
    client = build_exchange(settings)
    assert isinstance(client, MemoryExchangeClient) and client.address == ("127.0.0.1", 5)
    with pytest.raises(ExchangeUnavailable):  # connects lazily: nothing listens there
        client.ticker("BTC-USDT")


def test_instrument_known_unknown_and_suspended(venue: InMemoryExchange) -> None:
    assert venue.instrument("BTC-USDT") == BTC
    with pytest.raises(InvalidInstrument):
        venue.instrument("XYZ-USDT")
    venue.add_instrument(InstrumentRules("OLD-USDT", D("1"), D("1"), D("1"), "OLD", "USDT", False))
    with pytest.raises(InvalidInstrument):
        venue.instrument("OLD-USDT")
    with pytest.raises(InvalidInstrument):
        venue.place_order(req(inst="OLD-USDT", px="1"))


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        (req(px="99.05"), "51000"),  # not a multiple of tickSz
        (req(px="0"), "51000"),
        (req(px="-1"), "51000"),
        (req(sz="1.00005"), "51121"),  # not a multiple of lotSz
        (req(sz="0.0009"), "51020"),  # below minSz
        (req(cl="has-dash"), "51000"),
        (req(cl="x" * 33), "51000"),
    ],
)
def test_placement_is_validated_like_okx(
    venue: InMemoryExchange, request_: OrderRequest, code: str
) -> None:
    with pytest.raises(OrderRejected) as info:
        venue.place_order(request_)
    assert info.value.code == code
    assert venue.orders() == []
    with pytest.raises(InvalidInstrument):
        venue.place_order(req(inst="NOPE-USDT"))


def test_ord_ids_are_increasing_numbers(venue: InMemoryExchange) -> None:
    ids = [venue.place_order(req(cl=f"c{i}")).ord_id for i in range(5)]
    assert all(i.isdigit() for i in ids)
    assert [int(i) for i in ids] == sorted(int(i) for i in ids) and len(set(ids)) == 5


def test_cl_ord_id_is_unique_among_pending_orders_only(venue: InMemoryExchange) -> None:
    first = venue.place_order(req(cl="dup1"))
    with pytest.raises(DuplicateClientOrderId) as info:
        venue.place_order(req(cl="dup1", px="98"))
    assert info.value.code == "51016"
    venue.cancel_order("BTC-USDT", cl_ord_id="dup1")
    second = venue.place_order(req(cl="dup1", px="97"))  # OKX accepts it again: a second order
    assert second.ord_id != first.ord_id
    assert venue.get_order("BTC-USDT", cl_ord_id="dup1").ord_id == second.ord_id
    assert venue.get_order("BTC-USDT", ord_id=first.ord_id).state is OrderState.CANCELED
    assert venue.placements_for("dup1") == 2 and venue.placements_for("other") == 0


def test_funds_are_unlimited_until_a_balance_is_set(venue: InMemoryExchange) -> None:
    venue.place_order(req(cl="big", sz="1000"))
    venue.set_balance("USDT", D("200"))
    venue.place_order(req(cl="a", px="99", sz="1"))  # 99 of 200 frozen
    with pytest.raises(InsufficientFunds) as info:
        venue.place_order(req(cl="b", px="99", sz="1.1"))
    assert info.value.code == "51131"
    assert venue.balance("USDT") == D("101")
    venue.cancel_order("BTC-USDT", cl_ord_id="a")
    assert venue.balance("USDT") == D("200")


def test_fills_move_balances_net_of_fees(venue: InMemoryExchange) -> None:
    venue.set_balance("USDT", D("1000"))
    venue.set_balance("BTC", D("0"))
    venue.place_order(req(cl="b", px="101", sz="2"))  # crosses: fills at the ask, 100
    assert venue.balance("USDT") == D("800")
    assert venue.balance("BTC") == D("1.998")
    with pytest.raises(InsufficientFunds):
        venue.place_order(req(cl="s", side="sell", px="110", sz="2"))
    venue.place_order(req(cl="s", side="sell", px="110", sz="1.998"))
    venue.set_price("BTC-USDT", D("110"))
    assert venue.balance("BTC") == 0
    assert venue.balance("USDT") == D("800") + D("219.78") - D("0.21978")


# -- matching and fees ---------------------------------------------------------------------


def test_crossing_order_fills_at_once_at_the_touch(venue: InMemoryExchange) -> None:
    venue.set_price("BTC-USDT", D("100"), bid=D("99.9"), ask=D("100.1"))
    buy = venue.place_order(req(cl="b", px="105", sz="2"))
    snap = venue.get_order("BTC-USDT", ord_id=buy.ord_id)
    assert snap.state is OrderState.FILLED and snap.avg_px == D("100.1")
    assert (snap.fee, snap.fee_ccy) == (D("0.002"), "BTC")  # a buy pays its fee in base
    sell = venue.place_order(req(cl="s", side="sell", px="90", sz="1"))
    snap = venue.get_order("BTC-USDT", ord_id=sell.ord_id)
    assert snap.state is OrderState.FILLED and snap.avg_px == D("99.9")
    assert (snap.fee, snap.fee_ccy) == (D("0.0999"), "USDT")  # a sell pays in quote
    assert snap.fill is not None and snap.fill.sz == D("1") and snap.fill.px == D("99.9")


def test_resting_orders_fill_at_their_own_price_when_the_touch_crosses(
    venue: InMemoryExchange,
) -> None:
    buy = venue.place_order(req(cl="b", px="95"))
    sell = venue.place_order(req(cl="s", side="sell", px="105"))
    venue.set_price("BTC-USDT", D("96"), bid=D("95.9"), ask=D("96"))
    assert venue.get_order("BTC-USDT", ord_id=buy.ord_id).state is OrderState.LIVE
    venue.set_price("BTC-USDT", D("94"))
    snap = venue.get_order("BTC-USDT", ord_id=buy.ord_id)
    assert snap.state is OrderState.FILLED and snap.avg_px == D("95")  # maker: its own price
    venue.set_price("BTC-USDT", D("104.9"), bid=D("104.9"), ask=D("106"))
    assert venue.get_order("BTC-USDT", ord_id=sell.ord_id).state is OrderState.LIVE
    venue.set_price("BTC-USDT", D("106"), bid=D("106"), ask=D("106.1"))
    snap = venue.get_order("BTC-USDT", ord_id=sell.ord_id)
    assert snap.state is OrderState.FILLED and snap.avg_px == D("105")
    assert snap.fee == D("0.105")


def test_liquidity_caps_each_price_event_and_avg_px_is_exact(venue: InMemoryExchange) -> None:
    venue.set_liquidity("BTC-USDT", D("1"))
    venue.set_price("BTC-USDT", D("99"))
    oid = venue.place_order(req(cl="b", px="100", sz="3")).ord_id  # 1 at 99 on placement
    snap = venue.get_order("BTC-USDT", ord_id=oid)
    assert (snap.state, snap.acc_fill_sz, snap.avg_px) == (OrderState.PARTIALLY_FILLED, D(1), D(99))
    venue.set_price("BTC-USDT", D("100"))  # 1 more at 100
    venue.set_price("BTC-USDT", D("100"))  # the last one at 100
    snap = venue.get_order("BTC-USDT", ord_id=oid)
    assert snap.state is OrderState.FILLED and snap.acc_fill_sz == 3
    assert snap.avg_px == D(299) / D(3)
    assert snap.fee == D("0.003")
    venue.set_liquidity("BTC-USDT", None)
    oid = venue.place_order(req(cl="c", px="100", sz="3")).ord_id
    assert venue.get_order("BTC-USDT", ord_id=oid).state is OrderState.FILLED


def test_force_fill_by_either_id_and_unique_trade_ids(venue: InMemoryExchange) -> None:
    venue.set_fee_rate(D("0.002"))
    oid = venue.place_order(req(cl="b", px="90", sz="3")).ord_id
    first = venue.fill("b", D("1"))
    second = venue.fill(oid, D("2"))
    assert first.state is OrderState.PARTIALLY_FILLED and second.state is OrderState.FILLED
    assert first.fill is not None and second.fill is not None
    assert first.fill.trade_id != second.fill.trade_id and second.fill.trade_id.isdigit()
    assert second.fee == D("0.006") and second.fill.fee == D("0.004")
    with pytest.raises(ValueError):
        venue.fill(oid, D("1"))  # nothing left to fill


# -- cancel, get, list, ticker, forget -------------------------------------------------------


def test_cancel_semantics(venue: InMemoryExchange) -> None:
    a = venue.place_order(req(cl="a", px="90")).ord_id
    venue.cancel_order("BTC-USDT", ord_id=a)
    assert venue.get_order("BTC-USDT", ord_id=a).state is OrderState.CANCELED
    assert code_of(lambda: venue.cancel_order("BTC-USDT", ord_id=a)) == ("CancelRejected", "51400")
    b = venue.place_order(req(cl="b", px="90")).ord_id
    venue.fill(b, D("1"))
    assert code_of(lambda: venue.cancel_order("BTC-USDT", cl_ord_id="b")) == (
        "CancelRejected",
        "51400",
    )
    assert code_of(lambda: venue.cancel_order("BTC-USDT", ord_id="1")) == ("OrderNotFound", "51603")
    c = venue.place_order(req(cl="c", px="90")).ord_id
    venue.cancel_order("BTC-USDT", ord_id=c, cl_ord_id="b")  # ordId wins
    assert venue.get_order("BTC-USDT", ord_id=c).state is OrderState.CANCELED
    partial = venue.place_order(req(cl="p", px="90", sz="2")).ord_id
    venue.fill(partial, D("0.5"))
    venue.cancel_order("BTC-USDT", ord_id=partial)
    snap = venue.get_order("BTC-USDT", ord_id=partial)
    assert snap.state is OrderState.CANCELED and snap.acc_fill_sz == D("0.5")


def test_get_order_not_found_and_updated_ms_increases(venue: InMemoryExchange) -> None:
    with pytest.raises(OrderNotFound) as info:
        venue.get_order("BTC-USDT", cl_ord_id="never")
    assert info.value.code == "51603"
    oid = venue.place_order(req(cl="a", px="90", sz="2")).ord_id
    with pytest.raises(OrderNotFound):
        venue.get_order("ETH-USDT", ord_id=oid)  # right id, wrong instrument
    stamps = [venue.get_order("BTC-USDT", ord_id=oid).updated_ms]
    venue.fill(oid, D("1"))
    stamps.append(venue.get_order("BTC-USDT", ord_id=oid).updated_ms)
    venue.cancel_order("BTC-USDT", ord_id=oid)
    stamps.append(venue.get_order("BTC-USDT", ord_id=oid).updated_ms)
    assert stamps == sorted(set(stamps))


def test_list_pending_pages_by_100_newest_first(venue: InMemoryExchange) -> None:
    ids = [venue.place_order(req(cl=f"b{i}", px="90")).ord_id for i in range(250)]
    eth = venue.place_order(req(cl="e", px="10", inst="ETH-USDT")).ord_id
    venue.cancel_order("BTC-USDT", ord_id=ids[0])
    venue.fill(ids[1], D("0.5"))
    before = venue.calls()["list_pending"]
    listed = [s.ord_id for s in venue.list_pending("BTC-USDT")]
    assert listed == list(reversed(ids[1:]))
    assert venue.calls()["list_pending"] - before == 3  # one call per page of 100
    assert {s.ord_id for s in venue.list_pending()} == set(ids[1:]) | {eth}


def test_ticker_from_the_current_price(venue: InMemoryExchange) -> None:
    venue.set_price("BTC-USDT", D("100"), bid=D("99.9"), ask=D("100.2"))
    t = venue.ticker("BTC-USDT")
    assert (t.inst_id, t.last, t.bid_px, t.ask_px) == ("BTC-USDT", D(100), D("99.9"), D("100.2"))
    with pytest.raises(InvalidInstrument):
        venue.ticker("ETH-USDT")  # listed, no price yet
    with pytest.raises(InvalidInstrument):
        venue.ticker("XYZ-USDT")


def test_forget_drops_terminal_orders_only(venue: InMemoryExchange) -> None:
    oid = venue.place_order(req(cl="a", px="90")).ord_id
    with pytest.raises(ValueError):
        venue.forget(oid)
    venue.cancel_order("BTC-USDT", ord_id=oid)
    venue.forget(oid)
    with pytest.raises(OrderNotFound):
        venue.get_order("BTC-USDT", ord_id=oid)
    with pytest.raises(OrderNotFound):
        venue.get_order("BTC-USDT", cl_ord_id="a")
    assert venue.orders() == [] and venue.placements_for("a") == 1


def test_update_stream_reports_every_change_and_is_bounded(venue: InMemoryExchange) -> None:
    oid = venue.place_order(req(cl="a", px="90", sz="2")).ord_id
    venue.fill(oid, D("1"))
    venue.fill(oid, D("1"))
    other = venue.place_order(req(cl="b", px="90")).ord_id
    venue.cancel_order("BTC-USDT", ord_id=other)
    updates = venue.drain_updates()
    assert [(u.cl_ord_id, u.state) for u in updates] == [
        ("a", OrderState.LIVE),
        ("a", OrderState.PARTIALLY_FILLED),
        ("a", OrderState.FILLED),
        ("b", OrderState.LIVE),
        ("b", OrderState.CANCELED),
    ]
    assert [u.fill is not None for u in updates] == [False, True, True, False, False]
    assert updates[2].acc_fill_sz == 2 and updates[2].fill is not None
    assert updates[2].fill.sz == 1
    assert venue.drain_updates() == []
    small = InMemoryExchange(updates_maxlen=3)
    small.add_instrument(BTC)
    for i in range(5):
        small.place_order(req(cl=f"c{i}"))
    assert [u.cl_ord_id for u in small.drain_updates()] == ["c2", "c3", "c4"]


def test_orders_lists_terminal_ones_too(venue: InMemoryExchange) -> None:
    venue.place_order(req(cl="a", px="90"))
    venue.place_order(req(cl="b", px="101"))  # fills at once
    venue.cancel_order("BTC-USDT", cl_ord_id="a")
    assert [(o.cl_ord_id, o.state) for o in venue.orders()] == [
        ("a", OrderState.CANCELED),
        ("b", OrderState.FILLED),
    ]


# -- fault injection -----------------------------------------------------------------------

FAULT_CASES = [
    ("timeout", StateUnknown, None),
    ("unavailable", ExchangeUnavailable, "50001"),
    ("rate_limited", RateLimited, "50011"),
    ("not_found", OrderNotFound, "51603"),
    ("reject", OrderRejected, "51000"),
]


@pytest.mark.parametrize(("mode", "cls", "code"), FAULT_CASES)
@pytest.mark.parametrize("op", ["place_order", "get_order", "cancel_order", "ticker"])
def test_injected_faults_raise_once_and_do_nothing(
    venue: InMemoryExchange, op: str, mode: str, cls: type[ExchangeError], code: str | None
) -> None:
    oid = venue.place_order(req(cl="a", px="90")).ord_id
    calls: dict[str, Callable[[], object]] = {
        "place_order": lambda: venue.place_order(req(cl="z")),
        "get_order": lambda: venue.get_order("BTC-USDT", ord_id=oid),
        "cancel_order": lambda: venue.cancel_order("BTC-USDT", ord_id=oid),
        "ticker": lambda: venue.ticker("BTC-USDT"),
    }
    before = venue.calls()
    venue.inject(op, mode)
    with pytest.raises(cls) as info:
        calls[op]()
    assert type(info.value) is cls and info.value.code == code
    assert venue.placements_for("z") == 0 and len(venue.orders()) == 1
    assert venue.orders()[0].state is OrderState.LIVE
    calls[op]()  # the fault was consumed: the same call now works
    assert venue.calls()[op] == before[op] + 2  # failed calls count too


def test_accept_then_timeout_places_the_order(venue: InMemoryExchange) -> None:
    venue.inject("place_order", "accept_then_timeout")
    with pytest.raises(StateUnknown):
        venue.place_order(req(cl="amb"))
    assert venue.placements_for("amb") == 1
    assert venue.get_order("BTC-USDT", cl_ord_id="amb").state is OrderState.LIVE
    with pytest.raises(ValueError):
        venue.inject("get_order", "accept_then_timeout")


def test_faults_queue_per_op_and_can_be_cleared(venue: InMemoryExchange) -> None:
    venue.inject("instrument", "unavailable", times=2)
    venue.inject("list_pending", "rate_limited")
    for _ in range(2):
        with pytest.raises(ExchangeUnavailable):
            venue.instrument("BTC-USDT")
    assert venue.instrument("BTC-USDT") == BTC
    with pytest.raises(RateLimited):
        list(venue.list_pending())
    venue.inject("ticker", "timeout", times=5)
    venue.clear_faults()
    assert venue.ticker("BTC-USDT").last == 100
    assert venue.calls() == {
        "place_order": 0,
        "cancel_order": 0,
        "get_order": 0,
        "list_pending": 1,
        "ticker": 1,
        "instrument": 3,
    }
    for bad in [("nope", "timeout"), ("ticker", "nope")]:
        with pytest.raises(ValueError):
            venue.inject(*bad)


def test_latency_delays_every_call(venue: InMemoryExchange) -> None:
    venue.set_latency(0.05)
    start = time.monotonic()
    venue.ticker("BTC-USDT")
    assert time.monotonic() - start >= 0.05


def test_threads_placing_one_cl_ord_id_create_exactly_one_order(venue: InMemoryExchange) -> None:
    outcomes: list[str] = []
    barrier = threading.Barrier(16)

    def place() -> None:
        barrier.wait()
        outcomes.append(code_of(lambda: venue.place_order(req(cl="race")))[0])

    threads = [threading.Thread(target=place) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["DuplicateClientOrderId"] * 15 + ["ok"]
    assert venue.placements_for("race") == 1


def test_every_exchange_error_survives_pickling() -> None:
    classes = [c for c in vars(errors).values() if isinstance(c, type)]
    for cls in (c for c in classes if issubclass(c, ExchangeError)):
        clone = pickle.loads(pickle.dumps(cls("message", code="51000")))
        assert type(clone) is cls and clone.code == "51000" and str(clone) == "message"


# -- sharing between processes --------------------------------------------------------------


def test_proxy_behaves_like_the_local_venue(
    venue: InMemoryExchange, served: MemoryExchangeServer
) -> None:
    client = connect_memory_exchange(served.url)
    assert served.url.startswith("memory://127.0.0.1:")
    assert client.instrument("BTC-USDT") == BTC
    placed = client.place_order(req(cl="a", px="90"))
    assert code_of(lambda: client.place_order(req(cl="a"))) == ("DuplicateClientOrderId", "51016")
    assert code_of(lambda: client.get_order("BTC-USDT", ord_id="9")) == ("OrderNotFound", "51603")
    assert code_of(lambda: client.place_order(req(cl="b", sz="0.0001"))) == (
        "OrderRejected",
        "51020",
    )
    client.inject("ticker", "rate_limited")
    assert code_of(lambda: client.ticker("BTC-USDT")) == ("RateLimited", "50011")
    client.fill("a", D("0.5"))
    snap = client.get_order("BTC-USDT", cl_ord_id="a")
    assert snap == venue.get_order("BTC-USDT", ord_id=placed.ord_id)
    assert isinstance(snap.avg_px, Decimal) and snap.state is OrderState.PARTIALLY_FILLED
    for i in range(150):
        client.place_order(req(cl=f"p{i}", px="80"))
    assert len(list(client.list_pending("BTC-USDT"))) == 151
    assert [u.state for u in client.drain_updates()][:2] == [OrderState.LIVE, "partially_filled"]
    assert client.calls()["list_pending"] == 2 and client.placements_for("a") == 1


def test_stopped_server_maps_to_retryable_errors(
    venue: InMemoryExchange, served: MemoryExchangeServer
) -> None:
    client = connect_memory_exchange(served.url)
    client.ticker("BTC-USDT")
    served.stop()
    with pytest.raises(Retryable):
        client.ticker("BTC-USDT")  # the connection was cut: StateUnknown
    with pytest.raises(ExchangeUnavailable):
        client.ticker("BTC-USDT")  # nothing listens any more
    with pytest.raises(ValueError):
        connect_memory_exchange("redis://127.0.0.1:1")


_CHILD_ERRORS = """
import json, sys
from decimal import Decimal as D
from worker.domain.errors import ExchangeError
from worker.exchange.memory import connect_memory_exchange
from worker.exchange.port import OrderRequest

x = connect_memory_exchange(sys.argv[1])
def run(fn):
    try:
        fn()
        return ["ok", None]
    except ExchangeError as e:
        return [type(e).__name__, e.code]
o = lambda cl, px="99", sz="1", inst="BTC-USDT": OrderRequest(inst, "buy", D(px), D(sz), cl)
print(json.dumps({
    "place": run(lambda: x.place_order(o("k1"))),
    "duplicate": run(lambda: x.place_order(o("k1"))),
    "tick": run(lambda: x.place_order(o("k2", px="99.01"))),
    "lot": run(lambda: x.place_order(o("k2", sz="1.00001"))),
    "min": run(lambda: x.place_order(o("k2", sz="0.0001"))),
    "funds": run(lambda: x.place_order(o("k2", sz="100"))),
    "instrument": run(lambda: x.place_order(o("k2", inst="NOPE-USDT"))),
    "missing": run(lambda: x.get_order("BTC-USDT", cl_ord_id="nope")),
    "cancel": run(lambda: x.cancel_order("BTC-USDT", cl_ord_id="k1")),
    "cancel_again": run(lambda: x.cancel_order("BTC-USDT", cl_ord_id="k1")),
    "unavailable": run(lambda: x.ticker("BTC-USDT")),
    "state": x.get_order("BTC-USDT", cl_ord_id="k1").state,
}))
"""


def test_errors_cross_the_process_boundary_with_class_and_code(
    venue: InMemoryExchange, served: MemoryExchangeServer
) -> None:
    venue.set_balance("USDT", D("1000"))
    venue.inject("ticker", "unavailable")
    out = subprocess.run(
        [sys.executable, "-c", _CHILD_ERRORS, served.url],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    got = json.loads(out.stdout)
    assert got == {
        "place": ["ok", None],
        "duplicate": ["DuplicateClientOrderId", "51016"],
        "tick": ["OrderRejected", "51000"],
        "lot": ["OrderRejected", "51121"],
        "min": ["OrderRejected", "51020"],
        "funds": ["InsufficientFunds", "51131"],
        "instrument": ["InvalidInstrument", "51001"],
        "missing": ["OrderNotFound", "51603"],
        "cancel": ["ok", None],
        "cancel_again": ["CancelRejected", "51400"],
        "unavailable": ["ExchangeUnavailable", "50001"],
        "state": "canceled",
    }


_CHILD_RACE = """
import sys, threading
from decimal import Decimal as D
from worker.domain.errors import DuplicateClientOrderId
from worker.exchange.memory import connect_memory_exchange
from worker.exchange.port import OrderRequest

x = connect_memory_exchange(sys.argv[1])
x.instrument("BTC-USDT")  # connect before the start line
print("ready", flush=True)
sys.stdin.readline()
results = []
def place():
    try:
        x.place_order(OrderRequest("BTC-USDT", "buy", D("90"), D("1"), "racer"))
        results.append("ok")
    except DuplicateClientOrderId as e:
        results.append(e.code)
threads = [threading.Thread(target=place) for _ in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(" ".join(results), flush=True)
"""


def test_two_processes_racing_on_one_cl_ord_id_make_exactly_one_order(
    venue: InMemoryExchange, served: MemoryExchangeServer
) -> None:
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _CHILD_RACE, served.url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        for child in children:
            assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        results = " ".join(child.communicate(timeout=30)[0] for child in children).split()
    finally:
        for child in children:
            child.kill() if child.poll() is None else None
    assert sorted(results) == ["51016"] * 7 + ["ok"]
    assert venue.placements_for("racer") == 1
    assert len([o for o in venue.orders() if o.cl_ord_id == "racer"]) == 1


def test_forked_child_reconnects_instead_of_sharing_the_parents_socket(
    venue: InMemoryExchange, served: MemoryExchangeServer
) -> None:
    client = connect_memory_exchange(served.url)
    assert isinstance(client, MemoryExchangeClient)
    client.ticker("BTC-USDT")  # the parent is connected before the fork, like a Celery master
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads, as prefork does
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        status = 1
        try:
            client.place_order(req(cl="forked", px="90"))
            status = 0
        finally:
            os._exit(status)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert client.get_order("BTC-USDT", cl_ord_id="forked").state is OrderState.LIVE
    assert [o.cl_ord_id for o in venue.orders()] == ["forked"]

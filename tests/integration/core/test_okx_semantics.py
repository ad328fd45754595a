"""OKX semantics, end to end: the engine on the OKX adapter against the local simulator.

One test per error class and fault mode, asserting what the ledger ends up holding: one
order, never two; an unknown outcome kept as ``pending_submit``; an explicit "does not
exist" (51603) settled as ``failed`` only after the pending timeout; 51016 resolved by a
lookup; 429/50011 and 5xx never failing an order. Then reconciliation on OKX's history
rules, and fills pushed twice over the websocket.
"""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
from sqlalchemy import select

from tests.builders import buy_message
from tests.integration.core.conftest import Engine
from tests.venues import PushCollector, SimVenue
from worker.domain.errors import OrderNotFound
from worker.domain.ids import buy_cl_ord_id
from worker.domain.orders import OrderState
from worker.exchange.port import OrderRequest, OrderSnapshot
from worker.ledger.models import Fill, Lot, Order
from worker.services.buy import process_buy
from worker.services.lookup import lookup
from worker.services.reconcile import purge_pending, sync_active_orders
from worker.task_names import VERIFY_ORDER

pytestmark = [
    pytest.mark.parametrize("venue", ["okx-sim"], indirect=True),
    pytest.mark.parametrize("db_url", ["postgresql"], indirect=True),
]

HOLD = 1.5  # the simulator holds a "timed out" request longer than the adapter waits (1 s)


def sim(engine: Engine) -> SimVenue:
    assert isinstance(engine.venue, SimVenue)
    return engine.venue


def orders(engine: Engine) -> list[Order]:
    with engine.rt.ledger.begin() as s:
        return list(s.scalars(select(Order).order_by(Order.id)))


def later_buy(engine: Engine) -> dict[str, object]:
    return buy_message(created_at=int(engine.clock().timestamp() * 1000))


# (simulator fault mode, hold seconds, whether OKX created the order)
PLACEMENT_FAULTS = {
    "timeout": ("timeout", HOLD, False),
    "accept_then_timeout": ("accept_then_timeout", HOLD, True),
    "http_500": ("http_500", 0.0, False),
    "rate_limit_429": ("rate_limit_429", 0.0, False),
    "code_50011": ("code_50011", 0.0, False),
}


@pytest.mark.parametrize("fault", sorted(PLACEMENT_FAULTS))
def test_an_ambiguous_placement_leaves_one_pending_order_until_okx_answers(
    engine: Engine, fault: str
) -> None:
    mode, seconds, lands = PLACEMENT_FAULTS[fault]
    sim(engine).fault("place_order", mode, seconds=seconds)
    msg = buy_message()
    cid = buy_cl_ord_id("hourly_limit_ws", msg["signal_id"])
    assert process_buy(engine.rt, msg).order_state == "unknown"
    [order] = orders(engine)
    assert order.state == "pending_submit"  # unknown is not gone, and not failed
    assert sim(engine).placements_for(cid) == (1 if lands else 0)
    # A redelivery looks up instead of sending again.
    engine.rt.cache.clear()
    assert process_buy(engine.rt, msg).outcome == "duplicate"
    assert sim(engine).placements_for(cid) == (1 if lands else 0)
    # Too young to judge: purge leaves it alone even though OKX may answer 51603.
    purge_pending(engine.rt)
    assert [o.state for o in orders(engine)] == ["pending_submit"]
    engine.clock.advance(61)
    purge_pending(engine.rt)
    [order] = orders(engine)
    # Landed: OKX's state is taken. Never landed: the explicit 51603 fails it, slot freed.
    assert order.state == ("live" if lands else "failed")
    engine.rt.cache.clear()
    nxt = process_buy(engine.rt, later_buy(engine))
    if lands:
        assert nxt.reason == "slot_busy"
    else:
        assert nxt.order_state == "live"
    assert len([o for o in sim(engine).orders() if o.side == "buy"]) == 1


@pytest.mark.parametrize("mode", ["http_500", "rate_limit_429", "code_50011", "timeout"])
def test_errors_while_looking_up_never_fail_an_order(engine: Engine, mode: str) -> None:
    sim(engine).fault("place_order", "timeout", seconds=HOLD)
    process_buy(engine.rt, buy_message())
    engine.clock.advance(61)
    sim(engine).fault("get_order", mode, seconds=HOLD if mode == "timeout" else 0.0)
    assert purge_pending(engine.rt)["unknown"] == 1
    assert [o.state for o in orders(engine)] == ["pending_submit"]
    # Once OKX answers, its explicit 51603 settles the intent.
    assert purge_pending(engine.rt)["cleaned"] == 1
    assert [o.state for o in orders(engine)] == ["failed"]


@pytest.mark.parametrize("mode", ["http_500", "rate_limit_429", "code_50011"])
def test_errors_while_listing_never_settle_a_live_order(engine: Engine, mode: str) -> None:
    process_buy(engine.rt, buy_message())
    sim(engine).fault("orders_pending", mode)
    sim(engine).fault("get_order", mode)
    report = sync_active_orders(engine.rt)
    assert report["unknown"] == 1
    assert [o.state for o in orders(engine)] == ["live"]


def test_a_duplicate_cl_ord_id_51016_is_resolved_by_lookup(engine: Engine) -> None:
    """An earlier run's order is pending on OKX with our clOrdId: it is ours, not a second."""
    msg = buy_message(px="60000")
    cid = buy_cl_ord_id("hourly_limit_ws", msg["signal_id"])
    earlier = sim(engine).place_order(
        OrderRequest("BTC-USDT", "buy", Decimal("60000.0"), Decimal("0.00016666"), cid)
    )
    result = process_buy(engine.rt, msg)
    # Not a second order, and no answer yet: the lookup task is scheduled to run at once.
    assert result.order_state == "unknown"
    [(order_id, _)] = [a for t, a, _ in engine.scheduler.sent if t == VERIFY_ORDER]
    assert [c for t, _, c in engine.scheduler.sent if t == VERIFY_ORDER] == [None]
    assert lookup(engine.rt, order_id) == "live"  # what the task runs
    [order] = orders(engine)
    assert (order.id, order.state, order.ord_id) == (order_id, "live", earlier.ord_id)
    assert sim(engine).placements_for(cid) == 1


def test_an_order_left_in_pending_submit_is_found_by_lookup_after_it_filled(
    engine: Engine,
) -> None:
    """Accepted, answer lost, then filled: OKX would accept the clOrdId again, so only a
    lookup is safe; the ledger takes the fill and opens the lot."""
    sim(engine).fault("place_order", "accept_then_timeout", seconds=HOLD)
    msg = buy_message()
    cid = buy_cl_ord_id("hourly_limit_ws", msg["signal_id"])
    process_buy(engine.rt, msg)
    sim(engine).set_price("BTC-USDT", Decimal("60000"))
    assert lookup(engine.rt, orders(engine)[0].id) == "filled"
    assert sim(engine).placements_for(cid) == 1
    with engine.rt.ledger.begin() as s:
        assert len(list(s.scalars(select(Lot)))) == 1


def test_a_canceled_order_that_aged_out_of_the_history_still_settles(engine: Engine) -> None:
    """OKX drops canceled, never-filled orders from its history after 2 hours."""
    msg = buy_message()
    process_buy(engine.rt, msg)
    cid = buy_cl_ord_id("hourly_limit_ws", msg["signal_id"])
    sim(engine).cancel_order("BTC-USDT", cl_ord_id=cid)
    sim(engine).drain_updates()  # the cancel push was lost
    sim(engine).advance_clock(7200 + 60)
    with pytest.raises(OrderNotFound):  # OKX's own view: 51603, as if it never existed
        sim(engine).exchange.get_order("BTC-USDT", cl_ord_id=cid)
    report = sync_active_orders(engine.rt)
    assert report["cleaned"] == 1 and report["unknown"] == 0
    assert [o.state for o in orders(engine)] == ["canceled"]


def test_our_order_missing_from_the_database_is_adopted_and_theirs_ignored(
    engine: Engine,
) -> None:
    ours = buy_cl_ord_id("original_gap", "lost:ETH-USDT")
    for cid in (ours, "manual123"):
        sim(engine).place_order(
            OrderRequest("ETH-USDT", "buy", Decimal("2900"), Decimal("0.004"), cid)
        )
    report = sync_active_orders(engine.rt)
    assert report["adopted"] == 1
    [order] = orders(engine)
    assert (order.cl_ord_id, order.strategy, order.state) == (ours, "original_gap", "live")
    engine.rt.cache.clear()
    skipped = process_buy(engine.rt, buy_message("original_gap", "ETH-USDT"))
    assert skipped.reason == "slot_busy"


def _filled(snap: OrderSnapshot | None) -> bool:
    return snap is not None and snap.state == OrderState.FILLED


def test_fills_pushed_twice_over_the_websocket_are_applied_once(engine: Engine) -> None:
    """Two stream consumers (a deploy overlap) each forward every push: one fill per tradeId."""
    second = PushCollector(f"{sim(engine).handle.ws_url}/private")
    try:
        process_buy(engine.rt, buy_message(px="60000", quote_sz="20"))
        [buy] = orders(engine)
        sim(engine).fill(buy.cl_ord_id, Decimal("0.0001"))
        sim(engine).set_price("BTC-USDT", Decimal("60000"))
        first_pushes = sim(engine).drain_updates()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not _filled(second.seen(buy.ord_id or "")):
            time.sleep(0.01)
        second_pushes = second.take()
    finally:
        second.stop()
    trades = {s.fill.trade_id for s in first_pushes if s.fill is not None}
    assert (
        len(trades) == 2
        and {s.fill.trade_id for s in second_pushes if s.fill is not None} == trades
    )
    for snap in first_pushes + second_pushes + list(reversed(first_pushes)):
        engine.apply(snap)
    with engine.rt.ledger.begin() as s:
        fills = list(s.scalars(select(Fill)))
        [buy] = list(s.scalars(select(Order).where(Order.side == "buy")))
        lots = list(s.scalars(select(Lot)))
    assert sorted(f.trade_id for f in fills) == sorted(trades)
    assert buy.state == "filled" and buy.filled_sz == sum(f.sz for f in fills)
    assert len(lots) == 1

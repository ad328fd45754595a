"""Reconciliation on real databases: restore, adopt, clean, cancel, sell; never guess."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select

from tests.builders import buy_message
from tests.integration.core.conftest import Engine
from worker.domain.ids import buy_cl_ord_id
from worker.exchange.port import OrderRequest
from worker.ledger.models import Lot, Order
from worker.services.buy import process_buy
from worker.services.reconcile import purge_pending, sync_active_orders


def orders(engine: Engine) -> dict[str, Order]:
    with engine.rt.ledger.begin() as s:
        return {o.cl_ord_id: o for o in s.scalars(select(Order))}


def lots(engine: Engine) -> list[Lot]:
    with engine.rt.ledger.begin() as s:
        return list(s.scalars(select(Lot).order_by(Lot.id)))


def test_changes_missed_while_away_are_restored(engine: Engine) -> None:
    a = buy_message("hourly_limit_ws", "BTC-USDT")
    b = buy_message("original_gap", "ETH-USDT")
    c = buy_message("stable_buy_ws", "SOL-USDT")
    for msg in (a, b, c):
        assert process_buy(engine.rt, msg).order_state == "live"
    # While no worker listens: one fills, one is canceled by hand, one half fills.
    engine.venue.set_price("BTC-USDT", Decimal("60000"))
    engine.venue.cancel_order("ETH-USDT", cl_ord_id=buy_cl_ord_id("original_gap", b["signal_id"]))
    engine.venue.fill(buy_cl_ord_id("stable_buy_ws", c["signal_id"]), Decimal("0.03"))
    engine.venue.drain_updates()  # those pushes were lost
    report = sync_active_orders(engine.rt)
    assert report["restored"] == 2 and report["cleaned"] == 1 and report["unknown"] == 0
    state = {o.strategy: o.state for o in orders(engine).values() if o.side == "buy"}
    assert state == {
        "hourly_limit_ws": "filled",
        "original_gap": "canceled",
        "stable_buy_ws": "partially_filled",
    }
    assert [lot.inst_id for lot in lots(engine)] == ["BTC-USDT"]
    # The lot's take-profit was placed by the reconciliation that discovered the fill.
    assert any(o.purpose == "take_profit" for o in orders(engine).values())
    again = sync_active_orders(engine.rt)
    # Still open: the half-filled buy and the take-profit.
    assert again["restored"] == again["cleaned"] == 0 and again["unchanged"] == 2


def test_our_orders_missing_from_the_database_are_adopted(engine: Engine) -> None:
    cid = buy_cl_ord_id("batch_buy_ws", "lost-signal")
    engine.venue.place_order(
        OrderRequest("BTC-USDT", "buy", Decimal("59000"), Decimal("0.0002"), cid)
    )
    engine.venue.place_order(
        OrderRequest("BTC-USDT", "buy", Decimal("59000"), Decimal("0.0002"), "someoneelse1")
    )
    report = sync_active_orders(engine.rt)
    assert report["adopted"] == 1
    adopted = orders(engine)[cid]
    assert (adopted.strategy, adopted.side, adopted.state) == ("batch_buy_ws", "buy", "live")
    assert "someoneelse1" not in orders(engine)
    assert process_buy(engine.rt, buy_message("batch_buy_ws")).reason == "slot_busy"


def test_a_canceled_order_that_left_the_history_still_settles(engine: Engine) -> None:
    msg = buy_message()
    process_buy(engine.rt, msg)
    cid = buy_cl_ord_id("hourly_limit_ws", msg["signal_id"])
    ord_id = orders(engine)[cid].ord_id
    assert ord_id
    engine.venue.cancel_order("BTC-USDT", ord_id=ord_id)
    engine.venue.forget(ord_id)
    report = sync_active_orders(engine.rt)
    assert report["cleaned"] == 1
    assert orders(engine)[cid].state == "canceled"


def test_errors_during_reconciliation_never_settle_anything(engine: Engine) -> None:
    process_buy(engine.rt, buy_message())
    engine.venue.inject("list_pending", "unavailable")
    engine.venue.inject("get_order", "timeout")
    report = sync_active_orders(engine.rt)
    assert report["unknown"] == 1 and report["listing"] == "unavailable"
    assert [o.state for o in orders(engine).values()] == ["live"]


def test_stale_live_buys_are_canceled_after_their_time_limit(engine: Engine) -> None:
    process_buy(engine.rt, buy_message())
    assert sync_active_orders(engine.rt)["canceled"] == 0
    engine.clock.advance(301)
    assert sync_active_orders(engine.rt)["canceled"] == 1
    assert [o.state for o in orders(engine).values()] == ["canceled"]


def test_a_partly_filled_stale_buy_is_canceled_and_its_lot_sold(engine: Engine) -> None:
    msg = buy_message()
    process_buy(engine.rt, msg)
    engine.venue.fill(buy_cl_ord_id("hourly_limit_ws", msg["signal_id"]), Decimal("0.0001"))
    engine.clock.advance(301)
    sync_active_orders(engine.rt)
    [lot] = lots(engine)
    assert lot.size == Decimal("0.0000999")  # 0.0001 minus the 0.1% fee in BTC
    tp = [o for o in orders(engine).values() if o.purpose == "take_profit"]
    assert len(tp) == 1 and tp[0].sz == lot.size


def test_lots_past_their_holding_time_are_sold(engine: Engine) -> None:
    process_buy(engine.rt, buy_message())
    engine.venue.set_price("BTC-USDT", Decimal("60000"))
    for snap in engine.venue.drain_updates():
        engine.apply(snap)
    engine.clock.advance(3601)
    report = sync_active_orders(engine.rt)
    assert report["sold"] == 1
    purposes = sorted((o.purpose, o.state) for o in orders(engine).values() if o.side == "sell")
    assert purposes == [("exit", "live"), ("take_profit", "canceled")]


def test_a_second_run_while_one_holds_the_lock_does_nothing(engine: Engine) -> None:
    with engine.rt.ledger.named_lock("sync_active_orders") as got:
        assert got
        assert "skipped" in sync_active_orders(engine.rt)
    with engine.rt.ledger.named_lock("purge_pending") as got:
        assert got
        assert "skipped" in purge_pending(engine.rt)
    assert "skipped" not in sync_active_orders(engine.rt)


def test_malformed_order_updates_are_dropped_and_change_nothing(engine: Engine) -> None:
    from worker.services.updates import apply_update_message

    process_buy(engine.rt, buy_message())
    before = {cid: o.state for cid, o in orders(engine).items()}
    for bad in (None, "text", {}, {"state": "filled"}, {"v": 1, "state": "exploded"}):
        assert apply_update_message(engine.rt, bad) == "invalid"
    assert {cid: o.state for cid, o in orders(engine).items()} == before

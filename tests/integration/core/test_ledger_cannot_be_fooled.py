"""Issue 7: sequences of late, lost and contradictory events that used to make the ledger drift.

Each test names the behaviour it pins; every one runs on both databases and both venues (the
in-memory double and OKX over the simulator) unless the venue cannot produce the fault.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select, update

from tests import builders
from tests.builders import buy_message
from tests.integration.core.conftest import Engine
from tests.venues import Venue
from worker.domain.ids import buy_cl_ord_id
from worker.domain.orders import OrderState
from worker.exchange.port import OrderRequest
from worker.ledger.admission import Admission, Admitted, try_admit
from worker.ledger.db import Ledger
from worker.ledger.models import Lot, Order
from worker.runtime import Runtime
from worker.services.buy import process_buy
from worker.services.intents import Intent
from worker.services.placement import send
from worker.services.reconcile import purge_pending, sync_active_orders
from worker.signals import parse_buy


def orders(engine: Engine) -> dict[str, Order]:
    with engine.rt.ledger.begin() as s:
        return {o.cl_ord_id: o for o in s.scalars(select(Order))}


def lots(engine: Engine) -> list[Lot]:
    with engine.rt.ledger.begin() as s:
        return list(s.scalars(select(Lot).order_by(Lot.id)))


def venue_orders(venue: Venue, cl_ord_id: str) -> list[Any]:
    return [o for o in venue.orders() if o.cl_ord_id == cl_ord_id]


def short_timeout_runtime(engine: Engine, seconds: int) -> Runtime:
    """The engine's runtime with a short PENDING_TIMEOUT_SECONDS (a short send window)."""
    settings = builders.make_settings(
        DATABASE_URL=engine.rt.settings.DATABASE_URL,
        LIMITFLOW_HOME=engine.rt.settings.LIMITFLOW_HOME,
        PENDING_TIMEOUT_SECONDS=seconds,
    )
    return Runtime(
        settings=settings,
        ledger=engine.rt.ledger,
        exchange=engine.venue.exchange,
        schedule=engine.scheduler,
        clock=engine.clock,
    )


def infer(engine: Engine, cl_ord_id: str, state: OrderState) -> None:
    """Make the ledger hold an order as ``state`` (an inference it drew earlier)."""
    with engine.rt.ledger.begin() as s:
        s.execute(update(Order).where(Order.cl_ord_id == cl_ord_id).values(state=state.value))


# -- 1. a placement that lands after the ledger gave up on it ---------------------------------


def test_a_placement_that_reaches_the_venue_after_its_deadline_is_dropped_and_the_slot_buys_once(
    engine: Engine,
) -> None:
    rt = short_timeout_runtime(engine, 2)  # send window: 0.5 s
    engine.venue.delay_placements(1.5, lands=True)  # it reaches the venue 1.5 s later
    msg = buy_message()
    cid = buy_cl_ord_id("hourly_limit_ws", msg["signal_id"])
    process_buy(rt, msg)
    time.sleep(2.0)  # the held request has reached the venue by now (the client gave up)
    engine.venue.clear_faults()
    # The venue honoured expTime: nothing rests there, whatever the client saw.
    assert venue_orders(engine.venue, cid) == []
    assert engine.venue.placements_for(cid) == 0
    engine.clock.advance(60)  # past the pending timeout, the deadline and any skew margin
    purge_pending(rt)
    assert orders(engine)[cid].state in ("failed", "rejected")
    # The slot is free again and the next bucket buys it exactly once.
    nxt = buy_message()
    assert process_buy(rt, nxt).order_state == "live"
    live = [o for o in orders(engine).values() if o.state == "live"]
    assert [o.cl_ord_id for o in live] == [buy_cl_ord_id("hourly_limit_ws", nxt["signal_id"])]


def test_an_intent_whose_deadline_passed_before_sending_is_failed_and_never_sent(
    engine: Engine,
) -> None:
    msg = buy_message()
    signal = parse_buy(msg)
    cid = buy_cl_ord_id(signal.strategy, signal.signal_id)
    px, sz = Decimal("60000"), Decimal("0.0002")
    settings = engine.rt.settings
    request = Admission(
        signal=signal,
        cl_ord_id=cid,
        px=px,
        sz=sz,
        unsizable=None,
        guard_seconds=settings.BUY_GUARD_WINDOW_SECONDS,
        ttl_seconds=settings.SIGNAL_TTL_SECONDS,
        max_positions=20,
        pending_timeout_seconds=settings.PENDING_TIMEOUT_SECONDS,
    )
    with engine.rt.ledger.connect() as conn:
        admitted = try_admit(engine.rt.ledger, conn, request, engine.clock)
    assert isinstance(admitted, Admitted)
    order_id = admitted.order_id
    engine.clock.advance(30)  # the worker stalled between its commit and the send
    intent = Intent(order_id, signal.inst_id, signal.strategy, "buy", px, sz, cid)
    assert send(engine.rt, intent) == "failed"
    assert engine.venue.placements_for(cid) == 0
    assert process_buy(engine.rt, buy_message()).order_state == "live"  # the slot is free


def test_purge_does_not_fail_an_intent_before_its_deadline_plus_skew_has_passed(
    engine: Engine,
) -> None:
    rt = short_timeout_runtime(engine, 1)
    engine.venue.inject("place_order", "timeout")  # no answer, and nothing landed
    msg = buy_message()
    cid = buy_cl_ord_id("hourly_limit_ws", msg["signal_id"])
    process_buy(rt, msg)
    with rt.ledger.begin() as s:
        deadline = s.scalar(select(Order.deadline_at).where(Order.cl_ord_id == cid))
    assert deadline is not None
    engine.clock.now = deadline + timedelta(milliseconds=100)  # past the timeout, in the margin
    assert purge_pending(rt)["cleaned"] == 0
    assert orders(engine)[cid].state == "pending_submit"
    engine.clock.now = deadline + timedelta(seconds=31)  # beyond OKX's 30 s skew bound
    assert purge_pending(rt)["cleaned"] == 1
    assert orders(engine)[cid].state == "failed"


# -- 2. the exchange's facts beat the ledger's inferences ----------------------------------------


def test_a_buy_inferred_failed_that_the_exchange_shows_filled_gets_its_lot_and_take_profit(
    engine: Engine,
) -> None:
    msg = buy_message()
    cid = buy_cl_ord_id("hourly_limit_ws", msg["signal_id"])
    assert process_buy(engine.rt, msg).order_state == "live"
    infer(engine, cid, OrderState.FAILED)
    engine.venue.set_price("BTC-USDT", Decimal("60000"))  # it fills on the exchange
    engine.venue.drain_updates()  # the push was lost
    report = sync_active_orders(engine.rt)
    assert report["taken_back"] == 1
    assert orders(engine)[cid].state == "filled"
    [lot] = lots(engine)
    assert lot.state == "open" and not lot.orphan
    tp = [o for o in orders(engine).values() if o.purpose == "take_profit"]
    assert len(tp) == 1 and tp[0].state == "live"


def test_a_live_buy_inferred_rejected_is_taken_back_and_blocks_its_slot(engine: Engine) -> None:
    msg = buy_message()
    cid = buy_cl_ord_id("hourly_limit_ws", msg["signal_id"])
    process_buy(engine.rt, msg)
    infer(engine, cid, OrderState.REJECTED)
    report = sync_active_orders(engine.rt)
    assert report["taken_back"] == 1
    assert orders(engine)[cid].state == "live"
    engine.rt.cache.clear()
    assert process_buy(engine.rt, buy_message()).reason == "slot_busy"


def test_a_push_for_a_buy_inferred_failed_takes_it_back(engine: Engine) -> None:
    msg = buy_message()
    cid = buy_cl_ord_id("hourly_limit_ws", msg["signal_id"])
    process_buy(engine.rt, msg)
    engine.venue.drain_updates()
    infer(engine, cid, OrderState.FAILED)
    engine.venue.set_price("BTC-USDT", Decimal("60000"))
    assert "filled" in engine.pump()  # the websocket push of the fill, applied
    assert orders(engine)[cid].state == "filled"
    assert len(lots(engine)) == 1


def test_a_revived_buy_whose_slot_was_bought_again_is_canceled_and_what_it_bought_is_sold(
    engine: Engine,
) -> None:
    first = buy_message(px="59000")
    first_cid = buy_cl_ord_id("hourly_limit_ws", first["signal_id"])
    process_buy(engine.rt, first)
    infer(engine, first_cid, OrderState.FAILED)  # the slot is free as far as the ledger knows
    engine.rt.cache.clear()
    second = buy_message(px="58000")
    second_cid = buy_cl_ord_id("hourly_limit_ws", second["signal_id"])
    assert process_buy(engine.rt, second).order_state == "live"
    engine.venue.fill(first_cid, Decimal("0.0001"))  # the first one shows up, half filled
    engine.venue.drain_updates()
    sync_active_orders(engine.rt)
    ledger = orders(engine)
    assert ledger[first_cid].purpose == "orphan"
    assert ledger[first_cid].state == "canceled"
    [resting] = venue_orders(engine.venue, first_cid)
    assert resting.state is OrderState.CANCELED  # canceled on the exchange
    assert ledger[second_cid].state == "live"  # the slot's own buy is untouched
    # What the orphan bought is sold at once, from a lot of its own.
    [orphan_lot] = [lot for lot in lots(engine) if lot.orphan]
    exits = [o for o in ledger.values() if o.side == "sell" and o.lot_id == orphan_lot.id]
    assert [o.purpose for o in exits] == ["exit"]


def test_an_order_with_our_prefix_that_cannot_be_adopted_is_canceled(engine: Engine) -> None:
    cid = "lfzzbnotahashatall0000000000"  # our prefix, but no strategy code or hash
    engine.venue.place_order(OrderRequest("BTC-USDT", "buy", Decimal("59000"), Decimal("1"), cid))
    report = sync_active_orders(engine.rt)
    assert report["canceled"] == 1 and report["adopted"] == 0
    [resting] = venue_orders(engine.venue, cid)
    assert resting.state is OrderState.CANCELED
    assert cid not in orders(engine)


# -- 4. one bad instrument stops nothing else -------------------------------------------------


def test_one_delisted_instrument_does_not_stop_reconciliation_of_the_others(
    engine: Engine,
) -> None:
    msg = buy_message()
    cid = buy_cl_ord_id("hourly_limit_ws", msg["signal_id"])
    process_buy(engine.rt, msg)
    engine.venue.set_price("BTC-USDT", Decimal("60000"))
    engine.venue.drain_updates()  # the fill's push was lost
    now = engine.clock()
    with engine.rt.ledger.begin() as s:  # an order on an instrument the venue no longer lists
        s.add(
            Order(
                cl_ord_id=buy_cl_ord_id("original_gap", "gone:DEAD-USDT"),
                ord_id="1",
                inst_id="DEAD-USDT",
                strategy="original_gap",
                side="buy",
                purpose="entry",
                state="live",
                px=Decimal("1"),
                sz=Decimal("10"),
                created_at=now,
                updated_at=now,
            )
        )
    report = sync_active_orders(engine.rt)
    assert report["errors"] == {"invalid_instrument": 1}
    assert orders(engine)[cid].state == "filled"
    assert len(lots(engine)) == 1
    assert any(o.purpose == "take_profit" for o in orders(engine).values())


def test_a_fill_on_a_suspended_instrument_is_booked_and_its_lot_made(engine: Engine) -> None:
    msg = buy_message()
    cid = buy_cl_ord_id("hourly_limit_ws", msg["signal_id"])
    process_buy(engine.rt, msg)
    engine.venue.set_price("BTC-USDT", Decimal("60000"))
    engine.venue.drain_updates()  # the fill's push was lost
    engine.venue.suspend("BTC-USDT")
    other = buy_message("original_gap", "ETH-USDT")
    process_buy(engine.rt, other)
    engine.venue.set_price("ETH-USDT", Decimal("3000"))
    engine.venue.drain_updates()
    report = sync_active_orders(engine.rt)
    assert orders(engine)[cid].state == "filled"
    lot_states = {lot.inst_id: lot.state for lot in lots(engine)}
    assert lot_states == {"BTC-USDT": "open", "ETH-USDT": "open"}
    # BTC's take-profit cannot be placed while it is suspended: refused and counted; ETH's
    # reconciliation went on and its take-profit rests.
    assert set(report["errors"]) <= {"invalid_instrument"}
    tps = {o.inst_id: o.state for o in orders(engine).values() if o.purpose == "take_profit"}
    assert tps.get("ETH-USDT") == "live"
    engine.venue.suspend("BTC-USDT", False)


# -- 8. a signal that waited for the slot lock past its expiry ----------------------------------


def test_a_buy_signal_that_waited_for_the_slot_lock_past_its_expiry_is_expired(
    engine: Engine,
) -> None:
    msg = buy_message(created_at=builders.now_ms(), ttl_ms=5_000)
    engine.clock.now = engine.clock.now.replace()  # the engine's time: the signal is fresh
    holder = Ledger.from_url(engine.rt.settings.DATABASE_URL)
    locked, release = threading.Event(), threading.Event()

    def hold_the_slot() -> None:
        with holder.connect() as conn:
            holder.lock_slot(conn, "BTC-USDT", "hourly_limit_ws")
            locked.set()
            release.wait(10)

    t = threading.Thread(target=hold_the_slot)
    t.start()
    assert locked.wait(10)
    result: list[Any] = []
    worker = threading.Thread(target=lambda: result.append(process_buy(engine.rt, msg)))
    worker.start()
    time.sleep(0.5)  # it waits for the lock
    engine.clock.advance(10)  # meanwhile the signal's expiry passes
    release.set()
    t.join(10)
    worker.join(10)
    holder.dispose()
    assert result[0].outcome == "skipped" and result[0].reason == "expired"
    cid = buy_cl_ord_id("hourly_limit_ws", msg["signal_id"])
    assert cid not in orders(engine)
    assert engine.venue.placements_for(cid) == 0


def test_a_take_profit_inferred_failed_that_filled_closes_its_lot(engine: Engine) -> None:
    msg = buy_message()
    process_buy(engine.rt, msg)
    engine.settle_price("BTC-USDT", "60000")  # the buy fills; its take-profit rests
    [tp] = [o for o in orders(engine).values() if o.purpose == "take_profit"]
    infer(engine, tp.cl_ord_id, OrderState.FAILED)
    engine.venue.set_price("BTC-USDT", Decimal("61000"))  # the take-profit fills
    engine.venue.drain_updates()  # its push was lost
    report = sync_active_orders(engine.rt)
    assert report["taken_back"] == 1
    assert orders(engine)[tp.cl_ord_id].state == "filled"
    [lot] = lots(engine)
    assert lot.state == "closed" and lot.sold_sz > 0
    # Nothing else was sold: the lot's only sell is the take-profit that filled.
    assert [o.cl_ord_id for o in orders(engine).values() if o.side == "sell"] == [tp.cl_ord_id]

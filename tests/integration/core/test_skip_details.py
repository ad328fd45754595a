"""Every refused buy records the facts behind its reason in ``signals.detail`` (issue 8, item 1):
the blocking order, the unsold lot, the cooldown's end and the buy that started it, how late an
expired signal was, which pause switch since when, the positions that reached the limit.
Per-strategy pause switches, enforced by the workers. Both databases."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.builders import buy_message
from tests.integration.core.conftest import Engine, with_settings
from worker.domain.describe import when
from worker.ledger.models import Lot, Order, Signal
from worker.ledger.switches import set_paused
from worker.services.buy import process_buy

pytestmark = pytest.mark.parametrize("venue", ["memory"], indirect=True)


def detail(engine: Engine, msg: dict[str, object], reason: str) -> str:
    result = process_buy(engine.rt, msg)
    assert (result.outcome, result.reason) == ("skipped", reason)
    with engine.rt.ledger.begin() as s:
        row = s.get(Signal, msg["signal_id"])
        assert row is not None and row.reason == reason
        return row.detail


def buy_order(engine: Engine) -> Order:
    with engine.rt.ledger.begin() as s:
        return s.scalars(select(Order).where(Order.side == "buy").order_by(Order.id)).first()  # type: ignore[return-value]


def filled_buy(engine: Engine) -> Order:
    assert process_buy(engine.rt, buy_message(px="60000")).order_state == "live"
    engine.settle_price("BTC-USDT", "60000")
    return buy_order(engine)


def test_slot_busy_names_the_open_order_its_state_and_age(engine: Engine) -> None:
    assert process_buy(engine.rt, buy_message()).outcome == "accepted"
    first = buy_order(engine)
    engine.clock.advance(90)
    engine.rt.cache.clear()
    text = detail(engine, buy_message(), "slot_busy")
    assert f"order {first.cl_ord_id} (buy entry) is live" in text
    assert f"open since {when(first.created_at)} (90 s ago)" in text


def test_a_cache_skip_tells_what_the_worker_saw(engine: Engine) -> None:
    msg = buy_message()
    assert process_buy(engine.rt, msg).outcome == "accepted"
    text = detail(engine, buy_message(), "cached_busy")
    assert "this worker saw the slot slot_busy within 30 s" in text
    assert f"order {buy_order(engine).cl_ord_id} was placed for {msg['signal_id']}" in text


def test_unsold_lot_names_the_lot_and_the_buy(engine: Engine) -> None:
    buy = filled_buy(engine)
    with engine.rt.ledger.begin() as s:
        tp = s.scalars(select(Order).where(Order.side == "sell")).one()
        lot = s.scalars(select(Lot)).one()
    engine.venue.cancel_order("BTC-USDT", cl_ord_id=tp.cl_ord_id)  # nothing rests any more
    engine.pump()
    engine.rt.cache.clear()
    text = detail(engine, buy_message(), "unsold_lot")
    assert f"lot {lot.id} is unsold (0.00016649 unsold of 0.00016649 bought at 60,000" in text
    assert f"by {buy.cl_ord_id}" in text and f"time exit at {when(lot.exit_after)}" in text


def test_slot_busy_names_a_resting_take_profit(engine: Engine) -> None:
    filled_buy(engine)
    engine.rt.cache.clear()
    text = detail(engine, buy_message(), "slot_busy")
    assert "(sell take_profit of lot " in text and "is live" in text


def test_cooldown_says_when_it_ends_and_which_buy_started_it(engine: Engine) -> None:
    buy = filled_buy(engine)
    engine.settle_price("BTC-USDT", "60600")  # the take-profit sells the lot
    engine.clock.advance(600)
    engine.rt.cache.clear()
    text = detail(engine, buy_message(), "cooldown")
    ends = buy.created_at + timedelta(seconds=7200)
    assert f"cooldown until {when(ends)} (110 min from now; BUY_GUARD_WINDOW_SECONDS=7200)" in text
    assert f"started by buy {buy.cl_ord_id} of {when(buy.created_at)}" in text
    assert "bought 0.00016666 at 60,000 (filled)" in text


def test_expired_says_how_late_and_by_which_expiry(engine: Engine) -> None:
    created = int(engine.clock().timestamp() * 1000) - 60_000
    msg = buy_message(created_at=created, ttl_ms=5_000)
    text = detail(engine, msg, "expired")
    assert text.startswith("expired 55000 ms before a worker took it")
    assert "by its expires_at" in text
    without = buy_message(created_at=created, ttl_ms=None)
    assert "by SIGNAL_TTL_SECONDS=10" in detail(engine, without, "expired")


def test_pause_for_every_buy_names_the_switch_and_since_when(engine: Engine) -> None:
    set_paused(engine.rt.ledger, None, True, engine.clock())
    since = engine.clock()
    engine.clock.advance(60)
    text = detail(engine, buy_message(), "paused")
    assert text == f"every buy is paused since {when(since)} (`python -m worker resume` ends it)"


def test_pause_one_strategy_refuses_only_its_buys(engine: Engine) -> None:
    set_paused(engine.rt.ledger, "hourly_limit_ws", True, engine.clock())
    text = detail(engine, buy_message("hourly_limit_ws"), "paused")
    assert text.startswith("hourly_limit_ws is paused since ")
    assert "`python -m worker resume hourly_limit_ws` ends it" in text
    assert process_buy(engine.rt, buy_message("original_gap")).outcome == "accepted"
    assert set_paused(engine.rt.ledger, "hourly_limit_ws", False, engine.clock())
    assert process_buy(engine.rt, buy_message("hourly_limit_ws")).outcome == "accepted"


def test_risk_limit_names_the_positions_held(engine: Engine) -> None:
    with_settings(engine, MAX_OPEN_POSITIONS=1)
    assert process_buy(engine.rt, buy_message("batch_buy_ws")).outcome == "accepted"
    held = buy_order(engine)
    text = detail(engine, buy_message("hourly_limit_ws"), "risk_limit")
    assert text == (
        "MAX_OPEN_POSITIONS=1 reached: 1 held (0 unsold lots, 1 open buys): "
        f"BTC-USDT/batch_buy_ws buy {held.cl_ord_id}"
    )


def test_every_skip_reason_has_a_detail(engine: Engine) -> None:
    """One of each reason the workers record; none is left without its facts."""
    with_settings(engine, MAX_OPEN_POSITIONS=2, MAX_ORDER_USDT=50)
    process_buy(engine.rt, buy_message())  # accepted
    process_buy(engine.rt, buy_message())  # cached_busy
    engine.rt.cache.clear()
    process_buy(engine.rt, buy_message())  # slot_busy
    process_buy(engine.rt, buy_message("original_gap", quote_sz="60"))  # risk_limit (size)
    process_buy(engine.rt, buy_message("original_gap", "ETH-USDT", quote_sz="1"))  # below min
    process_buy(engine.rt, buy_message("stable_buy_ws", created_at=1))  # expired
    process_buy(engine.rt, buy_message("batch_buy_ws"))  # accepted
    process_buy(engine.rt, buy_message("stable_buy_ws"))  # risk_limit (positions)
    set_paused(engine.rt.ledger, None, True, engine.clock())
    process_buy(engine.rt, buy_message("original_gap", "SOL-USDT"))  # paused
    with engine.rt.ledger.begin() as s:
        skipped = s.execute(
            select(Signal.reason, Signal.detail).where(Signal.outcome == "skipped")
        ).all()
    reasons = {reason for reason, _ in skipped}
    assert reasons == {
        "cached_busy",
        "slot_busy",
        "risk_limit",
        "below_min_size",
        "expired",
        "paused",
    }
    assert [reason for reason, text in skipped if not text] == []

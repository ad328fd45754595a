"""The buy path on real databases: one position per slot, every skip recorded."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import func, select

from tests.builders import buy_message
from tests.integration.core.conftest import Engine, with_settings
from tests.venues import skip_unsupported
from worker.domain.ids import buy_cl_ord_id
from worker.ledger.models import Order, Signal, Slot
from worker.services.buy import process_buy


def orders(engine: Engine) -> list[Order]:
    with engine.rt.ledger.begin() as s:
        return list(s.scalars(select(Order).order_by(Order.id)))


def signal_row(engine: Engine, signal_id: str) -> Signal:
    with engine.rt.ledger.begin() as s:
        row = s.get(Signal, signal_id)
        assert row is not None, f"signal {signal_id} was not recorded"
        return row


def test_a_buy_signal_places_one_rounded_order(engine: Engine) -> None:
    msg = buy_message(px="60000.07", quote_sz="10")
    result = process_buy(engine.rt, msg)
    assert result.outcome == "accepted" and result.order_state == "live"
    [order] = orders(engine)
    assert order.cl_ord_id == buy_cl_ord_id("hourly_limit_ws", msg["signal_id"])
    assert order.px == Decimal("60000.0")  # rounded down to tickSz 0.1
    assert order.sz == Decimal("0.00016666")  # 10 / 60000 rounded down to lotSz
    assert order.state == "live" and order.ord_id
    assert engine.venue.placements_for(order.cl_ord_id) == 1
    assert signal_row(engine, msg["signal_id"]).outcome == "accepted"


def test_the_same_signal_twice_executes_once(engine: Engine) -> None:
    msg = buy_message()
    assert process_buy(engine.rt, msg).outcome == "accepted"
    assert process_buy(engine.rt, msg).outcome == "duplicate"
    engine.rt.cache.clear()  # a different worker: only the database can tell
    assert process_buy(engine.rt, msg).outcome == "duplicate"
    assert len(engine.venue.orders()) == 1


def test_a_busy_slot_skips_and_records_why(engine: Engine) -> None:
    first, second = buy_message(), buy_message()
    process_buy(engine.rt, first)
    engine.rt.cache.clear()
    result = process_buy(engine.rt, second)
    assert (result.outcome, result.reason) == ("skipped", "slot_busy")
    assert signal_row(engine, second["signal_id"]).reason == "slot_busy"
    third = buy_message()
    assert process_buy(engine.rt, third).reason == "cached_busy"  # cache hit, still recorded
    assert signal_row(engine, third["signal_id"]).reason == "cached_busy"
    assert len(engine.venue.orders()) == 1


def test_batch_does_not_block_original_on_the_same_instrument(engine: Engine) -> None:
    """The incident: a Batch buy must not stop the Original strategy from buying."""
    batch = process_buy(engine.rt, buy_message("batch_buy_ws", "BTC-USDT"))
    original = process_buy(engine.rt, buy_message("hourly_limit_ws", "BTC-USDT"))
    assert batch.outcome == original.outcome == "accepted"
    assert {o.strategy for o in orders(engine)} == {"batch_buy_ws", "hourly_limit_ws"}


def test_expired_signal_is_dropped_with_a_reason(engine: Engine) -> None:
    msg = buy_message(created_at=1_000, ttl_ms=None)
    result = process_buy(engine.rt, msg)
    assert (result.outcome, result.reason) == ("skipped", "expired")
    assert orders(engine) == []
    assert signal_row(engine, msg["signal_id"]).reason == "expired"


def test_pause_refuses_buys(engine: Engine) -> None:
    from worker.ledger.models import EngineFlag

    with engine.rt.ledger.begin() as s:
        s.add(EngineFlag(name="paused", enabled=True, updated_at=engine.clock()))
    msg = buy_message()
    assert process_buy(engine.rt, msg).reason == "paused"
    assert orders(engine) == []


def test_risk_limits(engine: Engine) -> None:
    with_settings(engine, MAX_OPEN_POSITIONS=1, MAX_ORDER_USDT=50)
    assert process_buy(engine.rt, buy_message("hourly_limit_ws")).outcome == "accepted"
    assert process_buy(engine.rt, buy_message("original_gap")).reason == "risk_limit"
    big = buy_message("stable_buy_ws", "ETH-USDT", quote_sz="60")
    assert process_buy(engine.rt, big).reason == "risk_limit"
    assert len(orders(engine)) == 1


def test_below_min_size_is_skipped(engine: Engine) -> None:
    msg = buy_message(inst_id="ETH-USDT", quote_sz="1")  # 1/3000 < minSz 0.001
    assert process_buy(engine.rt, msg).reason == "below_min_size"
    assert orders(engine) == []


def test_unknown_instrument_is_skipped(engine: Engine) -> None:
    msg = buy_message(inst_id="BTC-USDT")
    msg["inst_id"], msg["px"] = "NOPE-USDT", "1"
    result = process_buy(engine.rt, msg)
    assert (result.outcome, result.reason) == ("skipped", "invalid_instrument")
    assert orders(engine) == []


def test_bad_messages_are_recorded_and_nothing_else_is_written(engine: Engine) -> None:
    bad = [
        {"v": 1, "kind": "buy"},
        buy_message(px="-5"),
        buy_message(strategy="moon", signal_id="moon:BTC-USDT:1"),
        {**buy_message(), "created_at": "soon"},
        "not even an object",
        None,
    ]
    for msg in bad:
        assert process_buy(engine.rt, msg).outcome == "invalid"
    with engine.rt.ledger.begin() as s:
        assert s.scalar(select(func.count()).select_from(Signal)) == len(bad)
        assert set(s.scalars(select(Signal.outcome))) == {"invalid"}
        assert all(s.scalars(select(Signal.detail)))
        assert s.scalar(select(func.count()).select_from(Order)) == 0
        assert s.scalar(select(func.count()).select_from(Slot)) == 0
    assert engine.venue.orders() == []


def test_a_rejected_buy_frees_the_slot(engine: Engine) -> None:
    skip_unsupported(engine.venue, "place_order", "reject")
    first = buy_message()
    assert process_buy(engine.rt, first).order_state == "rejected"
    [order] = orders(engine)
    assert order.state == "rejected" and "OrderRejected" in order.last_error
    second = buy_message()
    assert process_buy(engine.rt, second).order_state == "live"
    # The rejected signal's clOrdId is never sent again.
    assert engine.venue.placements_for(order.cl_ord_id) == 0


def test_a_signal_the_exchange_kept_failing_still_gets_an_outcome(engine: Engine) -> None:
    import pytest

    from worker.domain.errors import Retryable
    from worker.services.buy import record_unexecuted

    engine.venue.inject("instrument", "unavailable", times=4)
    msg = buy_message(inst_id="ETH-USDT")
    for _ in range(4):  # the task's first run and its three retries
        with pytest.raises(Retryable):
            process_buy(engine.rt, msg)
    result = record_unexecuted(engine.rt, msg, "ExchangeUnavailable: 50001")
    assert (result.outcome, result.reason) == ("skipped", "exchange_error")
    assert signal_row(engine, msg["signal_id"]).detail == "ExchangeUnavailable: 50001"
    assert orders(engine) == []

"""A lot whose exits the exchange refuses again and again: stop, say so, keep the slot, settle."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import orjson
import pytest
from sqlalchemy import select

from tests.builders import buy_message, sell_message
from tests.integration.core.conftest import Engine, with_settings
from tests.processes import ROOT
from tests.venues import MemoryVenue
from worker.exchange.port import OrderRequest
from worker.ledger.admission import open_positions_count
from worker.ledger.models import Lot, Order, Signal
from worker.services.buy import process_buy
from worker.services.reconcile import sync_active_orders
from worker.services.sell import process_sell

REFUSALS = 3


def lots(engine: Engine) -> list[Lot]:
    with engine.rt.ledger.begin() as s:
        return list(s.scalars(select(Lot).order_by(Lot.id)))


def sells(engine: Engine) -> list[Order]:
    with engine.rt.ledger.begin() as s:
        return list(s.scalars(select(Order).where(Order.side == "sell").order_by(Order.id)))


def unsellable_lot(engine: Engine) -> Lot:
    """Buy and fill, then lose the coins outside the engine: every exit is refused (51131)."""
    with_settings(engine, MAX_EXIT_REFUSALS=REFUSALS, BUY_GUARD_WINDOW_SECONDS=0)
    msg = buy_message(px="60000")
    assert process_buy(engine.rt, msg).order_state == "live"
    engine.settle_price("BTC-USDT", "60000")
    [lot] = lots(engine)
    [tp] = sells(engine)
    # Someone cancels the take-profit by hand and sells the coins on the exchange's website.
    engine.venue.cancel_order("BTC-USDT", cl_ord_id=tp.cl_ord_id)
    if isinstance(engine.venue, MemoryVenue):
        engine.venue.memory.set_balance("BTC", Decimal(0))
    else:
        manual = OrderRequest("BTC-USDT", "sell", Decimal("59000"), lot.size, "byhand1")
        placement = engine.venue.place_order(manual)
        if any(
            o.ord_id == placement.ord_id and o.state.value == "live" for o in engine.venue.orders()
        ):
            engine.venue.fill(placement.ord_id, lot.size)
    engine.pump()
    return lot


def test_a_lot_refused_again_and_again_needs_attention_and_keeps_its_slot(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    lot = unsellable_lot(engine)
    with caplog.at_level(logging.INFO, logger="limitflow"):
        for _ in range(REFUSALS + 3):  # beat's reconciliation, run after run
            sync_active_orders(engine.rt)
    [lot] = lots(engine)
    assert lot.state == "needs_attention"
    assert lot.exit_refusals == REFUSALS
    refused = [o for o in sells(engine) if o.state == "rejected"]
    assert len(refused) == REFUSALS, "the retry storm stops at the limit"
    errors = [r for r in caplog.records if r.getMessage() == "lot.needs_attention"]
    assert len(errors) == 1 and errors[0].levelno == logging.ERROR
    # A stop loss for the slot does not send anything either, and says why.
    sell = sell_message(px="56000")
    process_sell(engine.rt, sell)
    assert len(sells(engine)) == len(refused) + 1  # the take-profit canceled by hand
    with engine.rt.ledger.begin() as s:
        row = s.get(Signal, sell["signal_id"])
        assert row is not None and (row.outcome, row.reason) == ("failed", "needs_attention")
        # The coins may still be held: the slot stays blocked and the position counts.
        assert open_positions_count(s) == 1
    engine.rt.cache.clear()
    assert process_buy(engine.rt, buy_message()).reason == "unsold_lot"


def run_cli(engine: Engine, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": engine.rt.settings.database_url}
    env.pop("CELERY_BROKER_URL", None)
    env["LIMITFLOW_HOME"] = str(Path(engine.rt.settings.home))
    return subprocess.run(
        [sys.executable, "-m", "worker", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_status_shows_it_and_settle_lot_sold_elsewhere_frees_the_slot(engine: Engine) -> None:
    lot = unsellable_lot(engine)
    # Refused while still open: the command will not settle a lot the engine is selling.
    done = run_cli(engine, "settle-lot", str(lot.id), "--write-off")
    assert done.returncode != 0 and "not in needs_attention" in done.stderr
    for _ in range(REFUSALS):
        sync_active_orders(engine.rt)
    status = orjson.loads(run_cli(engine, "status", "--json").stdout)
    [shown] = status["needs_attention"]
    assert shown["lot_id"] == lot.id and shown["exit_refusals"] == REFUSALS
    assert "settle-lot" in shown["settle_with"]

    done = run_cli(engine, "settle-lot", str(lot.id), "--sold-elsewhere", "59000")
    assert done.returncode == 0, done.stderr
    [lot] = lots(engine)
    assert (lot.state, lot.settlement) == ("closed", "sold_elsewhere")
    assert lot.sold_sz == lot.size
    # Within 1e-12 until SQLite stores money as text (issue 7, item 5); exact on PostgreSQL.
    assert abs(lot.proceeds - lot.size * Decimal(59000)) < Decimal("1e-12")
    assert lot.closed_at is not None
    engine.rt.cache.clear()
    assert process_buy(engine.rt, buy_message()).outcome == "accepted"
    again = run_cli(engine, "settle-lot", str(lot.id), "--write-off")
    assert again.returncode != 0 and "not in needs_attention" in again.stderr


def test_settle_lot_write_off_books_the_loss(engine: Engine) -> None:
    lot = unsellable_lot(engine)
    for _ in range(REFUSALS):
        sync_active_orders(engine.rt)
    done = run_cli(engine, "settle-lot", str(lot.id), "--write-off")
    assert done.returncode == 0, done.stderr
    [lot] = lots(engine)
    assert (lot.state, lot.settlement) == ("closed", "written_off")
    assert lot.sold_sz == 0 and lot.proceeds == 0 and lot.proceeds - lot.cost < 0
    engine.rt.cache.clear()
    assert process_buy(engine.rt, buy_message()).outcome == "accepted"


def test_settle_lot_retry_hands_the_lot_back_to_the_engine(engine: Engine) -> None:
    lot = unsellable_lot(engine)
    for _ in range(REFUSALS):
        sync_active_orders(engine.rt)
    done = run_cli(engine, "settle-lot", str(lot.id), "--retry")
    assert done.returncode == 0, done.stderr
    [lot] = lots(engine)
    assert (lot.state, lot.exit_refusals) == ("open", 0)
    placed = len(sells(engine))
    sync_active_orders(engine.rt)  # the engine tries again (and is refused again here)
    assert len(sells(engine)) == placed + 1
    [lot] = lots(engine)
    assert (lot.state, lot.exit_refusals) == ("open", 1)

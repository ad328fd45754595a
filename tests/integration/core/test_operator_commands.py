"""The operator commands, run as a user runs them (``python -m worker ...`` in a subprocess)
against the engine's database and its venue served over loopback (issue 8, item 2). Both
databases."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from tests.builders import buy_message
from tests.integration.core.conftest import Engine
from tests.processes import ROOT
from tests.venues import MemoryVenue
from worker.exchange.memory_server import serve_memory_exchange
from worker.ledger.models import Lot, Order, Signal
from worker.services.buy import process_buy
from worker.services.reconcile import sync_active_orders

pytestmark = pytest.mark.parametrize("venue", ["memory"], indirect=True)

Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def cli(engine: Engine, tmp_path: Path) -> Iterator[Cli]:
    assert isinstance(engine.venue, MemoryVenue)
    server = serve_memory_exchange(engine.venue.memory)
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "CELERY_"))}
    env = {
        **clean,
        "DATABASE_URL": engine.rt.settings.database_url,
        "LIMITFLOW_HOME": str(tmp_path),
        "LIMITFLOW_EXCHANGE": server.url,
        "MEMORY_SYNC_INTERVAL_SECONDS": "0",
    }

    def run(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "worker", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if ok:
            assert done.returncode == 0, done.stderr
            assert "Traceback" not in done.stderr
        return done

    yield run
    server.stop()


def rows(engine: Engine, model: Any) -> list[Any]:
    with engine.rt.ledger.begin() as s:
        return list(s.scalars(select(model).order_by(model.id)))


def buy(engine: Engine, strategy: str = "hourly_limit_ws", inst_id: str = "BTC-USDT") -> Order:
    assert process_buy(engine.rt, buy_message(strategy, inst_id)).order_state == "live"
    return [o for o in rows(engine, Order) if o.side == "buy"][-1]


def filled(engine: Engine, inst_id: str = "BTC-USDT", px: str = "60000") -> Lot:
    msg = buy_message(inst_id=inst_id, px=px)
    assert process_buy(engine.rt, msg).order_state == "live"
    engine.settle_price(inst_id, px)  # the market comes down to the limit: it fills
    return rows(engine, Lot)[-1]


# -- positions ------------------------------------------------------------------------------------


def test_positions_values_each_open_lot_at_the_last_price(engine: Engine, cli: Cli) -> None:
    lot = filled(engine)
    engine.venue.set_price("BTC-USDT", Decimal("61000"), Decimal("60990"), Decimal("61010"))
    [shown] = orjson.loads(cli("positions", "--json").stdout)
    value = lot.size * Decimal("61000")
    assert (shown["lot_id"], shown["inst_id"], shown["state"]) == (lot.id, "BTC-USDT", "open")
    assert Decimal(shown["last"]) == Decimal("61000")
    assert Decimal(shown["value"]) == value
    assert Decimal(shown["unrealised"]) == value - lot.cost  # exact on both databases
    text = cli("positions").stdout
    assert f"{lot.id}  BTC-USDT" in text and "unrealised total: 0.1563" in text


def test_positions_without_a_price_still_lists_the_lot(engine: Engine, cli: Cli) -> None:
    lot = filled(engine)
    engine.venue.inject("ticker", "unavailable", times=5)
    try:
        text = cli("positions").stdout
    finally:
        engine.venue.clear_faults()
    assert f"{lot.id}  BTC-USDT" in text
    assert "BTC-USDT: no last price (ExchangeUnavailable" in text


# -- pnl ------------------------------------------------------------------------------------------


def test_pnl_books_each_closed_lot_with_its_fees(engine: Engine, cli: Cli) -> None:
    filled(engine)
    engine.settle_price("BTC-USDT", "60600")  # the take-profit sells the lot
    [lot] = rows(engine, Lot)
    assert lot.state == "closed"
    buy_order, tp = rows(engine, Order)
    fees = buy_order.fee * buy_order.avg_px + tp.fee  # the buy's fee was charged in BTC
    doc = orjson.loads(cli("pnl", "--json").stdout)
    [line] = doc["lines"]
    assert (line["strategy"], line["inst_id"], line["lots"]) == ("hourly_limit_ws", "BTC-USDT", 1)
    assert Decimal(line["pnl"]) == lot.proceeds - lot.cost > 0
    assert Decimal(line["fees"]) == fees > 0
    text = cli("pnl", "--since", "24h").stdout
    assert "hourly_limit_ws total" in text and "(fees included)" in text
    later = orjson.loads(cli("pnl", "--since", "2099-01-01", "--json").stdout)
    assert later["lines"] == [] and Decimal(later["total"]) == 0


# -- orders ---------------------------------------------------------------------------------------


def test_orders_filter_by_state_and_instrument(engine: Engine, cli: Cli) -> None:
    filled(engine)  # a filled buy and its live take-profit
    eth = buy(engine, "original_gap", "ETH-USDT")
    open_now = orjson.loads(cli("orders", "--state", "open", "--json").stdout)
    assert {(o["side"], o["state"]) for o in open_now} == {("sell", "live"), ("buy", "live")}
    [only_eth] = orjson.loads(cli("orders", "--inst", "ETH-USDT", "--json").stdout)
    assert only_eth["cl_ord_id"] == eth.cl_ord_id
    [done] = orjson.loads(cli("orders", "--state", "filled", "--json").stdout)
    assert (done["side"], done["inst_id"]) == ("buy", "BTC-USDT")
    assert eth.cl_ord_id in cli("orders").stdout


# -- status ---------------------------------------------------------------------------------------


def test_status_shows_switches_reconciliation_counts_and_the_last_reports(
    engine: Engine, cli: Cli
) -> None:
    filled(engine)
    engine.rt.cache.clear()
    assert process_buy(engine.rt, buy_message()).reason == "slot_busy"
    sync_active_orders(engine.rt)  # keeps its report in the database
    cli("pause", "original_gap")
    doc = orjson.loads(cli("status", "--json").stdout)
    assert doc["window"]["signals"] == {"buy accepted": 1, "buy skipped (slot_busy)": 1}
    assert (
        doc["window"]["orders"] == {"buy filled": 1, "sell live": 1} and doc["window"]["fills"] == 1
    )
    assert doc["lots"] == {"open": 1} and doc["open_orders"] == {"sell": 1}
    assert doc["reconciliation"] == {"periodic": False, "interval_seconds": 0}
    [paused] = doc["paused"]
    assert paused.startswith("original_gap is paused since")
    report = doc["last_reconcile"]["sync_active_orders"]["report"]
    assert report["listing"] == "ok" and report["errors"] == {}
    text = cli("status").stdout
    assert "Periodic reconciliation: OFF (MEMORY_SYNC_INTERVAL_SECONDS=0" in text
    assert "Buys: original_gap is paused since" in text
    assert "sync_active_orders" in text and "buy skipped (slot_busy)" in text


def test_pause_and_resume_one_strategy_from_the_command_line(engine: Engine, cli: Cli) -> None:
    done = cli("pause", "hourly_limit_ws")
    assert "the buys of hourly_limit_ws paused since" in done.stdout
    msg = buy_message("hourly_limit_ws")
    assert process_buy(engine.rt, msg).reason == "paused"
    with engine.rt.ledger.begin() as s:
        row = s.get(Signal, msg["signal_id"])
        assert row is not None and row.detail.startswith("hourly_limit_ws is paused since")
    assert process_buy(engine.rt, buy_message("batch_buy_ws")).outcome == "accepted"
    assert "every buy paused" in cli("pause").stdout
    cli("resume")  # every buy again, but hourly_limit_ws's own switch stays on
    assert process_buy(engine.rt, buy_message("hourly_limit_ws", "ETH-USDT")).reason == "paused"
    assert "hourly_limit_ws resumed" in cli("resume", "hourly_limit_ws").stdout
    assert process_buy(engine.rt, buy_message("hourly_limit_ws", "ETH-USDT")).outcome == (
        "accepted"
    )


# -- emergency commands ---------------------------------------------------------------------------


def test_cancel_buys_cancels_every_open_buy_and_keeps_what_filled(engine: Engine, cli: Cli) -> None:
    btc = buy(engine, "hourly_limit_ws", "BTC-USDT")
    eth = buy(engine, "original_gap", "ETH-USDT")
    sol = buy(engine, "batch_buy_ws", "SOL-USDT")
    # The market near SOL's limit: its take-profit (151.5) will rest above the bid.
    engine.venue.set_price("SOL-USDT", Decimal("150.5"), Decimal("150.2"), Decimal("150.8"))
    engine.venue.fill(sol.ord_id or sol.cl_ord_id, Decimal("0.03"))  # part of SOL's buy fills
    engine.pump()
    done = cli("cancel-buys")
    assert f"{btc.cl_ord_id} (BTC-USDT/hourly_limit_ws) live -> canceled" in done.stdout
    assert f"{eth.cl_ord_id} (ETH-USDT/original_gap) live -> canceled" in done.stdout
    assert f"{sol.cl_ord_id} (SOL-USDT/batch_buy_ws) partially_filled -> canceled" in done.stdout
    assert "3 open buy(s), 3 no longer open" in done.stdout
    assert "buys are not paused" in done.stdout
    engine.pump()
    states = {o.cl_ord_id: o.state for o in rows(engine, Order)}
    assert [states[o.cl_ord_id] for o in (btc, eth, sol)] == ["canceled"] * 3
    # What SOL's buy bought became a lot with its take-profit, as on any canceled buy.
    [lot] = rows(engine, Lot)
    assert (lot.inst_id, lot.state) == ("SOL-USDT", "open")
    [tp] = [o for o in rows(engine, Order) if o.side == "sell"]
    assert (tp.purpose, tp.lot_id) == ("take_profit", lot.id)
    assert {o.state.value for o in engine.venue.orders() if o.side == "buy"} == {"canceled"}
    assert "0 open buy(s)" in cli("cancel-buys").stdout


def test_flatten_sells_every_unsold_lot_at_the_bid(engine: Engine, cli: Cli) -> None:
    lot = filled(engine)
    engine.venue.set_price("BTC-USDT", Decimal("59000"), Decimal("58990"), Decimal("59010"))
    assert "0 slot(s)" in cli("flatten", "ETH-USDT").stdout  # nothing held there
    done = cli("flatten")
    assert f"BTC-USDT/hourly_limit_ws lot(s) {lot.id}: done: manual: lot {lot.id}: " in done.stdout
    assert "1 slot(s) with unsold lots, every exit placed" in done.stdout
    engine.pump()
    sells = [o for o in rows(engine, Order) if o.side == "sell"]
    assert [(o.purpose, o.state) for o in sells] == [
        ("take_profit", "canceled"),
        ("exit", "filled"),
    ]
    assert sells[1].px == Decimal("58990")  # the best bid
    [lot] = rows(engine, Lot)
    assert lot.state == "closed" and lot.sold_sz == lot.size
    with engine.rt.ledger.begin() as s:
        flat = s.scalars(select(Signal).where(Signal.signal_id.like("flatten:%"))).one()
        assert (flat.kind, flat.outcome, flat.reason) == ("sell", "done", "manual")

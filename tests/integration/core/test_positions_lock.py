"""MAX_OPEN_POSITIONS under concurrency on PostgreSQL: the count must see what the previous
holder of the positions lock committed (a count in the statement that waits for the lock
would not: a READ COMMITTED statement sees only what was committed before it started), and
its own intent, written before the lock is taken (``worker.ledger.admission``)."""

from __future__ import annotations

import multiprocessing
import threading
import time
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from sqlalchemy import func, select

from tests import builders
from tests.builders import buy_message
from tests.integration.core.conftest import Engine, with_settings
from worker.domain.money import InstrumentRules
from worker.exchange.memory import InMemoryExchange
from worker.ledger.admission import POSITIONS_LOCK
from worker.ledger.db import Ledger, lock_key
from worker.ledger.models import Order, Signal
from worker.runtime import Runtime
from worker.services.buy import BuyResult, process_buy

STRATEGIES = ("hourly_limit_ws", "original_gap", "stable_buy_ws", "batch_buy_ws")


def test_two_slots_racing_for_the_last_position_admit_one(engine: Engine) -> None:
    if engine.rt.ledger.sqlite:
        pytest.skip("SQLite serializes every write transaction (BEGIN IMMEDIATE)")
    with_settings(engine, MAX_OPEN_POSITIONS=1)
    url = engine.rt.settings.database_url.replace("postgresql+psycopg://", "postgresql://")
    results: list[BuyResult] = []
    with psycopg.connect(url) as holder:
        # Hold the positions lock so that both admissions queue behind it, then let go.
        holder.execute(f"SELECT pg_advisory_xact_lock({lock_key('open_positions')})")
        threads = [
            threading.Thread(
                target=lambda s=strategy: results.append(process_buy(engine.rt, buy_message(s)))
            )
            for strategy in ("hourly_limit_ws", "original_gap")
        ]
        for t in threads:
            t.start()
        time.sleep(0.5)
        holder.commit()
        for t in threads:
            t.join(timeout=30)
    assert sorted((r.outcome, r.reason) for r in results) == [
        ("accepted", ""),
        ("skipped", "risk_limit"),
    ]
    with engine.rt.ledger.begin() as s:
        assert s.scalar(select(func.count()).select_from(Order)) == 1


def _buy_in_a_process(db_url: str, limit: int, index: int, start: Any, out: Any) -> None:
    """One worker process: a buy signal on a slot of its own (instrument ``R<n>``)."""
    inst_id = f"R{index // len(STRATEGIES)}-USDT"
    strategy = STRATEGIES[index % len(STRATEGIES)]
    venue = InMemoryExchange()
    rules = InstrumentRules(
        inst_id, Decimal("0.01"), Decimal("0.0001"), Decimal("0.001"), inst_id[:-5], "USDT"
    )
    venue.add_instrument(rules)
    venue.set_price(inst_id, Decimal("200"))  # a buy at 100 rests on the book
    settings = builders.make_settings(DATABASE_URL=db_url, MAX_OPEN_POSITIONS=str(limit))
    ledger = Ledger.from_url(db_url)
    rt = Runtime(settings, ledger, venue, builders.RecordingScheduler())
    msg = buy_message(strategy, inst_id, px="100", quote_sz="1")
    start.wait(60)
    try:
        result = process_buy(rt, msg)
        out.put((inst_id, strategy, result.outcome, result.reason))
    finally:
        ledger.engine.dispose()


def _waiting_for_the_positions_lock(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
            "AND ((classid::bigint << 32) | objid::bigint) = %s",
            (POSITIONS_LOCK,),
        ).fetchone()
    return int(row[0]) if row else 0


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize("held", [False, True], ids=["free-for-all", "queued-on-the-lock"])
def test_many_processes_on_distinct_slots_admit_exactly_the_limit(db_url: str, held: bool) -> None:
    """Twelve processes, twelve free slots, MAX_OPEN_POSITIONS=3: exactly three buys go.

    ``queued-on-the-lock``: the positions lock is held until every process has written its
    intent and waits for it, so that all twelve count one after another; ``free-for-all``:
    as they come.
    """
    processes, limit = 12, 3
    url = db_url.replace("postgresql+psycopg://", "postgresql://")
    ctx = multiprocessing.get_context("spawn")
    start, out = ctx.Barrier(processes + 1), ctx.Queue()
    procs = [
        ctx.Process(target=_buy_in_a_process, args=(db_url, limit, i, start, out))
        for i in range(processes)
    ]
    for p in procs:
        p.start()
    with psycopg.connect(url) as holder:
        if held:
            holder.execute(f"SELECT pg_advisory_xact_lock({POSITIONS_LOCK})")
        start.wait(120)
        if held:
            deadline = time.monotonic() + 60
            while _waiting_for_the_positions_lock(url) < processes:
                assert time.monotonic() < deadline, "the processes never queued on the lock"
                time.sleep(0.05)
        holder.commit()
        results = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    outcomes = sorted((outcome, reason) for *_, outcome, reason in results)
    assert outcomes == [("accepted", "")] * limit + [("skipped", "risk_limit")] * (
        processes - limit
    )
    ledger = Ledger.from_url(db_url)
    try:
        with ledger.begin() as s:
            admitted = s.execute(select(Order.inst_id, Order.strategy)).all()
            skipped = s.execute(
                select(Signal.inst_id, Signal.strategy, Signal.order_id, Signal.detail).where(
                    Signal.reason == "risk_limit"
                )
            ).all()
    finally:
        ledger.engine.dispose()
    # Exactly the limit holds a position; a refused buy left no intent, only its reason.
    assert sorted(admitted) == sorted((i, st) for i, st, o, _ in results if o == "accepted")
    assert len(skipped) == processes - limit
    assert all(order_id is None for *_, order_id, _ in skipped)
    assert all(
        d.startswith(f"MAX_OPEN_POSITIONS={limit} reached: {limit} held") for *_, d in skipped
    )


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_many_processes_on_sqlite_admit_exactly_the_limit(db_url: str) -> None:
    """The embedded default: no positions lock, but every write transaction is serialized
    (BEGIN IMMEDIATE), so the count taken after our intent still sees every committed one.
    Twelve processes, twelve free slots, MAX_OPEN_POSITIONS=3: exactly three buys go."""
    processes, limit = 12, 3
    ctx = multiprocessing.get_context("spawn")
    start, out = ctx.Barrier(processes + 1), ctx.Queue()
    procs = [
        ctx.Process(target=_buy_in_a_process, args=(db_url, limit, i, start, out))
        for i in range(processes)
    ]
    for p in procs:
        p.start()
    start.wait(120)
    results = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    outcomes = sorted((outcome, reason) for *_, outcome, reason in results)
    assert outcomes == [("accepted", "")] * limit + [("skipped", "risk_limit")] * (
        processes - limit
    )
    ledger = Ledger.from_url(db_url)
    try:
        with ledger.begin() as s:
            admitted = s.execute(select(Order.inst_id, Order.strategy)).all()
    finally:
        ledger.engine.dispose()
    assert sorted(admitted) == sorted((i, st) for i, st, o, _ in results if o == "accepted")

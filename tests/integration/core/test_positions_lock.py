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
from worker.domain.ids import buy_cl_ord_id
from worker.domain.money import InstrumentRules
from worker.exchange.memory import InMemoryExchange
from worker.ledger.admission import POSITIONS_LOCK, Admission, Admitted, admit, try_admit
from worker.ledger.db import Ledger, lock_key, utcnow
from worker.ledger.models import Order, Signal
from worker.runtime import Runtime
from worker.services.buy import BuyResult, process_buy
from worker.signals import parse_buy

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
        ledger.dispose()


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
    racers = [(db_url, limit, i) for i in range(processes)]
    results = _race_for_the_positions_lock(db_url, _buy_in_a_process, racers, held)
    _assert_exactly_the_limit(db_url, results, limit)
    skipped = _risk_limit_refusals(db_url)
    # A refused buy left no intent, only its reason.
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
    procs, start, out = _spawn(_buy_in_a_process, [(db_url, limit, i) for i in range(processes)])
    start.wait(120)
    _assert_exactly_the_limit(db_url, _collect(procs, out), limit)


# Racing processes ---------------------------------------------------------------------------


def _spawn(target: Any, argss: list[tuple[Any, ...]]) -> tuple[list[Any], Any, Any]:
    """One spawned process per argument tuple (each gets the start barrier and the result
    queue last), started and waiting at the barrier; the caller releases them."""
    ctx = multiprocessing.get_context("spawn")
    start, out = ctx.Barrier(len(argss) + 1), ctx.Queue()
    procs = [ctx.Process(target=target, args=(*args, start, out)) for args in argss]
    for p in procs:
        p.start()
    return procs, start, out


def _collect(procs: list[Any], out: Any) -> list[Any]:
    results = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    return results


def _race_for_the_positions_lock(
    db_url: str, target: Any, racers: list[tuple[Any, ...]], held: bool
) -> list[Any]:
    """Release ``racers`` together and collect their results. ``held``: the positions lock
    is held until every one of them waits for it, so that they count one after another."""
    url = db_url.replace("postgresql+psycopg://", "postgresql://")
    procs, start, out = _spawn(target, racers)
    with psycopg.connect(url) as holder:
        if held:
            holder.execute(f"SELECT pg_advisory_xact_lock({POSITIONS_LOCK})")
        start.wait(120)
        if held:
            deadline = time.monotonic() + 60
            while _waiting_for_the_positions_lock(url) < len(racers):
                assert time.monotonic() < deadline, "the processes never queued on the lock"
                time.sleep(0.05)
        holder.commit()
        return _collect(procs, out)


def _orders(db_url: str) -> list[Any]:
    ledger = Ledger.from_url(db_url)
    try:
        with ledger.begin() as s:
            return list(s.execute(select(Order.inst_id, Order.strategy)).all())
    finally:
        ledger.dispose()


def _risk_limit_refusals(db_url: str) -> list[Any]:
    ledger = Ledger.from_url(db_url)
    try:
        with ledger.begin() as s:
            return list(
                s.execute(
                    select(Signal.inst_id, Signal.strategy, Signal.order_id, Signal.detail).where(
                        Signal.reason == "risk_limit"
                    )
                ).all()
            )
    finally:
        ledger.dispose()


def _assert_exactly_the_limit(db_url: str, results: list[Any], limit: int) -> None:
    """``limit`` buys accepted, every other one refused for ``risk_limit``, and the ledger
    holds exactly the accepted ones."""
    outcomes = sorted((outcome, reason) for *_, outcome, reason in results)
    assert outcomes == [("accepted", "")] * limit + [("skipped", "risk_limit")] * (
        len(results) - limit
    )
    accepted = sorted((i, st) for i, st, outcome, _ in results if outcome == "accepted")
    assert sorted(_orders(db_url)) == accepted


# Both admission paths racing -----------------------------------------------------------------


def _admit_in_a_process(
    db_url: str, limit: int, inst_id: str, signal_id: str, fast: bool, start: Any, out: Any
) -> None:
    """One worker process deciding one buy: through ``admit`` (PostgreSQL's one-statement
    admission first) or through ``try_admit`` alone, as a worker of the version before it
    does during a rolling upgrade, or as ``admit`` does when the function gives way."""
    strategy = "hourly_limit_ws"
    message = buy_message(strategy, inst_id, px="100", quote_sz="1", signal_id=signal_id)
    request = Admission(
        signal=parse_buy(message),
        cl_ord_id=buy_cl_ord_id(strategy, signal_id),
        px=Decimal("100"),
        sz=Decimal("0.01"),
        unsizable=None,
        guard_seconds=600,
        ttl_seconds=600,
        max_positions=limit,
        pending_timeout_seconds=10,
    )
    ledger = Ledger.from_url(db_url)
    start.wait(60)
    try:
        if fast:
            decided = admit(ledger, request, utcnow)
        else:
            with ledger.connect() as conn:
                decided = try_admit(ledger, conn, request, utcnow)
        if isinstance(decided, Admitted):
            out.put((inst_id, strategy, "accepted", ""))
        else:
            out.put((inst_id, strategy, "skipped", decided.reason.value))
    finally:
        ledger.dispose()


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize("held", [False, True], ids=["free-for-all", "queued-on-the-lock"])
def test_both_admission_paths_racing_on_distinct_slots_admit_exactly_the_limit(
    db_url: str, held: bool
) -> None:
    """Twelve processes on twelve free slots, MAX_OPEN_POSITIONS=3, half through the
    one-statement admission and half through ``try_admit``: they share the slot locks, the
    positions lock and the count, so exactly three buys go whichever path each took."""
    processes, limit = 12, 3
    racers = [(db_url, limit, f"M{i}-USDT", f"mixed-{i}", i % 2 == 0) for i in range(processes)]
    results = _race_for_the_positions_lock(db_url, _admit_in_a_process, racers, held)
    _assert_exactly_the_limit(db_url, results, limit)
    assert len(_risk_limit_refusals(db_url)) == processes - limit


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_both_admission_paths_racing_on_one_slot_admit_one(db_url: str) -> None:
    """Eight different signals for one slot, half through each path: one position per slot
    holds across the two (the same slot row lock), the others find the slot busy."""
    racers = [(db_url, 100, "ONE-USDT", f"one-slot-{i}", i % 2 == 0) for i in range(8)]
    procs, start, out = _spawn(_admit_in_a_process, racers)
    start.wait(120)
    results = _collect(procs, out)
    assert (
        sorted((o, r) for *_, o, r in results)
        == [("accepted", "")] + [("skipped", "slot_busy")] * 7
    )
    assert _orders(db_url) == [("ONE-USDT", "hourly_limit_ws")]

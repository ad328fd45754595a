"""PostgreSQL's one-round-trip admission (``limitflow_admit``, migration 0007) against
``try_admit``, the full decision it stands in for.

The same generated ledger (orders of every state in the signal's slot and its neighbours, lots,
pause switches, the signal already recorded, positions elsewhere, a limit) is given to each.
Wherever the function decides, it must decide as ``try_admit`` does and write the same rows;
wherever it does not, it must keep nothing and leave the decision to ``try_admit``.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, event, insert, select, text

from tests import builders
from tests.conftest import empty_ledger
from tests.statements import psycopg_statements
from tests.venues import make_memory_exchange
from worker import runtime
from worker.domain.ids import buy_cl_ord_id
from worker.domain.lots import LotState
from worker.domain.orders import OrderState
from worker.domain.results import SkipReason
from worker.ledger.admission import (
    FAST_WAIT_MS,
    POSITIONS_LOCK,
    Admission,
    Admitted,
    Blocked,
    admit,
    fast_admit,
    try_admit,
)
from worker.ledger.db import Ledger
from worker.ledger.models import EngineFlag, Lot, Order, Signal
from worker.runtime import REHEARSALS, Runtime, _rehearse_buy
from worker.services.buy import process_buy
from worker.signals import parse_buy

pytestmark = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)

NOW = datetime(2026, 11, 30, 8, 27, tzinfo=UTC)
GUARD = 600  # BUY_GUARD_WINDOW_SECONDS
TTL = 60  # SIGNAL_TTL_SECONDS
TARGET = ("T-USDT", "hourly_limit_ws")
AGES = [1, GUARD - 1, GUARD, GUARD + 1, 86_400]  # seconds before NOW


def slots(tag: str = "") -> list[tuple[str, str]]:
    """The signal's slot (the first), and neighbours sharing its instrument or its strategy."""
    inst = f"T{tag}-USDT"
    return [
        (inst, TARGET[1]),
        (inst, "batch_buy_ws"),
        (f"U{tag}-USDT", TARGET[1]),
        (f"V{tag}-USDT", "x"),
    ]


SLOTS = slots()

order = st.tuples(
    st.integers(0, len(SLOTS) - 1),
    st.sampled_from(["buy", "sell"]),
    st.sampled_from(list(OrderState)),
    st.sampled_from(["0", "0.5"]),  # filled
    st.sampled_from(AGES),
)
lot = st.tuples(st.integers(0, len(SLOTS) - 1), st.sampled_from(list(LotState)))
flag = st.tuples(
    st.sampled_from(["paused", "paused:hourly_limit_ws", "paused:batch_buy_ws"]), st.booleans()
)
ledgers = st.fixed_dictionaries(
    {
        "orders": st.lists(order, max_size=5),
        "lots": st.lists(lot, max_size=3),
        "flags": st.lists(flag, max_size=3, unique_by=lambda f: f[0]),
        "recorded": st.booleans(),  # the signal was recorded before (a redelivery)
        "limit": st.integers(0, 5),
        # Past its expiry at NOW (negative: still fresh).
        "late_ms": st.sampled_from([-30_000, -21, -19, -1, 0, 1, 5_000]),
    }
)

_ids = itertools.count(1)


def _seed(conn: Connection, state: dict[str, Any], signal_id: str, tag: str = "") -> None:
    """One generated ledger around the slot ``slots(tag)[0]`` (``tag``: several side by side)."""
    ids = itertools.count(1)  # the same clOrdIds in both runs
    around = slots(tag)
    open_buys: set[tuple[str, str]] = set()
    for slot, side, state_, filled, age in state["orders"]:
        inst_id, strategy = around[slot]
        if side == "buy" and state_ in ("pending_submit", "live", "partially_filled"):
            if (inst_id, strategy) in open_buys:
                continue  # one open buy per slot (the database's own backstop)
            open_buys.add((inst_id, strategy))
        created = NOW - timedelta(seconds=age)
        _order(conn, next(ids), inst_id, strategy, side, state_, Decimal(filled), created)
    unsold: set[tuple[str, str]] = set()
    for slot, lot_state in state["lots"]:
        inst_id, strategy = around[slot]
        if lot_state != LotState.CLOSED:
            if (inst_id, strategy) in unsold:
                continue
            unsold.add((inst_id, strategy))
        bought = _order(
            conn, next(ids), inst_id, strategy, "buy", "filled", Decimal(1), NOW - timedelta(1)
        )
        conn.execute(
            insert(Lot).values(
                buy_order_id=bought,
                inst_id=inst_id,
                strategy=strategy,
                state=lot_state.value,
                size=Decimal(1),
                avg_px=Decimal(100),
                cost=Decimal(100),
                take_profit_px=Decimal(110),
                opened_at=NOW - timedelta(1),
                exit_after=NOW + timedelta(1),
            )
        )
    for name, enabled in state["flags"]:
        conn.execute(insert(EngineFlag).values(name=name, enabled=enabled, updated_at=NOW))
    if state["recorded"]:
        conn.execute(
            insert(Signal).values(
                signal_id=signal_id, kind="buy", outcome="skipped", received_at=NOW
            )
        )


def _order(
    conn: Connection,
    number: int,
    inst_id: str,
    strategy: str,
    side: str,
    state: str,
    filled: Decimal,
    created: datetime,
) -> int:
    row = conn.execute(
        insert(Order)
        .values(
            cl_ord_id=f"seed{number}{inst_id[:-5]}{strategy[:3]}{side}",
            inst_id=inst_id,
            strategy=strategy,
            side=side,
            purpose="entry" if side == "buy" else "take_profit",
            state=state,
            px=Decimal(100),
            sz=Decimal(1),
            filled_sz=filled,
            created_at=created,
            updated_at=created,
        )
        .returning(Order.id)
    )
    return int(row.scalar_one())


def _request(state: dict[str, Any], signal_id: str, tag: str = "") -> Admission:
    created = int(NOW.timestamp() * 1000) - TTL * 1000 - state["late_ms"]
    inst_id, strategy = slots(tag)[0]
    signal = parse_buy(
        builders.buy_message(
            strategy, inst_id, px="100", signal_id=signal_id, created_at=created, ttl_ms=None
        )
    )
    return Admission(
        signal=signal,
        cl_ord_id=buy_cl_ord_id(signal.strategy, signal_id),
        px=Decimal("100"),
        sz=Decimal("0.1"),
        unsizable=None,
        guard_seconds=GUARD,
        ttl_seconds=TTL,
        max_positions=state["limit"],
        pending_timeout_seconds=10,
    )


def _rows(conn: Connection) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The orders and signals tables, without the ids the two runs number differently."""
    orders = [tuple(r)[1:] for r in conn.execute(select(Order).order_by(Order.cl_ord_id))]
    signals = [
        tuple(r)[:7] + tuple(r)[8:]  # all but order_id
        for r in conn.execute(select(Signal.__table__).order_by(Signal.signal_id))
    ]
    return orders, signals


@pytest.fixture
def ledger(db_url: str) -> Iterator[Ledger]:
    led = Ledger.from_url(db_url)
    yield led
    led.dispose()


@dataclass(frozen=True)
class Sent:
    """A statement as psycopg sent it, and whether its connection was in autocommit and
    outside any transaction (a statement that is a transaction by itself)."""

    sql: str
    params: Any
    autocommit: bool
    idle: bool


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Sent]]:
    """Every statement psycopg sends from now on: through SQLAlchemy's pool or the lane."""
    seen: list[Sent] = []

    def record(cur: psycopg.Cursor[Any], statement: str, params: Any) -> None:
        conn = cur.connection
        idle = conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        seen.append(Sent(statement, params, conn.autocommit, idle))

    with psycopg_statements(monkeypatch, record):
        yield seen


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(state=ledgers)
def test_the_function_decides_as_try_admit_does(ledger: Ledger, state: dict[str, Any]) -> None:
    signal_id = f"sig-{next(_ids)}"
    request = _request(state, signal_id)

    with ledger.connect() as conn:
        empty_ledger(conn)
        _seed(conn, state, signal_id)
        seeded = _rows(conn)
    fast = fast_admit(ledger, request, lambda: NOW)
    with ledger.connect() as conn:
        after_fast = _rows(conn)

    with ledger.connect() as conn:
        empty_ledger(conn)
        _seed(conn, state, signal_id)
        reference = try_admit(ledger, conn, request, lambda: NOW)
    with ledger.connect() as conn:
        after_reference = _rows(conn)

    if isinstance(fast, Admitted):
        assert isinstance(reference, Admitted)
        assert after_fast == after_reference  # the same intent and signal row, to the column
        assert fast.deadline_at == reference.deadline_at
    elif fast is None:
        assert after_fast == seeded  # nothing kept
        if state["late_ms"] > -FAST_WAIT_MS:
            return  # too close to its expiry for the function: try_admit decides alone
        assert not isinstance(reference, Admitted)  # no contention here: no "waited"
        assert reference.reason is not SkipReason.DUPLICATE
    else:
        assert fast == Blocked(SkipReason.DUPLICATE) == reference
        assert after_fast == seeded == after_reference


GRID = [
    {"orders": [o], "lots": [], "recorded": recorded}
    for o in itertools.product(range(4), ["buy", "sell"], list(OrderState), ["0", "0.5"], AGES)
    for recorded in (False, True)
] + [
    {"orders": [], "lots": [lot], "recorded": False}
    for lot in itertools.product(range(4), list(LotState))
]


def test_every_single_order_and_lot_is_decided_as_try_admit_does(ledger: Ledger) -> None:
    """Each order (every slot, side, state, fill and age around the cooldown's edge) and each
    lot, alone beside a signal, exhaustively: each case on instruments of its own, all in one
    ledger (the limit is out of reach here; the generated test covers it and the switches)."""
    cases = [(case | {"flags": [], "limit": 10_000, "late_ms": -30_000}) for case in GRID]

    def run(decide: Any) -> tuple[list[Any], Any]:
        with ledger.connect() as conn:
            empty_ledger(conn)
            for i, case in enumerate(cases):
                _seed(conn, case, f"grid-{i}", tag=str(i))
        decided = [decide(_request(case, f"grid-{i}", str(i))) for i, case in enumerate(cases)]
        with ledger.connect() as conn:
            return decided, _rows(conn)

    def fast(request: Admission) -> Any:
        return fast_admit(ledger, request, lambda: NOW)

    def reference(request: Admission) -> Any:
        with ledger.connect() as conn:
            return try_admit(ledger, conn, request, lambda: NOW)

    fast_decided, fast_rows = run(fast)
    reference_decided, reference_rows = run(reference)
    for case, by_fast, by_reference in zip(cases, fast_decided, reference_decided, strict=True):
        if by_fast is None:
            assert not isinstance(by_reference, Admitted), case
            assert by_reference.reason is not SkipReason.DUPLICATE, case
        elif isinstance(by_fast, Admitted):
            assert isinstance(by_reference, Admitted), case
        else:
            assert by_fast == by_reference == Blocked(SkipReason.DUPLICATE), case
    assert sum(isinstance(d, Admitted) for d in fast_decided) > len(cases) // 4
    # The same intents, to the column; the refusals' signal rows exist only in the reference
    # (the function leaves refusals to it).
    refused = {f"grid-{i}" for i, d in enumerate(fast_decided) if d is None}
    assert fast_rows[0] == reference_rows[0]
    assert [r for r in reference_rows[1] if r[0] not in refused] == fast_rows[1]


FLAG_NAMES = ["paused", "paused:hourly_limit_ws", "paused:batch_buy_ws"]


def test_every_pause_switch_is_decided_as_try_admit_does(ledger: Ledger) -> None:
    """Each switch absent, off or on, in every combination (27 ledgers)."""
    for settings_ in itertools.product([None, False, True], repeat=len(FLAG_NAMES)):
        flags = [(n, on) for n, on in zip(FLAG_NAMES, settings_, strict=True) if on is not None]
        case = {"orders": [], "lots": [], "flags": flags, "recorded": False, "limit": 5}
        case["late_ms"] = -30_000
        decided = []
        for decide in ("fast", "reference"):
            with ledger.connect() as conn:
                empty_ledger(conn)
                _seed(conn, case, "switched")
            request = _request(case, "switched")
            if decide == "fast":
                decided.append(fast_admit(ledger, request, lambda: NOW))
            else:
                with ledger.connect() as conn:
                    decided.append(try_admit(ledger, conn, request, lambda: NOW))
        fast, reference = decided
        paused = any(on and name in FLAG_NAMES[:2] for name, on in flags)
        assert isinstance(reference, Blocked) == paused, flags
        assert (fast is None) == paused, flags
        assert isinstance(fast, Admitted) == isinstance(reference, Admitted), flags


def test_the_function_locks_the_positions_lock_of_the_ledger(ledger: Ledger) -> None:
    """The migration writes the lock's key out; it must be the ledger's."""
    with ledger.connect() as conn:
        source = conn.execute(
            text("SELECT prosrc FROM pg_proc WHERE proname = 'limitflow_admit'")
        ).scalar_one()
    assert f"pg_advisory_xact_lock({POSITIONS_LOCK})" in source


def test_a_free_slot_is_admitted_in_one_round_trip(
    ledger: Ledger, sent: list[Sent], tmp_path: Any
) -> None:
    """The buy path's admission on a free slot: one statement, on a connection in autocommit
    outside any transaction (no BEGIN, no COMMIT), and nothing through the engine's pool."""
    assert ledger.lane is not None
    ledger.lane.one("SELECT 1", {})  # its connection is open, as after a warm-up
    sent.clear()
    through_pool: list[str] = []
    event.listen(
        ledger.engine, "before_cursor_execute", lambda _c, _cur, sql, *_: through_pool.append(sql)
    )
    request = _request(
        {"limit": 5, "late_ms": -30_000, "orders": [], "lots": [], "flags": []}, "free-slot"
    )
    decided = admit(ledger, request, lambda: NOW)
    assert isinstance(decided, Admitted)
    assert [(s.sql.split("(")[0], s.autocommit, s.idle) for s in sent] == [
        ("SELECT admitted_id, verdict FROM limitflow_admit", True, True)
    ]
    assert through_pool == []
    with ledger.connect() as conn:  # the deadline its writer sends is the row's
        row = conn.execute(select(Order.deadline_at)).scalar_one()
    assert decided.deadline_at == row


def test_a_slow_slot_lock_leaves_the_decision_to_try_admit(ledger: Ledger) -> None:
    """Held on the slot's lock past FAST_WAIT_MS, the function keeps nothing; ``admit`` then
    decides under the lock with the time taken there."""
    request = _request({"limit": 5, "late_ms": -30_000}, "slow-slot")
    with ledger.connect() as holder:
        ledger.lock_slot(holder, *TARGET)
        result: list[Any] = []
        worker = threading.Thread(target=lambda: result.append(admit(ledger, request, lambda: NOW)))
        worker.start()
        worker.join(0.3)
        assert worker.is_alive()  # waiting for the slot
    worker.join(10)
    assert isinstance(result[0], Admitted)
    with ledger.connect() as conn:
        orders, signals = _rows(conn)
    assert [o[0] for o in orders] == [request.cl_ord_id]  # one intent: the fast one kept none
    assert [s[0] for s in signals] == ["slow-slot"]


def _runtime(ledger: Ledger, db_url: str, home: Any, **settings: Any) -> Runtime:
    """A runtime on ``ledger`` and the in-memory venue."""
    settings_ = builders.make_settings(DATABASE_URL=db_url, LIMITFLOW_HOME=home, **settings)
    return Runtime(settings_, ledger, make_memory_exchange(), builders.RecordingScheduler())


def test_process_buy_on_postgresql_goes_through_the_function(
    ledger: Ledger, db_url: str, sent: list[Sent], tmp_path: Any
) -> None:
    """The buy path itself takes the one-round-trip admission (not only ``admit``)."""
    rt = _runtime(ledger, db_url, tmp_path)
    assert process_buy(rt, builders.buy_message()).order_state == "live"
    assert sum("limitflow_admit" in s.sql for s in sent) == 1
    assert not any(s.sql.startswith("INSERT INTO slots") for s in sent)


@pytest.mark.parametrize("max_order_usdt", ["100", "0.5"])  # 0.5: its 1 USDT is unsizable
def test_the_warm_up_rehearses_the_admission_and_keeps_nothing(
    ledger: Ledger, db_url: str, sent: list[Sent], tmp_path: Any, max_order_usdt: str
) -> None:
    """A worker process's warm-up reads, sizes and admits REHEARSALS buys (PostgreSQL's plans
    settle after five, Python's bytecode after eight runs) on slots of its own, and rolls
    everything back; a budget too small for its buys does not stop it."""
    rt = _runtime(ledger, db_url, tmp_path, MAX_ORDER_USDT=max_order_usdt)
    _rehearse_buy(rt)
    sizes = [(s.params["px"], s.params["sz"]) for s in sent if "limitflow_admit" in s.sql]
    assert len(sizes) == REHEARSALS and all(px > 0 and sz > 0 for px, sz in sizes)
    # Each in a transaction of its own on the lane (rolled back: nothing is kept, below).
    assert all(not s.idle for s in sent if "limitflow_admit" in s.sql)
    with ledger.connect() as conn:
        assert _rows(conn) == ([], [])
        assert conn.execute(text("SELECT count(*) FROM slots")).scalar_one() == 0


def test_the_warm_up_holds_the_positions_lock_for_one_rehearsal_at_a_time(
    ledger: Ledger, db_url: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every real admission waits for the positions lock, and an admission holds it until its
    transaction ends: a worker process starting while buys arrive must not keep it for its
    whole warm-up. Before each rehearsal, another connection can take the lock."""
    rt = _runtime(ledger, db_url, tmp_path)
    free_before: list[bool] = []

    def rehearsal(
        led: Ledger, request: Admission, now: Any, *, rehearsal: bool = False
    ) -> Admitted | Blocked | None:
        with ledger.engine.connect() as other:  # a real admission, in another process
            taken = other.execute(
                text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": POSITIONS_LOCK}
            ).scalar_one()
            other.rollback()
        free_before.append(bool(taken))
        return fast_admit(led, request, now, rehearsal=rehearsal)

    monkeypatch.setattr(runtime, "fast_admit", rehearsal)
    _rehearse_buy(rt)
    assert free_before == [True] * REHEARSALS
    with ledger.connect() as conn:
        assert _rows(conn) == ([], [])

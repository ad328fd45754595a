"""Admitting a buy: one ledger operation that decides, and writes the intent or says why not.

``try_admit`` runs in the caller's transaction and leaves it ready to commit: ``Admitted``
(the intent row is written and the signal recorded ``accepted``) or ``Blocked`` (the signal
recorded ``skipped`` with its reason and the facts behind it; a ``duplicate`` was recorded
before and is left alone).

The order of its steps keeps MAX_OPEN_POSITIONS exact while admissions on different slots run
side by side, holding the cluster-wide positions lock as briefly as it can:

1. lock the slot's row (one position per slot), and take the intent's time under it;
2. one statement: the blockers, and unless one applies, the intent's INSERT with its signal's
   row;
3. take the positions lock, then count the positions. On PostgreSQL both go in ONE round
   trip as two statements (``LOCK_AND_COUNT``): the count's statement starts after the lock
   is granted, so READ COMMITTED gives it a snapshot in which every admission that held the
   lock before has committed, and our own uncommitted intent is counted too. (A count in the
   statement that waits for the lock would not see them: its snapshot predates the wait.)
   Over the limit, the intent and its signal row are deleted again and the buy is
   ``risk_limit``;
4. the caller commits, which releases the lock (only then can the next count see our intent).

So the lock is held for the count and the commit: no statement of ours waits on the worker
while it is held, except the COMMIT itself. Never ``synchronous_commit=off`` here: an intent
is committed before anything is sent (promise 2). On SQLite every write transaction is
serialized anyway (``BEGIN IMMEDIATE``).

``admit`` is what the buy path calls. On PostgreSQL it first tries the common case in ONE
round trip: ``limitflow_admit()`` (migration 0007) runs the same three steps inside one
autocommit statement, so the decision, the intent and its COMMIT cost one round trip instead
of five (BEGIN, the three steps, COMMIT). That function only admits, or says ``duplicate``
(which writes nothing either way); for anything else (a blocker, over the limit, a signal with less
than ``FAST_WAIT_MS`` left, a wait for the slot's lock longer than that) it keeps nothing and
``try_admit`` decides again, recording the refusal with its facts under the slot lock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, cast

import orjson
from sqlalchemy import (
    BindParameter,
    Delete,
    Float,
    Select,
    Table,
    bindparam,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from worker.domain.deadlines import placement_deadline, to_epoch_ms
from worker.domain.describe import when
from worker.domain.orders import OrderState, Side
from worker.domain.results import BLOCKERS as BLOCKER_REASONS
from worker.domain.results import SkipReason
from worker.ledger import facts
from worker.ledger.db import Executor, Ledger, lock_key
from worker.ledger.models import EngineFlag, Lot, Order, Signal
from worker.ledger.signals import record_outcome
from worker.ledger.states import OPEN_SQL, UNSOLD_LOT_SQL
from worker.signals import BuySignal, to_message

POSITIONS_LOCK = lock_key("open_positions")


@dataclass(frozen=True, slots=True)
class Admission:
    """A sized buy signal asking for its slot, and the limits that apply to it."""

    signal: BuySignal
    cl_ord_id: str
    px: Decimal
    sz: Decimal
    unsizable: tuple[SkipReason, str] | None  # (reason, detail) when no order can be sized
    guard_seconds: int  # BUY_GUARD_WINDOW_SECONDS
    ttl_seconds: int  # SIGNAL_TTL_SECONDS
    max_positions: int  # MAX_OPEN_POSITIONS
    pending_timeout_seconds: int  # PENDING_TIMEOUT_SECONDS: the placement deadline


@dataclass(frozen=True, slots=True)
class Admitted:
    """The intent is written (``pending_submit``) and the signal recorded ``accepted``;
    ``deadline_at`` is the row's: the ``expTime`` its writer sends it with."""

    order_id: int
    deadline_at: datetime


@dataclass(frozen=True, slots=True)
class Blocked:
    """The buy may not go: why (``duplicate``: recorded before), with the facts."""

    reason: SkipReason
    detail: str = ""


def _blockers() -> Select[Any]:
    inst_id: BindParameter[str] = bindparam("b_inst_id")
    strategy: BindParameter[str] = bindparam("b_strategy")
    in_slot = (Order.inst_id == inst_id) & (Order.strategy == strategy)
    recent = in_slot & (Order.side == Side.BUY) & (Order.created_at > bindparam("b_since"))
    columns: list[Any] = [
        exists().where(Signal.signal_id == bindparam("b_signal_id")),
        exists().where(in_slot, Order.state.in_(OPEN_SQL)),
        exists().where(
            Lot.inst_id == inst_id, Lot.strategy == strategy, Lot.state.in_(UNSOLD_LOT_SQL)
        ),
        # The cooldown starts only with a buy that bought something: one that was rejected,
        # failed, or canceled or expired unfilled bought nothing. (A cast, not a comparison
        # of the money column with a number: correct however a database stores decimals.)
        exists().where(recent, sql_cast(Order.filled_sz, Float) > 0),
        # The switch for every buy, or the one for this strategy (``worker.ledger.switches``).
        exists().where(
            or_(EngineFlag.name == "paused", EngineFlag.name == bindparam("b_pause_flag")),
            EngineFlag.enabled.is_(True),
        ),
    ]
    return select(*(c.label(r) for c, r in zip(columns, BLOCKER_REASONS, strict=True)))


_ORDERS = cast(Table, Order.__table__)
_SIGNALS = cast(Table, Signal.__table__)
_INTENT_COLUMNS = (
    "cl_ord_id",
    "inst_id",
    "strategy",
    "side",
    "purpose",
    "state",
    "px",
    "sz",
    "signal_id",
    "created_at",
    "updated_at",
    "submitted_at",
    "deadline_at",
)
_SIGNAL_COLUMNS = (
    "signal_id",
    "kind",
    "strategy",
    "inst_id",
    "outcome",
    "reason",
    "detail",
    "created_ms",
    "received_at",
    "payload",
)


def _admit_statement() -> Select[Any]:
    """PostgreSQL's step 2 in one statement: the blockers; unless one applies, the intent and
    its signal's row."""
    blockers = _blockers().cte("blockers")
    values = [bindparam(c, type_=_ORDERS.c[c].type) for c in _INTENT_COLUMNS]
    free = ~or_(*blockers.c)
    intent = (
        insert(_ORDERS)
        .from_select(_INTENT_COLUMNS, select(*values).select_from(blockers).where(free))
        .returning(_ORDERS.c.id)
        .cte("intent")
    )
    signal_values = [bindparam(f"signal_{c}", type_=_SIGNALS.c[c].type) for c in _SIGNAL_COLUMNS]
    signal = (
        postgresql.insert(_SIGNALS)
        .from_select([*_SIGNAL_COLUMNS, "order_id"], select(*signal_values, intent.c.id))
        .on_conflict_do_nothing()
    )
    return (
        select(*blockers.c, select(intent.c.id).scalar_subquery().label("order_id"))
        .select_from(blockers)
        .add_cte(signal.cte("intent_signal"))
    )


# Built once: the hot path binds values instead of building statements again.
BLOCKERS = _blockers()
ADMIT = _admit_statement()
INSERT_INTENT = insert(_ORDERS).returning(_ORDERS.c.id)
POSITIONS_QUERY = select(
    (
        select(func.count()).where(Order.side == Side.BUY, Order.state.in_(OPEN_SQL))
    ).scalar_subquery()
    + select(func.count()).where(Lot.state.in_(UNSOLD_LOT_SQL)).scalar_subquery()
)
_UNDO_SIGNAL: Delete = delete(_SIGNALS).where(
    _SIGNALS.c.signal_id == bindparam("u_signal_id"),
    _SIGNALS.c.order_id == bindparam("u_order_id"),
)
_UNDO_INTENT: Delete = delete(_ORDERS).where(_ORDERS.c.id == bindparam("u_order_id"))


def lock_and_count_sql(*, lock: bool = True) -> str:
    """PostgreSQL's step 3: two statements, sent together by the simple query protocol (they
    take no parameters). ``lock=False`` is for the benchmark's diagnostics only: without the
    lock the limit is no longer exact."""
    dialect = postgresql.psycopg.dialect()  # type: ignore[no-untyped-call]
    count = POSITIONS_QUERY.compile(dialect=dialect, compile_kwargs={"literal_binds": True})
    return (f"SELECT pg_advisory_xact_lock({POSITIONS_LOCK}); " if lock else "") + f"{count}"


LOCK_AND_COUNT = lock_and_count_sql()


def open_positions_count(session: Executor) -> int:
    """Slots holding something: open buys plus unsold lots (risk limit MAX_OPEN_POSITIONS).

    Exact for an admission only as its step 3 (see the module's docstring).
    """
    return int(session.execute(POSITIONS_QUERY).scalar_one())


def _count_under_the_positions_lock(ledger: Ledger, session: Executor) -> int:
    """Step 3: take the positions lock, then count (see the module's docstring)."""
    if ledger.sqlite:
        return open_positions_count(session)
    conn = session.connection() if isinstance(session, Session) else session
    cursor = conn.connection.cursor()
    try:
        cursor.execute(LOCK_AND_COUNT)
        while cursor.nextset():  # the count is the last statement's result
            pass
        row = cursor.fetchone()
    finally:
        cursor.close()
    assert row is not None
    return int(row[0])


# How long the one-round-trip admission may wait for the slot's lock: the intent's time is
# taken before the call, and must not be eaten by a wait (``try_admit`` takes it under the lock).
FAST_WAIT_MS = 20.0

# psycopg's placeholders: it runs on the ledger's lane (``worker.ledger.lane``), not through
# SQLAlchemy. The casts pick the function's signature.
FAST_ADMIT = (
    "SELECT admitted_id, verdict FROM limitflow_admit("
    "%(inst_id)s::varchar, %(strategy)s::varchar, %(signal_id)s::varchar, "
    "%(since)s::timestamptz, %(pause_flag)s::varchar, %(max_positions)s::integer, "
    "%(max_wait_ms)s::double precision, %(cl_ord_id)s::varchar, %(px)s::numeric, "
    "%(sz)s::numeric, %(now)s::timestamptz, %(deadline)s::timestamptz, %(kind)s::varchar, "
    "%(created_ms)s::bigint, %(payload)s::json)"
)


def admit(ledger: Ledger, request: Admission, clock: Callable[[], datetime]) -> Admitted | Blocked:
    """Admit a buy or say why not, each in its own transaction (see the module's docstring)."""
    if not ledger.sqlite:
        decided = fast_admit(ledger, request, clock)
        if decided is not None:
            return decided
    with ledger.connect() as conn:
        return try_admit(ledger, conn, request, clock)


def fast_admit(
    ledger: Ledger,
    request: Admission,
    clock: Callable[[], datetime],
    *,
    rehearsal: bool = False,
) -> Admitted | Blocked | None:
    """PostgreSQL only: the common case in one statement (``limitflow_admit``) on the
    ledger's lane. ``Admitted`` or ``duplicate`` when it decided; None when ``try_admit``
    must decide (nothing kept). ``rehearsal``: rolled back whatever it decided (the warm-up).
    """
    lane = ledger.lane
    assert lane is not None, "the one-round-trip admission is PostgreSQL's"
    signal = request.signal
    if request.unsizable is not None:
        return None  # try_admit records why
    now = clock()
    # It must still be fresh when the slot's lock is granted, at most FAST_WAIT_MS from now.
    if signal.expiry_ms(request.ttl_seconds) - to_epoch_ms(now) < FAST_WAIT_MS:
        return None
    params = _blocker_params(request, now)
    deadline = placement_deadline(now, request.pending_timeout_seconds)
    row = lane.one(
        FAST_ADMIT,
        {
            "inst_id": signal.inst_id,
            "strategy": signal.strategy,
            "signal_id": signal.signal_id,
            "since": params["b_since"],
            "pause_flag": params["b_pause_flag"],
            "max_positions": request.max_positions,
            "max_wait_ms": FAST_WAIT_MS,
            "cl_ord_id": request.cl_ord_id,
            "px": request.px,
            "sz": request.sz,
            "now": now,
            "deadline": deadline,
            "kind": signal.kind,
            "created_ms": signal.created_at,
            "payload": orjson.dumps(to_message(signal)).decode(),
        },
        rollback=rehearsal,
    )
    assert row is not None  # the function returns one row
    admitted_id, verdict = row
    if verdict == "admitted":
        return Admitted(int(admitted_id), deadline)
    if verdict == SkipReason.DUPLICATE:
        return Blocked(SkipReason.DUPLICATE)
    return None


def try_admit(
    ledger: Ledger, session: Executor, request: Admission, clock: Callable[[], datetime]
) -> Admitted | Blocked:
    """Decide a buy under its slot lock, and write its intent or its refusal (see the module's
    docstring). Precedence: ``duplicate``, ``slot_busy``, ``unsold_lot``, ``cooldown``,
    ``paused``, then ``expired`` (it waited for the lock past its expiry), the sizing's
    reason, and ``risk_limit`` (MAX_OPEN_POSITIONS) last.
    """
    signal = request.signal
    ledger.lock_slot(session, signal.inst_id, signal.strategy)
    # The intent's time is taken under the lock, just before its commit: its deadline
    # (expTime) must not already be eaten by the wait for the lock.
    now = clock()
    problem = request.unsizable
    now_ms = to_epoch_ms(now)
    if signal.is_expired(request.ttl_seconds, now_ms):
        # Perishable, never executed late.
        problem = (
            SkipReason.EXPIRED,
            late_detail(signal, request.ttl_seconds, now_ms, "the slot lock was taken"),
        )
    params = _blocker_params(request, now)
    order_id: int | None = None
    if problem is not None:
        blocker = _first(session.execute(BLOCKERS, params).one())
    elif ledger.sqlite:
        blocker = _first(session.execute(BLOCKERS, params).one())
        if blocker is None:
            order_id = session.execute(INSERT_INTENT, _intent(request, now)).scalar_one()
            record_outcome(ledger, session, signal, now, "accepted", order_id=order_id)
    else:
        row = session.execute(ADMIT, params | _intent(request, now) | _signal_row(signal, now))
        values = row.one()
        blocker, order_id = _first(values), values.order_id
    if blocker is SkipReason.DUPLICATE:
        return Blocked(blocker)
    if blocker is not None:
        # Only a refusal pays for its facts, under the lock that decided it.
        detail = facts.blocker_detail(
            session, blocker, signal.inst_id, signal.strategy, now, request.guard_seconds
        )
        return _refuse(ledger, session, request, now, blocker, detail)
    if problem is not None:
        return _refuse(ledger, session, request, now, *problem)
    assert order_id is not None
    if _count_under_the_positions_lock(ledger, session) > request.max_positions:
        detail = facts.positions_detail(session, request.max_positions, order_id)
        undo = {"u_signal_id": signal.signal_id[:200], "u_order_id": order_id}
        session.execute(_UNDO_SIGNAL, undo)
        session.execute(_UNDO_INTENT, undo)
        return _refuse(ledger, session, request, now, SkipReason.RISK_LIMIT, detail)
    return Admitted(order_id, placement_deadline(now, request.pending_timeout_seconds))


def _first(row: Any) -> SkipReason | None:
    hits = tuple(row)[: len(BLOCKER_REASONS)]
    return next((reason for reason, hit in zip(BLOCKER_REASONS, hits, strict=True) if hit), None)


def _refuse(
    ledger: Ledger,
    session: Executor,
    request: Admission,
    now: datetime,
    reason: SkipReason,
    detail: str,
) -> Blocked:
    record_outcome(ledger, session, request.signal, now, "skipped", reason, detail)
    return Blocked(reason, detail)


def _blocker_params(request: Admission, now: datetime) -> dict[str, Any]:
    guard = request.guard_seconds
    signal = request.signal
    return {
        "b_inst_id": signal.inst_id,
        "b_strategy": signal.strategy,
        # With no guard window the cooldown looks back to "now": no buy is that recent.
        "b_since": now - timedelta(seconds=guard) if guard > 0 else now,
        "b_signal_id": signal.signal_id,
        "b_pause_flag": f"paused:{signal.strategy}",
    }


def _intent(request: Admission, now: datetime) -> dict[str, Any]:
    """The intent's row: a buy in ``pending_submit``, to be sent no later than its deadline."""
    signal = request.signal
    return {
        "cl_ord_id": request.cl_ord_id,
        "inst_id": signal.inst_id,
        "strategy": signal.strategy,
        "side": Side.BUY.value,
        "purpose": "entry",
        "state": OrderState.PENDING_SUBMIT.value,
        "px": request.px,
        "sz": request.sz,
        "signal_id": signal.signal_id,
        "created_at": now,
        "updated_at": now,
        "submitted_at": now,
        "deadline_at": placement_deadline(now, request.pending_timeout_seconds),
    }


def _signal_row(signal: BuySignal, now: datetime) -> dict[str, Any]:
    """The row ``record_outcome`` would write for an accepted signal (PostgreSQL writes it
    in the intent's statement)."""
    return {
        "signal_signal_id": signal.signal_id[:200],
        "signal_kind": signal.kind,
        "signal_strategy": signal.strategy,
        "signal_inst_id": signal.inst_id,
        "signal_outcome": "accepted",
        "signal_reason": "",
        "signal_detail": "",
        "signal_created_ms": signal.created_at,
        "signal_received_at": now,
        "signal_payload": to_message(signal),
    }


def late_detail(signal: BuySignal, ttl_seconds: int, now_ms: int, before: str) -> str:
    """How late an expired signal was, and by which expiry."""
    expiry = signal.expiry_ms(ttl_seconds)
    rule = "its expires_at" if signal.expires_at else f"SIGNAL_TTL_SECONDS={ttl_seconds}"
    return (
        f"expired {now_ms - expiry} ms before {before} (created {when(_utc(signal.created_at))}, "
        f"expiry {when(_utc(expiry))} by {rule})"
    )


def _utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)

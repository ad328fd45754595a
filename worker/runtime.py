"""Everything a service function needs, built once per worker process."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy.exc import SQLAlchemyError

from worker.cache import WorkerCache
from worker.domain.errors import ExchangeError
from worker.domain.ids import buy_cl_ord_id
from worker.domain.money import InstrumentRules
from worker.domain.strategies import HOURLY
from worker.exchange.factory import build_exchange
from worker.exchange.port import Exchange, WarmsUp
from worker.ledger.admission import Admission, Admitted, fast_admit, try_admit
from worker.ledger.db import Ledger, utcnow
from worker.ledger.orders import SENDABLE, accept_if_pending
from worker.logs import log_event
from worker.services.sizing import order_size
from worker.settings import Settings, get_settings
from worker.signals import parse_buy
from worker.slot_events import SlotEvents

# Celery gives a new pool process 4 s (worker_proc_alive_timeout) to report that it is up,
# and replaces it otherwise: the warm-up waits for less, then goes on in the background.
WARM_UP_WAIT_SECONDS = 2.0

log = logging.getLogger("limitflow.runtime")


class Scheduler(Protocol):
    """Sends a follow-up task (a Celery ``send_task`` in production)."""

    def __call__(self, task: str, args: list[Any], countdown: float | None = None) -> None: ...


@dataclass
class Runtime:
    settings: Settings
    ledger: Ledger
    exchange: Exchange
    schedule: Scheduler
    cache: WorkerCache = field(default_factory=WorkerCache)
    events: SlotEvents = field(default_factory=lambda: SlotEvents(None))
    clock: Callable[[], datetime] = utcnow

    def now(self) -> datetime:
        return self.clock()

    def rules(self, inst_id: str, *, require_live: bool = True) -> InstrumentRules:
        """The instrument's rules; raise ``InvalidInstrument`` if unknown, or not live when
        ``require_live``.

        ``require_live=False`` also returns a suspended instrument's rules: its orders and
        lots must still be settled. The adapter is the one cache (OKX: its instrument table,
        loaded by the warm-up and refreshed every few minutes); nothing is cached here.
        """
        return self.exchange.instrument(inst_id, require_live=require_live)

    def slot_freed(self, inst_id: str, strategy: str) -> None:
        """A slot may buy again: drop our cache entry and tell the other workers."""
        self.cache.slot_freed((inst_id, strategy))
        self.events.publish(inst_id, strategy)


_runtime: Runtime | None = None
_runtime_pid: int | None = None


def get_runtime() -> Runtime:
    """The process's runtime (rebuilt in a forked child)."""
    global _runtime, _runtime_pid
    if _runtime is None or _runtime_pid != os.getpid():
        # Here, not at the top: importing worker.app builds the Celery app (and its folders).
        from worker.app import app

        settings = get_settings()

        def schedule(task: str, args: list[Any], countdown: float | None = None) -> None:
            app.send_task(task, args=args, countdown=countdown)

        rt = Runtime(
            settings=settings,
            ledger=Ledger.from_url(settings.database_url),
            exchange=build_exchange(settings),
            schedule=schedule,
            events=SlotEvents(settings.redis_url),
        )
        rt.events.listen(
            lambda slot: rt.cache.clear() if slot is None else rt.cache.slot_freed(slot)
        )
        _runtime, _runtime_pid = rt, os.getpid()
    return _runtime


def warm_up(wait: float = WARM_UP_WAIT_SECONDS) -> threading.Thread:
    """Prepare this process for its first order (a worker process calls it as it starts).

    Otherwise the first order pays, on its hot path, for what every later one finds ready:
    the exchange's instrument table fetched in full, a new HTTP connection to the exchange
    and a new database connection (together 30-300 ms, measured by
    ``benchmarks/bench_e2e.py``). Return after at most ``wait`` seconds: an exchange that
    does not answer must not delay the start (nor make Celery replace the process).
    """
    rt = get_runtime()
    thread = threading.Thread(target=_warm, args=(rt,), name="warm-up", daemon=True)
    thread.start()
    thread.join(wait)
    return thread


def _warm(rt: Runtime) -> None:
    started = time.perf_counter()
    fields: dict[str, Any] = {}
    try:
        if isinstance(rt.exchange, WarmsUp):
            fields["instruments"] = rt.exchange.warm_up(REHEARSALS)
            fields["exchange_ms"] = round((time.perf_counter() - started) * 1000, 1)
        db_started = time.perf_counter()
        _rehearse_buy(rt)
        fields["database_ms"] = round((time.perf_counter() - db_started) * 1000, 1)
    except (ExchangeError, SQLAlchemyError) as exc:
        # Not fatal: the first order does the same work, and reports what fails.
        log_event(log, "worker.warm_up_failed", level=logging.WARNING, error=str(exc)[:300])
        return
    log_event(log, "worker.warmed", pid=os.getpid(), **fields)


class _Rollback(Exception):
    """Ends the rehearsal's transaction without committing anything."""


# How many times a warm-up runs the buy path's code. PostgreSQL plans a cached statement
# afresh for its first five executions, then settles on a generic plan: the one-round-trip
# admission's statements (``limitflow_admit``) are cheapest from the sixth call on a
# connection. Python 3.11 specializes a function's bytecode only once it has run eight times
# (PEP 659): the code around those statements, and the signing and building of the order's
# request, run faster from the ninth call.
REHEARSALS = 12


def _rehearse_buy(rt: Runtime) -> None:
    """Run the buy path's code and statements, and keep nothing.

    It reads and sizes ``REHEARSALS`` signals as the buy path does. On PostgreSQL the
    one-round-trip admission runs ``REHEARSALS`` times on the ledger's lane, on slots of its
    own, each in a transaction rolled back at once: the first real buys find the lane's
    connection open and ``limitflow_admit``'s plans settled in its server session, and the
    positions lock, which every admission takes and every real admission waits for, is held
    for one rehearsal at a time. Then the full decision runs on the last slot on the pool's
    first connection, in a transaction that is rolled back: SQLAlchemy compiles each
    statement on its first use (about 10 ms of CPU for the buy path's four: more than the
    rest of a warm buy). The slots and ids are this process's own, so that concurrent
    rehearsals never wait on each other's rows.
    """
    now = rt.now()
    ledger = rt.ledger
    requests = [_rehearsal(rt, now, k) for k in range(REHEARSALS)]
    if not ledger.sqlite:
        for request in requests:
            fast_admit(ledger, request, lambda: now, rehearsal=True)
    try:
        with ledger.connect() as conn:
            admitted = try_admit(ledger, conn, requests[-1], lambda: now)
            order_id = admitted.order_id if isinstance(admitted, Admitted) else 0
            conn.execute(SENDABLE, {"order_id": order_id})  # the sender's last look
            accept_if_pending(conn, order_id, "warm-up", now, flush=ledger.sqlite)
            raise _Rollback
    except _Rollback:
        pass


# The rehearsal's instrument: its buys are sized as real ones are, and never sent.
_REHEARSAL_RULES = InstrumentRules(
    inst_id="WARMUP-USDT",
    tick_sz=Decimal("0.0001"),
    lot_sz=Decimal("0.0001"),
    min_sz=Decimal("0.0001"),
    base_ccy="WARMUP",
    quote_ccy="USDT",
)


def _rehearsal(rt: Runtime, now: datetime, k: int) -> Admission:
    """A buy of 1 USDT at 1 on this process's ``k``-th rehearsal slot, read from a signal
    message and sized as the buy path does it."""
    now_ms = int(now.timestamp() * 1000)
    signal = parse_buy(
        {
            "v": 1,
            "kind": "buy",
            "signal_id": f"warm-up:{os.getpid()}:{now_ms}:{k}",
            "strategy": HOURLY.id,
            "inst_id": f"WARMUP{k}P{os.getpid()}-USDT",
            "px": "1",
            "quote_sz": "1",
            "created_at": now_ms,
        }
    )
    settings = rt.settings
    px, sz, problem = order_size(signal, _REHEARSAL_RULES, settings)
    if problem is not None:  # unsizable (MAX_ORDER_USDT below 1, say): one unit at 1 then
        px, sz = Decimal(1), Decimal(1)
    return Admission(
        signal=signal,
        cl_ord_id=buy_cl_ord_id(signal.strategy, signal.signal_id),
        px=px,
        sz=sz,
        unsizable=None,
        guard_seconds=1,
        ttl_seconds=settings.SIGNAL_TTL_SECONDS,
        max_positions=settings.MAX_OPEN_POSITIONS,
        pending_timeout_seconds=settings.PENDING_TIMEOUT_SECONDS,
    )


def set_runtime(rt: Runtime | None) -> None:
    """Install a runtime (tests, embedded runs)."""
    global _runtime, _runtime_pid
    _runtime, _runtime_pid = rt, (os.getpid() if rt else None)

"""The buy path's own PostgreSQL connections, for statements that are a transaction by themselves.

The one-round-trip admission (``limitflow_admit``) is the only statement between a signal and
its order. Through SQLAlchemy it paid, per call, for a pool checkout that switches the
connection to autocommit and back, the compiled-cache lookup, the bind and result processors
and the connection's reset: with 0.15 s of idleness before each call, as a worker woken by a
signal sees it, the admission took 2.6-3.2 ms through SQLAlchemy and 1.9-2.2 ms on a psycopg
connection of its own (measured in a loop against PostgreSQL on loopback). A ``Lane`` keeps
this process's psycopg connections for such statements, in autocommit, and runs the statement
on one of them through psycopg's cursor directly. The orders stream asks the ledger about
every acknowledgement push the same way (``worker.ledger.orders.acknowledgements``).

- One connection per caller at a time: a thread takes an idle one (the most recently used
  first: its server session has the function's plans cached) or opens one, and gives it back.
  A connection is opened the way the engine opens its own (``Engine.raw_connection``), then
  detached from the engine's pool.
- Errors are SQLAlchemy's: a psycopg error, in a statement or in opening a connection, is
  raised as the ``sqlalchemy.exc`` class SQLAlchemy would raise for it (``OperationalError``
  for a lost connection or a server that refuses connections, which the tasks retry), and
  the connection it happened on is closed, so the next call opens a new one.
- Statements are not prepared on the server. psycopg forgets its prepared statements on every
  ROLLBACK (and deallocates them in an extra round trip), and the warm-up rehearses the
  admission in transactions it rolls back; the function's own plans, which are the expensive
  part, are kept by the server session either way.
- A connection is closed and opened anew once it is ``recycle_seconds`` old, as the engine's
  pool does with its own (``pool_recycle``): a server or proxy that ends long sessions must
  not fail an admission.
- A forked child leaves its parent's connections alone (psycopg closes nothing on their
  behalf in another process) and opens its own.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import weakref
from collections.abc import Iterator, Mapping
from typing import Any

import psycopg
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

Row = tuple[Any, ...]
# A connection and when it was opened (``time.monotonic``).
Idle = tuple[float, psycopg.Connection[Any]]

# A forked child's copies of its parent's connections: kept referenced, never used or closed.
_INHERITED: list[Idle] = []


class Lane:
    """This process's autocommit psycopg connections for one-statement transactions."""

    def __init__(self, engine: Engine, recycle_seconds: float = 1800.0) -> None:
        self._engine = engine
        self._recycle_seconds = recycle_seconds
        self._idle: list[Idle] = []
        self._lock = threading.Lock()
        self._pid = os.getpid()
        # Connections left idle when the lane is dropped without ``close`` are closed too.
        self._finalizer = weakref.finalize(self, _close_all, self._idle, self._pid)

    def one(self, sql: str, params: Mapping[str, Any], *, rollback: bool = False) -> Row | None:
        """Execute ``sql`` as a transaction by itself and return its first row (None without
        one). ``rollback``: in a transaction rolled back at once (the warm-up's rehearsals).
        """
        rows = self.all(sql, params, rollback=rollback)
        return rows[0] if rows else None

    def all(self, sql: str, params: Mapping[str, Any], *, rollback: bool = False) -> list[Row]:
        """Execute ``sql`` as a transaction by itself and return all its rows."""
        with self._connection() as (_, conn):
            scope: contextlib.AbstractContextManager[Any] = (
                conn.transaction(force_rollback=True) if rollback else contextlib.nullcontext()
            )
            try:
                with scope, conn.cursor() as cursor:
                    cursor.execute(sql, params, prepare=False)
                    return cursor.fetchall()
            except psycopg.Error as exc:
                raise DBAPIError.instance(
                    sql, dict(params), exc, psycopg.Error, connection_invalidated=conn.broken
                ) from exc

    def close(self) -> None:
        """Close the idle connections (as ``Engine.dispose`` does: a later call opens anew)."""
        with self._lock:
            idle, self._idle[:] = list(self._idle), []
        for _, conn in idle:
            conn.close()

    @contextlib.contextmanager
    def _connection(self) -> Iterator[Idle]:
        taken = self._take()
        try:
            yield taken
        except BaseException:
            taken[1].close()  # whatever failed, the next call starts on a new connection
            raise
        if not taken[1].closed:
            with self._lock:
                self._idle.append(taken)

    def _take(self) -> Idle:
        if os.getpid() != self._pid:
            self._forked()
        old = time.monotonic() - self._recycle_seconds
        while True:
            with self._lock:
                if not self._idle:
                    break
                taken = self._idle.pop()
            if taken[0] > old:
                return taken
            taken[1].close()
        return time.monotonic(), self._open()

    def _open(self) -> psycopg.Connection[Any]:
        try:
            # The engine's connect arguments and events; ``raw_connection`` raises the
            # driver's own errors (``Engine.connect`` would wrap them).
            pooled = self._engine.raw_connection()
            conn: psycopg.Connection[Any] = pooled.driver_connection  # type: ignore[assignment]
            pooled.detach()  # from now on ours: the pool neither returns nor closes it
            if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                conn.rollback()  # the pool's first connect may leave a transaction open
            conn.autocommit = True
        except psycopg.Error as exc:
            raise DBAPIError.instance(
                None, None, exc, psycopg.Error, connection_invalidated=True
            ) from exc
        return conn

    def _forked(self) -> None:
        # The lock may have been held by another thread of the parent when it forked.
        self._lock = threading.Lock()
        _INHERITED.extend(self._idle)
        self._idle.clear()
        self._finalizer.detach()
        self._pid = os.getpid()
        self._finalizer = weakref.finalize(self, _close_all, self._idle, self._pid)


def _close_all(idle: list[Idle], pid: int) -> None:
    if os.getpid() != pid:
        return
    while idle:
        idle.pop()[1].close()

"""Engines, transactions and locks on PostgreSQL and SQLite.

PostgreSQL: ``SELECT ... FOR UPDATE`` on the slot row and advisory locks for reconciliation.
SQLite (the embedded default): every transaction is ``BEGIN IMMEDIATE``, which takes the
database's write lock at once, so a transaction that checks a slot is also serialized.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Executable, create_engine, event, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from worker.ledger.lane import Lane
from worker.ledger.models import Lease, Slot


def utcnow() -> datetime:
    return datetime.now(UTC)


# PostgreSQL connections are closed and opened anew once this old (the pool's and the lane's).
RECYCLE_SECONDS = 1800


def make_engine(url: str, connect_args: dict[str, Any] | None = None) -> Engine:
    """Create an engine configured for the ledger's locking discipline (``connect_args``:
    the PostgreSQL driver's, such as timeouts)."""
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"timeout": 60, "check_same_thread": False},
            # The driver's own transaction handling is off; we emit BEGIN IMMEDIATE ourselves.
            isolation_level=None,
        )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=60000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    # No pre-ping: it costs a round trip per transaction; a dropped connection surfaces as
    # OperationalError, which the tasks retry. LIFO: the hot path gets the connection used
    # last, the one the warm-up rehearsed on (its server-side plans, ``limitflow_admit``'s
    # included, are per connection), and connections left idle are the ones recycled.
    return create_engine(
        url,
        pool_size=5,
        max_overflow=5,
        pool_recycle=RECYCLE_SECONDS,
        pool_use_lifo=True,
        connect_args=connect_args or {},
    )


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


# What the ledger operations execute on: an ORM session, or a bare Core connection (the
# buy path's, which skips the session's unit-of-work machinery it does not use).
Executor = Session | Connection


class Ledger:
    """The database handle of one process: an engine and transactions on it."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._pid = os.getpid()
        self.sqlite = is_sqlite(engine)
        self._dialect = sqlite if self.sqlite else postgresql
        # Each statement is built once and executed with bound values: no statement building
        # and no cache-key computation per call, only the compiled-cache lookup.
        self._insert_ignore: dict[type[Any], Executable] = {}
        slot_insert = self._dialect.insert(Slot.__table__)
        self._lock_slot = slot_insert.on_conflict_do_update(
            index_elements=[Slot.inst_id, Slot.strategy],
            set_={"strategy": slot_insert.excluded.strategy},
        )
        # Statements that are a whole transaction by themselves run without BEGIN/COMMIT
        # round trips on PostgreSQL (SQLite keeps its BEGIN IMMEDIATE transaction).
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        # PostgreSQL: the buy path's own connections for its one-round-trip admission.
        self.lane: Lane | None = None if self.sqlite else Lane(engine, RECYCLE_SECONDS)

    @classmethod
    def from_url(cls, url: str) -> Ledger:
        return cls(make_engine(url))

    def dispose(self) -> None:
        """Close this process's connections (the engine's pool and the lane's)."""
        if self.lane is not None:
            self.lane.close()
        self.engine.dispose()

    def _check_fork(self) -> None:
        # A forked child must not reuse the parent's connections (psycopg is not fork-safe).
        if os.getpid() != self._pid:
            self.engine.dispose(close=False)
            self._pid = os.getpid()

    @contextlib.contextmanager
    def begin(self) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on error."""
        self._check_fork()
        with self._sessions() as session, session.begin():
            yield session

    @contextlib.contextmanager
    def connect(self) -> Iterator[Connection]:
        """A Core connection in one transaction (``begin`` without the ORM session):
        committed on success, rolled back on error. On SQLite it is ``BEGIN IMMEDIATE`` too.
        """
        self._check_fork()
        with self.engine.begin() as conn:
            yield conn

    @contextlib.contextmanager
    def single_statement(self) -> Iterator[Connection]:
        """A connection for ONE statement that is a transaction by itself.

        PostgreSQL: autocommit, so the statement costs one round trip instead of three
        (BEGIN, statement, COMMIT). SQLite: a ``BEGIN IMMEDIATE`` transaction as usual.
        """
        if self.sqlite:
            with self.connect() as conn:
                yield conn
            return
        self._check_fork()
        with self._autocommit.connect() as conn:
            yield conn

    def insert_ignore(self, session: Executor, model: type[Any], values: dict[str, Any]) -> bool:
        """INSERT ... ON CONFLICT DO NOTHING; return whether a row was inserted."""
        stmt = self._insert_ignore.get(model)
        if stmt is None:
            stmt = self._dialect.insert(model.__table__).on_conflict_do_nothing()
            self._insert_ignore[model] = stmt
        result = session.execute(stmt, values)
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def lock_slot(self, session: Executor, inst_id: str, strategy: str) -> None:
        """Lock the slot's row for the rest of the transaction, creating it if needed.

        One statement: an upsert locks the row it inserts or conflicts with, like
        ``SELECT ... FOR UPDATE`` (on SQLite the transaction already holds the write lock).
        """
        session.execute(
            self._lock_slot, {"inst_id": inst_id, "strategy": strategy, "created_at": utcnow()}
        )

    @contextlib.contextmanager
    def named_lock(self, name: str, ttl_seconds: int = 600) -> Iterator[bool]:
        """Hold a process-wide lock named ``name`` if it is free; yield whether we got it.

        PostgreSQL: a session advisory lock, released when the block ends or the connection
        dies. SQLite: a lease row that expires after ``ttl_seconds`` if its holder died.
        """
        self._check_fork()
        if not is_sqlite(self.engine):
            key = lock_key(name)
            with self.engine.connect() as conn:
                got = bool(conn.exec_driver_sql(f"SELECT pg_try_advisory_lock({key})").scalar())
                conn.commit()
                try:
                    yield got
                finally:
                    if got:
                        conn.exec_driver_sql(f"SELECT pg_advisory_unlock({key})")
                        conn.commit()
            return
        owner = f"{socket.gethostname()}:{os.getpid()}:{id(self)}"
        now = utcnow()
        with self.begin() as s:
            self.insert_ignore(s, Lease, {"name": name, "owner": "", "expires_at": now})
            got = bool(
                s.execute(
                    update(Lease)
                    .where(Lease.name == name, Lease.expires_at <= now)
                    .values(owner=owner, expires_at=now + timedelta(seconds=ttl_seconds))
                ).rowcount  # type: ignore[attr-defined]
            )
        try:
            yield got
        finally:
            if got:
                with self.begin() as s:
                    s.execute(
                        update(Lease)
                        .where(Lease.name == name, Lease.owner == owner)
                        .values(owner="", expires_at=utcnow())
                    )


def lock_key(name: str) -> int:
    """A stable 63-bit advisory-lock key per name (``hash()`` is salted per process)."""
    return int.from_bytes(hashlib.sha256(f"limitflow:{name}".encode()).digest()[:8], "big") >> 1

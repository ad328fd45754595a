"""The ledger's lane (``worker.ledger.lane``): the buy path's own PostgreSQL connections.

Real PostgreSQL throughout: a connection killed by the server, a statement the server refuses,
threads racing for connections, a forked child, and the ledger's ``dispose``.
"""

from __future__ import annotations

import multiprocessing
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import make_url, text
from sqlalchemy.exc import DataError, OperationalError

from worker.ledger.db import Ledger
from worker.ledger.lane import Lane

pytestmark = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)

BACKEND = "SELECT pg_backend_pid()"


@pytest.fixture
def ledger(db_url: str) -> Iterator[Ledger]:
    led = Ledger.from_url(db_url)
    yield led
    led.dispose()


def _lane(ledger: Ledger) -> Lane:
    assert ledger.lane is not None
    return ledger.lane


def _backend(lane: Lane) -> int:
    row = lane.one(BACKEND, {})
    assert row is not None
    return int(row[0])


def _alive(ledger: Ledger, pid: int) -> bool:
    with ledger.connect() as conn:
        found = conn.execute(
            text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
        )
        return bool(found.scalar_one())


def test_the_same_connection_serves_one_caller_after_another(ledger: Ledger) -> None:
    lane = _lane(ledger)
    first = _backend(lane)
    assert [_backend(lane) for _ in range(5)] == [first] * 5
    with ledger.connect() as conn:  # and it is not one of the pool's
        assert conn.execute(text(BACKEND)).scalar_one() != first


def test_a_connection_the_server_killed_is_an_operational_error_then_replaced(
    ledger: Ledger,
) -> None:
    """What a PostgreSQL restart does to a kept connection: the next statement fails as
    SQLAlchemy's ``OperationalError`` (the tasks retry it), and the one after runs on a new
    connection."""
    lane = _lane(ledger)
    killed = _backend(lane)
    with ledger.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": killed})
    with pytest.raises(OperationalError):
        lane.one(BACKEND, {})
    assert _backend(lane) != killed
    assert not _alive(ledger, killed)


def test_a_statement_the_server_refuses_is_sqlalchemys_error_and_the_lane_goes_on(
    ledger: Ledger,
) -> None:
    lane = _lane(ledger)
    before = _backend(lane)
    with pytest.raises(DataError) as refused:
        lane.one("SELECT 1 / %(zero)s::integer", {"zero": 0})
    assert "division by zero" in str(refused.value)
    assert "SELECT 1 / %(zero)s::integer" in str(refused.value)  # the statement, as SQLAlchemy
    after = _backend(lane)
    assert after != before  # the failed one was closed, not given back
    assert not _alive(ledger, before)


def test_all_returns_every_row_and_fails_as_one_does(ledger: Ledger) -> None:
    """``all`` (the orders stream's reads): every row, on the same kept connection, and a
    refused statement is SQLAlchemy's error there too, its connection closed."""
    lane = _lane(ledger)
    before = _backend(lane)
    rows = lane.all("SELECT x FROM unnest(%(xs)s::integer[]) AS x ORDER BY x", {"xs": [3, 1, 2]})
    assert rows == [(1,), (2,), (3,)]
    assert lane.all("SELECT 1 WHERE false", {}) == []
    assert _backend(lane) == before
    with pytest.raises(DataError, match="division by zero"):
        lane.all("SELECT 1 / x FROM unnest(%(xs)s::integer[]) AS x", {"xs": [1, 0]})
    assert _backend(lane) != before


def test_a_rehearsal_keeps_nothing(ledger: Ledger) -> None:
    lane = _lane(ledger)
    sql = "INSERT INTO engine_flags (name, enabled, updated_at) VALUES (%(name)s, true, now())"
    assert lane.one(sql + " RETURNING name", {"name": "rehearsed"}, rollback=True) == ("rehearsed",)
    assert lane.one("SELECT count(*) FROM engine_flags", {}) == (0,)
    lane.one(sql + " RETURNING name", {"name": "kept"})
    assert lane.one("SELECT name FROM engine_flags", {}) == ("kept",)


def test_threads_at_once_each_get_a_connection_of_their_own(ledger: Ledger) -> None:
    lane = _lane(ledger)
    threads = 8
    barrier = threading.Barrier(threads)
    seen: list[int] = []
    errors: list[BaseException] = []

    def call() -> None:
        try:
            barrier.wait(10)
            row = lane.one("SELECT pg_backend_pid(), pg_sleep(0.2)", {})
            assert row is not None
            seen.append(int(row[0]))
        except BaseException as exc:  # reported below
            errors.append(exc)

    workers = [threading.Thread(target=call) for _ in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join(30)
    assert errors == []
    assert len(seen) == threads
    assert len(set(seen)) == threads  # none shared a connection with another at once
    # Given back: the next callers reuse them instead of opening more.
    assert {_backend(lane) for _ in range(threads)} <= set(seen)


def _child(lane: Lane, out: Any) -> None:
    out.put(_backend(lane))


def test_a_forked_child_opens_its_own_and_leaves_its_parents_alone(ledger: Ledger) -> None:
    """Celery's prefork pool forks its processes from a parent that may have used the lane."""
    lane = _lane(ledger)
    parent = _backend(lane)
    fork = multiprocessing.get_context("fork")
    out = fork.Queue()
    child = fork.Process(target=_child, args=(lane, out))
    child.start()
    child_backend = out.get(timeout=30)
    child.join(30)
    assert child.exitcode == 0
    assert child_backend != parent
    assert _backend(lane) == parent  # still open and still ours


def test_dispose_closes_the_lanes_connections(ledger: Ledger) -> None:
    lane = _lane(ledger)
    pid = _backend(lane)
    ledger.dispose()
    assert not _alive(ledger, pid)
    assert _backend(lane) != pid  # a later call opens anew, as the engine does


def test_a_connection_past_its_age_is_closed_and_opened_anew(ledger: Ledger) -> None:
    """As the engine's pool does (``pool_recycle``): a server or a proxy that ends long
    sessions must not fail an admission."""
    lane = Lane(ledger.engine, recycle_seconds=0.3)
    try:
        first = _backend(lane)
        assert _backend(lane) == first  # young: reused
        time.sleep(0.4)
        second = _backend(lane)
        assert second != first
        assert not _alive(ledger, first)
    finally:
        lane.close()


def test_a_server_that_refuses_connections_is_an_operational_error(db_url: str) -> None:
    """A PostgreSQL restart as the lane opens a connection: the tasks retry SQLAlchemy's
    ``OperationalError``, and only that (a chaos soak found a buy that failed for good on
    psycopg's own error here, and was never recorded)."""
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    down = Ledger.from_url(make_url(db_url).set(port=port).render_as_string(hide_password=False))
    try:
        with pytest.raises(OperationalError) as refused:
            _lane(down).one("SELECT 1", {})
        assert isinstance(refused.value.orig, psycopg.OperationalError)
    finally:
        down.dispose()

"""The buy path's hand-off from the committed intent to the exchange (issue 10): the writer
sends what it just committed without reading it back, with the row's own deadline."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import event, select

from tests.builders import buy_message
from tests.integration.core.conftest import Engine
from tests.statements import statements_sent
from worker.domain.deadlines import to_epoch_ms
from worker.exchange.port import OrderRequest, Placement
from worker.ledger.models import Order
from worker.ledger.orders import accept_if_pending, accept_unflushed
from worker.services.buy import process_buy


class Trace:
    """The SQL statements the ledger sends (``tests.statements``), its COMMITs, and where
    the order request falls among them."""

    def __init__(self, engine: Engine) -> None:
        self.events: list[str] = []
        self.requests: list[OrderRequest] = []
        self.placed_ord_id = ""
        self.after_statement: list[Callable[[str], None]] = []
        inner = engine.rt.exchange
        place = inner.place_order

        def place_order(request: OrderRequest) -> Placement:
            self.events.append("PLACE")
            self.requests.append(request)
            placement = place(request)
            self.placed_ord_id = placement.ord_id
            return placement

        engine.rt.exchange.place_order = place_order  # type: ignore[method-assign]

    def statement_ran(self, statement: str) -> None:
        for hook in self.after_statement:
            hook(statement)

    def commit(self, conn: Any) -> None:
        self.events.append("COMMIT")


@pytest.fixture
def trace(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[Trace]:
    tr = Trace(engine)
    ledger = engine.rt.ledger
    event.listen(ledger.engine, "commit", tr.commit)
    with statements_sent(ledger, monkeypatch, tr.events.append, tr.statement_ran):
        yield tr
    event.remove(ledger.engine, "commit", tr.commit)


def committed_at(events: list[str]) -> int:
    """Where the intent was committed: PostgreSQL's one-statement admission (autocommit), or
    the COMMIT after the intent's INSERT (SQLite)."""
    fast = [i for i, e in enumerate(events) if "limitflow_admit" in e]
    if fast:
        return fast[0]
    intent = next(i for i, e in enumerate(events) if "INSERT INTO orders" in e)
    return events.index("COMMIT", intent)


def intent_row(engine: Engine) -> Order:
    with engine.rt.ledger.begin() as s:
        return s.scalars(select(Order)).one()


def test_the_writer_sends_its_intent_without_reading_it_back(engine: Engine, trace: Trace) -> None:
    result = process_buy(engine.rt, buy_message())
    assert (result.outcome, result.order_state) == ("accepted", "live")
    place = trace.events.index("PLACE")
    between = trace.events[committed_at(trace.events) + 1 : place]
    assert not [s for s in between if "deadline_at" in s], between  # no second look
    # The row and the request agree on the deadline (OKX expTime) to the millisecond.
    [request] = trace.requests
    row = intent_row(engine)
    assert row.deadline_at is not None
    assert request.exp_time_ms == to_epoch_ms(row.deadline_at)
    assert row.state == "live"


def test_a_writer_that_stalled_past_the_deadline_does_not_send(
    engine: Engine, trace: Trace
) -> None:
    # The worker loses the CPU right after its COMMIT (or PostgreSQL's one-statement
    # admission), for longer than the send window.
    db = engine.rt.ledger.engine
    stalled: list[int] = []

    def stall(*_: Any) -> None:
        if not stalled:
            stalled.append(1)
            engine.clock.advance(11)

    def stall_after_admission(statement: str) -> None:
        if "limitflow_admit" in statement:
            stall()

    event.listen(db, "commit", stall)
    trace.after_statement.append(stall_after_admission)
    try:
        result = process_buy(engine.rt, buy_message())
    finally:
        event.remove(db, "commit", stall)
    assert stalled
    assert result.outcome == "accepted" and result.order_state == "failed"
    assert trace.requests == [] and engine.venue.orders() == []
    row = intent_row(engine)
    assert row.state == "failed" and "deadline" in (row.last_error or "")


def test_the_acceptance_is_committed_without_waiting_for_the_disk(
    engine: Engine, trace: Trace
) -> None:
    if engine.rt.ledger.sqlite:
        pytest.skip("PostgreSQL only: SQLite commits its acceptance as any other write")
    result = process_buy(engine.rt, buy_message())
    assert result.order_state == "live"
    [accept] = [e for e in trace.events if e.startswith("UPDATE orders SET ord_id")]
    assert "set_config" in accept  # synchronous_commit off, for this statement's transaction
    row = intent_row(engine)
    assert (row.state, row.ord_id) == ("live", trace.placed_ord_id)
    # Nothing leaked into the lane's or the pool's connections: every other commit waits for
    # the disk.
    assert engine.rt.ledger.lane is not None
    assert engine.rt.ledger.lane.one("SHOW synchronous_commit", {}) == ("on",)
    with engine.rt.ledger.single_statement() as conn:
        assert conn.exec_driver_sql("SHOW synchronous_commit").scalar() == "on"
    with engine.rt.ledger.connect() as conn:
        assert conn.exec_driver_sql("SHOW synchronous_commit").scalar() == "on"


def test_an_acceptance_without_flush_lasts_one_transaction_and_moves_only_intents(
    engine: Engine,
) -> None:
    if engine.rt.ledger.sqlite:
        pytest.skip("PostgreSQL only")
    process_buy(engine.rt, buy_message())
    order_id = intent_row(engine).id
    with engine.rt.ledger.connect() as conn:
        # Live already: the compare-and-set changes nothing.
        assert not accept_if_pending(conn, order_id, "other", engine.clock(), flush=False)
        conn.exec_driver_sql("UPDATE orders SET state = 'pending_submit'")
        assert accept_if_pending(conn, order_id, "again", engine.clock(), flush=False)
        assert conn.exec_driver_sql("SHOW synchronous_commit").scalar() == "off"
    with engine.rt.ledger.connect() as conn:
        assert conn.exec_driver_sql("SHOW synchronous_commit").scalar() == "on"
    assert (intent_row(engine).state, intent_row(engine).ord_id) == ("live", "again")


def test_the_acceptance_on_the_lane_moves_only_intents_and_leaves_the_next_admission_flushed(
    engine: Engine,
) -> None:
    """The sender's acceptance (``accept_unflushed``) runs on the lane's connection, the one
    the next admission takes: its ``synchronous_commit = off`` must end with its own
    statement, or that admission's intent would be committed without waiting for the disk
    (promise 2). And it is a compare-and-set: a late answer moves nothing but an intent."""
    if engine.rt.ledger.sqlite:
        pytest.skip("PostgreSQL only: SQLite has no lane")
    ledger = engine.rt.ledger
    assert ledger.lane is not None
    process_buy(engine.rt, buy_message())
    placed = intent_row(engine)
    order_id = placed.id
    assert (placed.state, bool(placed.ord_id)) == ("live", True)
    # Live already (the sender recorded it): a late or repeated answer changes nothing.
    assert not accept_unflushed(ledger, order_id, "late", engine.clock())
    assert intent_row(engine).ord_id == placed.ord_id
    with ledger.connect() as conn:
        conn.exec_driver_sql("UPDATE orders SET state = 'pending_submit'")
    assert accept_unflushed(ledger, order_id, "again", engine.clock())
    assert (intent_row(engine).state, intent_row(engine).ord_id) == ("live", "again")
    # The same connection (the lane gives back the one used last), in its next statement.
    assert ledger.lane.one("SHOW synchronous_commit", {}) == ("on",)

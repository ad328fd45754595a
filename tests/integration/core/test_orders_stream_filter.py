"""The orders stream keeps back only the pushes that the ledger says it already holds.

``unless_acknowledged`` asks the ledger (PostgreSQL) whether a push only acknowledges a
placement. Only a positive answer keeps it off the broker; everything else, and every push
when the ledger cannot answer, goes to the workers as before. A push that looks like an
acknowledgement is held a moment before the ledger is asked (the placing worker is usually
still recording the answer), and until the ledger holds it too, or forwarded.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import insert, select, text, update
from sqlalchemy.exc import OperationalError

from tests.integration.core.test_acknowledgement_push import NEWS, TRADE
from tests.statements import statements_sent
from worker import orders_stream
from worker.domain.orders import OrderState
from worker.exchange.port import snapshot_to_message
from worker.ledger.db import Ledger, make_engine
from worker.ledger.models import Order
from worker.ledger.orders import Acknowledgement, accept_if_pending
from worker.orders_stream import (
    LEDGER_CONNECT_ARGS,
    PAUSE_AFTER_FAILURE_SECONDS,
    AcknowledgementFilter,
    unless_acknowledged,
)
from worker.task_names import APPLY_ORDER_UPDATE, VERIFY_ORDER

NOW = datetime(2026, 11, 30, 8, 27, tzinfo=UTC)


@pytest.fixture
def ledger(db_url: str) -> Any:
    led = Ledger.from_url(db_url)
    with led.connect() as conn:
        conn.execute(
            insert(Order).values(
                cl_ord_id=NEWS.cl_ord_id,
                ord_id=NEWS.ord_id,
                inst_id=NEWS.inst_id,
                strategy="hourly_limit_ws",
                side="buy",
                purpose="entry",
                state="live",
                px=NEWS.px,
                sz=NEWS.sz,
                created_at=NOW,
                updated_at=NOW,
            )
        )
    yield led
    led.dispose()


def forwarded(ledger: Ledger | None, pushes: list[Any]) -> list[tuple[str, list[object]]]:
    """What the stream forwards of ``pushes``, once it holds none of them any more."""
    sent: list[tuple[str, list[object]]] = []
    publish = unless_acknowledged(lambda name, args: sent.append((name, args)), ledger)
    for name, args in pushes:
        publish(name, args)
    if isinstance(publish, AcknowledgementFilter):
        settled(publish)
        publish.close()
    return sent


def settled(held: AcknowledgementFilter, timeout: float = 5.0) -> None:
    """Wait until the filter holds nothing (its thread has asked the ledger about all)."""
    deadline = time.monotonic() + timeout
    while held.holding:
        assert time.monotonic() < deadline, f"still holding {held.holding} after {timeout} s"
        time.sleep(0.002)


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_only_the_acknowledgement_is_kept_back(ledger: Ledger) -> None:
    ack = (APPLY_ORDER_UPDATE, [snapshot_to_message(NEWS)])
    news = [
        (APPLY_ORDER_UPDATE, [snapshot_to_message(replace(NEWS, **change))])
        for change in (
            {"state": OrderState.PARTIALLY_FILLED, "acc_fill_sz": Decimal("0.0001")},
            {"fill": TRADE, "acc_fill_sz": Decimal("0.0001")},
            {"state": OrderState.CANCELED},
            {"ord_id": "701"},
            {"cl_ord_id": "lfhlack0000000000000000009"},  # not in the ledger
        )
    ]
    other = (VERIFY_ORDER, [1, 0])
    assert forwarded(ledger, [ack, other]) == [other]
    for push in news:
        assert forwarded(ledger, [push]) == [push]


def test_every_push_goes_when_the_ledger_cannot_answer() -> None:
    unreachable = Ledger(
        make_engine("postgresql://nobody@127.0.0.1:1/none", connect_args=LEDGER_CONNECT_ARGS)
    )
    ack = (APPLY_ORDER_UPDATE, [snapshot_to_message(NEWS)])
    broken = (APPLY_ORDER_UPDATE, [{"inst_id": "BTC-USDT"}])  # the workers record it
    try:
        # The broken one at once; the acknowledgement once the read has failed.
        assert forwarded(unreachable, [ack, broken]) == [broken, ack]
    finally:
        unreachable.dispose()
    assert forwarded(None, [ack]) == [ack]  # no ledger (the embedded default)


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_after_a_failed_read_it_forwards_without_asking_for_a_while(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unreachable database costs one timeout, not one per push."""
    asked: list[int] = []
    failing = [True]

    def acknowledgements(led: Ledger, snaps: list[Any]) -> list[Acknowledgement]:
        asked.append(len(snaps))
        if failing[0]:
            raise OperationalError("SELECT", {}, Exception("server closed the connection"))
        return [Acknowledgement.HELD] * len(snaps)

    monkeypatch.setattr(orders_stream, "acknowledgements", acknowledgements)
    sent = Sent()
    publish = AcknowledgementFilter(sent, ledger, recheck_after=0.005, hold_at_most=60.0)
    publish(APPLY_ORDER_UPDATE, ACK)  # held; the read fails: forwarded, and no more asking
    assert sent.wait_for(1) == [(APPLY_ORDER_UPDATE, ACK)]
    failing[0] = False
    pause = publish._paused_until - time.monotonic()
    assert PAUSE_AFTER_FAILURE_SECONDS - 5 < pause <= PAUSE_AFTER_FAILURE_SECONDS
    publish(APPLY_ORDER_UPDATE, ACK)  # not even held
    assert (asked, len(sent.items), publish.holding) == ([1], 2, 0)
    # Once the pause is over it asks again, and the ledger knows it.
    monkeypatch.setattr(publish, "_paused_until", 0.0)
    publish(APPLY_ORDER_UPDATE, ACK)
    settled(publish)
    assert (asked, len(sent.items), publish.kept_back) == ([1, 1], 2, 1)
    publish.close()


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_the_streams_reads_give_up_quickly(db_url: str) -> None:
    """Fills queue behind the stream's reads: a read that waits (a lock, a stuck server) is
    cancelled by the server after a second."""
    ledger = Ledger(make_engine(db_url, connect_args=LEDGER_CONNECT_ARGS))
    try:
        with ledger.engine.connect() as conn:
            assert conn.exec_driver_sql("SHOW statement_timeout").scalar_one() == "1s"
            with pytest.raises(OperationalError, match="statement timeout"):
                conn.exec_driver_sql("SELECT pg_sleep(3)")
        # The stream's reads run on the ledger's lane, opened with the same arguments.
        assert ledger.lane is not None
        assert ledger.lane.one("SHOW statement_timeout", {}) == ("1s",)
        with pytest.raises(OperationalError, match="statement timeout"):
            ledger.lane.one("SELECT pg_sleep(3)", {})
    finally:
        ledger.dispose()


# An acknowledgement that overtakes its placement's answer -------------------------------


def _in_flight(ledger: Ledger) -> int:
    """Make the ledger's order an intent whose REST answer is not recorded yet."""
    with ledger.connect() as conn:
        conn.execute(update(Order).values(state="pending_submit", ord_id=None))
        return int(conn.execute(select(Order.id)).scalar_one())


class Sent:
    """What the filter forwarded, in order, from whichever thread."""

    def __init__(self) -> None:
        self.items: list[tuple[str, list[object]]] = []
        self.changed = threading.Condition()

    def __call__(self, name: str, args: list[object]) -> None:
        with self.changed:
            self.items.append((name, args))
            self.changed.notify_all()

    def wait_for(self, count: int, timeout: float = 5.0) -> list[tuple[str, list[object]]]:
        with self.changed:
            assert self.changed.wait_for(lambda: len(self.items) >= count, timeout)
            return list(self.items)


ACK = [snapshot_to_message(NEWS)]


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_an_acknowledgement_ahead_of_the_answer_is_kept_back_once_the_answer_is_recorded(
    ledger: Ledger,
) -> None:
    order_id = _in_flight(ledger)
    sent = Sent()
    held = AcknowledgementFilter(sent, ledger, recheck_after=0.005, hold_at_most=5.0)
    held(APPLY_ORDER_UPDATE, ACK)
    time.sleep(0.05)  # asked again a few times meanwhile: still in flight
    assert sent.items == []
    with ledger.single_statement() as conn:  # the placing worker records the REST answer
        assert accept_if_pending(conn, order_id, NEWS.ord_id, NOW)
    deadline = time.monotonic() + 5
    while held.kept_back == 0 and time.monotonic() < deadline:
        time.sleep(0.005)
    held.close()
    assert (held.kept_back, held.held_then_forwarded, sent.items) == (1, 0, [])


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_an_acknowledgement_whose_answer_never_comes_is_forwarded(ledger: Ledger) -> None:
    """The placing worker died between the POST and recording it: the push is the news."""
    _in_flight(ledger)
    sent = Sent()
    held = AcknowledgementFilter(sent, ledger, recheck_after=0.005, hold_at_most=0.1)
    started = time.monotonic()
    held(APPLY_ORDER_UPDATE, ACK)
    assert sent.wait_for(1) == [(APPLY_ORDER_UPDATE, ACK)]
    assert time.monotonic() - started >= 0.1
    held.close()
    assert (held.kept_back, held.held_then_forwarded) == (0, 1)


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_the_next_push_of_the_order_sends_the_held_one_first(ledger: Ledger) -> None:
    _in_flight(ledger)
    sent = Sent()
    held = AcknowledgementFilter(sent, ledger, recheck_after=5.0, hold_at_most=60.0)
    fill = [snapshot_to_message(replace(NEWS, fill=TRADE, acc_fill_sz=Decimal("0.0001")))]
    other = [
        snapshot_to_message(
            replace(NEWS, cl_ord_id="lfhlack0000000000000000009", state=OrderState.CANCELED)
        )
    ]
    held(APPLY_ORDER_UPDATE, ACK)
    held(APPLY_ORDER_UPDATE, other)  # another order's push does not release it
    held(APPLY_ORDER_UPDATE, fill)
    assert sent.items == [
        (APPLY_ORDER_UPDATE, other),
        (APPLY_ORDER_UPDATE, ACK),
        (APPLY_ORDER_UPDATE, fill),
    ]
    held.close()


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_closing_forwards_what_is_held(ledger: Ledger) -> None:
    _in_flight(ledger)
    sent = Sent()
    held = AcknowledgementFilter(sent, ledger, recheck_after=5.0, hold_at_most=60.0)
    held(APPLY_ORDER_UPDATE, ACK)
    assert sent.items == []
    held.close()
    assert sent.items == [(APPLY_ORDER_UPDATE, ACK)]
    held(APPLY_ORDER_UPDATE, ACK)  # closed: nothing is held any more
    assert sent.items == [(APPLY_ORDER_UPDATE, ACK)] * 2


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize(
    "row",
    [
        {"state": "pending_submit", "ord_id": "700"},  # an ordId already: not a fresh intent
        {"state": "pending_submit", "ord_id": None, "filled_sz": Decimal("0.0001")},
        {"state": "pending_submit", "ord_id": None, "purpose": "adopted"},
        {"state": "failed", "ord_id": None},  # the ledger gave up on it: news
    ],
)
def test_only_a_fresh_intent_makes_an_acknowledgement_wait(
    ledger: Ledger, row: dict[str, Any]
) -> None:
    with ledger.connect() as conn:
        conn.execute(update(Order).values(**row))
    sent = Sent()
    held = AcknowledgementFilter(sent, ledger, recheck_after=0.005, hold_at_most=60.0)
    started = time.monotonic()
    held(APPLY_ORDER_UPDATE, ACK)
    assert sent.wait_for(1) == [(APPLY_ORDER_UPDATE, ACK)]  # at the first look
    assert time.monotonic() - started < 30
    held.close()


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_held_push_the_broker_refuses_is_sent_again_later(ledger: Ledger) -> None:
    """The holding thread outlives a failed send: it holds the push again and sends it once
    the broker takes it, and goes on holding others."""
    _in_flight(ledger)
    sent = Sent()
    refusals = [1]

    def broker(name: str, args: list[object]) -> None:
        if refusals and refusals.pop():
            raise ConnectionError("Error 111 connecting to 127.0.0.1:6379")
        sent(name, args)

    held = AcknowledgementFilter(
        broker, ledger, recheck_after=0.005, hold_at_most=0.02, retry_send_after=0.05
    )
    held(APPLY_ORDER_UPDATE, ACK)
    assert sent.wait_for(1) == [(APPLY_ORDER_UPDATE, ACK)]
    assert (refusals, held.held_then_forwarded) == ([], 1)
    other = [snapshot_to_message(replace(NEWS, cl_ord_id="lfhlack0000000000000000009"))]
    with ledger.connect() as conn:  # a second placement in flight
        conn.execute(update(Order).values(cl_ord_id="lfhlack0000000000000000009"))
    held(APPLY_ORDER_UPDATE, other)
    assert sent.wait_for(2)[1] == (APPLY_ORDER_UPDATE, other)
    held.close()


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_closing_with_the_broker_gone_does_not_raise(ledger: Ledger) -> None:
    _in_flight(ledger)

    def broker(name: str, args: list[object]) -> None:
        raise ConnectionError("Error 111 connecting to 127.0.0.1:6379")

    held = AcknowledgementFilter(broker, ledger, recheck_after=5.0, hold_at_most=60.0)
    held(APPLY_ORDER_UPDATE, ACK)
    held.close()
    assert held.held_then_forwarded == 0


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_held_acknowledgement_is_forwarded_once_the_ledger_gives_up_on_its_intent(
    ledger: Ledger,
) -> None:
    """A placement that lands after the ledger gave up on it: while its acknowledgement is
    held, ``purge_pending`` marks the intent failed. The push is news now (an order the
    ledger believes never existed is live) and goes to the workers at the next look, not
    after the hold."""
    _in_flight(ledger)
    sent = Sent()
    held = AcknowledgementFilter(sent, ledger, recheck_after=0.005, hold_at_most=60.0)
    started = time.monotonic()
    held(APPLY_ORDER_UPDATE, ACK)
    time.sleep(0.03)
    assert sent.items == []
    with ledger.connect() as conn:
        conn.execute(update(Order).values(state="failed"))
    assert sent.wait_for(1) == [(APPLY_ORDER_UPDATE, ACK)]
    assert time.monotonic() - started < 10
    held.close()
    assert (held.kept_back, held.held_then_forwarded) == (0, 1)


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_held_acknowledgement_is_forwarded_when_the_ledger_stops_answering(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database goes away while a push is held: it is forwarded at the next look (the
    workers decide, as for any push the ledger cannot confirm), and the stream stops asking
    for a while."""
    _in_flight(ledger)
    answers = [Acknowledgement.IN_FLIGHT]
    real = orders_stream.acknowledgements

    def acknowledgements(led: Ledger, snaps: list[Any]) -> list[Acknowledgement]:
        if answers:
            return real(led, snaps)  # held: the intent is in flight
        raise OperationalError("SELECT", {}, Exception("server closed the connection"))

    monkeypatch.setattr(orders_stream, "acknowledgements", acknowledgements)
    sent = Sent()
    held = AcknowledgementFilter(sent, ledger, recheck_after=0.05, hold_at_most=60.0)
    held(APPLY_ORDER_UPDATE, ACK)
    assert sent.items == []
    answers.clear()
    assert sent.wait_for(1) == [(APPLY_ORDER_UPDATE, ACK)]
    held(APPLY_ORDER_UPDATE, ACK)  # paused: forwarded without asking
    assert len(sent.items) == 2
    held.close()


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_pushes_due_together_are_asked_about_in_one_read(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A burst of placements brings a burst of acknowledgements: the holding thread asks the
    ledger about all those due when it looks in one read, not one read each."""
    with ledger.connect() as conn:
        row = conn.execute(select(Order.__table__)).mappings().one()
        base = {k: v for k, v in row.items() if k != "id"}
        for n in range(2, 6):
            conn.execute(
                insert(Order).values(
                    **{**base, "cl_ord_id": f"{NEWS.cl_ord_id}{n}", "inst_id": f"X{n}-USDT"}
                )
            )
        cl_ord_ids = list(conn.execute(select(Order.cl_ord_id)).scalars())
    reads: list[int] = []
    real = orders_stream.acknowledgements

    def acknowledgements(led: Ledger, snaps: list[Any]) -> list[Acknowledgement]:
        reads.append(len(snaps))
        return real(led, snaps)

    monkeypatch.setattr(orders_stream, "acknowledgements", acknowledgements)
    sent = Sent()
    now = [100.0]
    held = AcknowledgementFilter(
        sent, ledger, clock=lambda: now[0], recheck_after=0.2, hold_at_most=60.0
    )
    pushes = [[snapshot_to_message(replace(NEWS, cl_ord_id=c))] for c in cl_ord_ids]
    for push in pushes:
        held(APPLY_ORDER_UPDATE, push)
        now[0] += 0.001  # each arrives a moment after the last, and is due as much later
    assert (reads, held.holding) == ([], 5)
    statements: list[str] = []
    with statements_sent(ledger, monkeypatch, statements.append):
        now[0] += 1.0  # by the time the thread looks (within 0.2 s), every one of them is due
        settled(held)
    held.close()
    assert (reads, held.kept_back, sent.items) == ([5], 5, [])
    # One statement, whatever the number of pushes: one array parameter on the lane.
    assert len(statements) == 1 and "= ANY (%(cl_ord_ids)s::VARCHAR[])" in statements[0]


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_database_restart_between_two_reads_forwards_the_push_and_the_lane_reconnects(
    ledger: Ledger,
) -> None:
    """The stream's reads keep one connection on the ledger's lane. A PostgreSQL restart
    kills it between two pushes: the next read fails, so that push goes to the workers (never
    kept back on a guess, never lost), and once the stream asks again it does so on a new
    connection, and the ledger's word keeps an acknowledgement back again."""
    lane = ledger.lane
    assert lane is not None
    sent = Sent()
    publish = AcknowledgementFilter(sent, ledger, recheck_after=0.005, hold_at_most=60.0)
    publish(APPLY_ORDER_UPDATE, ACK)  # the ledger holds it: kept back, on the lane
    deadline = time.monotonic() + 5
    while publish.kept_back < 1:
        assert time.monotonic() < deadline, "the first acknowledgement was not kept back"
        time.sleep(0.002)
    killed = lane.one("SELECT pg_backend_pid()", {})  # the connection the read just used
    assert killed is not None
    with ledger.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": killed[0]})
    publish(APPLY_ORDER_UPDATE, ACK)
    assert sent.wait_for(1) == [(APPLY_ORDER_UPDATE, ACK)]  # forwarded, not held
    assert publish._paused_until > time.monotonic()  # and no asking for a while
    publish._paused_until = 0.0  # the pause is over
    publish(APPLY_ORDER_UPDATE, ACK)
    deadline = time.monotonic() + 5
    while publish.kept_back < 2:
        assert time.monotonic() < deadline, "not kept back after the restart"
        time.sleep(0.002)
    assert lane.one("SELECT pg_backend_pid()", {}) != killed
    publish.close()
    assert (len(sent.items), publish.kept_back) == (1, 2)

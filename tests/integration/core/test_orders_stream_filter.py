"""The orders stream keeps back only the pushes that the ledger says it already holds.

``unless_acknowledged`` asks the ledger (PostgreSQL) whether a push only acknowledges a
placement. Only a positive answer keeps it off the broker; everything else, and every push
when the ledger cannot answer, goes to the workers as before. An acknowledgement that
overtook its placement's answer is held until the ledger holds it too, or forwarded.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import insert, select, update
from sqlalchemy.exc import OperationalError

from tests.integration.core.test_acknowledgement_push import NEWS, TRADE
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
    led.engine.dispose()


def forwarded(ledger: Ledger | None, pushes: list[Any]) -> list[tuple[str, list[object]]]:
    sent: list[tuple[str, list[object]]] = []
    publish = unless_acknowledged(lambda name, args: sent.append((name, args)), ledger)
    for name, args in pushes:
        publish(name, args)
    return sent


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
    assert forwarded(ledger, [ack, *news, other]) == [*news, other]


def test_every_push_goes_when_the_ledger_cannot_answer() -> None:
    unreachable = Ledger(
        make_engine("postgresql://nobody@127.0.0.1:1/none", connect_args=LEDGER_CONNECT_ARGS)
    )
    ack = (APPLY_ORDER_UPDATE, [snapshot_to_message(NEWS)])
    broken = (APPLY_ORDER_UPDATE, [{"inst_id": "BTC-USDT"}])  # the workers record it
    try:
        assert forwarded(unreachable, [ack, broken]) == [ack, broken]
    finally:
        unreachable.engine.dispose()
    assert forwarded(None, [ack]) == [ack]  # no ledger (the embedded default)


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_after_a_failed_read_it_forwards_without_asking_for_a_while(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unreachable database costs one timeout, not one per push."""
    asked: list[int] = []
    failing = [True]

    def acknowledgement(led: Ledger, snap: Any) -> Acknowledgement:
        asked.append(1)
        if failing[0]:
            raise OperationalError("SELECT", {}, Exception("server closed the connection"))
        return Acknowledgement.HELD

    monkeypatch.setattr(orders_stream, "acknowledgement", acknowledgement)
    now = [100.0]
    sent: list[str] = []
    publish = unless_acknowledged(lambda name, args: sent.append(name), ledger, lambda: now[0])
    ack = [snapshot_to_message(NEWS)]
    publish(APPLY_ORDER_UPDATE, ack)  # fails: forwarded, and no more asking
    now[0] += PAUSE_AFTER_FAILURE_SECONDS - 1
    failing[0] = False
    publish(APPLY_ORDER_UPDATE, ack)
    assert (len(asked), len(sent)) == (1, 2)
    now[0] += 1
    publish(APPLY_ORDER_UPDATE, ack)  # asks again, and the ledger knows it
    assert (len(asked), len(sent)) == (2, 2)


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_the_streams_reads_give_up_quickly(db_url: str) -> None:
    """Fills queue behind the stream's reads: a read that waits (a lock, a stuck server) is
    cancelled by the server after a second."""
    engine = make_engine(db_url, connect_args=LEDGER_CONNECT_ARGS)
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SHOW statement_timeout").scalar_one() == "1s"
            with pytest.raises(OperationalError, match="statement timeout"):
                conn.exec_driver_sql("SELECT pg_sleep(3)")
    finally:
        engine.dispose()


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
    other = [snapshot_to_message(replace(NEWS, cl_ord_id="lfhlack0000000000000000009"))]
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
    held = AcknowledgementFilter(sent, ledger, recheck_after=5.0, hold_at_most=60.0)
    held(APPLY_ORDER_UPDATE, ACK)
    assert sent.items == [(APPLY_ORDER_UPDATE, ACK)]
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
    real = orders_stream.acknowledgement

    def acknowledgement(led: Ledger, snap: Any) -> Acknowledgement:
        if answers:
            return real(led, snap)  # held: the intent is in flight
        raise OperationalError("SELECT", {}, Exception("server closed the connection"))

    monkeypatch.setattr(orders_stream, "acknowledgement", acknowledgement)
    sent = Sent()
    held = AcknowledgementFilter(sent, ledger, recheck_after=0.05, hold_at_most=60.0)
    held(APPLY_ORDER_UPDATE, ACK)
    assert sent.items == []
    answers.clear()
    assert sent.wait_for(1) == [(APPLY_ORDER_UPDATE, ACK)]
    held(APPLY_ORDER_UPDATE, ACK)  # paused: forwarded without asking
    assert len(sent.items) == 2
    held.close()

"""The orders stream keeps back only the pushes that the ledger says it already holds.

``unless_acknowledged`` asks the ledger (PostgreSQL) whether a push only acknowledges a
placement. Only a positive answer keeps it off the broker; everything else, and every push
when the ledger cannot answer, goes to the workers as before.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import insert
from sqlalchemy.exc import OperationalError

from tests.integration.core.test_acknowledgement_push import NEWS, TRADE
from worker import orders_stream
from worker.domain.orders import OrderState
from worker.exchange.port import snapshot_to_message
from worker.ledger.db import Ledger, make_engine
from worker.ledger.models import Order
from worker.orders_stream import (
    LEDGER_CONNECT_ARGS,
    PAUSE_AFTER_FAILURE_SECONDS,
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

    def only_acknowledges(led: Ledger, snap: Any) -> bool:
        asked.append(1)
        if failing[0]:
            raise OperationalError("SELECT", {}, Exception("server closed the connection"))
        return True

    monkeypatch.setattr(orders_stream, "only_acknowledges", only_acknowledges)
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

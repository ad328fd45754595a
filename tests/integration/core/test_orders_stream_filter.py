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

from tests.integration.core.test_acknowledgement_push import NEWS, TRADE
from worker.domain.orders import OrderState
from worker.exchange.port import snapshot_to_message
from worker.ledger.db import Ledger
from worker.ledger.models import Order
from worker.orders_stream import unless_acknowledged
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
    unreachable = Ledger.from_url("postgresql://nobody@127.0.0.1:1/none")
    ack = (APPLY_ORDER_UPDATE, [snapshot_to_message(NEWS)])
    broken = (APPLY_ORDER_UPDATE, [{"inst_id": "BTC-USDT"}])  # the workers record it
    try:
        assert forwarded(unreachable, [ack, broken]) == [ack, broken]
    finally:
        unreachable.engine.dispose()
    assert forwarded(None, [ack]) == [ack]  # no ledger (the embedded default)

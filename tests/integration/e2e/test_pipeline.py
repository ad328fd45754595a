"""End to end: prices moved on the simulator go through the real feed, Redis, real workers,
PostgreSQL and the orders stream, and come back as orders on the simulator and rows in the
ledger."""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

import httpx
import pytest
from e2e_engine import Engine
from sqlalchemy import select

from worker.ledger.models import Lot, Order, Signal

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

INST = "BTC-USDT"
TICK = Decimal("0.1")


def hour_open(rest_url: str) -> Decimal:
    """The newest 1H candle's open, as the feed sees it."""
    params = {"instId": INST, "bar": "1H", "limit": "1"}
    rows = httpx.get(f"{rest_url}/api/v5/market/candles", params=params).json()["data"]
    return Decimal(rows[0][1])


def sim_orders(e: Engine) -> list[dict[str, Any]]:
    orders: list[dict[str, Any]] = e.ctl.orders()["orders"]
    return orders


def eventually(check: Callable[[], bool], what: str, e: Engine, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}\n{e.logs()}")


def ledger_rows(e: Engine, model: Any) -> list[Any]:
    with e.ledger.begin() as s:
        rows = list(s.scalars(select(model)).all())
        s.expunge_all()
    return rows


def px(value: Decimal) -> str:
    return str(value.quantize(TICK))


def test_a_drop_buys_once_then_the_take_profit_closes_the_lot(engine: Engine) -> None:
    e = engine
    open_px = hour_open(e.sim.rest_url)
    limit = (open_px * Decimal("0.97")).quantize(TICK, ROUND_FLOOR)

    # A 2 % dip is not the Original strategy's 3 %: nothing is signalled, nothing is placed.
    e.ctl.price(INST, px(open_px * Decimal("0.98")))
    time.sleep(3)
    assert sim_orders(e) == []
    assert ledger_rows(e, Signal) == []

    # The 3 % drop: one resting buy at hour_open * 0.97 (the ask stays above it).
    e.ctl.price(INST, px(limit), bid=px(limit - 1), ask=px(limit + 1))
    eventually(lambda: len(sim_orders(e)) == 1, "the buy on the simulator", e)
    # The drop goes on, tick after tick: still one order for this hour.
    for step in range(1, 8):
        last = limit - step * 5
        e.ctl.price(INST, px(last), bid=px(last - 1), ask=px(limit + TICK))
        time.sleep(0.2)
    time.sleep(3)
    orders = sim_orders(e)
    assert len(orders) == 1, orders
    buy = orders[0]
    assert (buy["side"], buy["state"], Decimal(buy["px"])) == ("buy", "live", limit)
    assert buy["clOrdId"].startswith("lfhlb")
    assert e.ctl.placements(buy["clOrdId"]) == 1
    signals = ledger_rows(e, Signal)
    assert [(s.strategy, s.kind, s.outcome) for s in signals] == [
        ("hourly_limit_ws", "buy", "accepted")
    ]

    # The ask touches the limit: the buy fills, a lot opens, a take-profit rests at +1 %.
    e.ctl.price(INST, px(limit), bid=px(limit - 1), ask=px(limit))
    eventually(lambda: len(ledger_rows(e, Lot)) == 1, "the lot", e)
    lot = ledger_rows(e, Lot)[0]
    assert lot.avg_px == limit and lot.state == "open"
    take_profit = (limit * Decimal("1.01")).quantize(TICK, ROUND_CEILING)
    eventually(lambda: len(sim_orders(e)) == 2, "the take-profit on the simulator", e)
    tp = next(o for o in sim_orders(e) if o["side"] == "sell")
    assert (tp["state"], Decimal(tp["px"]), Decimal(tp["sz"])) == ("live", take_profit, lot.size)
    assert tp["clOrdId"].startswith("lfhls")

    # The price rises to the take-profit: it fills and the lot closes with a profit.
    e.ctl.price(INST, px(take_profit), bid=px(take_profit), ask=px(take_profit + 1))

    def closed() -> bool:
        lots = ledger_rows(e, Lot)
        return len(lots) == 1 and lots[0].state == "closed"

    eventually(closed, "the lot to close", e)
    lot = ledger_rows(e, Lot)[0]
    assert lot.sold_sz == lot.size
    assert lot.proceeds > lot.cost
    by_purpose = {o.purpose: o.state for o in ledger_rows(e, Order)}
    assert by_purpose == {"entry": "filled", "take_profit": "filled"}
    final = sim_orders(e)
    assert sorted((o["side"], o["state"]) for o in final) == [
        ("buy", "filled"),
        ("sell", "filled"),
    ]
    assert all(e.ctl.placements(o["clOrdId"]) == 1 for o in final)

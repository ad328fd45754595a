"""Through the real OKX adapter: an answer that does not say "no" leaves the buy unknown.

The buy path runs on a real database against the scripted OKX server. An ambiguous answer
to the placement (a timeout status, a 5xx page, "system error", "order timed out", a code the
adapter does not know) must leave the intent ``pending_submit`` with its slot blocked, to be
looked up later; only an explicit refusal rejects it and frees the slot.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from okx_fixtures_path import INSTRUMENTS_BODY
from okx_testserver import CREDENTIALS, FakeOkx, Reply, fail, ok
from sqlalchemy import select

from tests import builders
from worker.exchange.okx.adapter import OkxExchange
from worker.exchange.okx.ratelimit import OkxRequestPacer
from worker.exchange.okx.rest import OkxRestClient
from worker.ledger.db import Ledger
from worker.ledger.models import Order, Signal
from worker.runtime import Runtime
from worker.services.buy import process_buy

TRADE_ORDER = "/api/v5/trade/order"
INSTRUMENTS = "/api/v5/public/instruments"
SLOT = ("BTC-USDT", "hourly_limit_ws")


def _item(code: str, msg: str) -> dict[str, Any]:
    return {"clOrdId": "", "ordId": "", "sCode": code, "sMsg": msg, "tag": ""}


AMBIGUOUS = {
    "system_error_50026_http_500": Reply(
        {"code": "50026", "msg": "System error. Try again later", "data": []}, 500
    ),
    "system_error_50026_per_order": fail("1", data=[_item("50026", "System error")]),
    "order_timed_out_51149": fail("1", data=[_item("51149", "Order timed out. Please try again.")]),
    "unknown_code": fail("1", data=[_item("51999", "Something new")]),
    "http_502_html": Reply("<html><body>502 Bad Gateway</body></html>", 502, raw=True),
    "http_408": Reply("Request Timeout", 408, raw=True),
    "http_425_json": Reply({"msg": "Too Early"}, 425),
    "http_499_empty": Reply("", 499, raw=True),
    # An acceptance whose body stops half-way, past the client's read timeout (0.5 s).
    "body_stalls_half_way": Reply(
        {"code": "0", "msg": "", "data": [{"ordId": "42", "clOrdId": "", "sCode": "0"}]},
        stall=1.5,
    ),
    "no_answer_in_time": Reply(
        {"code": "0", "msg": "", "data": [{"ordId": "42", "clOrdId": "", "sCode": "0"}]},
        delay=1.5,
    ),
}


@pytest.fixture
def rt(fake: FakeOkx, db_url: str) -> Iterator[Runtime]:
    fake.default("GET", INSTRUMENTS, Reply(INSTRUMENTS_BODY))
    rest = OkxRestClient(fake.rest_url, CREDENTIALS, timeout=0.5, pacer=OkxRequestPacer())
    runtime = Runtime(
        settings=builders.make_settings(DATABASE_URL=db_url),
        ledger=Ledger.from_url(db_url),
        exchange=OkxExchange(rest),
        schedule=builders.RecordingScheduler(),
    )
    yield runtime
    rest.close()
    runtime.ledger.dispose()


def _orders(rt: Runtime) -> list[tuple[str, str]]:
    with rt.ledger.begin() as s:
        return [(o.cl_ord_id, o.state) for o in s.scalars(select(Order).order_by(Order.id))]


def _second_buy(rt: Runtime) -> tuple[str, str]:
    """Another signal for the same slot, after a restart (no cache): what the database says."""
    rt.cache.clear()
    result = process_buy(rt, builders.buy_message(*reversed(SLOT)))
    with rt.ledger.begin() as s:
        row = s.get(Signal, result.signal_id)
        assert row is not None
        return row.outcome, row.reason


@pytest.mark.parametrize("answer", list(AMBIGUOUS))
def test_an_ambiguous_answer_leaves_the_buy_pending_and_the_slot_blocked(
    fake: FakeOkx, rt: Runtime, answer: str
) -> None:
    fake.script("POST", TRADE_ORDER, AMBIGUOUS[answer])

    result = process_buy(rt, builders.buy_message(*reversed(SLOT)))

    assert (result.outcome, result.order_state) == ("accepted", "unknown")
    [(cl_ord_id, state)] = _orders(rt)
    assert state == "pending_submit"
    # It will be looked up by clOrdId, never sent again.
    assert "limitflow.verify_order" in rt.schedule.names()  # type: ignore[attr-defined]
    assert _second_buy(rt) == ("skipped", "slot_busy")
    assert len(fake.requests(TRADE_ORDER)) == 1
    assert _orders(rt) == [(cl_ord_id, "pending_submit")]


@pytest.mark.parametrize(
    "refusal",
    [
        fail("1", data=[_item("51121", "Order quantity must be a multiple of the lot size.")]),
        fail("1", data=[_item("51008", "Order failed. Insufficient USDT balance in account")]),
        fail("51000", "Parameter sz error", status=400),
    ],
)
def test_an_explicit_refusal_rejects_the_buy_and_frees_the_slot(
    fake: FakeOkx, rt: Runtime, refusal: Reply
) -> None:
    fake.script("POST", TRADE_ORDER, refusal)

    result = process_buy(rt, builders.buy_message(*reversed(SLOT)))

    assert (result.outcome, result.order_state) == ("accepted", "rejected")
    [(_, state)] = _orders(rt)
    assert state == "rejected"
    placed = {"ordId": "42", "clOrdId": "", "sCode": "0", "ts": "1758827099512"}
    fake.script("POST", TRADE_ORDER, ok([placed]))
    assert _second_buy(rt) == ("accepted", "")
    assert [state for _, state in _orders(rt)] == ["rejected", "live"]

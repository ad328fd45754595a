"""The push that only acknowledges a placement is answered by one read, and nothing else is.

Every order we place is pushed back as ``live`` right after the REST answer recorded it live.
``apply_snapshot_and_follow_up`` answers that news with one lock-free read. Each case below
departs from it in one fact (the ledger's state, fill, ordId or purpose; the news's state,
fill, trade or ordId) and must be applied exactly as the full path applies it.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import insert, select

from tests.conftest import empty_ledger
from tests.integration.core.conftest import Engine
from tests.statements import statements_sent
from worker.domain.orders import OrderState, Side
from worker.exchange.port import Fill, OrderSnapshot
from worker.ledger.models import Fill as FillRow
from worker.ledger.models import Lot, Order
from worker.services import updates

NOW = datetime(2026, 11, 30, 8, 27, tzinfo=UTC)
CL_ORD_ID = "lfhlack0000000000000000001"
ORDER = {"state": "live", "filled_sz": 0, "ord_id": "700", "purpose": "entry", "side": "buy"}
NEWS = OrderSnapshot(
    inst_id="BTC-USDT",
    ord_id="700",
    cl_ord_id=CL_ORD_ID,
    side=Side.BUY,
    px=Decimal("60000"),
    sz=Decimal("0.0002"),
    state=OrderState.LIVE,
    acc_fill_sz=Decimal(0),
    avg_px=Decimal(0),
    fee=Decimal(0),
    fee_ccy="",
    created_ms=1,
    updated_ms=2,
)
TRADE = Fill("t1", Decimal("60000"), Decimal("0.0001"), Decimal("-0.0000001"), "BTC", 2)
HALF = Decimal("0.0001")

CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("buy acknowledged", {}, {}),
    *[(f"ledger {s.value}", {"state": s.value}, {}) for s in OrderState if s != "live"],
    ("ledger partly filled", {"state": "partially_filled", "filled_sz": HALF}, {}),
    ("ledger filled figure", {"filled_sz": HALF}, {}),
    ("ledger without ordId", {"ord_id": None}, {}),
    ("ledger other ordId", {"ord_id": "701"}, {}),
    ("adopted", {"purpose": "adopted"}, {}),
    ("orphan", {"purpose": "orphan"}, {}),
    ("take-profit acknowledged", {"purpose": "take_profit", "side": "sell"}, {"side": Side.SELL}),
    ("news partly filled", {}, {"state": OrderState.PARTIALLY_FILLED, "acc_fill_sz": HALF}),
    ("news filled", {}, {"state": OrderState.FILLED, "acc_fill_sz": NEWS.sz}),
    ("news canceled", {}, {"state": OrderState.CANCELED}),
    ("news figure", {}, {"acc_fill_sz": HALF}),
    ("news trade", {}, {"fill": TRADE, "acc_fill_sz": HALF}),
    ("news trade without its figure", {}, {"fill": TRADE}),
    ("news other ordId", {}, {"ord_id": "701"}),
    ("news without ordId", {}, {"ord_id": ""}),
    ("news of another order", {}, {"cl_ord_id": "lfhlack0000000000000000002"}),
]


def _seed(engine: Engine, order: dict[str, Any]) -> None:
    with engine.rt.ledger.connect() as conn:
        empty_ledger(conn)
        conn.execute(
            insert(Order).values(
                cl_ord_id=CL_ORD_ID,
                inst_id="BTC-USDT",
                strategy="hourly_limit_ws",
                px=Decimal("60000"),
                sz=Decimal("0.0002"),
                created_at=NOW,
                updated_at=NOW,
                **(ORDER | order),
            )
        )


def _ledger(engine: Engine) -> list[Any]:
    """Everything news can move, but the two columns that only record it."""
    with engine.rt.ledger.connect() as conn:
        orders = conn.execute(select(Order.__table__).order_by(Order.id)).mappings().all()
        rows: list[Any] = [
            {k: v for k, v in o.items() if k not in ("exchange_updated_ms", "updated_at")}
            for o in orders
        ]
        for table in (Lot.__table__, FillRow.__table__):
            rows.append(conn.execute(select(table)).all())
    return rows


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_news_is_applied_as_the_full_path_applies_it(
    engine: Engine, case: tuple[str, dict[str, Any], dict[str, Any]], monkeypatch: Any
) -> None:
    name, order, news = case
    snap = replace(NEWS, **news)
    judged: list[bool] = []
    only_acknowledges = updates.only_acknowledges

    def spy(ledger: Any, snap: OrderSnapshot) -> bool:
        judged.append(only_acknowledges(ledger, snap))
        return judged[-1]

    outcomes = []
    for shortcut in (spy, lambda ledger, snap: False):
        monkeypatch.setattr(updates, "only_acknowledges", shortcut)
        _seed(engine, order)
        outcomes.append((engine.apply(snap), _ledger(engine)))
    assert outcomes[0] == outcomes[1]
    assert judged == [name.endswith("acknowledged")]


def test_the_acknowledgement_costs_one_read(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    _seed(engine, {})
    statements: list[str] = []
    with statements_sent(engine.rt.ledger, monkeypatch, statements.append):
        assert engine.apply(NEWS) == "live"
    first_words = [s.split()[0] for s in statements]
    assert [w for w in first_words if w != "BEGIN"] == ["SELECT"]  # SQLite: BEGIN IMMEDIATE

"""Money is exact on both databases: what the ledger stores is what it reads back.

SQLite has no decimal type: a ``NUMERIC`` column stores a REAL, so 0.3 came back as
0.29999999999999998 and a lot of 0.0696 was sold as 0.0695. The ledger now stores decimals
as text on SQLite; comparisons in SQL still order them as numbers.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from alembic import command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from tests.builders import buy_message, sell_message
from tests.integration.core.conftest import Engine
from worker.ledger.db import Ledger
from worker.ledger.migrate import alembic_config
from worker.ledger.models import Fill, Lot, Order
from worker.services.buy import process_buy
from worker.services.sell import process_sell

NOW = datetime(2026, 11, 24, 8, 27, tzinfo=UTC)
# Every value NUMERIC(38, 18) holds: up to 20 integer digits and exactly 18 decimals.
LIMIT = 10**38 - 1
money = st.integers(-LIMIT, LIMIT).map(lambda n: Decimal(f"{n}E-18"))
small = st.integers(-(10**20), 10**20).map(lambda n: Decimal(f"{n}E-18"))
values = st.one_of(money, small, st.sampled_from([Decimal("0.3"), Decimal("0.0696")]))


def _order(n: int, px: Decimal, sz: Decimal, fee: Decimal) -> Order:
    return Order(
        cl_ord_id=f"lfhlb{n:024x}",
        inst_id="BTC-USDT",
        strategy="hourly_limit_ws",
        side="buy",
        purpose="entry",
        state="filled",
        px=px,
        sz=sz,
        filled_sz=sz,
        avg_px=px,
        fee=fee,
        fee_ccy="BTC",
        created_at=NOW,
        updated_at=NOW,
    )


def _lot(order_id: int, size: Decimal, px: Decimal, other: Decimal) -> Lot:
    return Lot(
        buy_order_id=order_id,
        inst_id="BTC-USDT",
        strategy="hourly_limit_ws",
        state="closed",
        size=size,
        avg_px=px,
        sold_sz=other,
        proceeds=other,
        cost=size,
        dust_sz=other,
        take_profit_px=px,
        opened_at=NOW,
        exit_after=NOW,
    )


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rows=st.lists(st.tuples(values, values, values), min_size=1, max_size=5))
def test_decimals_round_trip_exactly_through_orders_fills_and_lots(
    db_url: str, rows: list[tuple[Decimal, Decimal, Decimal]]
) -> None:
    ledger = Ledger.from_url(db_url)
    try:
        written: dict[int, tuple[Decimal, Decimal, Decimal]] = {}
        with ledger.begin() as s:
            base = (s.scalar(select(Order.id).order_by(Order.id.desc()).limit(1)) or 0) + 1
            for n, (a, b, c) in enumerate(rows, start=base):
                order = _order(n, a, b, c)
                s.add(order)
                s.flush()
                s.add(Fill(order_id=order.id, inst_id="BTC-USDT", trade_id=f"t{n}", px=a, sz=b,
                           fee=c, fee_ccy="BTC", ts_ms=1))  # fmt: skip
                s.add(_lot(order.id, b, a, c))
                written[order.id] = (a, b, c)
        with ledger.begin() as s:
            for order_id, (a, b, c) in written.items():
                order = s.get(Order, order_id)
                fill = s.scalar(select(Fill).where(Fill.order_id == order_id))
                lot = s.scalar(select(Lot).where(Lot.buy_order_id == order_id))
                assert order is not None and fill is not None and lot is not None
                got = [order.px, order.sz, order.filled_sz, order.avg_px, order.fee]
                got += [fill.px, fill.sz, fill.fee]
                got += [lot.size, lot.avg_px, lot.sold_sz, lot.proceeds, lot.dust_sz]
                want = [a, b, b, a, c, a, b, c, b, a, c, c, c]
                assert got == want
                # Exactly the same number, not one a float away from it.
                assert all(isinstance(v, Decimal) for v in got)
                assert [v.normalize() for v in got] == [v.normalize() for v in want]
    finally:
        ledger.dispose()


def _lots_where(ledger: Ledger, *criteria: Any) -> list[Decimal]:
    with ledger.begin() as s:
        # Sorted in Python: ORDER BY a money column would order text on SQLite.
        return sorted(s.scalars(select(Lot.size).where(*criteria)), reverse=True)


def test_sql_compares_and_orders_money_as_numbers(db_url: str) -> None:
    ledger = Ledger.from_url(db_url)
    sizes = [Decimal(v) for v in ("9", "10", "0.5", "0", "0.000000000000000001", "100.25")]
    try:
        with ledger.begin() as s:
            for n, size in enumerate(sizes):
                order = _order(n, Decimal(1), size, Decimal(0))
                s.add(order)
                s.flush()
                s.add(_lot(order.id, size, Decimal(1), Decimal(0)))
        # As text, "9" > "10" and "100.25" < "9.5": these would silently come out wrong.
        assert _lots_where(ledger, Lot.size > Decimal("9.5")) == [Decimal("100.25"), 10]
        assert _lots_where(ledger, Lot.size > 0) == [
            Decimal("100.25"), 10, 9, Decimal("0.5"), Decimal("1E-18")
        ]  # fmt: skip
        assert _lots_where(ledger, Lot.size <= Decimal("0.5")) == [
            Decimal("0.5"), Decimal("1E-18"), 0
        ]  # fmt: skip
        assert _lots_where(ledger, Lot.size.between(Decimal(1), Decimal(10))) == [10, 9]
        assert _lots_where(ledger, Lot.size == Decimal("10.000")) == [10]
        assert _lots_where(ledger, Lot.size != 0, Lot.size < 1) == [
            Decimal("0.5"), Decimal("1E-18")
        ]  # fmt: skip
    finally:
        ledger.dispose()


def test_a_lot_of_0_0696_is_sold_whole(engine: Engine) -> None:
    """SOL-USDT (lotSz 0.0001): 0.0697 bought, 0.0696 after the 0.1% fee, 0.0696 sold."""
    msg = buy_message(inst_id="SOL-USDT", px="150")
    del msg["quote_sz"]
    msg["sz"] = "0.0697"
    assert process_buy(engine.rt, msg).order_state == "live"
    engine.settle_price("SOL-USDT", "150")
    with engine.rt.ledger.begin() as s:
        [lot] = s.scalars(select(Lot))
    assert lot.size == Decimal("0.0696")

    engine.venue.set_price("SOL-USDT", Decimal("140"), Decimal("139.99"), Decimal("140.01"))
    assert process_sell(engine.rt, sell_message(inst_id="SOL-USDT")).outcome == "done"
    with engine.rt.ledger.begin() as s:
        [exit_order] = s.scalars(select(Order).where(Order.purpose == "exit"))
    assert exit_order.sz == Decimal("0.0696")
    engine.pump()
    engine.settle_price("SOL-USDT", "139.99")
    with engine.rt.ledger.begin() as s:
        [lot] = s.scalars(select(Lot))
    assert lot.state == "closed"
    # Only the fee's remainder below lotSz is dust, nothing of what was bought.
    assert lot.sold_sz == lot.size == Decimal("0.0696")
    assert lot.dust_sz == Decimal("0.0000303")


def test_migration_0002_turns_sqlite_reals_into_exact_text(tmp_path: Any) -> None:
    """A ledger written by 0001 (REALs) is converted in place: values, indexes, keys kept."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    command.upgrade(alembic_config(url), "0001")
    ledger = Ledger.from_url(url)
    stamp = "2026-11-24 08:27:00.000000"
    with ledger.engine.begin() as conn:
        # What 0001's NUMERIC columns hold on SQLite: REALs (and INTEGERs for whole numbers).
        conn.exec_driver_sql(
            "INSERT INTO orders (id, cl_ord_id, inst_id, strategy, side, purpose, state, px, sz,"
            " filled_sz, avg_px, fee, fee_ccy, exchange_updated_ms, created_at, updated_at,"
            " last_error) VALUES (1, 'lfhlb1', 'SOL-USDT', 'hourly_limit_ws', 'buy', 'entry',"
            " 'filled', ?, ?, ?, ?, ?, 'SOL', 0, ?, ?, '')",
            (150.37, 0.0697, 0.0697, 150.37, 0.0000697, stamp, stamp),
        )
        conn.exec_driver_sql(
            "INSERT INTO fills (order_id, inst_id, trade_id, px, sz, fee, fee_ccy, ts_ms)"
            " VALUES (1, 'SOL-USDT', 't1', ?, ?, ?, 'SOL', 1)",
            (150.37, 0.0697, 0.0000697),
        )
        conn.exec_driver_sql(
            "INSERT INTO lots (buy_order_id, inst_id, strategy, state, size, avg_px, sold_sz,"
            " proceeds, cost, dust_sz, take_profit_px, sell_attempts, opened_at, exit_after)"
            " VALUES (1, 'SOL-USDT', 'hourly_limit_ws', 'open', ?, ?, 0, 0, ?, ?, ?, 1, ?, ?)",
            (0.0696, 150.37, 10.480789, 0.0000303, 151.88, stamp, stamp),
        )
        assert conn.exec_driver_sql("SELECT typeof(size) FROM lots").scalar() == "real"
    ledger.dispose()

    command.upgrade(alembic_config(url), "head")

    ledger = Ledger.from_url(url)
    try:
        with ledger.begin() as s:
            order, lot, fill = s.get(Order, 1), s.scalar(select(Lot)), s.scalar(select(Fill))
            assert order is not None and lot is not None and fill is not None
            assert (order.px, order.sz, order.filled_sz, order.fee) == (
                Decimal("150.37"), Decimal("0.0697"), Decimal("0.0697"), Decimal("0.0000697")
            )  # fmt: skip
            assert (fill.px, fill.sz, fill.fee) == (order.px, order.sz, order.fee)
            assert str(lot.size) == "0.0696" and str(lot.cost) == "10.480789"
            assert (lot.sold_sz, lot.dust_sz, lot.take_profit_px) == (
                0, Decimal("0.0000303"), Decimal("151.88")
            )  # fmt: skip
            lot.proceeds = Decimal("12345678901234567890.123456789012345678")
        with ledger.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT typeof(size) FROM lots").scalar() == "text"
            assert conn.exec_driver_sql("SELECT sold_sz FROM lots").scalar() == "0"
            # New writes stay text: the columns have TEXT affinity now, not NUMERIC.
            assert conn.exec_driver_sql("SELECT proceeds FROM lots").scalar() == (
                "12345678901234567890.123456789012345678"
            )
            assert not conn.exec_driver_sql("PRAGMA foreign_key_check").all()
            sql = "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
            indexes = {name: text for name, text in conn.exec_driver_sql(sql).all()}
        # The partial unique indexes (one open buy, one open lot per slot) survived as such.
        assert (
            "WHERE side = 'buy' AND purpose <> 'orphan' AND state IN"
            in indexes["uq_orders_open_buy_per_slot"]
        )
        assert (
            "WHERE state IN ('open', 'needs_attention') AND NOT orphan"
            in indexes["uq_lots_open_per_slot"]
        )
        assert {"ix_orders_state", "ix_lots_state", "ix_fills_order_id"} <= set(indexes)
    finally:
        ledger.dispose()

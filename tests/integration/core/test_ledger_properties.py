"""Property tests: the ledger's invariants over random interleavings of everything.

Signals (fresh and redelivered), price moves that fill orders, pushes delivered late,
twice or out of order, injected exchange faults, sells, reconciliation, restarts (a cleared
cache) and the passing of time, in any order. After every step: one position per slot, on the
ledger and on the venue, and no clOrdId ever placed twice. At the end, once the faults stop,
reconciliation leaves no intent unsettled and the ledger agrees with the venue.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, insert, select, text
from sqlalchemy.exc import IntegrityError

from tests import builders
from tests.venues import make_memory_exchange
from worker.domain.ids import parse_cl_ord_id
from worker.domain.orders import OPEN_STATES, OrderState
from worker.ledger.db import Ledger
from worker.ledger.models import Base, Fill, Lot, Order
from worker.runtime import Runtime
from worker.services.buy import process_buy
from worker.services.reconcile import purge_pending, sync_active_orders
from worker.services.sell import process_sell
from worker.services.updates import apply_snapshot_and_follow_up

SLOTS = [
    ("BTC-USDT", "hourly_limit_ws"),
    ("BTC-USDT", "batch_buy_ws"),
    ("ETH-USDT", "original_gap"),
]
OPEN = {s.value for s in OPEN_STATES}
FAULTS = [
    ("place_order", "accept_then_timeout"),
    ("place_order", "timeout"),
    ("place_order", "reject"),
    ("get_order", "unavailable"),
    ("get_order", "timeout"),
    ("cancel_order", "rate_limited"),
    ("list_pending", "unavailable"),
]

buy = st.tuples(st.just("buy"), st.integers(0, len(SLOTS) - 1))
fault = st.tuples(st.just("fault"), st.integers(0, len(FAULTS) - 1))
price = st.tuples(
    st.just("price"), st.sampled_from(["BTC-USDT", "ETH-USDT"]), st.sampled_from([-2, 0, 1, 3])
)
push = st.tuples(st.just("push"), st.integers(0, 2**16))
restart = st.tuples(st.just("restart"), st.just(0))
# Repeats weight the draw towards the steps that make races: buys, faults, fills, restarts.
step = st.one_of(
    buy, buy, buy, buy, fault, fault, price, price, push, push, restart, restart,
    st.tuples(st.just("redeliver"), st.integers(0, 50)),
    st.tuples(st.just("sell"), st.integers(0, len(SLOTS) - 1)),
    st.tuples(st.just("sync"), st.just(0)),
    st.tuples(st.just("purge"), st.just(0)),
    st.tuples(st.just("time"), st.sampled_from([5, 61, 301, 3601])),
)  # fmt: skip


class World:
    def __init__(self, path: Path) -> None:
        url = f"sqlite:///{path}"
        self.ledger = Ledger.from_url(url)
        Base.metadata.create_all(self.ledger.engine)
        self.venue = make_memory_exchange()
        self.clock = builders.ManualClock()
        self.rt = Runtime(
            settings=builders.make_settings(DATABASE_URL=url, BUY_GUARD_WINDOW_SECONDS=0),
            ledger=self.ledger,
            exchange=self.venue,
            schedule=builders.RecordingScheduler(),
            clock=self.clock,
        )
        self.sent: list[dict[str, Any]] = []
        self.backlog: list[Any] = []

    def now_ms(self) -> int:
        return int(self.clock().timestamp() * 1000)

    def run(self, op: tuple[Any, ...]) -> None:
        steps = {
            "buy": self._buy,
            "redeliver": self._redeliver,
            "price": self._price,
            "push": self._push,
            "fault": self._fault,
            "sell": self._sell,
            "sync": self._sync,
            "purge": self._purge,
            "time": self._time,
            "restart": self._restart,
        }
        step = steps.get(op[0])
        if step is not None:
            step(op)
        self.backlog.extend(self.venue.drain_updates())

    def _buy(self, op: tuple[Any, ...]) -> None:
        inst_id, strategy = SLOTS[op[1]]
        msg = builders.buy_message(strategy, inst_id, created_at=self.now_ms())
        self.sent.append(msg)
        process_buy(self.rt, msg)

    def _redeliver(self, op: tuple[Any, ...]) -> None:
        if self.sent:
            process_buy(self.rt, self.sent[op[1] % len(self.sent)])

    def _price(self, op: tuple[Any, ...]) -> None:
        inst_id, move = op[1], op[2]
        base = builders.PRICES[inst_id]
        self.venue.set_price(inst_id, base * (1 + Decimal(move) / 100))
        self.backlog.extend(self.venue.drain_updates())

    def _push(self, op: tuple[Any, ...]) -> None:
        if not self.backlog:
            return
        rnd = random.Random(op[1])
        batch = rnd.sample(self.backlog, k=rnd.randint(1, len(self.backlog)))
        batch += rnd.sample(batch, k=len(batch) // 3)  # some delivered twice
        for snap in batch:
            apply_snapshot_and_follow_up(self.rt, snap)
        self.backlog.extend(self.venue.drain_updates())

    def _fault(self, op: tuple[Any, ...]) -> None:
        self.venue.inject(*FAULTS[op[1]])

    def _sell(self, op: tuple[Any, ...]) -> None:
        inst_id, strategy = SLOTS[op[1]]
        try:
            process_sell(self.rt, builders.sell_message(strategy, inst_id))
        except Exception as exc:  # a retryable failure: the task would be retried
            from worker.domain.errors import Retryable

            assert isinstance(exc, Retryable), exc

    def _sync(self, op: tuple[Any, ...]) -> None:
        sync_active_orders(self.rt)

    def _purge(self, op: tuple[Any, ...]) -> None:
        purge_pending(self.rt)

    def _time(self, op: tuple[Any, ...]) -> None:
        self.clock.advance(op[1])

    def _restart(self, op: tuple[Any, ...]) -> None:
        self.rt.cache.clear()

    def check(self) -> None:
        with self.ledger.begin() as s:
            open_buys = Counter(
                s.execute(
                    select(Order.inst_id, Order.strategy).where(
                        Order.side == "buy", Order.state.in_(OPEN)
                    )
                ).all()
            )
            open_lots = Counter(
                s.execute(
                    select(Lot.inst_id, Lot.strategy).where(
                        Lot.state.in_(["open", "needs_attention"])
                    )
                ).all()
            )
            assert all(n <= 1 for n in open_buys.values()), open_buys
            assert all(n <= 1 for n in open_lots.values()), open_lots
            # A slot never holds an open buy and an unsold lot at once.
            assert not (set(open_buys) & set(open_lots))
            for lot in s.scalars(select(Lot)):
                assert Decimal(0) <= lot.sold_sz <= lot.size
            dup_trades = s.scalar(
                select(func.count()).select_from(
                    select(Fill.trade_id)
                    .group_by(Fill.inst_id, Fill.trade_id)
                    .having(func.count() > 1)
                    .subquery()
                )
            )
            assert dup_trades == 0
        venue_open_buys: Counter[tuple[str, str]] = Counter()
        for snap in self.venue.orders():
            assert self.venue.placements_for(snap.cl_ord_id) == 1, snap.cl_ord_id
            parsed = parse_cl_ord_id(snap.cl_ord_id)
            assert parsed is not None
            if parsed[1] == "buy" and snap.state.value in OPEN:
                venue_open_buys[(snap.inst_id, parsed[0])] += 1
        assert all(n <= 1 for n in venue_open_buys.values()), venue_open_buys

    def settle_everything(self) -> None:
        self.venue.clear_faults()
        for snap in self.backlog:
            apply_snapshot_and_follow_up(self.rt, snap)
        self.backlog.clear()
        self.clock.advance(61)
        for _ in range(3):
            purge_pending(self.rt)
            sync_active_orders(self.rt)
            for snap in self.venue.drain_updates():
                apply_snapshot_and_follow_up(self.rt, snap)
        venue = {snap.cl_ord_id: snap for snap in self.venue.orders()}
        with self.ledger.begin() as s:
            orders = list(s.scalars(select(Order)))
        assert not [o.cl_ord_id for o in orders if o.state == "pending_submit"]
        for order in orders:
            snap = venue.get(order.cl_ord_id)
            if snap is None:
                assert order.state in ("rejected", "failed"), (order.cl_ord_id, order.state)
            else:
                assert order.state == snap.state.value, (order.cl_ord_id, order.state, snap.state)
                assert order.filled_sz == snap.acc_fill_sz
        assert set(venue) <= {o.cl_ord_id for o in orders}, "every venue order is in the ledger"


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(step, min_size=5, max_size=60))
def test_ledger_invariants_hold_under_any_interleaving(
    steps: list[tuple[Any, ...]], tmp_path_factory: Any
) -> None:
    world = World(tmp_path_factory.mktemp("prop") / "ledger.db")
    try:
        for op in steps:
            world.run(op)
            world.check()
        world.settle_everything()
        world.check()
    finally:
        world.ledger.dispose()


def test_models_and_migrations_agree(db_url: str) -> None:
    """The schema the migrations build is the schema the models describe (both databases:
    on SQLite money columns are TEXT)."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    ledger = Ledger.from_url(db_url)
    with ledger.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    ledger.dispose()
    assert diff == []


def _order_state_check(ledger: Ledger) -> str:
    """The text of the CHECK constraint on ``orders.state``, as the database holds it."""
    with ledger.engine.connect() as conn:
        if ledger.sqlite:
            sql = conn.scalar(text("SELECT sql FROM sqlite_master WHERE name = 'orders'"))
            found = re.search(r"CONSTRAINT ck_orders_state CHECK (.*)", sql)
            return found[1] if found else ""
        return str(
            conn.scalar(
                text(
                    "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
                    "WHERE conname = 'ck_orders_state' AND conrelid = 'orders'::regclass"
                )
            )
        )


def test_the_orders_state_column_takes_exactly_the_lifecycle_states(db_url: str) -> None:
    """Migration 0006's CHECK constraint and ``OrderState`` name the same states: a state
    added to the enum without a migration fails here (and an order in it would be refused)."""
    ledger = Ledger.from_url(db_url)
    try:
        check = _order_state_check(ledger)
        assert set(re.findall(r"'([a-z_]+)'", check)) == {s.value for s in OrderState}
        now = builders.ManualClock()()
        row = {
            "cl_ord_id": "lfcheck0",
            "inst_id": "BTC-USDT",
            "strategy": "hourly_limit_ws",
            "side": "buy",
            "purpose": "entry",
            "px": Decimal(1),
            "sz": Decimal(1),
            "filled_sz": Decimal(0),
            "avg_px": Decimal(0),
            "fee": Decimal(0),
            "fee_ccy": "",
            "exchange_updated_ms": 0,
            "created_at": now,
            "updated_at": now,
            "last_error": "",
        }
        with pytest.raises(IntegrityError), ledger.begin() as s:
            s.execute(insert(Order).values(state="LIVE", **row))  # an exchange's word
        with ledger.begin() as s:
            s.execute(insert(Order).values(state=OrderState.FAILED.value, **row))
    finally:
        ledger.dispose()

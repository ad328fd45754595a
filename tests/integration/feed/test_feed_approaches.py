"""The feed daemon writes closest approaches and coverage to the database in batches, and
forgets them after the retention period (both databases)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fake_okx import wait_for
from feed_harness import HOUR, T0, Running, ticker
from sqlalchemy import select

from worker.ledger.approaches import ApproachStore
from worker.ledger.db import Ledger
from worker.ledger.models import ClosestApproach, FeedCoverage

pytestmark = pytest.mark.timeout(60)


def at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


@pytest.fixture
def store(db_url: str) -> Iterator[ApproachStore]:
    s = ApproachStore(Ledger.from_url(db_url))
    yield s
    s.ledger.dispose()


def approaches(store: ApproachStore) -> list[ClosestApproach]:
    with store.ledger.begin() as s:
        return list(s.scalars(select(ClosestApproach).order_by(ClosestApproach.bucket_start)))


def coverage(store: ApproachStore) -> list[FeedCoverage]:
    with store.ledger.begin() as s:
        return list(s.scalars(select(FeedCoverage).order_by(FeedCoverage.hour_start)))


@pytest.fixture
def feed(tmp_path: Path, store: ApproachStore) -> Iterator[Running]:
    run = Running(tmp_path, "hourly_limit_ws", approaches=store, approaches_every=0.05)
    wait_for(lambda: run.engine.states["BTC-USDT"].hour_open is not None, what="REST seed")
    yield run
    run.close()


def test_the_daemon_writes_the_running_hour_then_its_final_row(
    feed: Running, store: ApproachStore
) -> None:
    s = feed.server
    s.push("public", ticker("BTC-USDT", "98.1234", T0 + 60_000), ticker("ETH-USDT", "99", T0 + 1))
    s.push("public", ticker("BTC-USDT", "99", T0 + 120_000))
    wait_for(lambda: any(r.inst_id == "BTC-USDT" for r in approaches(store)), what="a row")
    [btc] = [r for r in approaches(store) if r.inst_id == "BTC-USDT"]
    assert (btc.strategy, btc.bucket, btc.complete) == ("hourly_limit_ws", "2026112908", False)
    # Exact on both databases: NUMERIC on PostgreSQL, canonical text on SQLite.
    assert (btc.reference, btc.closest, btc.trigger) == (
        Decimal("100"),
        Decimal("98.1234"),
        Decimal("0.03"),
    )
    assert btc.closest_at == at(T0 + 60_000) and btc.run_id == feed.feed.run_id
    wait_for(lambda: {c.inst_id for c in coverage(store)} >= {"BTC-USDT", "ETH-USDT"})
    s.push("public", ticker("BTC-USDT", "101", T0 + HOUR + 5))  # the hour ends for BTC
    wait_for(
        lambda: any(r.complete for r in approaches(store) if r.inst_id == "BTC-USDT"),
        what="the final row",
    )
    rows = [r for r in approaches(store) if r.inst_id == "BTC-USDT"]
    assert (rows[0].bucket, rows[0].complete) == ("2026112908", True)
    assert rows[0].closest == Decimal("98.1234")  # one row per bucket and run: replaced


def test_rows_are_replaced_per_run_and_pruned_after_retention(store: ApproachStore) -> None:
    now = datetime.now(UTC)
    old = now - timedelta(days=20)

    def row(start: datetime, closest: str, complete: bool) -> dict[str, Any]:
        return {
            "strategy": "hourly_limit_ws",
            "inst_id": "BTC-USDT",
            "bucket_start": start,
            "run_id": "r1",
            "bucket": start.strftime("%Y%m%d%H"),
            "bucket_end": start + timedelta(hours=1),
            "reference": Decimal("61234.5"),
            "closest": Decimal(closest),
            "closest_at": start,
            "trigger": Decimal("0.03"),
            "fired_at": None,
            "peak_count": None,
            "detail": "",
            "first_tick_at": start,
            "complete": complete,
            "updated_at": now,
        }

    heard = {
        "inst_id": "BTC-USDT",
        "hour_start": old,
        "run_id": "r1",
        "first_tick_at": old,
        "last_tick_at": old,
        "gap_start": None,
        "gap_end": None,
        "updated_at": now,
    }
    hour = now.replace(minute=0, second=0, microsecond=0)
    store.save([row(hour, "60000.1", False), row(old, "1", True)], [heard])
    store.save([row(hour, "59950.25", True)], [])
    kept = approaches(store)
    assert [(r.closest, r.complete) for r in kept] == [
        (Decimal("1"), True),
        (Decimal("59950.25"), True),
    ]
    assert store.prune(now - timedelta(days=14)) == 2  # the old approach and its coverage
    assert [r.bucket_start for r in approaches(store)] == [hour]
    assert coverage(store) == []

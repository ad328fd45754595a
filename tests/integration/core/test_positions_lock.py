"""MAX_OPEN_POSITIONS under concurrency on PostgreSQL: the count must see what the previous
holder of the positions lock committed (a count in the statement that waits for the lock
would not: a READ COMMITTED statement sees only what was committed before it started)."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest
from sqlalchemy import func, select

from tests.builders import buy_message
from tests.integration.core.conftest import Engine, with_settings
from worker.ledger.db import lock_key
from worker.ledger.models import Order
from worker.services.buy import BuyResult, process_buy


def test_two_slots_racing_for_the_last_position_admit_one(engine: Engine) -> None:
    if engine.rt.ledger.sqlite:
        pytest.skip("SQLite serializes every write transaction (BEGIN IMMEDIATE)")
    with_settings(engine, MAX_OPEN_POSITIONS=1)
    url = engine.rt.settings.database_url.replace("postgresql+psycopg://", "postgresql://")
    results: list[BuyResult] = []
    with psycopg.connect(url) as holder:
        # Hold the positions lock so that both admissions queue behind it, then let go.
        holder.execute(f"SELECT pg_advisory_xact_lock({lock_key('open_positions')})")
        threads = [
            threading.Thread(
                target=lambda s=strategy: results.append(process_buy(engine.rt, buy_message(s)))
            )
            for strategy in ("hourly_limit_ws", "original_gap")
        ]
        for t in threads:
            t.start()
        time.sleep(0.5)
        holder.commit()
        for t in threads:
            t.join(timeout=30)
    assert sorted((r.outcome, r.reason) for r in results) == [
        ("accepted", ""),
        ("skipped", "risk_limit"),
    ]
    with engine.rt.ledger.begin() as s:
        assert s.scalar(select(func.count()).select_from(Order)) == 1

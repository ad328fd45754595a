"""Promise 1 under fire: eight worker processes race thousands of copies of one signal."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import func, select

from tests.builders import buy_message
from tests.integration.workers.conftest import Cluster
from tests.processes import wait_drained
from worker.app import PROCESS_BUY_SIGNAL
from worker.ledger.models import Order, Signal

pytestmark = pytest.mark.integration

COPIES = 2000
DISTINCT = 100
WORKERS = 8


def test_duplicate_storm_places_exactly_one_order(cluster: Cluster) -> None:
    cluster.pool.start(WORKERS)
    storm = buy_message("hourly_limit_ws", "BTC-USDT", signal_id="storm:BTC-USDT:1")
    rivals = [buy_message("hourly_limit_ws", "BTC-USDT") for _ in range(DISTINCT)]
    messages = [storm] * COPIES + rivals
    random.Random(7).shuffle(messages)
    for msg in messages:
        cluster.send(PROCESS_BUY_SIGNAL, msg)
    wait_drained(cluster.broker_url)

    venue_orders = cluster.venue.orders()
    assert len(venue_orders) == 1, f"{len(venue_orders)} orders reached the exchange"
    with cluster.ledger.begin() as s:
        recorded = dict(s.execute(select(Signal.signal_id, Signal.outcome)).all())
        reasons = dict(s.execute(select(Signal.reason, func.count()).group_by(Signal.reason)).all())
        db_orders = list(s.scalars(select(Order)))
    expected_ids = {storm["signal_id"]} | {m["signal_id"] for m in rivals}
    assert set(recorded) == expected_ids, "every signal has a recorded outcome"
    assert list(recorded.values()).count("accepted") == 1
    assert len(db_orders) == 1 and db_orders[0].cl_ord_id == venue_orders[0].cl_ord_id
    assert set(reasons) <= {"", "slot_busy", "cached_busy"}
    # Every worker took part: the race was real.
    busy = [w for w in cluster.pool.workers if "task.done" in w.text()]
    assert len(busy) >= WORKERS // 2

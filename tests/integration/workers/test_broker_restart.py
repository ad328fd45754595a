"""A Redis restart in the middle of a buy: the buy still records what the exchange answered.

When the broker connection drops, Celery can terminate the tasks that are running with
``acks_late`` (``worker_cancel_long_running_tasks_on_connection_loss``). For a buy waiting for
the exchange's answer that leaves the placed order unknown to the ledger until a lookup or
``purge_pending``. The workers let such a task finish (``worker.app``), and go on working.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from tests import builders, stores
from tests.chaos.engine_ops import Broker
from tests.chaos.stores import REDIS_SERVER, PrivateRedis
from tests.processes import WorkerPool, wait_for
from tests.venues import make_memory_exchange
from worker.app import PROCESS_BUY_SIGNAL, make_app
from worker.domain.ids import buy_cl_ord_id
from worker.exchange.memory import serve_memory_exchange
from worker.ledger.db import Ledger
from worker.ledger.migrate import upgrade
from worker.ledger.models import Order, Signal

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which(REDIS_SERVER) is None, reason="needs redis-server"),
]

PLACEMENT_SECONDS = 3.0  # long enough to restart Redis while a buy waits for the venue


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.stop()


def wait_idle(broker: Broker) -> bool:
    """Nothing waiting and nothing unacknowledged, for two seconds (within 30 s)."""
    return broker.wait_until(lambda waiting, unacked: waiting == unacked == 0, 30, lambda: None)


def test_a_worker_outlives_a_redis_restart_with_a_buy_in_flight(
    private_redis: PrivateRedis, tmp_path: Path
) -> None:
    db_url = stores.create_pg_database()
    upgrade(db_url)
    venue = make_memory_exchange()
    server = serve_memory_exchange(venue)
    env = {
        "DATABASE_URL": db_url,
        "CELERY_BROKER_URL": private_redis.url,
        "CELERY_RESULT_BACKEND": private_redis.url,
        "LIMITFLOW_HOME": str(tmp_path),
        "LIMITFLOW_EXCHANGE": server.url,
        "MEMORY_SYNC_INTERVAL_SECONDS": "0",
        "LOG_LEVEL": "INFO",
    }
    app = make_app(builders.make_settings(**env))
    ledger = Ledger.from_url(db_url)
    pool = WorkerPool(env, tmp_path)
    try:
        [worker] = pool.start(1)
        wait_for(lambda: "worker.warmed" in worker.text(), 30, "the warm-up", w=worker)

        def state(msg: dict[str, object]) -> str | None:
            cl_ord_id = buy_cl_ord_id("hourly_limit_ws", str(msg["signal_id"]))
            with ledger.connect() as conn:
                found = conn.execute(select(Order.state).where(Order.cl_ord_id == cl_ord_id))
                return found.scalar_one_or_none()

        venue.set_latency(PLACEMENT_SECONDS)
        first = builders.buy_message("hourly_limit_ws", "BTC-USDT")
        app.send_task(PROCESS_BUY_SIGNAL, args=[first])
        # Admitted: the worker holds the message unacknowledged while the venue answers.
        wait_for(lambda: state(first) == "pending_submit", 30, "the first buy admitted", w=worker)
        private_redis.restart(down_seconds=1.0)
        wait_for(lambda: state(first) == "live", 30, "the first buy placed", w=worker)

        venue.set_latency(0)
        second = builders.buy_message("hourly_limit_ws", "ETH-USDT")
        app.send_task(PROCESS_BUY_SIGNAL, args=[second])
        wait_for(lambda: state(second) == "live", 60, "a buy after the restart", w=worker)
        assert worker.proc.poll() is None, worker.text()[-3000:]
        assert "Unrecoverable error" not in worker.text()

        # Its acknowledgement reached Redis once it was back (kombu acknowledges through a
        # new connection): nothing waits and nothing is held for a redelivery.
        broker = Broker(private_redis.url)
        try:
            assert wait_idle(broker), broker.busy_with()
        finally:
            broker.close()
        # Where it cannot (Redis still down; RabbitMQ, whose acknowledgements belong to the
        # lost channel), the message comes back: its second run places nothing.
        runs = worker.text().count(f"signal_id={first['signal_id']} ")
        app.send_task(PROCESS_BUY_SIGNAL, args=[first])
        wait_for(
            lambda: worker.text().count(f"signal_id={first['signal_id']} ") > runs,
            30,
            "the first buy's message run again",
            w=worker,
        )
        assert "outcome=duplicate" in worker.text().rsplit(f"signal_id={first['signal_id']}", 1)[1]
        assert sorted(o.inst_id for o in venue.orders()) == ["BTC-USDT", "ETH-USDT"]
        with ledger.connect() as conn:
            outcomes = conn.execute(
                select(Signal.outcome).where(Signal.signal_id == first["signal_id"])
            ).all()
        assert [o for (o,) in outcomes] == ["accepted"]
        assert state(first) == "live"
    finally:
        pool.kill_all()
        server.stop()
        ledger.dispose()
        stores.drop_pg_database(db_url)

"""A venue served on loopback, a fresh PostgreSQL database and Redis, real workers."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

from tests import builders, stores
from tests.integration.core.conftest import make_venue
from tests.processes import WorkerPool
from worker.app import APPLY_ORDER_UPDATE, make_app
from worker.exchange.memory import InMemoryExchange, serve_memory_exchange
from worker.exchange.port import snapshot_to_message
from worker.ledger.db import Ledger
from worker.ledger.migrate import upgrade

pytestmark = pytest.mark.integration


@dataclass
class Cluster:
    venue: InMemoryExchange
    pool: WorkerPool
    producer: Celery
    ledger: Ledger
    broker_url: str
    env: dict[str, str]

    def send(self, task: str, *args: Any) -> None:
        self.producer.send_task(task, args=list(args))

    def push_updates(self) -> int:
        """Forward the venue's order pushes as tasks, like the private orders stream."""
        updates = self.venue.drain_updates()
        for snap in updates:
            self.send(APPLY_ORDER_UPDATE, snapshot_to_message(snap))
        return len(updates)


_redis_db = iter(range(3, 15))


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    db_url = stores.create_pg_database()
    upgrade(db_url)
    broker = stores.redis_db_url(next(_redis_db))
    venue = make_venue()
    server = serve_memory_exchange(venue)
    env = {
        "DATABASE_URL": db_url,
        "CELERY_BROKER_URL": broker,
        "CELERY_RESULT_BACKEND": broker,
        "LIMITFLOW_EXCHANGE": server.url,
        "LIMITFLOW_HOME": str(tmp_path),
        "MEMORY_SYNC_INTERVAL_SECONDS": "0",
        "LOG_LEVEL": "INFO",
    }
    settings = builders.make_settings(**env)
    pool = WorkerPool(env, tmp_path)
    ledger = Ledger.from_url(db_url)
    c = Cluster(venue, pool, make_app(settings), ledger, broker, env)
    yield c
    pool.kill_all()
    server.stop()
    ledger.engine.dispose()
    stores.drop_pg_database(db_url)

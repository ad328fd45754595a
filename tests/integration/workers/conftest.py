"""A venue on loopback, a fresh PostgreSQL database, a broker, real worker processes.

Every test runs on both brokers: Redis alone, and RabbitMQ (a fresh vhost per test) with
Redis for results and cache invalidation, the pairing the README recommends.

The venue is either the in-memory one shared over a socket, or the local OKX simulator: then
the workers run the real OKX adapter (``LIMITFLOW_EXCHANGE=okx``) and the real
``python -m worker.orders_stream`` forwards the private websocket's pushes to them.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

from tests import builders, stores
from tests.processes import ROOT, WorkerPool, WorkerProcess, wait_for
from tests.venues import VENUES, MemoryVenue, SimVenue, Venue, sim_env
from worker.app import APPLY_ORDER_UPDATE, make_app
from worker.exchange.memory import serve_memory_exchange
from worker.exchange.port import snapshot_to_message
from worker.ledger.db import Ledger
from worker.ledger.migrate import upgrade

pytestmark = pytest.mark.integration

PUSH_SETTLE_SECONDS = 0.3  # loopback websocket -> orders stream -> Redis takes milliseconds


@dataclass
class Cluster:
    venue: Venue
    pool: WorkerPool
    producer: Celery
    ledger: Ledger
    broker_url: str
    env: dict[str, str]
    stream: WorkerProcess | None = None  # the orders stream process (OKX venue only)

    def send(self, task: str, *args: Any) -> None:
        self.producer.send_task(task, args=list(args))

    def push_updates(self) -> None:
        """Get the venue's order pushes to the workers, as the private orders stream does."""
        if self.stream is None:
            for snap in self.venue.drain_updates():
                self.send(APPLY_ORDER_UPDATE, snapshot_to_message(snap))
        else:
            time.sleep(PUSH_SETTLE_SECONDS)  # the real stream forwards them by itself

    @contextmanager
    def pushes_lost(self) -> Iterator[None]:
        """Changes made inside the block are never pushed to the workers."""
        if self.stream is None:
            yield
            self.venue.drain_updates()
            return
        stop_process(self.stream)
        yield
        self.stream = start_orders_stream(self.env, self.stream.log.parent)


def start_orders_stream(env: dict[str, str], logdir: Path) -> WorkerProcess:
    """Run ``python -m worker.orders_stream`` and wait until it is subscribed."""
    log = logdir / "orders-stream.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "worker.orders_stream"],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    stream = WorkerProcess("orders-stream", proc, log)
    ready = log.stat().st_size if log.exists() else 0

    def subscribed() -> bool:
        return "orders_stream.ready" in stream.text()[ready:]

    wait_for(subscribed, 30, "the orders stream subscribed", w=stream)
    return stream


def stop_process(proc: WorkerProcess) -> None:
    if proc.proc.poll() is None:
        os.killpg(proc.proc.pid, signal.SIGTERM)
        proc.proc.wait(10)


BROKERS = ("redis", "rabbitmq")
# Tests run one after another and each flushes its database first, so numbers can be reused.
_redis_db = itertools.cycle(range(3, 15))


@dataclass(frozen=True)
class Broker:
    name: str
    url: str
    result_backend: str


@pytest.fixture(params=BROKERS)
def broker(request: pytest.FixtureRequest) -> Iterator[Broker]:
    """Redis, or RabbitMQ in a vhost of its own (deleted afterwards)."""
    redis_url = stores.redis_db_url(next(_redis_db))
    if request.param == "redis":
        yield Broker("redis", redis_url, redis_url)
        return
    amqp_url = stores.create_amqp_vhost()
    yield Broker("rabbitmq", amqp_url, redis_url)
    stores.drop_amqp_vhost(amqp_url)


@pytest.fixture(params=VENUES)
def cluster(request: pytest.FixtureRequest, broker: Broker, tmp_path: Path) -> Iterator[Cluster]:
    """Workers on each venue and broker; ``indirect`` parametrization picks a venue."""
    db_url = stores.create_pg_database()
    upgrade(db_url)
    env = {
        "DATABASE_URL": db_url,
        "CELERY_BROKER_URL": broker.url,
        "CELERY_RESULT_BACKEND": broker.result_backend,
        "LIMITFLOW_HOME": str(tmp_path),
        "MEMORY_SYNC_INTERVAL_SECONDS": "0",
        "LOG_LEVEL": "INFO",
    }
    venue: Venue
    server = None
    if request.param == "memory":
        venue = MemoryVenue()
        server = serve_memory_exchange(venue.memory)
        env["LIMITFLOW_EXCHANGE"] = server.url
    else:
        handle = request.getfixturevalue("okx_sim")
        venue = SimVenue(handle, collect_pushes=False)
        env.update(sim_env(handle))
    settings = builders.make_settings(**env)
    pool = WorkerPool(env, tmp_path)
    ledger = Ledger.from_url(db_url)
    c = Cluster(venue, pool, make_app(settings), ledger, broker.url, env)
    if request.param != "memory":
        c.stream = start_orders_stream(env, tmp_path)
    yield c
    pool.kill_all()
    if c.stream is not None:
        stop_process(c.stream)
    venue.close()
    if server is not None:
        server.stop()
    ledger.dispose()
    stores.drop_pg_database(db_url)


def embedded_default_env(
    home: Path, exchange_url: str, monkeypatch: pytest.MonkeyPatch
) -> tuple[dict[str, str], Any]:
    """A first run's environment, with no servers: SQLite and the file-system broker under
    ``home``, the venue at ``exchange_url``; and its settings."""
    env = {
        "LIMITFLOW_HOME": str(home),
        "LIMITFLOW_EXCHANGE": exchange_url,
        "MEMORY_SYNC_INTERVAL_SECONDS": "0",
        "LOG_LEVEL": "INFO",
    }
    for key in ("DATABASE_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"):
        monkeypatch.delenv(key, raising=False)
    settings = builders.make_settings(**env)
    assert settings.database_url.startswith("sqlite") and settings.broker_url == "filesystem://"
    return env, settings

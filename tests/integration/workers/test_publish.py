"""The feed's publisher against real workers: each signal it sends runs as its own task.

``feed.publish.CeleryPublisher`` builds and publishes Celery task messages itself (one held
producer, not ``send_task``); these tests fail if what it puts on a broker is not executed by
``celery -A worker worker`` as the right task with the signal as its argument, on Redis,
RabbitMQ and the embedded file-system broker.
"""

from __future__ import annotations

import base64
import shutil
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson
import pytest
import redis
from sqlalchemy import select

from feed.publish import CeleryPublisher, task_for
from tests import builders, stores
from tests.integration.workers.conftest import Cluster, embedded_default_env
from tests.processes import WorkerPool, wait_for
from tests.venues import MemoryVenue, make_memory_exchange
from worker.app import PROCESS_BUY_SIGNAL, make_app
from worker.exchange.memory import serve_memory_exchange
from worker.ledger.db import Ledger
from worker.ledger.migrate import upgrade
from worker.ledger.models import Order, Signal
from worker.signals import parse_buy, parse_sell, to_message

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def signal_rows(ledger: Ledger) -> dict[str, tuple[str, str]]:
    """signal_id -> (kind, outcome) of every signal the workers recorded."""
    with ledger.begin() as s:
        return {row.signal_id: (row.kind, row.outcome) for row in s.scalars(select(Signal))}


@pytest.mark.parametrize("cluster", ["memory"], indirect=True)
def test_a_published_buy_and_sell_run_as_their_tasks(cluster: Cluster) -> None:
    cluster.pool.start(1)
    buy = parse_buy(builders.buy_message("hourly_limit_ws", "BTC-USDT", px="60000"))
    sell = parse_sell(builders.sell_message("hourly_limit_ws", "ETH-USDT"))
    publisher = CeleryPublisher(cluster.producer)
    try:
        for signal in (buy, sell, buy):  # the repeat shows both went through one producer
            publisher(signal)
        wait_for(lambda: publisher.sent == 3, 30, "three signals published")
        wait_for(lambda: len(signal_rows(cluster.ledger)) == 2, 60, "both signals executed")
    finally:
        publisher.close()
    rows = signal_rows(cluster.ledger)
    # A buy run as the sell task (or the other way round) is recorded as invalid, not accepted.
    assert rows[buy.signal_id] == ("buy", "accepted")
    assert rows[sell.signal_id][0] == "sell" and rows[sell.signal_id][1] != "invalid"
    assert isinstance(cluster.venue, MemoryVenue)
    assert [o.inst_id for o in cluster.venue.memory.orders()] == ["BTC-USDT"]
    assert publisher.failed == 0 and publisher.dropped == 0


def test_a_published_buy_runs_on_the_embedded_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite and the file-system broker, as ``python -m feed`` publishes with no servers."""
    venue = make_memory_exchange()
    server = serve_memory_exchange(venue)
    env, settings = embedded_default_env(tmp_path, server.url, monkeypatch)
    upgrade(settings.database_url)
    pool = WorkerPool(env, tmp_path)
    ledger = Ledger.from_url(settings.database_url)
    try:
        pool.start(1)
        buy = parse_buy(builders.buy_message())
        publisher = CeleryPublisher(make_app(settings))
        publisher(buy)
        publisher.close()
        assert publisher.sent == 1

        def placed() -> bool:
            with ledger.begin() as s:
                return s.scalar(select(Order.state)) == "live"

        wait_for(placed, 60, "the order placed through the file-system broker")
        assert signal_rows(ledger) == {buy.signal_id: ("buy", "accepted")}
    finally:
        ledger.dispose()
        pool.kill_all()
        server.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def redis_server(port: int, folder: Path) -> Iterator[None]:
    """A Redis of the test's own on ``port`` (no persistence), stopped on exit."""
    proc = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(folder),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)

    def up() -> bool:
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False

    try:
        wait_for(up, 10, "redis-server")
        yield
    finally:
        client.close()
        proc.terminate()
        proc.wait(10)


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")
def test_a_broker_outage_is_counted_and_the_next_signal_reconnects(tmp_path: Path) -> None:
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    app = make_app(builders.make_settings(CELERY_BROKER_URL=url, LIMITFLOW_HOME=str(tmp_path)))
    signals = [parse_buy(builders.buy_message(px="1")) for _ in range(6)]
    with redis_server(port, tmp_path):
        publisher = CeleryPublisher(app, maxsize=2)
        publisher(signals[0])
        wait_for(lambda: publisher.sent == 1, 30, "the first signal published")
    # Redis is down: each send fails after Celery's publish retries, and with a send stuck on
    # the retries the bounded queue fills, so what does not fit is dropped (and counted).
    for signal in signals[1:5]:
        publisher(signal)
    wait_for(lambda: publisher.failed + publisher.dropped == 4, 60, "the outage counted")
    assert publisher.dropped >= 1 and publisher.sent == 1
    with redis_server(port, tmp_path):  # back, empty: the first message went with it
        publisher(signals[5])
        wait_for(lambda: publisher.sent == 2, 30, "a signal published after the outage")
        publisher.close()
        queued = [orjson.loads(raw) for raw in redis.Redis(port=port).lrange("limitflow", 0, -1)]
    assert [m["headers"]["task"] for m in queued] == [PROCESS_BUY_SIGNAL]
    args, kwargs, _ = orjson.loads(base64.b64decode(queued[0]["body"]))
    assert args == [to_message(signals[5])] and kwargs == {}


def test_the_message_is_the_one_send_task_builds(tmp_path: Path) -> None:
    """Headers, properties and body as ``app.send_task`` makes them (say, after a Celery
    upgrade), but for what differs per message or per thread."""
    url = stores.redis_db_url(15)
    app = make_app(builders.make_settings(CELERY_BROKER_URL=url, LIMITFLOW_HOME=str(tmp_path)))
    buy = parse_buy(builders.buy_message(px="1"))
    sell = parse_sell(builders.sell_message())
    for signal in (buy, sell):
        app.send_task(task_for(signal), args=[to_message(signal)], ignore_result=True)
    publisher = CeleryPublisher(app)
    publisher(buy)
    publisher(sell)
    publisher.close()
    assert publisher.sent == 2
    client = redis.Redis.from_url(url)
    queued = [orjson.loads(raw) for raw in reversed(client.lrange("limitflow", 0, -1))]
    client.close()
    for message in queued:
        for key in ("id", "root_id"):
            message["headers"][key] = "-"
        for key in ("correlation_id", "delivery_tag", "reply_to"):  # reply_to: per thread
            message["properties"][key] = "-"
    by_send_task, by_publisher = queued[:2], queued[2:]
    assert by_publisher == by_send_task

"""acks_late + reject_on_worker_lost: a message whose worker dies runs again, and harmlessly.

Celery requeues the message itself when only a pool process dies (on both brokers). When the
whole worker dies, the broker has to: RabbitMQ as soon as the connection drops, Redis only after
its visibility timeout (600 s here, which is why that case is RabbitMQ-only).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest
from sqlalchemy import select

from tests.builders import buy_message
from tests.integration.workers.conftest import Cluster
from tests.processes import WorkerProcess, wait_for
from worker.app import PROCESS_BUY_SIGNAL
from worker.domain.ids import buy_cl_ord_id
from worker.ledger.models import Order

pytestmark = [
    pytest.mark.integration,
    pytest.mark.parametrize("cluster", ["memory"], indirect=True),
]

HOLD_SECONDS = 4.0  # the venue holds the placement; the worker dies while it waits


def runs_of(worker: WorkerProcess, signal_id: str) -> list[str]:
    return [
        line
        for line in worker.text().splitlines()
        if "task=process_buy_signal" in line and f"signal_id={signal_id}" in line
    ]


def pool_children(worker: WorkerProcess) -> list[int]:
    out = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(worker.proc.pid)], capture_output=True, text=True
    ).stdout
    return [int(pid) for pid in out.split()]


def intent_exists(cluster: Cluster, cl_ord_id: str) -> bool:
    with cluster.ledger.begin() as s:
        return s.scalar(select(Order.id).where(Order.cl_ord_id == cl_ord_id)) is not None


def assert_placed_once(cluster: Cluster, cl_ord_id: str) -> None:
    """The dead worker's held request lands; the second run sent nothing."""
    wait_for(lambda: cluster.venue.placements_for(cl_ord_id) > 0, 2 * HOLD_SECONDS, "placement")
    time.sleep(1.0)
    assert cluster.venue.placements_for(cl_ord_id) == 1


def start_held_buy(cluster: Cluster) -> tuple[str, str]:
    """Send a buy whose placement the venue holds (then places); wait for its intent."""
    cluster.venue.delay_placements(HOLD_SECONDS, lands=True)
    msg = buy_message()
    cid = buy_cl_ord_id("hourly_limit_ws", msg["signal_id"])
    cluster.send(PROCESS_BUY_SIGNAL, msg)
    wait_for(lambda: intent_exists(cluster, cid), 30, "the intent row")
    time.sleep(0.3)  # the worker is now inside the held placement request
    return msg["signal_id"], cid


def test_a_dead_pool_process_gives_its_message_back(cluster: Cluster) -> None:
    [worker] = cluster.pool.start(1)
    signal_id, cid = start_held_buy(cluster)
    [child] = pool_children(worker)
    os.kill(child, signal.SIGKILL)
    cluster.venue.clear_faults()
    # The main process sees the child die (WorkerLostError), rejects the message with requeue,
    # and its next pool process runs it again at once.
    wait_for(lambda: runs_of(worker, signal_id), 15, "the requeued run", w=worker)
    [again] = runs_of(worker, signal_id)
    assert "outcome=duplicate" in again  # the ledger already held its intent: nothing re-sent
    assert_placed_once(cluster, cid)


@pytest.mark.parametrize("broker", ["rabbitmq"], indirect=True)
def test_rabbitmq_redelivers_a_killed_workers_message_at_once(cluster: Cluster) -> None:
    [victim] = cluster.pool.start(1)
    signal_id, cid = start_held_buy(cluster)
    victim.kill9()
    cluster.venue.clear_faults()
    [heir] = cluster.pool.start(1)
    # No visibility timeout to wait out: the dead connection returned the message.
    wait_for(lambda: runs_of(heir, signal_id), 15, "the redelivered run", w=heir)
    [again] = runs_of(heir, signal_id)
    assert "outcome=duplicate" in again
    assert runs_of(victim, signal_id) == []  # the first run never finished
    assert_placed_once(cluster, cid)

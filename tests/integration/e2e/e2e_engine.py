"""The whole engine as separate processes: the simulator (in this process, quiet), PostgreSQL,
Redis, real ``celery worker`` processes, ``python -m worker.orders_stream`` and
``python -m feed``."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from simulator import start_simulator
from simulator.control import SimControl
from simulator.server import SimulatorHandle
from tests import stores
from tests.processes import ROOT, WorkerPool, WorkerProcess, wait_for
from worker.ledger.db import Ledger
from worker.ledger.migrate import upgrade

REDIS_DB = 15  # core tests use 2, worker tests 3-14
STRATEGIES = """
[hourly_limit_ws]
drop_pct = 0.03
take_profit_pct = 0.01

[original_gap]
enabled = false

[stable_buy_ws]
enabled = false

[batch_buy_ws]
enabled = false
"""


def start_process(name: str, module: str, env: dict[str, str], logdir: Path) -> WorkerProcess:
    log = logdir / f"{name}.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", module],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return WorkerProcess(name, proc, log)


def wait_for_a_quiet_hour(margin_seconds: float = 120) -> None:
    """The Original strategy's bucket is the UTC hour: do not run across an hour boundary."""
    left = 3600 - time.time() % 3600
    if left < margin_seconds:
        time.sleep(left + 1)


@dataclass
class Engine:
    sim: SimulatorHandle
    ctl: SimControl
    ledger: Ledger
    pool: WorkerPool
    feed: WorkerProcess
    stream: WorkerProcess

    def logs(self) -> str:
        parts = [f"--- {p.name}\n{p.text()[-3000:]}" for p in [self.feed, self.stream]]
        parts += [f"--- {w.name}\n{w.text()[-3000:]}" for w in self.pool.workers]
        return "\n".join(parts)


@contextmanager
def running_engine(tmp_path: Path) -> Iterator[Engine]:
    wait_for_a_quiet_hour()
    # Real-time clock (tick timestamps = wall time, as the workers judge expiry by it), and a
    # generator that never steps during the test: only the test moves prices.
    sim = start_simulator(
        port=0, instruments="BTC-USDT", speed=1.0, step_seconds=3600.0, warmup_hours=0,
        shock_rate_per_hour=0.0, dump_rate_per_hour=0.0,
    )  # fmt: skip
    db_url = stores.create_pg_database()
    upgrade(db_url)
    broker = stores.redis_db_url(REDIS_DB)
    strategies = tmp_path / "strategies.toml"
    strategies.write_text(STRATEGIES)
    env = {
        "DATABASE_URL": db_url,
        "CELERY_BROKER_URL": broker,
        "CELERY_RESULT_BACKEND": broker,
        "LIMITFLOW_HOME": str(tmp_path),
        "OKX_REST_URL": sim.rest_url,
        "OKX_WS_PUBLIC_URL": f"{sim.ws_url}/public",
        "OKX_WS_PRIVATE_URL": f"{sim.ws_url}/private",
        "OKX_WS_BUSINESS_URL": f"{sim.ws_url}/business",
        "INSTRUMENTS": "BTC-USDT",
        "STRATEGY_CONFIG": str(strategies),
        "MEMORY_SYNC_INTERVAL_SECONDS": "0",
        "LOG_LEVEL": "INFO",
    }
    pool = WorkerPool(env, tmp_path)
    processes: list[WorkerProcess] = []
    ledger = Ledger.from_url(db_url)
    ctl = SimControl(sim.rest_url)
    try:
        pool.start(count=2)
        stream = start_process("orders-stream", "worker.orders_stream", env, tmp_path)
        processes.append(stream)
        wait_for(lambda: "orders_stream.ready" in stream.text(), 60, "orders stream", w=stream)
        feed = start_process("feed", "feed", env, tmp_path)
        processes.append(feed)
        wait_for(lambda: "feed.ready" in feed.text(), 60, "feed", w=feed)
        wait_for(lambda: "feed.hour_opens_seeded" in feed.text(), 30, "hour opens", w=feed)
        yield Engine(sim, ctl, ledger, pool, feed, stream)
    finally:
        for proc in processes:
            proc.stop()
        pool.stop_all()
        ctl.close()
        ledger.dispose()
        sim.stop()
        stores.drop_pg_database(db_url)

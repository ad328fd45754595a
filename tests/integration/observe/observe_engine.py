"""The engine's processes started as an operator would, for the observability suites: the
simulator (in this process), a fresh PostgreSQL database, a Redis database, and
``celery worker`` / ``celery beat`` / ``python -m feed`` / ``python -m worker.orders_stream``
as subprocesses whose stdout and stderr are kept apart."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from simulator import start_simulator
from simulator.server import SimulatorHandle
from tests import stores
from tests.processes import ROOT, wait_for
from worker.ledger.migrate import upgrade

REDIS_DB = 13
STRATEGIES = """
[hourly_limit_ws]
drop_pct = 0.03

[original_gap]
enabled = false

[stable_buy_ws]
enabled = false

[batch_buy_ws]
enabled = false
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Proc:
    name: str
    proc: subprocess.Popen[bytes]
    out: Path
    err: Path

    def text(self) -> str:
        return "".join(p.read_text(errors="replace") for p in (self.out, self.err) if p.exists())

    def lines(self) -> list[tuple[str, str]]:
        """Every line written, with the stream it went to."""
        found = []
        for stream, path in (("stdout", self.out), ("stderr", self.err)):
            text = path.read_text(errors="replace") if path.exists() else ""
            found += [(stream, line) for line in text.splitlines()]
        return found

    def wait_for(self, words: str, timeout: float = 60) -> None:
        def seen() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited ({self.proc.returncode}):\n{self.text()}")
            return words in self.text()

        wait_for(seen, timeout, f"{words!r} from {self.name}")

    def stop(self, timeout: float = 20) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


@dataclass
class Engine:
    """The environment of an engine and the processes started in it."""

    env: dict[str, str]
    logdir: Path
    sim: SimulatorHandle
    procs: list[Proc] = field(default_factory=list)

    def env_for_subprocess(self, **env: str) -> dict[str, str]:
        # prometheus_client goes multiprocess when the variable merely exists, even empty.
        inherited = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
        return {**inherited, **self.env, **env}

    def start(self, name: str, argv: list[str], **env: str) -> Proc:
        out, err = self.logdir / f"{name}.out", self.logdir / f"{name}.err"
        with out.open("ab") as o, err.open("ab") as e:
            proc = subprocess.Popen(
                [sys.executable, *argv],
                cwd=ROOT,
                env=self.env_for_subprocess(**env),
                stdout=o,
                stderr=e,
                start_new_session=True,
            )
        started = Proc(name, proc, out, err)
        self.procs.append(started)
        return started

    def worker(self, name: str = "w1", concurrency: int = 2, **env: str) -> Proc:
        argv = ["-m", "celery", "-A", "worker", "worker", "-P", "prefork", "-c", str(concurrency),
                "-n", f"{name}@observe-test", "-l", "INFO"]  # fmt: skip
        return self.start(name, argv, **env)

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()


def wait_for_a_quiet_hour(margin_seconds: float = 120) -> None:
    """The Original strategy's bucket is the UTC hour: do not run across an hour boundary."""
    left = 3600 - time.time() % 3600
    if left < margin_seconds:
        time.sleep(left + 1)


@contextmanager
def running_engine(tmp_path: Path) -> Iterator[Engine]:
    wait_for_a_quiet_hour()
    # Wall-clock time; the generator never steps during a test: only the test moves prices.
    sim = start_simulator(
        port=0, instruments="BTC-USDT,ETH-USDT", speed=1.0, warmup_hours=0, step_seconds=3600.0,
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
        "LIMITFLOW_EXCHANGE": "okx",
        "OKX_REST_URL": sim.rest_url,
        "OKX_WS_PUBLIC_URL": f"{sim.ws_url}/public",
        "OKX_WS_PRIVATE_URL": f"{sim.ws_url}/private",
        "OKX_WS_BUSINESS_URL": f"{sim.ws_url}/business",
        "INSTRUMENTS": "BTC-USDT,ETH-USDT",
        "STRATEGY_CONFIG": str(strategies),
        "MEMORY_SYNC_INTERVAL_SECONDS": "0",
        "LOG_LEVEL": "INFO",
        "LOG_FORMAT": "text",
    }
    env["OKX_DEMO"] = "true"
    for key in ("METRICS_PORT", "NOTIFY_URLS"):
        env[key] = ""
    logdir = tmp_path / "logs"
    logdir.mkdir()
    running = Engine(env, logdir, sim)
    try:
        yield running
    finally:
        running.stop_all()
        sim.stop()
        stores.drop_pg_database(db_url)

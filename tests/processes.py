"""Real Celery worker processes for tests: started as a user would, killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import redis
from kombu import Connection
from kombu.exceptions import ChannelError

from tests import stores

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class WorkerProcess:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def kill9(self) -> None:
        """SIGKILL the worker and its pool children (no warm shutdown, nothing acked)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout: float = 20) -> None:
        if self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill9()


@dataclass
class WorkerPool:
    """Start ``celery -A worker worker`` processes with a given environment."""

    env: dict[str, str]
    logdir: Path
    workers: list[WorkerProcess] = field(default_factory=list)

    def start(self, count: int = 1, concurrency: int = 1, wait: bool = True) -> list[WorkerProcess]:
        started = []
        for _ in range(count):
            name = f"w{len(self.workers) + 1}"
            log = self.logdir / f"{name}.log"
            cmd = [
                sys.executable, "-m", "celery", "-A", "worker", "worker",
                "-P", "prefork", "-c", str(concurrency), "-n", f"{name}@limitflow-test",
                "--without-mingle", "--without-gossip", "-l", "WARNING",
            ]  # fmt: skip
            with log.open("ab") as out:
                proc = subprocess.Popen(
                    cmd,
                    cwd=ROOT,
                    env={**os.environ, **self.env},
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            worker = WorkerProcess(name, proc, log)
            self.workers.append(worker)
            started.append(worker)
        if wait:
            for worker in started:
                wait_for(
                    lambda w=worker: "worker.ready" in w.text(),
                    60,
                    f"{worker.name} ready",
                    w=worker,
                )
        return started

    def stop_all(self) -> None:
        for worker in self.workers:
            worker.stop()

    def kill_all(self) -> None:
        for worker in self.workers:
            worker.kill9()


def wait_for(
    check: Callable[[], bool], timeout: float, what: str, w: WorkerProcess | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if w is not None and w.proc.poll() is not None:
            raise AssertionError(f"{w.name} exited ({w.proc.returncode}):\n{w.text()[-3000:]}")
        time.sleep(0.1)
    tail = f"\n{w.text()[-3000:]}" if w is not None else ""
    raise AssertionError(f"timed out after {timeout}s waiting for {what}{tail}")


def wait_drained(broker_url: str, queue: str = "limitflow", timeout: float = 240) -> None:
    """Wait until the queue is empty and nothing is being worked on (Redis or RabbitMQ)."""
    with _idle_check(broker_url, queue) as idle:
        deadline = time.monotonic() + timeout
        quiet_since = None
        while time.monotonic() < deadline:
            if idle():
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since > 1.0:
                    return
            else:
                quiet_since = None
            time.sleep(0.1)
    raise AssertionError(f"queue {queue} not drained after {timeout}s")


@contextmanager
def _idle_check(broker_url: str, queue: str) -> Iterator[Callable[[], bool]]:
    if not broker_url.startswith("amqp"):
        client = redis.Redis.from_url(broker_url)
        yield lambda: client.llen(queue) == 0 and client.hlen("unacked") == 0
        client.close()
        return
    # RabbitMQ: nothing ready, asked cheaply with a passive declare of the task queue and the
    # delayed-delivery queues (countdown tasks wait there); then nothing delivered and still
    # unacknowledged, which only the broker's admin interface can tell.
    names = [queue] + [f"celery_delayed_{level}" for level in range(28)]
    with Connection(broker_url) as conn:

        def ready() -> int:
            total = 0
            for name in names:
                try:
                    total += conn.default_channel.queue_declare(name, passive=True).message_count
                except ChannelError:  # not declared yet; the broker closed the channel
                    conn.close()
            return total

        def idle() -> bool:
            if ready():
                return False
            depths = stores.amqp_queue_depths(broker_url)
            return sum(depths.get(name, 0) for name in names) == 0

        yield idle

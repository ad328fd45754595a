"""The engine under test, as separate processes: the simulator, ``celery worker`` x N,
``celery beat``, ``python -m worker.orders_stream`` and ``python -m feed``.

Each start of a process writes its own log (``NAME.N.log``), so "ready" is read from the
current incarnation only. Processes run in their own process groups and get SIGTERM when the
harness dies (``ops.demo_procs``), so nothing is left behind.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections import Counter
from pathlib import Path

from ops.demo_procs import Child, Children

ROOT = Path(__file__).resolve().parents[2]
CELERY = [sys.executable, "-m", "celery", "-A", "worker"]
READY = {
    "worker": "worker.ready",
    "beat": "beat.ready",
    "orders-stream": "orders_stream.ready",
    "feed": "feed.ready",
}


class ProcessFailed(RuntimeError):
    """A process could not be (re)started."""


class Cluster:
    """Start, kill, restart and stop the engine's processes; remember every exit."""

    def __init__(self, env: dict[str, str], logs: Path, workers: int) -> None:
        self.env = env
        self.logs = logs
        self.children = Children(ROOT, env)
        self.current: dict[str, Child] = {}
        self.starts: Counter[str] = Counter()
        self.worker_names = [f"worker-{n}" for n in range(1, workers + 1)]
        # Exits we did not cause (not a kill -9, not a stop), with the end of their log.
        self.unexpected: list[tuple[str, int | None, str]] = []
        self._stopped: set[str] = set()

    # Starting ------------------------------------------------------------------------------

    def argv(self, name: str) -> list[str]:
        if name.startswith("worker-"):
            return [*CELERY, "worker", "-P", "prefork", "-c", "1", "-n", f"{name}@chaos",
                    "--without-mingle", "--without-gossip", "-l", "WARNING"]  # fmt: skip
        if name == "beat":
            schedule = str(self.logs.parent / "celerybeat-schedule")
            return [*CELERY, "beat", "-l", "WARNING", "-s", schedule]
        if name == "orders-stream":
            return [sys.executable, "-m", "worker.orders_stream"]
        if name == "feed":
            return [sys.executable, "-m", "feed"]
        raise ValueError(name)

    def start(self, name: str) -> Child:
        self.starts[name] += 1
        log = self.logs / f"{name}.{self.starts[name]}.log"
        child = self.children.start(name, self.argv(name), log)
        self.current[name] = child
        self._stopped.discard(name)
        return child

    def wait_ready(self, names: list[str], timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        for name in names:
            child = self.current[name]
            marker = READY["worker" if name.startswith("worker-") else name]
            while marker not in child.text():
                if not child.alive:
                    raise ProcessFailed(f"{name} exited ({child.returncode}):\n{child.tail(30)}")
                if time.monotonic() > deadline:
                    raise ProcessFailed(f"{name} not ready after {timeout:.0f}s:\n{child.tail()}")
                time.sleep(0.2)

    def start_all(self) -> None:
        for name in [*self.worker_names, "beat", "orders-stream"]:
            self.start(name)
        self.wait_ready([*self.worker_names, "beat", "orders-stream"], timeout=180)
        self.start("feed")
        self.wait_ready(["feed"])

    # Faults ------------------------------------------------------------------------------

    def kill9(self, name: str) -> bool:
        """SIGKILL the process group (a worker's pool child included); False if not running."""
        child = self.current.get(name)
        if child is None or not child.alive:
            return False
        self._stopped.add(name)  # down on purpose until ``ensure_running``
        child.kill_group()
        assert child.proc is not None
        child.proc.wait(10)
        self._forget(child)
        return True

    def _forget(self, child: Child) -> None:
        if child in self.children.children:
            self.children.children.remove(child)

    def supervise(self) -> list[str]:
        """Restart processes that exited on their own; return their names."""
        restarted = []
        for name, child in list(self.current.items()):
            if name in self._stopped or child.alive:
                continue
            self.unexpected.append((name, child.returncode, child.tail(15)))
            self._forget(child)
            self.start(name)
            restarted.append(name)
        return restarted

    def ensure_running(self, name: str) -> None:
        child = self.current.get(name)
        if child is None or not child.alive:
            if child is not None:
                self._forget(child)
            self.start(name)

    # Stopping ----------------------------------------------------------------------------

    def stop(self, names: list[str], timeout: float = 40) -> None:
        """SIGTERM (a worker finishes its task and gives back what it reserved), SIGKILL after
        ``timeout``."""
        for name in names:
            self._stopped.add(name)
        chosen = [n for n in names if n in self.current and self.current[n].alive]
        self.children.stop(chosen, timeout=timeout)
        for name in names:
            child = self.current.get(name)
            if child is not None:
                self._forget(child)

    def stop_everything(self) -> None:
        self.stop(list(self.current))
        self.children.stop()

    def logs_of(self, name: str) -> list[Path]:
        return sorted(self.logs.glob(f"{name}.*.log"))


def start_simulator(
    logs: Path, seed: int, instruments: list[str], options: list[str]
) -> tuple[Children, str]:
    """Run ``python -m simulator`` on a free port; return its process and its REST URL."""
    children = Children(ROOT, {**os.environ, "PYTHONUNBUFFERED": "1"})
    argv = [sys.executable, "-m", "simulator", "--port", "0", "--seed", str(seed),
            "--instruments", ",".join(instruments), *options]  # fmt: skip
    child = children.start("simulator", argv, logs / "simulator.log")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = re.search(r"simulator\.ready url=(\S+)", child.text())
        if found:
            return children, found.group(1)
        if not child.alive:
            raise ProcessFailed(f"simulator exited:\n{child.tail(30)}")
        time.sleep(0.2)
    children.stop()
    raise ProcessFailed("simulator not ready after 120 s")

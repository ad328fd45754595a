"""``python -m ops.demo`` (``./scripts/demo``): run the whole engine for a few minutes against
the local OKX simulator, show progress, then print what happened, read from the database.

Options:
  --minutes N    how long to run (default 3; Ctrl-C stops earlier, with the same summary)
  --every S      seconds between progress lines (default 5)
  --seed N       the simulated market's seed (default 42: same seed, same market)
  --workers N    ``celery worker`` processes, one pool process each (default 2)
  --home DIR     the embedded stores and the logs (default var/demo; wiped at start)
  --flower       also start Flower (basic auth, loopback only) and print its URL and login

What it starts, each as a subprocess logging to ``var/demo/logs/NAME.log``:

- ``python -m simulator`` on a free loopback port: a generated market (fixed ``--seed``) whose
  clock follows the wall clock (signals are stamped with the market's time and judged against
  the wall clock by the workers), with frequent, fast sharp drops and market-wide dumps so
  that the strategies trade within a few minutes;
- ``python -m worker migrate``, then ``--workers`` ``celery -A worker worker`` processes,
  ``celery -A worker beat`` (reconciliation every 30 s), ``python -m worker.orders_stream``
  and ``python -m feed``.

Stores: a fresh embedded store in ``var/demo/`` (SQLite and the file-system broker, wiped at
start). With ``DATABASE_URL`` and ``CELERY_BROKER_URL`` in the environment the same command runs
on PostgreSQL and Redis instead (that database is not wiped: the summary counts only this run).
The strategies' parameters come from ``ops/demo-strategies.toml`` (smaller exits, a short hold).

It prints a progress line every ``--every`` seconds and stops after ``--minutes`` (or on
Ctrl-C): every child gets SIGTERM, then SIGKILL after a timeout. If a child dies the demo says
which, shows the end of its log, stops the rest and exits 1. Exit code 0 on success.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from ops.demo_procs import Child, ChildDied, Children, wait_until
from ops.demo_report import progress, summary
from ops.demo_ticks import TickCounter
from simulator.config import DEFAULT_INSTRUMENTS
from worker.ledger.db import Ledger
from worker.logs import mask_passwords
from worker.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
STRATEGIES = ROOT / "ops" / "demo-strategies.toml"
# Market events: rates per simulated hour, durations a twentieth of the generator's default
# (drops fall in seconds, hold up to ~45 s and recover within ~3 minutes).
SIM_OPTIONS = (
    "--shock-rate", "40", "--dump-rate", "30", "--event-time-scale", "0.05",
    "--warmup-hours", "2",
)  # fmt: skip
ENGINE_ENV = {
    "MEMORY_SYNC_INTERVAL_SECONDS": "30",
    "BUY_GUARD_WINDOW_SECONDS": "60",
    "BUY_ORDER_TTL_SECONDS": "60",
    "PENDING_TIMEOUT_SECONDS": "30",
    "SIGNAL_TTL_SECONDS": "10",
    "LOG_LEVEL": "INFO",
    "LOG_FORMAT": "text",
    # Off in the demo: its processes share one host, and would share one port.
    "METRICS_PORT": "",
}
DEFAULT_HOME = ROOT / "var" / "demo"
MARKER = ".limitflow-demo"
STOP_ORDER = ("feed", "orders-stream", "beat")  # then the workers, then the simulator


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Interrupted(Exception):
    """Ctrl-C or SIGTERM while starting up."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m ops.demo",
        description="Run the whole engine against the local OKX simulator, then summarise.",
        epilog=(
            "Stores: SQLite and a file-system broker in --home, or PostgreSQL and Redis when "
            "DATABASE_URL and CELERY_BROKER_URL are set. Logs: HOME/logs/*.log."
        ),
    )
    add = parser.add_argument
    add("--minutes", type=float, default=3.0, help="how long to run (default: %(default)s)")
    add("--every", type=float, default=5.0, help="seconds between progress lines (%(default)s)")
    add("--seed", type=int, default=42, help="the simulated market's seed (%(default)s)")
    add("--workers", type=int, default=2, help="celery worker processes (%(default)s)")
    add("--home", type=Path, default=DEFAULT_HOME, help="stores and logs, wiped (var/demo)")
    add("--flower", action="store_true", help="also start Flower and print its URL and login")
    args = parser.parse_args(argv)
    if args.minutes <= 0 or args.every <= 0 or args.workers < 1:
        parser.error("--minutes and --every must be > 0, --workers >= 1")
    return args


class Demo:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.home: Path = args.home.resolve()
        self.logs = self.home / "logs"
        self.stop_event = threading.Event()
        self.env = {**os.environ, "LIMITFLOW_HOME": str(self.home), "PYTHONUNBUFFERED": "1"}
        self.env.update(ENGINE_ENV)
        self.env["STRATEGY_CONFIG"] = str(STRATEGIES)
        self.env["INSTRUMENTS"] = ",".join(DEFAULT_INSTRUMENTS)
        self.children = Children(ROOT, self.env)
        self.started_at = datetime.now(UTC)
        self.ticks: TickCounter | None = None

    # Start-up ------------------------------------------------------------------------------

    def prepare(self) -> None:
        """Start from an empty home; wipe only a folder an earlier demo made (or an empty one)."""
        marker = self.home / MARKER
        if self.home.exists() and any(self.home.iterdir()):
            if not marker.exists() and self.home != DEFAULT_HOME:
                raise SystemExit(
                    f"demo: {self.home} is not empty and was not made by the demo; "
                    "choose another --home"
                )
            shutil.rmtree(self.home)
        self.logs.mkdir(parents=True)
        marker.write_text("made by python -m ops.demo; wiped at every start\n")

    def start_simulator(self) -> str:
        argv = [sys.executable, "-m", "simulator", "--port", "0", "--seed", str(self.args.seed)]
        child = self.children.start("simulator", [*argv, *SIM_OPTIONS], self.logs / "simulator.log")
        found: list[str] = []

        def ready() -> bool:
            match = re.search(r"simulator\.ready url=(\S+)", child.text())
            if match:
                found.append(match.group(1))
            return bool(found)

        self._wait(ready, 60, "the simulator")
        rest_url = found[0]
        ws_url = rest_url.replace("http://", "ws://") + "/ws/v5"
        self.env.update(
            OKX_REST_URL=rest_url,
            OKX_WS_PUBLIC_URL=f"{ws_url}/public",
            OKX_WS_PRIVATE_URL=f"{ws_url}/private",
            OKX_WS_BUSINESS_URL=f"{ws_url}/business",
        )
        return rest_url

    def migrate(self) -> None:
        log = self.logs / "migrate.log"
        with log.open("ab") as out:
            done = subprocess.run(
                [sys.executable, "-m", "worker", "migrate"],
                cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT, check=False,
            )  # fmt: skip
        if done.returncode != 0:
            tail = "\n".join(log.read_text("utf-8", "replace").splitlines()[-20:])
            raise RuntimeError(f"python -m worker migrate failed ({done.returncode}):\n{tail}")

    def start_engine(self) -> None:
        celery = [sys.executable, "-m", "celery", "-A", "worker"]
        workers: list[Child] = []
        for n in range(1, self.args.workers + 1):
            argv = [*celery, "worker", "-P", "prefork", "-c", "1", "-n", f"demo{n}@%h",
                    "--without-mingle", "--without-gossip", "-l", "INFO"]  # fmt: skip
            workers.append(self.children.start(f"worker-{n}", argv, self.logs / f"worker-{n}.log"))
        schedule = str(self.home / "celerybeat-schedule")
        beat = self.children.start(
            "beat", [*celery, "beat", "-l", "INFO", "-s", schedule], self.logs / "beat.log"
        )
        stream = self.children.start(
            "orders-stream",
            [sys.executable, "-m", "worker.orders_stream"],
            self.logs / "orders-stream.log",
        )
        for worker in workers:
            self._wait(lambda w=worker: "worker.ready" in w.text(), 90, worker.name)
        self._wait(lambda: "Starting" in beat.text(), 60, "beat")
        self._wait(lambda: "orders_stream.ready" in stream.text(), 60, "the orders stream")
        feed = self.children.start("feed", [sys.executable, "-m", "feed"], self.logs / "feed.log")
        self._wait(lambda: "feed.ready" in feed.text(), 60, "the feed")
        if self.args.flower:
            self.start_flower()

    def start_flower(self) -> None:
        """Flower on a free loopback port, with a login made up for this run."""
        port, password = free_port(), secrets.token_urlsafe(9)
        flags = ["--address=127.0.0.1", f"--port={port}", f"--basic-auth=demo:{password}"]
        argv = [sys.executable, "-m", "celery", "-A", "worker", "flower", *flags]
        flower = self.children.start("flower", argv, self.logs / "flower.log")
        self._wait(lambda: "Visit me at" in flower.text(), 60, "Flower")
        print(
            f"demo: Flower at http://127.0.0.1:{port}/workers (user demo, password {password})",
            flush=True,
        )

    def _wait(self, check: object, timeout: float, what: str) -> None:
        def done() -> bool:
            if self.stop_event.is_set():
                raise Interrupted
            return bool(check())  # type: ignore[operator]

        wait_until(done, timeout, self.children, what)

    # Running -------------------------------------------------------------------------------

    def settings(self) -> Settings:
        fields = Settings.model_fields
        return Settings.model_validate({k: v for k, v in self.env.items() if k in fields})

    def watch(self, ledger: Ledger) -> None:
        began = time.monotonic()
        deadline = began + self.args.minutes * 60
        next_line = began
        while not self.stop_event.is_set() and time.monotonic() < deadline:
            dead = self.children.dead()
            if dead:
                raise ChildDied(dead[0])
            if time.monotonic() >= next_line:
                next_line += self.args.every
                self.print_progress(ledger, time.monotonic() - began)
            self.stop_event.wait(0.2)
        if self.stop_event.is_set():
            print("demo: interrupted, stopping")

    def print_progress(self, ledger: Ledger, elapsed: float) -> None:
        p = progress(ledger, self.started_at)
        ticks = self.ticks.count if self.ticks is not None else 0
        minutes, seconds = divmod(int(elapsed), 60)
        print(
            f"[{minutes:2d}:{seconds:02d}] ticks {ticks:,}  signals {p.signals}  "
            f"orders {p.orders}  fills {p.fills}  open positions {p.open_positions}  "
            f"closed lots {p.closed_lots}",
            flush=True,
        )

    def stop(self) -> None:
        if self.ticks is not None:
            self.ticks.stop()
        self.children.stop(STOP_ORDER)
        time.sleep(0.5)
        self.children.stop([c.name for c in self.children.children if c.name != "simulator"])
        self.children.stop()

    # The whole run -------------------------------------------------------------------------

    def run(self) -> int:
        self.prepare()
        code = 0
        ledger: Ledger | None = None
        try:
            rest_url = self.start_simulator()
            print(f"demo: simulator at {rest_url} (seed {self.args.seed})", flush=True)
            self.migrate()
            settings = self.settings()
            ledger = Ledger.from_url(settings.database_url)
            print(f"demo: database {mask_passwords(settings.database_url)}")
            broker = mask_passwords(settings.broker_url)
            print(f"demo: broker {broker}; logs in {self.logs}", flush=True)
            self.start_engine()
            self.ticks = TickCounter(self.env["OKX_WS_PUBLIC_URL"], list(DEFAULT_INSTRUMENTS))
            self.ticks.start()
            names = ", ".join(c.name for c in self.children.children)
            print(
                f"demo: {len(self.children.children)} processes ready ({names}); running "
                f"{self.args.minutes:g} min (Ctrl-C stops early)",
                flush=True,
            )
            self.watch(ledger)
        except ChildDied as exc:
            print(f"demo: {exc}; the end of {exc.child.log}:\n{exc.child.tail()}", file=sys.stderr)
            code = 1
        except Interrupted:
            print("demo: interrupted while starting, stopping")
        except (RuntimeError, TimeoutError) as exc:
            print(f"demo: {exc}", file=sys.stderr)
            code = 1
        finally:
            self.stop()
        if ledger is not None:
            print(f"\nSession summary ({self._span()})\n")
            print(summary(ledger, self.started_at))
            ledger.dispose()
        print(f"\ndemo: every process stopped; logs in {self.logs}")
        return code

    def _span(self) -> str:
        ended = datetime.now(UTC)
        return f"{self.started_at:%H:%M:%S} to {ended:%H:%M:%S} UTC"


def main(argv: list[str] | None = None) -> int:
    demo = Demo(parse_args(argv))

    def _stop(signum: int, frame: FrameType | None) -> None:
        demo.stop_event.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    return demo.run()


if __name__ == "__main__":
    sys.exit(main())

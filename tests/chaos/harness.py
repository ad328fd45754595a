"""The chaos soak: the whole engine on private stores against the simulator, faults at random
for a while, then a settle, one final reconciliation and the invariants.

``run_soak(SoakConfig(minutes=6, seed=7))`` returns a ``SoakResult`` whose ``summary`` is
what ``benchmarks/chaos_soak.py`` prints and the slow test shows when it fails.

Timeline:
1. private ``redis-server`` and PostgreSQL cluster; migrate; the simulator (a generated market
   with frequent drops, as the demo runs it); 3+ workers, beat, the orders stream, the feed;
2. faults for ``minutes`` (``tests.chaos.faults``), with crashed processes restarted;
3. settle: end every fault; stop the feed (no new signals) and drain the queue; stop the
   workers gracefully and put back the messages that workers killed with ``kill -9`` left
   unacknowledged (what Redis' visibility timeout does after 10 minutes); start the workers
   again (each reconciles at start); wait a pending timeout and two reconcile intervals;
4. freeze the market (nothing fills any more), run ``purge_pending`` and
   ``sync_active_orders`` once more and wait for their reports and follow-ups; stop the engine;
5. read the simulator's books and the ledger; check the invariants (``tests.chaos.invariants``).
"""

from __future__ import annotations

import contextlib
import os
import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simulator.config import DEFAULT_INSTRUMENTS
from simulator.control import SimControl
from tests import stores as shared_stores
from tests.chaos.cluster import Cluster, start_simulator
from tests.chaos.engine_ops import (
    Broker,
    busiest_instrument,
    final_reconciliation,
    progress_line,
    reconcile_failures,
)
from tests.chaos.faults import FaultInjector
from tests.chaos.invariants import check_all
from tests.chaos.report import render_summary
from tests.chaos.snapshot import Snapshot, take_snapshot
from tests.chaos.stores import PrivatePostgres, PrivateRedis
from worker.ledger.migrate import upgrade

Say = Callable[[str], None]

# The demo's generated market, with drops three times as frequent: many buys and exits.
SIM_OPTIONS = (
    "--shock-rate", "120", "--dump-rate", "60", "--event-time-scale", "0.05",
    "--warmup-hours", "2",
)  # fmt: skip
STRATEGIES = """
# The chaos soak's strategies: the demo's triggers, quick exits and short holds, so that slots
# buy, sell and buy again many times within minutes.
[hourly_limit_ws]
drop_pct = 0.03
take_profit_pct = 0.004
max_hold_seconds = 60

[original_gap]
gap_window_seconds = 60
gap_pct = 0.02
take_profit_pct = 0.004
max_hold_seconds = 60

[stable_buy_ws]
max_range = 0.5
min_volume_usdt = 0
drop_pct = 0.02
take_profit_pct = 0.004
max_hold_seconds = 60

[batch_buy_ws]
min_count = 4
max_count = 10
drop_pct = 0.025
take_profit_pct = 0.004
max_hold_seconds = 60
"""


@dataclass
class SoakConfig:
    minutes: float = 6.0
    seed: int | None = None  # None: a fresh one (printed)
    workers: int = 3
    instruments: tuple[str, ...] = DEFAULT_INSTRUMENTS
    mean_gap_seconds: float = 6.0  # mean time between two faults
    sync_interval: int = 10  # MEMORY_SYNC_INTERVAL_SECONDS
    pending_timeout: int = 12  # PENDING_TIMEOUT_SECONDS
    workdir: Path | None = None  # logs and the Redis files; a fresh temporary folder if None


@dataclass
class SoakResult:
    seed: int
    workdir: Path
    violations: dict[str, list[str]]
    faults: dict[str, int]
    summary: str
    # The final reconciliation itself failed: the invariants were checked on an unreconciled
    # ledger, and the run fails even if they hold.
    final_reconcile_errors: list[str] = field(default_factory=list)
    snapshot: Snapshot | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def violation_count(self) -> int:
        return sum(len(v) for v in self.violations.values())

    @property
    def ok(self) -> bool:
        return self.violation_count == 0 and not self.final_reconcile_errors


def engine_env(
    config: SoakConfig, workdir: Path, db_url: str, broker: str, rest_url: str
) -> dict[str, str]:
    strategies = workdir / "strategies.toml"
    strategies.write_text(STRATEGIES)
    ws = rest_url.replace("http://", "ws://") + "/ws/v5"
    return {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "DATABASE_URL": db_url,
        "CELERY_BROKER_URL": broker,
        "CELERY_RESULT_BACKEND": broker,
        "LIMITFLOW_HOME": str(workdir),
        "OKX_REST_URL": rest_url,
        "OKX_WS_PUBLIC_URL": f"{ws}/public",
        "OKX_WS_PRIVATE_URL": f"{ws}/private",
        "OKX_WS_BUSINESS_URL": f"{ws}/business",
        "INSTRUMENTS": ",".join(config.instruments),
        "STRATEGY_CONFIG": str(strategies),
        "MEMORY_SYNC_INTERVAL_SECONDS": str(config.sync_interval),
        "PENDING_TIMEOUT_SECONDS": str(config.pending_timeout),
        "BUY_GUARD_WINDOW_SECONDS": "20",
        "BUY_ORDER_TTL_SECONDS": "40",
        "SIGNAL_TTL_SECONDS": "10",
        "MAX_OPEN_POSITIONS": str(4 * len(config.instruments)),
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "INFO",
    }


class Soak:
    """One run, phase by phase; every resource it starts is released by ``stack``."""

    def __init__(self, config: SoakConfig, stack: contextlib.ExitStack, say: Say) -> None:
        self.config = config
        self.stack = stack
        self.say = say
        self.seed = (
            config.seed if config.seed is not None else random.SystemRandom().randrange(1, 2**31)
        )
        self.rng = random.Random(self.seed)
        self.workdir = config.workdir or Path(tempfile.mkdtemp(prefix="limitflow-chaos-"))
        self.logs = self.workdir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.notes: list[str] = []
        self.times: dict[str, float] = {"start": time.monotonic()}
        self.orphans = 0
        self.reports: dict[str, Any] = {}

    def log(self, line: str) -> None:
        self.say(f"{time.strftime('%H:%M:%S')} chaos: {line}")

    def note(self, line: str) -> None:
        self.notes.append(line)
        self.log(line)

    # 1. Start ------------------------------------------------------------------------------

    def start(self) -> None:
        config, stack = self.config, self.stack
        self.redis = PrivateRedis(self.workdir)
        self.redis.start()
        stack.callback(self.redis.stop)
        self.postgres, why = PrivatePostgres.create()
        if self.postgres is not None:
            stack.callback(self.postgres.destroy, self.logs)
            self.postgres.start()
            self.postgres.create_database()
            self.db_url = self.postgres.url
        else:
            self.note(f"no private PostgreSQL ({why}): the restart_postgres fault is skipped")
            self.db_url = shared_stores.create_pg_database()
            stack.callback(shared_stores.drop_pg_database, self.db_url)
        upgrade(self.db_url)
        instruments = list(config.instruments)
        sim, self.rest_url = start_simulator(self.logs, self.seed, instruments, list(SIM_OPTIONS))
        stack.callback(sim.stop)
        self.env = engine_env(config, self.workdir, self.db_url, self.redis.url, self.rest_url)
        self.cluster = Cluster(self.env, self.logs, config.workers)
        stack.callback(self.cluster.stop_everything)
        self.cluster.start_all()
        self.ctl = SimControl(self.rest_url)
        stack.callback(self.ctl.close)
        self.broker = Broker(self.redis.url)
        stack.callback(self.broker.close)
        self.injector = FaultInjector(
            self.rng, self.cluster, self.ctl, self.redis, self.postgres, instruments,
            config.pending_timeout, config.sync_interval, config.mean_gap_seconds, self.log,
        )  # fmt: skip
        self.log(f"engine ready (simulator {self.rest_url}); injecting faults")

    # 2. Faults -----------------------------------------------------------------------------

    def inject(self) -> None:
        began = self.times["faults"] = time.monotonic()
        last = [began]

        def tick() -> None:
            if time.monotonic() - last[0] >= 30:
                last[0] = time.monotonic()
                faults = sum(self.injector.counts.values())
                self.say(progress_line(self.db_url, self.ctl, faults, began))

        self.injector.run(self.config.minutes * 60, tick)

    # 3. Settle -----------------------------------------------------------------------------

    def supervise(self) -> None:
        for name in self.cluster.supervise():
            self.log(f"{name} exited on its own while settling; restarted")

    def wait_idle(
        self, what: str, timeout: float, idle: Callable[[int, int], bool] | None = None
    ) -> None:
        """Wait for an empty queue and nothing unacknowledged (or ``idle``); on timeout, say
        what is still there and go on (the run must stay within its time budget)."""
        check = idle or (lambda waiting, unacked: waiting == 0 and unacked == 0)
        began, busy = time.monotonic(), self.broker.busy_with()
        if not self.broker.wait_until(check, timeout, self.supervise):
            left = self.broker.busy_with()
            self.note(f"tasks still queued or running {timeout:.0f}s {what}: {left}")
        elif time.monotonic() - began > 20:
            self.log(f"waited {time.monotonic() - began:.0f}s {what} for: {busy}")

    def settle(self) -> None:
        self.times["settle"] = time.monotonic()
        cluster, instruments = self.cluster, list(self.config.instruments)
        lasting = busiest_instrument(self.db_url, instruments, self.rng)
        self.injector.finish(keep_suspended=lasting)
        self.note(f"faults stopped; {lasting} stays suspended through the final check")
        for name in [*cluster.worker_names, "orders-stream", "beat"]:
            cluster.ensure_running(name)
        cluster.stop(["feed"])
        self.wait_idle("after the feed stopped", 60, lambda waiting, _: waiting == 0)
        cluster.stop(cluster.worker_names)
        self.orphans = self.broker.restore_unacked()
        self.log(f"workers stopped; {self.orphans} message(s) left by killed workers requeued")
        for name in cluster.worker_names:
            cluster.start(name)
        cluster.wait_ready(cluster.worker_names, timeout=180)
        pause = self.config.pending_timeout + 2 * self.config.sync_interval + 5
        self.log(f"workers restarted; settling for {pause}s")
        until = time.monotonic() + pause
        while time.monotonic() < until:
            self.supervise()
            time.sleep(0.5)

    # 4. Final reconciliation -----------------------------------------------------------------

    def reconcile(self) -> None:
        self.ctl.freeze_market()
        self.wait_idle("after the market froze", 90)
        self.log("market frozen, engine idle; final reconciliation")
        self.reports = final_reconciliation(self.env, self.log)
        self.wait_idle("after the final reconciliation", 60)
        self.cluster.stop(["beat", "orders-stream", *self.cluster.worker_names])
        self.times["end"] = time.monotonic()
        self.log("engine stopped; checking")

    # 5. Check ------------------------------------------------------------------------------

    def check(self) -> SoakResult:
        t = self.times
        self.notes.append(
            f"timing: start-up {t['faults'] - t['start']:.0f}s, faults "
            f"{t['settle'] - t['faults']:.0f}s, settle and final reconciliation "
            f"{t['end'] - t['settle']:.0f}s"
        )
        snap = take_snapshot(self.ctl, self.rest_url, self.db_url, self.cluster.logs_of("feed"))
        snap.save(self.workdir / "snapshot.json")
        violations = check_all(snap)
        worker_logs = [p for n in self.cluster.worker_names for p in self.cluster.logs_of(n)]
        final_errors = [f"{n}: {r['error']}" for n, r in self.reports.items() if "error" in r]
        summary = render_summary(
            seed=self.seed,
            config=self.config,
            snap=snap,
            violations=violations,
            faults=self.injector.counts,
            skipped=self.injector.skipped,
            unexpected=self.cluster.unexpected,
            orphans=self.orphans,
            reports=self.reports,
            failed_runs=reconcile_failures(worker_logs),
            notes=self.notes,
        )
        (self.workdir / "summary.txt").write_text(summary + "\n")
        counts = dict(self.injector.counts)
        return SoakResult(
            self.seed, self.workdir, violations, counts, summary, final_errors, snap, self.notes
        )


def run_soak(config: SoakConfig, say: Say = print) -> SoakResult:
    """Run the whole soak (see the module docstring) and print its summary."""
    with contextlib.ExitStack() as stack:
        soak = Soak(config, stack, say)
        say(
            f"chaos soak: seed {soak.seed}, {config.minutes:g} min of faults, {config.workers} "
            f"workers, {len(config.instruments)} instruments; logs in {soak.logs}"
        )
        soak.start()
        soak.inject()
        soak.settle()
        soak.reconcile()
        result = soak.check()
    say(result.summary)
    return result

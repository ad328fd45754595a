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
import json
import os
import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import redis
from kombu.connection import Connection

from simulator.config import DEFAULT_INSTRUMENTS
from simulator.control import SimControl
from tests import stores as shared_stores
from tests.chaos.cluster import Cluster, start_simulator
from tests.chaos.faults import FaultInjector
from tests.chaos.invariants import check_all
from tests.chaos.report import render_summary
from tests.chaos.snapshot import Snapshot, take_snapshot
from tests.chaos.stores import PrivatePostgres, PrivateRedis
from worker.app import PURGE_PENDING, QUEUE, SYNC_ACTIVE_ORDERS, make_app
from worker.ledger.migrate import upgrade
from worker.settings import Settings

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


class Broker:
    """What the harness needs to know about the Redis broker."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.client = redis.Redis.from_url(url, socket_timeout=10)

    def counts(self) -> tuple[int, int]:
        """(messages waiting, messages delivered and not yet acknowledged)."""
        return int(self.client.llen(QUEUE)), int(self.client.hlen("unacked"))

    def wait_until(self, idle: Callable[[int, int], bool], timeout: float, tick: Any) -> bool:
        """Wait until ``idle(waiting, unacked)`` holds for two seconds in a row."""
        deadline = time.monotonic() + timeout
        since: float | None = None
        while time.monotonic() < deadline:
            tick()
            with contextlib.suppress(redis.RedisError):
                if idle(*self.counts()):
                    since = since or time.monotonic()
                    if time.monotonic() - since >= 2.0:
                        return True
                else:
                    since = None
            time.sleep(0.25)
        return False

    def close(self) -> None:
        self.client.close()

    def restore_unacked(self) -> int:
        """Put every unacknowledged message back on its queue (call with no worker running:
        then they all belong to workers killed with ``kill -9``)."""
        tags = [
            t.decode() if isinstance(t, bytes) else str(t) for t in self.client.hkeys("unacked")
        ]
        if tags:
            with Connection(self.url) as conn:  # type: ignore[no-untyped-call]
                qos = conn.default_channel.qos
                for tag in tags:
                    qos.restore_by_tag(tag)
        return len(tags)


def final_reconciliation(env: dict[str, str], say: Callable[[str], None]) -> dict[str, Any]:
    """Run purge_pending, then sync_active_orders, as beat would; return their reports."""
    settings = Settings.model_validate({k: v for k, v in env.items() if k in Settings.model_fields})
    app = make_app(settings)
    reports: dict[str, Any] = {}
    try:
        for name in (PURGE_PENDING, SYNC_ACTIVE_ORDERS):
            for _ in range(60):  # a run still holding the lock answers "skipped"
                try:
                    report = app.send_task(name).get(timeout=180)
                except Exception as exc:  # the task's own error, re-raised by Celery
                    report = {"error": f"{type(exc).__name__}: {exc}"[:300]}
                if not (isinstance(report, dict) and "skipped" in report):
                    break
                time.sleep(1.0)
            reports[name.rsplit(".", 1)[-1]] = report
            say(f"chaos: final {name}: {report}")
    finally:
        app.close()
    return reports


def busiest_instrument(db_url: str, instruments: list[str], rng: random.Random) -> str:
    """An instrument with open lots or orders (so that reconciliation has work on it), or any."""
    busy: list[str] = []
    with contextlib.suppress(psycopg.Error), psycopg.connect(db_url, connect_timeout=5) as conn:
        rows = conn.execute(
            "SELECT DISTINCT inst_id FROM lots WHERE state <> 'closed'"
            " UNION SELECT DISTINCT inst_id FROM orders"
            " WHERE state IN ('pending_submit', 'live', 'partially_filled')"
        ).fetchall()
        busy = sorted(str(r[0]) for r in rows if r[0] in instruments)
    return rng.choice(busy or sorted(instruments))


def reconcile_failures(logs: list[Path]) -> list[str]:
    """Reconciliation runs (beat's, the workers' at start, the final one) that failed."""
    failures = []
    for path in logs:
        for line in path.read_text("utf-8", "replace").splitlines():
            if '"task.done"' not in line or '"outcome":"error"' not in line:
                continue
            with contextlib.suppress(ValueError):
                doc = json.loads(line)
                if doc.get("task") in ("sync_active_orders", "purge_pending"):
                    failures.append(f"{doc['task']}: {doc.get('error', '?')}")
    return failures


def progress_line(db_url: str, ctl: SimControl, injector: FaultInjector, began: float) -> str:
    signals = orders = "?"
    with contextlib.suppress(psycopg.Error), psycopg.connect(db_url, connect_timeout=3) as conn:
        signals = str(conn.execute("SELECT count(*) FROM signals").fetchone()[0])  # type: ignore[index]
        orders = str(conn.execute("SELECT count(*) FROM orders").fetchone()[0])  # type: ignore[index]
    requests = "?"
    with contextlib.suppress(Exception):
        requests = str(ctl.status().get("placementRequests", "?"))
    elapsed = int(time.monotonic() - began)
    return (
        f"[{elapsed // 60:2d}:{elapsed % 60:02d}] signals {signals}  orders {orders}  "
        f"placement requests {requests}  faults {sum(injector.counts.values())}"
    )


def run_soak(config: SoakConfig, say: Callable[[str], None] = print) -> SoakResult:
    seed = config.seed if config.seed is not None else random.SystemRandom().randrange(1, 2**31)
    workdir = config.workdir or Path(tempfile.mkdtemp(prefix="limitflow-chaos-"))
    logs = workdir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    say(
        f"chaos soak: seed {seed}, {config.minutes:g} min of faults, {config.workers} workers, "
        f"{len(config.instruments)} instruments; logs in {logs}"
    )
    rng = random.Random(seed)
    notes: list[str] = []
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        private_redis = PrivateRedis(workdir)
        private_redis.start()
        stack.callback(private_redis.stop)
        postgres, why = PrivatePostgres.create()
        if postgres is not None:
            stack.callback(postgres.destroy, logs)
            postgres.start()
            postgres.create_database()
            db_url = postgres.url
        else:
            notes.append(f"no private PostgreSQL ({why}): the restart_postgres fault is skipped")
            say(f"chaos: {notes[-1]}")
            db_url = shared_stores.create_pg_database()
            stack.callback(shared_stores.drop_pg_database, db_url)
        upgrade(db_url)
        sim, rest_url = start_simulator(logs, seed, list(config.instruments), list(SIM_OPTIONS))
        stack.callback(sim.stop)
        env = engine_env(config, workdir, db_url, private_redis.url, rest_url)
        cluster = Cluster(env, logs, config.workers)
        stack.callback(cluster.stop_everything)
        cluster.start_all()
        ctl = SimControl(rest_url)
        stack.callback(ctl.close)
        broker = Broker(private_redis.url)
        stack.callback(broker.close)
        injector = FaultInjector(
            rng, cluster, ctl, private_redis, postgres, list(config.instruments),
            config.pending_timeout, config.sync_interval, config.mean_gap_seconds, say,
        )  # fmt: skip
        began = time.monotonic()
        last = [began]

        def tick() -> None:
            if time.monotonic() - last[0] >= 30:
                last[0] = time.monotonic()
                say(progress_line(db_url, ctl, injector, began))

        say(f"chaos: engine ready (simulator {rest_url}); injecting faults")
        injector.run(config.minutes * 60, tick)
        faults_done = time.monotonic()
        say(f"chaos: faults stopped after {faults_done - began:.0f}s; settling")
        lasting = busiest_instrument(db_url, list(config.instruments), rng)
        injector.finish(keep_suspended=lasting)
        notes.append(f"{lasting} stays suspended through the settle and the final check")
        say(f"chaos: {notes[-1]}")
        for name in [*cluster.worker_names, "orders-stream", "beat"]:
            cluster.ensure_running(name)

        def supervise() -> None:
            for name in cluster.supervise():
                say(f"chaos: {name} exited on its own while settling; restarted")

        cluster.stop(["feed"])
        if not broker.wait_until(lambda waiting, _: waiting == 0, 180, supervise):
            notes.append("the queue did not empty within 180 s after the feed stopped")
        cluster.stop(cluster.worker_names)
        orphans = broker.restore_unacked()
        say(f"chaos: {orphans} message(s) left unacknowledged by killed workers, requeued")
        for name in cluster.worker_names:
            cluster.start(name)
        cluster.wait_ready(cluster.worker_names, timeout=180)
        settle_until = time.monotonic() + config.pending_timeout + 2 * config.sync_interval + 5
        while time.monotonic() < settle_until:
            supervise()
            time.sleep(0.5)
        ctl.freeze_market()
        idle = broker.wait_until(lambda w, u: w == 0 and u == 0, 180, supervise)
        if not idle:
            notes.append("tasks still queued or running 180 s into the final settle")
        reports = final_reconciliation(env, say)
        if not broker.wait_until(lambda w, u: w == 0 and u == 0, 180, supervise):
            notes.append("tasks still queued or running 180 s after the final reconciliation")
        cluster.stop(["beat", "orders-stream", *cluster.worker_names])
        notes.append(
            f"timing: start-up {began - started:.0f}s, faults {faults_done - began:.0f}s, "
            f"settle and final reconciliation {time.monotonic() - faults_done:.0f}s"
        )
        feed_logs = cluster.logs_of("feed")
        snap = take_snapshot(ctl, rest_url, db_url, feed_logs)
        snap.save(workdir / "snapshot.json")
        violations = check_all(snap)
        failed_runs = reconcile_failures(
            [p for name in cluster.worker_names for p in cluster.logs_of(name)]
        )
        final_errors = [f"{name}: {r['error']}" for name, r in reports.items() if "error" in r]
        summary = render_summary(
            seed=seed,
            config=config,
            snap=snap,
            violations=violations,
            faults=injector.counts,
            skipped=injector.skipped,
            unexpected=cluster.unexpected,
            orphans=orphans,
            reports=reports,
            failed_runs=failed_runs,
            notes=notes,
        )
    (workdir / "summary.txt").write_text(summary + "\n")
    say(summary)
    return SoakResult(
        seed, workdir, violations, dict(injector.counts), summary, final_errors, snap, notes
    )

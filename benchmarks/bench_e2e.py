"""Tick to order through the whole engine, against a bare Celery no-op round trip.

Run: ``.venv/bin/python benchmarks/bench_e2e.py [--instruments 40] [--workers 4]
[--pool prefork] [--concurrency 1] [--burst 200] [--stages]``.
Needs PostgreSQL and Redis on 127.0.0.1 (as ``scripts/test`` starts them; ``TEST_REDIS_URL``
and ``TEST_POSTGRES_URL`` point elsewhere). Everything runs as its own process, as in
production: ``python -m simulator``, ``python -m feed``, ``python -m worker.orders_stream``
and ``--workers`` times ``celery -A worker worker -P POOL -c CONCURRENCY``.

Tick to order: the simulator pushes, one instrument at a time, a ticker 3 % below the hour
open (the Original strategy's trigger); the feed signals a buy, a worker admits it and places
the order over HTTP. Both ends are stamped on the simulator's clock (``GET /_sim/timeline``):
when it sent the ticker, when it received the order request. Nothing warms the workers'
buy path first, so the first sample is the first order after the workers started.

No-op round trip: ``send_task(noop).get()`` through the same broker and worker pool, a few
after every tick-to-order sample so that both see the same machine. Every ticker and every
such no-op follows the same pause (``--noop-pause``, default ``--gap``), in which nothing runs:
a round trip from idle processes is slower than one right after another (waking an idle
process costs; measured here: ``SELECT 1`` 0.47 ms back to back, 0.77 ms after 20 ms of
idleness). The same number of no-ops back to back is measured too, and the ratios to both
are printed.

Admission (``--burst N``, 0 to skip): N more instruments drop in one burst of tickers; the
rate at which their orders reach the simulator, against the rate at which the same workers
drain N no-op tasks.

``--stages`` loads ``benchmarks/e2e_probe.py`` into the feed and the workers and prints where
the time goes, stage by stage (it adds a few microseconds per stage).

``--pin`` (Linux, 2 CPUs or more) runs the simulator and PostgreSQL on the last CPU and the
engine (workers, feed, orders stream) and this script on the others, as in production, where
the exchange is remote and the database has a host of its own; Redis is left where the
scheduler puts it. PostgreSQL's processes get their CPUs back at the end. Without it, every
process shares every CPU, and the parts a no-op lacks (PostgreSQL, the simulator, the feed,
the orders stream) bound the admission ratio: the report prints that bound.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from celery import Celery  # noqa: E402

from benchmarks.cpu_census import census, per_item_ms  # noqa: E402
from simulator.control import SimControl  # noqa: E402
from tests import builders, stores  # noqa: E402
from tests.processes import WorkerProcess, wait_drained, wait_for  # noqa: E402
from worker.app import NOOP, make_app  # noqa: E402
from worker.ledger.migrate import upgrade  # noqa: E402

DROP = Decimal("0.03")
STRATEGIES = f"""
[hourly_limit_ws]
drop_pct = {DROP}

[original_gap]
enabled = false

[stable_buy_ws]
enabled = false

[batch_buy_ws]
enabled = false
"""


def spawn(
    name: str, argv: list[str], env: dict[str, str], logdir: Path, cpus: set[int] | None = None
) -> WorkerProcess:
    """Start ``argv`` in a session of its own, on ``cpus`` (all when None: ``taskset``, so
    that its threads and children are born there too)."""
    log = logdir / f"{name}.log"
    if cpus is not None:
        argv = ["taskset", "-c", ",".join(map(str, sorted(cpus))), *argv]
    with log.open("ab") as out:
        proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return WorkerProcess(name, proc, log)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass(frozen=True)
class Cpus:
    """Where each side runs (``--pin``): the engine's CPUs, the exchange's and database's."""

    engine: set[int] | None = None
    apart: set[int] | None = None

    @classmethod
    def for_args(cls, args: argparse.Namespace) -> Cpus:
        if not args.pin:
            return cls()
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2 or shutil.which("taskset") is None:
            raise SystemExit("--pin needs Linux, taskset and at least 2 CPUs")
        return cls(engine=set(cpus[:-1]), apart={cpus[-1]})


def set_postgres_cpus(cpus: set[int]) -> int:
    """Move every PostgreSQL process (and thread) to ``cpus``; new backends inherit the
    postmaster's. Return how many processes moved."""
    moved = 0
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if not comm.read_text().startswith("postgres"):
                continue
            for task in (comm.parent / "task").iterdir():
                os.sched_setaffinity(int(task.name), cpus)
            moved += 1
        except (OSError, ValueError):
            continue  # gone meanwhile, or not ours to move
    return moved


def quantile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def wait_for_a_quiet_hour(margin_seconds: float) -> None:
    """The Original strategy's bucket is the UTC hour: do not run across an hour boundary."""
    left = 3600 - time.time() % 3600
    if left < margin_seconds:
        print(f"waiting {left:.0f} s for the next UTC hour", flush=True)
        time.sleep(left + 2)


class Market:
    """Trigger prices of the instruments, from the simulator's hour-open candles."""

    def __init__(self, rest_url: str, inst_ids: list[str]) -> None:
        self.moves: dict[str, dict[str, str]] = {}
        with httpx.Client(base_url=rest_url) as http:
            rules = http.get("/api/v5/public/instruments", params={"instType": "SPOT"}).json()
            ticks = {r["instId"]: Decimal(r["tickSz"]) for r in rules["data"]}
            for inst in inst_ids:
                params = {"instId": inst, "bar": "1H", "limit": "1"}
                [row] = http.get("/api/v5/market/candles", params=params).json()["data"]
                tick = ticks[inst]
                limit = (Decimal(row[1]) * (1 - DROP)).quantize(tick, ROUND_FLOOR)
                # last at the limit triggers; the ask stays above it, so the buy rests.
                self.moves[inst] = {
                    "instId": inst,
                    "last": str(limit),
                    "bid": str(limit - tick),
                    "ask": str(limit + 10 * tick),
                }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instruments", type=int, default=40, help="tick-to-order samples")
    parser.add_argument("--workers", type=int, default=4, help="celery worker processes")
    parser.add_argument("--pool", default="prefork", choices=["prefork", "threads", "solo"])
    parser.add_argument("--concurrency", type=int, default=1, help="per worker process")
    parser.add_argument("--noops-per-sample", type=int, default=5)
    parser.add_argument("--burst", type=int, default=200, help="admission burst (0: skip)")
    parser.add_argument("--gap", type=float, default=0.15, help="seconds between samples")
    parser.add_argument(
        "--noop-pause", type=float, default=None, help="seconds before each no-op (--gap)"
    )
    parser.add_argument("--stages", action="store_true", help="per-stage breakdown (probe)")
    parser.add_argument("--redis-db", type=int, default=13)
    parser.add_argument("--keep-logs", action="store_true")
    parser.add_argument(
        "--pin", action="store_true", help="simulator and PostgreSQL on a CPU of their own"
    )
    args = parser.parse_args()
    if args.pool == "solo":
        args.concurrency = 1
    if args.noop_pause is None:
        args.noop_pause = args.gap
    return args


def engine_env(
    args: argparse.Namespace, tmp: Path, port: int, db_url: str, broker: str, inst_ids: list[str]
) -> dict[str, str]:
    """The environment of every process of the engine (and of the simulator)."""
    env = {
        "DATABASE_URL": db_url,
        "CELERY_BROKER_URL": broker,
        "CELERY_RESULT_BACKEND": broker,
        "LIMITFLOW_HOME": str(tmp),
        "OKX_REST_URL": f"http://127.0.0.1:{port}",
        "OKX_WS_PUBLIC_URL": f"ws://127.0.0.1:{port}/ws/v5/public",
        "OKX_WS_PRIVATE_URL": f"ws://127.0.0.1:{port}/ws/v5/private",
        "OKX_WS_BUSINESS_URL": f"ws://127.0.0.1:{port}/ws/v5/business",
        "INSTRUMENTS": ",".join(inst_ids),
        "STRATEGY_CONFIG": str(tmp / "strategies.toml"),
        "MEMORY_SYNC_INTERVAL_SECONDS": "0",
        "MAX_OPEN_POSITIONS": "1000000",
        "LOG_LEVEL": "INFO",
    }
    if args.stages:
        env["LF_PROBE_DIR"] = str(tmp / "probe")
    return env


def start_engine(
    args: argparse.Namespace,
    env: dict[str, str],
    tmp: Path,
    port: int,
    inst_ids: list[str],
    procs: list[WorkerProcess],
    cpus: Cpus,
) -> Market:
    """Start the simulator, the workers, the orders stream and the feed (each into ``procs``,
    as it starts) and wait until they are ready; the trigger prices."""
    py = sys.executable
    broker = env["CELERY_BROKER_URL"]
    sim = spawn(
        "simulator",
        [
            py, "-m", "simulator", "--port", str(port), "--instruments", ",".join(inst_ids),
            "--warmup-hours", "0", "--step-seconds", "3600", "--shock-rate", "0",
            "--dump-rate", "0", "--start-usdt", "10000000",
        ],
        env,
        tmp,
        cpus.apart,
    )  # fmt: skip
    procs.append(sim)
    wait_for(lambda: "simulator.ready" in sim.text(), 60, "simulator", w=sim)
    market = Market(env["OKX_REST_URL"], inst_ids)

    for n in range(args.workers):
        argv = [
            py, "-m", "celery", "-A", "worker", "worker", "-P", args.pool,
            "-c", str(args.concurrency), "-n", f"w{n + 1}@bench-e2e",
            "--without-mingle", "--without-gossip", "-l", "WARNING",
        ]  # fmt: skip
        if args.stages:
            argv += ["--include", "benchmarks.e2e_probe"]
        procs.append(spawn(f"w{n + 1}", argv, env, tmp, cpus.engine))
    for w in procs[1:]:
        wait_for(lambda w=w: "worker.ready" in w.text(), 90, f"{w.name} ready", w=w)
    stream = spawn("orders-stream", [py, "-m", "worker.orders_stream"], env, tmp, cpus.engine)
    procs.append(stream)
    feed_argv = [py, "-m", "feed"]
    if args.stages:
        feed_argv = [py, "-c", "import benchmarks.e2e_probe as p; p.run_feed()"]
    feed = spawn("feed", feed_argv, env, tmp, cpus.engine)
    procs.append(feed)
    wait_for(lambda: "orders_stream.ready" in stream.text(), 60, "orders stream", w=stream)
    wait_for(lambda: "feed.ready" in feed.text(), 60, "feed", w=feed)
    wait_for(lambda: "feed.hour_opens_seeded" in feed.text(), 60, "hour opens", w=feed)
    wait_drained(broker, timeout=60)  # the start-up reconciliations
    time.sleep(1)
    return market


def wait_for_order(
    ctl: SimControl, inst: str, received: dict[str, int], tmp: Path
) -> dict[str, int]:
    """When the simulator received each order, by instrument, once ``inst``'s is among them."""
    deadline = time.monotonic() + 30
    while inst not in received:
        orders = ctl.timeline()["orders"]
        received = {o["instId"]: o["us"] for o in orders.values()}
        if inst in received:
            break
        if time.monotonic() > deadline:
            raise SystemExit(f"no order for {inst} within 30 s; logs in {tmp}")
        time.sleep(0.05)
    return received


@dataclass
class Noops:
    """No-op round trips (ms): each after a pause (the baseline), and back to back."""

    paused: list[float] = field(default_factory=list)
    back_to_back: list[float] = field(default_factory=list)


def noop_ms(app: Celery) -> float:
    t0 = time.perf_counter()
    app.send_task(NOOP).get(timeout=30)
    return (time.perf_counter() - t0) * 1000


def tick_to_order(
    args: argparse.Namespace,
    ctl: SimControl,
    app: Celery,
    market: Market,
    latency_insts: list[str],
    tmp: Path,
) -> tuple[dict[str, int], dict[str, int], Noops]:
    """One instrument at a time, no-op round trips in between: when each ticker was sent,
    when each order was received, and the no-op round trips."""
    sent_us: dict[str, int] = {}
    noops = Noops()
    received: dict[str, int] = {}
    for inst in latency_insts:
        time.sleep(args.noop_pause)  # idle, as before each paused no-op
        stamp = ctl.price_with_time(inst, **_price_args(market.moves[inst]))
        assert stamp is not None, f"nobody subscribes to {inst}"
        sent_us[inst] = stamp
        time.sleep(args.gap)  # no polling while the order is on its way
        received = wait_for_order(ctl, inst, received, tmp)
        for _ in range(args.noops_per_sample):
            time.sleep(args.noop_pause)
            noops.paused.append(noop_ms(app))
        noops.back_to_back += [noop_ms(app) for _ in range(args.noops_per_sample)]
    return sent_us, received, noops


@dataclass
class Admission:
    """The burst's rates (per second), and the CPU each part spent per item (ms)."""

    admit_rate: float = 0.0
    noop_rate: float = 0.0
    admit_cpu: dict[str, float] = field(default_factory=dict)
    noop_cpu: dict[str, float] = field(default_factory=dict)


def admission(
    ctl: SimControl,
    app: Celery,
    market: Market,
    burst_insts: list[str],
    tmp: Path,
    read_cpu: Callable[[], Counter[str]],
) -> Admission:
    """A burst of triggering tickers vs no-op tasks drained: both rates, and the CPU per item
    of each part of the engine (``benchmarks.cpu_census``)."""
    n = len(burst_insts)
    cpu0 = read_cpu()
    t0 = time.perf_counter()
    results = [app.send_task(NOOP) for _ in burst_insts]
    for r in results:
        r.get(timeout=120)
    noop_rate = n / (time.perf_counter() - t0)
    cpu1 = read_cpu()
    sent = ctl.prices([market.moves[i] for i in burst_insts])
    first_sent = min(s for s in sent if s is not None)
    deadline = time.monotonic() + 300
    while True:
        orders = ctl.timeline()["orders"]
        done = [o["us"] for o in orders.values() if o["instId"].startswith("B")]
        if len(done) >= len(burst_insts):
            break
        if time.monotonic() > deadline:
            raise SystemExit(f"burst: {len(done)} of {len(burst_insts)} orders; {tmp}")
        time.sleep(0.2)
    admit_rate = n / ((max(done) - first_sent) / 1e6)
    wait_drained(app.conf.broker_url, timeout=60)  # the tasks' work after their orders
    time.sleep(0.5)  # and the orders stream's
    cpu2 = read_cpu()
    return Admission(admit_rate, noop_rate, per_item_ms(cpu1, cpu2, n), per_item_ms(cpu0, cpu1, n))


def main() -> None:
    args = parse_args()
    wait_for_a_quiet_hour(margin_seconds=180)
    latency_insts = [f"L{i}-USDT" for i in range(args.instruments)]
    burst_insts = [f"B{i}-USDT" for i in range(args.burst)]
    inst_ids = latency_insts + burst_insts
    tmp = Path(tempfile.mkdtemp(prefix="lf-bench-e2e-"))
    probe_dir = tmp / "probe"
    probe_dir.mkdir()
    (tmp / "strategies.toml").write_text(STRATEGIES)
    port = free_port()
    rest_url = f"http://127.0.0.1:{port}"
    db_url = stores.create_pg_database()
    upgrade(db_url)
    broker = stores.redis_db_url(args.redis_db)
    env = engine_env(args, tmp, port, db_url, broker, inst_ids)
    procs: list[WorkerProcess] = []
    settings = builders.make_settings(
        **{k: v for k, v in env.items() if k not in ("LOG_LEVEL", "LF_PROBE_DIR")}
    )
    app = make_app(settings)
    ctl = SimControl(rest_url)
    cpus = Cpus.for_args(args)
    all_cpus = os.sched_getaffinity(0)
    try:
        if cpus.engine is not None and cpus.apart is not None:
            os.sched_setaffinity(0, cpus.engine)  # this script sends the no-ops
            if not set_postgres_cpus(cpus.apart):
                raise SystemExit(
                    "--pin moved no PostgreSQL process: it must run on this machine, and this"
                    " script as root or as its user"
                )
        market = start_engine(args, env, tmp, port, inst_ids, procs, cpus)
        # 1. Tick to order, one instrument at a time; no-op round trips in between.
        sent_us, received, noops = tick_to_order(args, ctl, app, market, latency_insts, tmp)
        t2o_ms = [(received[i] - sent_us[i]) / 1000 for i in latency_insts]
        # 2. Admission: a burst of triggering tickers vs no-op tasks drained.
        burst = Admission()
        if burst_insts:
            parts = {p.proc.pid: "workers" if p.name[1:].isdigit() else p.name for p in procs}
            database = db_url.rsplit("/", 1)[-1]
            redis_port = int(broker.rsplit(":", 1)[-1].split("/")[0])
            burst = admission(
                ctl, app, market, burst_insts, tmp, lambda: census(parts, database, redis_port)
            )
        requests = ctl.status()["requests"]
    finally:
        for proc in reversed(procs):
            proc.stop()
        ctl.close()
        stores.drop_pg_database(db_url)
        if cpus.apart is not None:
            set_postgres_cpus(all_cpus)

    t2o = dict(zip(latency_insts, t2o_ms, strict=True))
    firsts, task_ms = worker_logs(procs, set(latency_insts))
    report(args, t2o, noops, firsts, task_ms, burst, requests)
    if args.stages:
        from benchmarks.e2e_probe import stage_report

        stage_report(probe_dir, sent_us, received, latency_insts)
    if args.keep_logs or args.stages:
        print(f"logs: {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)


def worker_logs(
    procs: list[WorkerProcess], latency_insts: set[str]
) -> tuple[dict[str, str], list[float]]:
    """The first tick-to-order instrument each worker ran, and every buy task's duration."""
    firsts: dict[str, str] = {}
    durations: list[float] = []
    for proc in procs:
        if not proc.name.startswith("w"):
            continue
        for line in proc.text().splitlines():
            if "task=process_buy_signal" not in line or "outcome=accepted" not in line:
                continue
            fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
            inst = fields.get("slot", "").split("/")[0]
            if inst in latency_insts:
                firsts.setdefault(proc.name, inst)
                durations.append(float(fields.get("duration_ms", "nan")))
    return firsts, durations


def _price_args(move: dict[str, str]) -> dict[str, str]:
    return {"last": move["last"], "bid": move["bid"], "ask": move["ask"]}


def report(
    args: argparse.Namespace,
    t2o: dict[str, float],
    noops: Noops,
    firsts: dict[str, str],
    task_ms: list[float],
    burst: Admission,
    requests: dict[str, int],
) -> None:
    samples = list(t2o.values())
    pool = f"{args.workers} x celery worker -P {args.pool} -c {args.concurrency}"
    print(f"bench_e2e: {pool}; Redis, PostgreSQL, simulator over HTTP and websockets")
    if args.pin:
        print(
            "pinned (--pin): the simulator and PostgreSQL on the last CPU, the engine and this"
            " script on the others, Redis anywhere"
        )
    print(
        f"tick to order over {len(samples)} instruments, no-op round trip over"
        f" {len(noops.paused)} tasks, each after {args.noop_pause:g} s idle like a ticker,"
        f" and {len(noops.back_to_back)} back to back"
    )
    qs = {"median": 0.5, "p90": 0.9, "p99": 0.99}
    t = {k: quantile(samples, q) for k, q in qs.items()}
    n = {k: quantile(noops.paused, q) for k, q in qs.items()}
    b = {k: quantile(noops.back_to_back, q) for k, q in qs.items()}
    print("no-op round trip    " + "   ".join(f"{k} {v:7.2f} ms" for k, v in n.items()))
    print("tick to order       " + "   ".join(f"{k} {v:7.2f} ms" for k, v in t.items()))
    ratios = "   ".join(f"{k} {t[k] / n[k]:6.2f}x   " for k in qs)
    print(f"  ratio             {ratios} (targets: median <= 1.5x, p99 <= 3x)")
    print("no-ops back to back " + "   ".join(f"{k} {v:7.2f} ms" for k, v in b.items()))
    ratios = "   ".join(f"{k} {t[k] / b[k]:6.2f}x   " for k in qs)
    print(f"  ratio to those    {ratios}")
    if task_ms:
        print(f"worker task alone   median {statistics.median(task_ms):7.2f} ms (its log line)")
    first = samples[0]
    verdict = "within" if first <= t["p99"] else "NOT within"
    print(
        f"first order after start {first:7.2f} ms ({first / t['median']:.2f}x the median):"
        f" {verdict} the p99 ({t['p99']:.2f} ms)"
    )
    per_worker = {name: t2o[inst] for name, inst in sorted(firsts.items())}
    worst = max(per_worker.values(), default=0.0)
    print(
        "first order of each worker: "
        + ", ".join(f"{name} {v:.1f}" for name, v in per_worker.items())
        + f" ms: {'all within' if worst <= t['p99'] else 'NOT all within'} the p99"
    )
    fetched = requests.get("/api/v5/public/instruments", 0)
    print(f"instrument list fetched (GET /api/v5/public/instruments): {fetched} times in the run")
    if burst.admit_rate:
        print(
            f"admission {burst.admit_rate:8.1f} signals/s   no-op drain {burst.noop_rate:8.1f}"
            f" tasks/s   ratio {burst.admit_rate / burst.noop_rate:4.2f} (target >= 0.7)"
        )
        print(f"CPU per item, ms ({os.cpu_count()} cores)   admission   no-op")
        for part in burst.admit_cpu:
            print(f"  {part:32s} {burst.admit_cpu[part]:9.2f} {burst.noop_cpu.get(part, 0.0):7.2f}")
        total = sum(burst.admit_cpu.values()), sum(burst.noop_cpu.values())
        print(f"  {'total':32s} {total[0]:9.2f} {total[1]:7.2f}")
        # Both phases keep every core busy, so the rates' ratio is about the CPU's. The parts
        # a no-op lacks (PostgreSQL, the simulator, the feed, the orders stream) share the
        # cores with the workers: their CPU bounds the ratio whatever the buy task costs.
        # (With --pin they have a CPU of their own, and the engine's CPUs set the pace.)
        workers = ("workers", "workers (pool processes)")
        others = total[0] - sum(burst.admit_cpu.get(k, 0.0) for k in workers)
        best = others + sum(burst.noop_cpu.get(k, 0.0) for k in workers)
        ratio = f"  CPU ratio (no-op / admission) {total[1] / total[0]:4.2f}"
        if not args.pin:
            ratio += (
                f"; at most {total[1] / best:4.2f} if a buy cost the workers no more than a"
                f" no-op (the other parts' {others:.2f} ms per admission stay)"
            )
        print(ratio)
    print("samples (ms, in order): " + " ".join(f"{v:.1f}" for v in samples))


if __name__ == "__main__":
    main()

"""Worker-side performance targets, measured as ratios against baselines of the same run.

Run: ``.venv/bin/python benchmarks/bench_worker.py [--signals N] [--workers W]``
Needs PostgreSQL and Redis on 127.0.0.1 (as ``scripts/test`` starts them). Prints:

- tick to order: from a buy signal sent (what the feed does on the triggering tick) to the
  order reaching the exchange, against a bare Celery no-op task's round trip;
- admission: distinct buy signals admitted end to end (lock, intent, order placed) per second,
  against no-op tasks drained per second by the same worker processes;
- duplicate rejection: a duplicate refused by the per-worker cache against one refused by the
  database (lock, lookup);
- reconciliation: ``sync_active_orders`` over N open orders.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402

from tests import builders, stores  # noqa: E402
from tests.processes import WorkerPool, wait_for  # noqa: E402
from worker.app import NOOP, PROCESS_BUY_SIGNAL, make_app  # noqa: E402
from worker.domain.ids import buy_cl_ord_id  # noqa: E402
from worker.domain.money import InstrumentRules  # noqa: E402
from worker.domain.strategies import STRATEGIES  # noqa: E402
from worker.exchange.memory import InMemoryExchange, serve_memory_exchange  # noqa: E402
from worker.ledger.db import Ledger  # noqa: E402
from worker.ledger.migrate import upgrade  # noqa: E402
from worker.runtime import Runtime  # noqa: E402
from worker.services.buy import process_buy  # noqa: E402
from worker.services.reconcile import sync_active_orders  # noqa: E402


def venue_with(instruments: int, prefix: str = "C") -> InMemoryExchange:
    venue = InMemoryExchange()
    for i in range(instruments):
        inst, base = f"{prefix}{i}-USDT", f"{prefix}{i}"
        tick, lot, min_sz = Decimal("0.01"), Decimal("0.0001"), Decimal("0.001")
        venue.add_instrument(InstrumentRules(inst, tick, lot, min_sz, base, "USDT"))
        venue.set_price(inst, Decimal("200"))  # buys at 100 rest on the book
    return venue


def slots(n: int, prefix: str = "C") -> list[tuple[str, str]]:
    return [(f"{prefix}{i // 4}-USDT", STRATEGIES[i % 4]) for i in range(n)]


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--signals", type=int, default=1000)
    parser.add_argument("--latency-samples", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--reconcile-orders", type=int, default=10_000)
    args = parser.parse_args()

    n_slots = args.signals + args.latency_samples + 10
    venue = venue_with(n_slots // 4 + 1)
    server = serve_memory_exchange(venue)
    db_url = stores.create_pg_database()
    upgrade(db_url)
    broker = stores.redis_db_url(14)
    tmp = Path(tempfile.mkdtemp(prefix="lf-bench-"))
    env = {
        "DATABASE_URL": db_url,
        "CELERY_BROKER_URL": broker,
        "CELERY_RESULT_BACKEND": broker,
        "LIMITFLOW_EXCHANGE": server.url,
        "LIMITFLOW_HOME": str(tmp),
        "MEMORY_SYNC_INTERVAL_SECONDS": "0",
        "MAX_OPEN_POSITIONS": "1000000",
        "LOG_LEVEL": "WARNING",
    }
    settings = builders.make_settings(**env)
    app = make_app(settings)
    pool = WorkerPool({**env, "LOG_LEVEL": "INFO"}, tmp)
    free = iter(slots(n_slots))
    try:
        pool.start(args.workers)
        time.sleep(2)  # let the start-up reconciliations pass
        for _ in range(20):  # warm up connections in every process
            app.send_task(NOOP).get(timeout=30)
        warm = venue.calls()["place_order"]
        for _ in range(4 * args.workers):  # and the buy path (connections, caches)
            inst, strategy = next(free)
            msg = builders.buy_message(strategy, inst, px="100", quote_sz="1")
            app.send_task(PROCESS_BUY_SIGNAL, args=[msg])
        wait_for(lambda: venue.calls()["place_order"] - warm >= 4 * args.workers, 60, "warm-up")

        # 1. Tick to order vs. no-op round trip (sequential, one at a time).
        noop_rtt = []
        for _ in range(args.latency_samples):
            t0 = time.perf_counter()
            app.send_task(NOOP).get(timeout=30)
            noop_rtt.append((time.perf_counter() - t0) * 1000)
        tick_to_order = []
        for _ in range(args.latency_samples):
            inst, strategy = next(free)
            msg = builders.buy_message(strategy, inst, px="100", quote_sz="1")
            cid = buy_cl_ord_id(strategy, msg["signal_id"])
            # The venue stamps the order when it arrives; poll gently, so as not to slow it.
            sent_ms = time.time() * 1000
            app.send_task(PROCESS_BUY_SIGNAL, args=[msg])
            while venue.placements_for(cid) == 0:
                time.sleep(0.002)
            [order] = [o for o in venue.orders() if o.cl_ord_id == cid]
            tick_to_order.append(order.created_ms - sent_ms)

        # 2. Admission throughput vs. no-op drain rate.
        t0 = time.perf_counter()
        results = [app.send_task(NOOP) for _ in range(args.signals)]
        for r in results:
            r.get(timeout=120)
        noop_rate = args.signals / (time.perf_counter() - t0)
        before = venue.calls()["place_order"]
        msgs = []
        for _ in range(args.signals):
            inst, strategy = next(free)
            msgs.append(builders.buy_message(strategy, inst, px="100", quote_sz="1"))
        t0 = time.perf_counter()
        for msg in msgs:
            app.send_task(PROCESS_BUY_SIGNAL, args=[msg])
        wait_for(lambda: venue.calls()["place_order"] - before >= args.signals, 600, "admissions")
        admit_rate = args.signals / (time.perf_counter() - t0)
    finally:
        pool.kill_all()

    # 3. Duplicates: cache vs database (in this process, same PostgreSQL).
    ledger = Ledger.from_url(db_url)
    local = venue_with(4)
    rt = Runtime(settings, ledger, local, builders.RecordingScheduler())
    msg = builders.buy_message("hourly_limit_ws", "C0-USDT", px="100", quote_sz="1")
    process_buy(rt, msg)
    reps = 2000
    t0 = time.perf_counter()
    for _ in range(reps):
        assert process_buy(rt, msg).outcome == "duplicate"
    cache_us = (time.perf_counter() - t0) / reps * 1e6
    t0 = time.perf_counter()
    for _ in range(reps // 10):
        rt.cache.clear()
        assert process_buy(rt, msg).outcome == "duplicate"
    db_us = (time.perf_counter() - t0) / (reps // 10) * 1e6

    # 4. Reconciliation of many open orders (on an empty ledger).
    with ledger.begin() as s:
        s.execute(text("TRUNCATE fills, signals, lots, orders, slots RESTART IDENTITY CASCADE"))
    from worker.exchange.port import OrderRequest
    from worker.ledger.models import Order

    big = venue_with(args.reconcile_orders // 4 + 1, "R")
    now = builders.ManualClock()()
    rows = []
    for i, (inst, strategy) in enumerate(slots(args.reconcile_orders, "R")):
        cid = buy_cl_ord_id(strategy, f"recon:{i}")
        placed = big.place_order(OrderRequest(inst, "buy", Decimal("100"), Decimal("0.01"), cid))
        rows.append(
            Order(
                cl_ord_id=cid, ord_id=placed.ord_id, inst_id=inst, strategy=strategy, side="buy",
                purpose="entry", state="live", px=Decimal("100"), sz=Decimal("0.01"),
                created_at=now, updated_at=now, submitted_at=now,
            )
        )  # fmt: skip
    with ledger.begin() as s:
        s.add_all(rows)
    rt = Runtime(settings, ledger, big, builders.RecordingScheduler())
    t0 = time.perf_counter()
    report = sync_active_orders(rt)
    recon_s = time.perf_counter() - t0
    ledger.dispose()
    server.stop()
    stores.drop_pg_database(db_url)

    med_noop, p99_noop = statistics.median(noop_rtt), pct(noop_rtt, 0.99)
    med_t2o, p99_t2o = statistics.median(tick_to_order), pct(tick_to_order, 0.99)
    print(f"workers: {args.workers} processes x 1 (PostgreSQL + Redis, loopback)")
    print(f"no-op round trip      median {med_noop:7.2f} ms   p99 {p99_noop:7.2f} ms")
    print(f"tick to order         median {med_t2o:7.2f} ms   p99 {p99_t2o:7.2f} ms")
    print(f"  ratio               median {med_t2o / med_noop:5.2f}x (target <= 2)"
          f"   p99 {p99_t2o / p99_noop:5.2f}x (target <= 4)")  # fmt: skip
    print(f"no-op drain rate      {noop_rate:8.1f} tasks/s")
    print(f"admission rate        {admit_rate:8.1f} signals/s"
          f"   ratio {admit_rate / noop_rate:4.2f} (target >= 0.5)")  # fmt: skip
    print(f"duplicate via cache   {cache_us:8.1f} us   via database {db_us:8.1f} us"
          f"   ratio {db_us / cache_us:5.1f}x (target >= 10)")  # fmt: skip
    print(f"reconcile {args.reconcile_orders} open orders: {recon_s:.2f} s  report={report}")


if __name__ == "__main__":
    main()

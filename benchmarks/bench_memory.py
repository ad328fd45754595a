"""Resident memory of the feed engine and of a worker's buy path over a long run.

Run: ``.venv/bin/python benchmarks/bench_memory.py [--ticks N] [--signals N]``
Prints resident memory (RSS) after a warm-up and at the end, for one million ticker messages
through the feed engine (ticks spread over many hours, so hourly and daily buckets roll over)
and for many signals through the worker's buy path on SQLite (mostly distinct slots, plus
duplicates and rivals). The target is growth under 5 MB after the warm-up.
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing
import random
import sys
import tempfile
import threading
from decimal import Decimal
from multiprocessing import Queue
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_feed import T0, engine  # noqa: E402
from tests import builders  # noqa: E402
from worker.domain.money import InstrumentRules  # noqa: E402
from worker.domain.strategies import STRATEGIES  # noqa: E402
from worker.exchange.memory import (  # noqa: E402
    InMemoryExchange,
    connect_memory_exchange,
    serve_memory_exchange,
)
from worker.ledger.db import Ledger  # noqa: E402
from worker.ledger.migrate import upgrade  # noqa: E402
from worker.runtime import Runtime  # noqa: E402
from worker.services.buy import process_buy  # noqa: E402


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * 4096 / 2**20


def tick(rng: random.Random, px: dict[str, float], j: int, k: int) -> bytes:
    inst = f"C{j % k}-USDT"
    px[inst] = min(150.0, max(60.0, px[inst] * (1 + rng.gauss(0, 0.004))))
    last = f"{px[inst]:.4f}"
    item = {
        "instType": "SPOT", "instId": inst, "last": last, "lastSz": "0.1", "askPx": last,
        "askSz": "1", "bidPx": last, "bidSz": "1", "open24h": "100", "high24h": "103",
        "low24h": "99", "volCcy24h": "2222222", "vol24h": "2222", "sodUtc0": "100",
        "sodUtc8": "100", "ts": str(T0 + j * 100),  # 1M ticks span about 28 hours
    }  # fmt: skip
    return orjson.dumps({"arg": {"channel": "tickers", "instId": inst}, "data": [item]})


def feed_memory(ticks: int, k: int = 300) -> tuple[float, float, int]:
    rng = random.Random(3)
    px = {f"C{i}-USDT": 100.0 for i in range(k)}
    published: list[object] = []
    eng = engine(k, published)  # type: ignore[arg-type]
    warm = ticks // 10
    for j in range(warm):
        eng.handle_raw(tick(rng, px, j, k))
    published.clear()
    gc.collect()
    start = rss_mb()
    for j in range(warm, ticks):
        eng.handle_raw(tick(rng, px, j, k))
        if len(published) > 10_000:  # the publisher thread drains its queue the same way
            published.clear()
    gc.collect()
    return start, rss_mb(), eng.buys


def _serve_venue(instruments: int, urls: Queue[str]) -> None:
    """Hold the venue in another process, so that its orders do not count as ours."""
    venue = InMemoryExchange()
    for i in range(instruments):
        venue.add_instrument(
            InstrumentRules(f"M{i}-USDT", Decimal("0.01"), Decimal("0.0001"), Decimal("0.001"),
                            f"M{i}", "USDT")
        )  # fmt: skip
        venue.set_price(f"M{i}-USDT", Decimal("200"))
    urls.put(serve_memory_exchange(venue).url)
    threading.Event().wait()


def worker_memory(signals: int) -> tuple[float, float]:
    home = Path(tempfile.mkdtemp(prefix="lf-mem-"))
    url = f"sqlite:///{home / 'ledger.db'}"
    upgrade(url)
    ctx = multiprocessing.get_context("spawn")
    urls: Queue[str] = ctx.Queue()
    server = ctx.Process(target=_serve_venue, args=(signals // 4 + 10, urls), daemon=True)
    server.start()
    venue = connect_memory_exchange(urls.get(timeout=60))
    settings = builders.make_settings(DATABASE_URL=url, MAX_OPEN_POSITIONS=10**9)
    rt = Runtime(settings, Ledger.from_url(url), venue, builders.RecordingScheduler())

    def run(n: int, offset: int) -> None:
        for i in range(offset, offset + n):
            inst, strategy = f"M{i // 4}-USDT", STRATEGIES[i % 4]
            msg = builders.buy_message(strategy, inst, px="100", quote_sz="1")
            process_buy(rt, msg)
            process_buy(rt, msg)  # a duplicate
            process_buy(rt, builders.buy_message(strategy, inst, px="100", quote_sz="1"))

    # Warm up until the per-worker caches are full (they are bounded): growth after that
    # would be a leak.
    warm = max(signals // 10, 3000)
    run(warm, 0)
    gc.collect()
    start = rss_mb()
    run(signals, warm)
    gc.collect()
    end = rss_mb()
    server.kill()
    return start, end


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ticks", type=int, default=1_000_000)
    parser.add_argument("--signals", type=int, default=10_000)
    args = parser.parse_args()
    start, end, buys = feed_memory(args.ticks)
    print(f"feed:   {args.ticks:,} ticks ({buys} buy signals): RSS {start:.1f} -> {end:.1f} MB"
          f" (growth {end - start:+.1f} MB, target < 5)")  # fmt: skip
    start, end = worker_memory(args.signals)
    print(f"worker: {args.signals * 3:,} signals ({args.signals:,} orders): RSS {start:.1f} -> "
          f"{end:.1f} MB (growth {end - start:+.1f} MB, target < 5)")  # fmt: skip


if __name__ == "__main__":
    main()

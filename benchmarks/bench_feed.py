"""Feed hot path: ticker messages parsed and evaluated per second, on one core.

Run: ``.venv/bin/python benchmarks/bench_feed.py [--messages N] [--instruments K]``.
Prints the engine's rate (all four strategies enabled, realistic OKX ticker pushes, prices
wandering around the hour open so strategies fire now and then) and, measured in the same
run, a bare ``orjson.loads`` loop over the same messages; the ratio is what to compare.

Rates are per CPU second of this (single-threaded) process, which is what "per core" means;
on a shared machine the wall clock also counts the time other processes held the core, so
the wall-clock rate is printed too, for reference only.

``--approach`` also tracks the closest approaches as the daemon does (``feed.approach``).
"""

from __future__ import annotations

import argparse
import random
import time
from decimal import Decimal

import orjson

from feed.approach import ApproachTracker
from feed.engine import Engine
from worker.domain.money import InstrumentRules
from worker.signals import BuySignal, SellSignal
from worker.strategy_config import StrategyConfig

T0 = 1795939200000


def messages(n: int, k: int, seed: int = 1) -> list[bytes]:
    rng = random.Random(seed)
    insts = [f"C{i}-USDT" for i in range(k)]
    px = dict.fromkeys(insts, 100.0)
    out = []
    for j in range(n):
        inst = insts[j % k]
        px[inst] = max(50.0, px[inst] * (1 + rng.gauss(0, 0.002)))
        last = f"{px[inst]:.4f}"
        item = {
            "instType": "SPOT",
            "instId": inst,
            "last": last,
            "lastSz": "0.1",
            "askPx": last,
            "askSz": "11",
            "bidPx": last,
            "bidSz": "5",
            "open24h": "100",
            "high24h": "103",
            "low24h": "99",
            "volCcy24h": "2222222",
            "vol24h": "2222",
            "sodUtc0": "100",
            "sodUtc8": "100",
            "ts": str(T0 + j * 3),
        }
        out.append(orjson.dumps({"arg": {"channel": "tickers", "instId": inst}, "data": [item]}))
    return out


def engine(k: int, published: list[BuySignal | SellSignal], approach: bool = False) -> Engine:
    rules = [
        InstrumentRules(
            f"C{i}-USDT", Decimal("0.0001"), Decimal("0.0001"), Decimal("0.001"), f"C{i}", "USDT"
        )
        for i in range(k)
    ]
    eng = Engine(rules, StrategyConfig(), published.append)
    for r in rules:
        eng.seed_hour_open(r.inst_id, T0, Decimal("100"))
    if approach:
        eng.approach = ApproachTracker(eng.config, eng.batch_state, "bench", eng.states)
    return eng


def best_rates(fn: object, msgs: list[bytes], repeat: int) -> tuple[float, float]:
    """Messages per CPU second and per wall-clock second, best of ``repeat`` runs."""
    best_cpu = best_wall = float("inf")
    for _ in range(repeat):
        cpu, wall = time.process_time(), time.perf_counter()
        fn(msgs)  # type: ignore[operator]
        best_cpu = min(best_cpu, time.process_time() - cpu)
        best_wall = min(best_wall, time.perf_counter() - wall)
    return len(msgs) / best_cpu, len(msgs) / best_wall


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--instruments", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--approach", action="store_true", help="track closest approaches")
    args = parser.parse_args()
    msgs = messages(args.messages, args.instruments)

    def bare(batch: list[bytes]) -> None:
        loads = orjson.loads
        for m in batch:
            loads(m)

    published: list[BuySignal | SellSignal] = []
    engines: list[Engine] = []

    def evaluated(batch: list[bytes]) -> None:
        published.clear()
        eng = engine(args.instruments, published, args.approach)  # fresh: every run the same
        engines.append(eng)
        handle = eng.handle_raw
        for m in batch:
            handle(m)

    bare_rate, bare_wall = best_rates(bare, msgs, args.repeat)
    feed_rate, feed_wall = best_rates(evaluated, msgs, args.repeat)
    eng = engines[-1]
    tracked = ", closest approaches tracked" if args.approach else ""
    print(f"messages         {len(msgs)} ({args.instruments} instruments, 4 strategies{tracked})")
    print(f"signals          {len(published)} ({eng.buys} buys, skipped {eng.skipped})")
    print(f"bad input        {sum(eng.bad.values())}")
    print(f"orjson.loads     {bare_rate:,.0f} msg/s per CPU second  (wall clock {bare_wall:,.0f})")
    print(f"feed engine      {feed_rate:,.0f} msg/s per CPU second  (wall clock {feed_wall:,.0f})")
    print(f"ratio            {feed_rate / bare_rate:.3f} of bare orjson.loads")
    print(f"target 100,000   {'met' if feed_rate >= 100_000 else 'NOT met'} (per core)")


if __name__ == "__main__":
    main()

"""Token buckets follow OKX's published limits and wait instead of failing."""

from __future__ import annotations

import threading
import time

import pytest

from worker.domain.errors import RateLimited
from worker.exchange.okx.ratelimit import RULES, OkxRequestPacer, Rule


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def pacer(clock: FakeClock, **kw: float) -> OkxRequestPacer:
    return OkxRequestPacer(clock=clock, sleep=clock.sleep, **kw)


def test_table_matches_the_published_limits() -> None:
    assert RULES["POST /api/v5/trade/order"] == Rule(60, per_inst=True)
    assert RULES["POST /api/v5/trade/batch-orders"] == Rule(300, per_inst=True)
    assert RULES["GET /api/v5/trade/orders-pending"] == Rule(60)
    assert RULES["GET /api/v5/trade/orders-history"] == Rule(40)
    assert RULES["GET /api/v5/account/balance"] == Rule(10)


def test_burst_up_to_the_limit_then_waits_for_a_token() -> None:
    clock = FakeClock()
    rl = pacer(clock)
    for _ in range(60):
        assert rl.acquire("POST /api/v5/trade/order", "BTC-USDT") == 0
    waited = rl.acquire("POST /api/v5/trade/order", "BTC-USDT")
    assert waited == pytest.approx(2.0 / 60)  # one token refills in 2 s / 60


def test_instruments_have_separate_buckets_for_trading() -> None:
    clock = FakeClock()
    rl = pacer(clock)
    for _ in range(60):
        rl.acquire("POST /api/v5/trade/order", "BTC-USDT")
    assert rl.acquire("POST /api/v5/trade/order", "ETH-USDT") == 0
    assert clock.slept == []


def test_user_wide_endpoints_ignore_the_key() -> None:
    clock = FakeClock()
    rl = pacer(clock)
    for i in range(10):
        rl.acquire("GET /api/v5/account/balance", f"k{i}")
    assert rl.acquire("GET /api/v5/account/balance", "other") > 0


def test_batch_costs_one_token_per_order() -> None:
    clock = FakeClock()
    rl = pacer(clock)
    for _ in range(15):
        rl.acquire("POST /api/v5/trade/batch-orders", "BTC-USDT", cost=20)
    assert rl.acquire("POST /api/v5/trade/batch-orders", "BTC-USDT", cost=20) > 0


def test_max_wait_raises_rate_limited() -> None:
    clock = FakeClock()
    rl = pacer(clock, max_wait=0.1)
    for _ in range(10):
        rl.acquire("GET /api/v5/public/time")
    with pytest.raises(RateLimited):
        rl.acquire("GET /api/v5/public/time")  # one token takes 0.2 s


def test_penalize_empties_the_bucket() -> None:
    clock = FakeClock()
    rl = pacer(clock)
    rl.penalize("GET /api/v5/trade/orders-pending")
    assert rl.acquire("GET /api/v5/trade/orders-pending") == pytest.approx(2.0 / 60)


def test_threads_share_the_buckets_with_real_time() -> None:
    rl = OkxRequestPacer({"GET /x": Rule(20)})  # 10 tokens per second after a burst of 20
    start = time.monotonic()

    def worker() -> None:
        for _ in range(5):
            rl.acquire("GET /x")

    threads = [threading.Thread(target=worker) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start
    # 25 requests: 20 from the burst, 5 more at 10/s.
    assert 0.4 <= elapsed < 1.0

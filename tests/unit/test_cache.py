from __future__ import annotations

from worker.cache import TTLCache, WorkerCache


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_entries_expire_after_ttl() -> None:
    clock = Clock()
    cache: TTLCache[str, int] = TTLCache(10, 5.0, clock)
    cache.put("a", 1)
    clock.t = 4.99
    assert cache.get("a") == 1
    clock.t = 5.0
    assert cache.get("a") is None
    assert len(cache) == 0


def test_bounded_lru() -> None:
    cache: TTLCache[int, int] = TTLCache(100, 60.0, Clock())
    for i in range(10_000):
        cache.put(i, i)
    assert len(cache) == 100
    assert cache.get(0) is None and cache.get(9_999) == 9_999


def test_busy_slot_is_dropped_when_freed() -> None:
    clock = Clock()
    cache = WorkerCache(busy_ttl=30, clock=clock)
    cache.mark_busy(("BTC-USDT", "hourly_limit_ws"), "slot_busy")
    assert cache.busy_reason(("BTC-USDT", "hourly_limit_ws")) == "slot_busy"
    assert cache.busy_reason(("BTC-USDT", "batch_buy_ws")) is None
    cache.slot_freed(("BTC-USDT", "hourly_limit_ws"))
    assert cache.busy_reason(("BTC-USDT", "hourly_limit_ws")) is None
    cache.mark_busy(("ETH-USDT", "original_gap"), "cooldown")
    clock.t = 30.0
    assert cache.busy_reason(("ETH-USDT", "original_gap")) is None

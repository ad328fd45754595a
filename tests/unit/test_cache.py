from __future__ import annotations

import pytest

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


def test_a_decided_signal_is_remembered_for_a_minute() -> None:
    clock = Clock()
    cache = WorkerCache(clock=clock)
    assert cache.seen_outcome("sig-1") is None
    cache.remember_signal("sig-1", "recorded")
    cache.remember_signal("sig-2", "skipped")
    assert cache.seen_outcome("sig-1") == "recorded"
    assert cache.seen_outcome("sig-2") == "skipped"
    clock.t = 59.99
    assert cache.seen_outcome("sig-1") == "recorded"
    clock.t = 60.0
    assert cache.seen_outcome("sig-1") is None and cache.seen_outcome("sig-2") is None


def test_a_busy_slot_is_remembered_for_thirty_seconds_by_default() -> None:
    clock = Clock()
    cache = WorkerCache(clock=clock)
    cache.mark_busy(("BTC-USDT", "hourly_limit_ws"), "slot_busy")
    clock.t = 29.99
    assert cache.busy_reason(("BTC-USDT", "hourly_limit_ws")) == "slot_busy"
    clock.t = 30.0
    assert cache.busy_reason(("BTC-USDT", "hourly_limit_ws")) is None


def test_the_least_recently_used_entry_goes_first_and_a_read_refreshes() -> None:
    cache: TTLCache[str, int] = TTLCache(2, 60.0, Clock())
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # "a" is now the most recently used
    cache.put("c", 3)
    assert cache.get("b") is None
    assert cache.get("a") == 1 and cache.get("c") == 3
    cache.put("a", 4)  # a write refreshes too
    cache.put("d", 5)
    assert cache.get("c") is None and cache.get("a") == 4 and len(cache) == 2


def test_a_cache_of_one_holds_the_latest_entry() -> None:
    cache: TTLCache[str, int] = TTLCache(1, 0.5, Clock())
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") is None and cache.get("b") == 2


def test_clear_forgets_signals_and_busy_slots() -> None:
    cache = WorkerCache(clock=Clock())
    cache.remember_signal("sig-1", "recorded")
    cache.mark_busy(("BTC-USDT", "hourly_limit_ws"), "slot_busy")
    cache.clear()
    assert cache.seen_outcome("sig-1") is None
    assert cache.busy_reason(("BTC-USDT", "hourly_limit_ws")) is None
    assert len(cache.seen) == 0 and len(cache.busy) == 0


def test_freeing_a_slot_never_marked_busy_is_harmless() -> None:
    cache = WorkerCache(clock=Clock())
    cache.slot_freed(("BTC-USDT", "hourly_limit_ws"))
    assert cache.busy_reason(("BTC-USDT", "hourly_limit_ws")) is None


@pytest.mark.parametrize(("maxsize", "ttl"), [(0, 5.0), (-1, 5.0), (10, 0.0), (10, -1.0), (0, 0.0)])
def test_a_non_positive_size_or_ttl_is_refused(maxsize: int, ttl: float) -> None:
    with pytest.raises(ValueError, match="maxsize and ttl must be positive"):
        TTLCache(maxsize, ttl)


def test_worker_cache_refuses_a_non_positive_size() -> None:
    with pytest.raises(ValueError, match="must be positive"):
        WorkerCache(max_entries=0)
    with pytest.raises(ValueError, match="must be positive"):
        WorkerCache(seen_ttl=0)

"""Caches across workers: a freed slot is announced on Redis and every worker forgets it."""

from __future__ import annotations

import time

from tests import stores
from worker.cache import WorkerCache
from worker.slot_events import SlotEvents

SLOT = ("BTC-USDT", "hourly_limit_ws")


def test_a_freed_slot_is_dropped_from_every_workers_cache() -> None:
    url = stores.redis_db_url(2)
    caches = [WorkerCache(), WorkerCache()]
    listeners = [SlotEvents(url), SlotEvents(url)]
    for cache, events in zip(caches, listeners, strict=True):
        events.listen(lambda slot, c=cache: c.clear() if slot is None else c.slot_freed(slot))
        cache.mark_busy(SLOT, "slot_busy")
        cache.mark_busy(("ETH-USDT", "original_gap"), "cooldown")
    time.sleep(0.5)  # let the listeners subscribe
    SlotEvents(url).publish(*SLOT)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(c.busy_reason(SLOT) for c in caches):
        time.sleep(0.05)
    assert [c.busy_reason(SLOT) for c in caches] == [None, None]
    # Only that slot: the others stay cached until their TTL.
    assert [c.busy_reason(("ETH-USDT", "original_gap")) for c in caches] == ["cooldown"] * 2
    SlotEvents(url).publish_all()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(len(c.busy) for c in caches):
        time.sleep(0.05)
    assert [len(c.busy) for c in caches] == [0, 0]


def test_without_redis_publishing_is_a_harmless_no_op() -> None:
    events = SlotEvents(None)
    events.publish(*SLOT)
    events.listen(lambda slot: None)

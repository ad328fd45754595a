"""What celery beat runs, and when.

Every ``MEMORY_SYNC_INTERVAL_SECONDS`` (default 300; 0 disables both):
- ``sync_active_orders``: every open order against the exchange, adoption, time limits;
- ``purge_pending``: intents older than ``PENDING_TIMEOUT_SECONDS`` settled by clOrdId.
Each run expires after one interval, so a backlog never replays old runs.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from worker.task_names import PURGE_PENDING, SYNC_ACTIVE_ORDERS

__all__ = ["PURGE_PENDING", "SYNC_ACTIVE_ORDERS", "beat_schedule"]


def beat_schedule(interval_seconds: int) -> dict[str, dict[str, Any]]:
    """The beat schedule for an interval in seconds (an empty schedule for 0)."""
    if interval_seconds <= 0:
        return {}
    every = timedelta(seconds=interval_seconds)
    options = {"expires": interval_seconds}
    return {
        "sync-active-orders": {"task": SYNC_ACTIVE_ORDERS, "schedule": every, "options": options},
        "purge-pending": {"task": PURGE_PENDING, "schedule": every, "options": options},
    }

"""Structured logs for the feed: an event name plus ``key=value`` fields (or JSON lines)."""

from __future__ import annotations

import logging
from typing import Any

from worker import logs as _logs
from worker.logs import configure_logging

__all__ = ["RateLimitedLog", "configure_logging", "log_event"]

logger = logging.getLogger("limitflow.feed")


def log_event(event: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log ``event`` with ``fields`` on the feed's logger (same format as the workers')."""
    _logs.log_event(logger, event, level, **fields)


class RateLimitedLog:
    """Log an event at most once per ``interval`` seconds per key, with the suppressed count.

    Keys come from a small fixed vocabulary (bad-input reasons), so the table stays bounded.
    """

    def __init__(self, interval: float = 10.0, max_keys: int = 64) -> None:
        self.interval = interval
        self.max_keys = max_keys
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def __call__(self, key: str, event: str, now: float, **fields: Any) -> bool:
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return False
        if last is None and len(self._last) >= self.max_keys:
            return False
        self._last[key] = now
        suppressed = self._suppressed.pop(key, 0)
        log_event(event, logging.WARNING, **fields, suppressed=suppressed)
        return True

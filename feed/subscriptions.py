"""OKX subscription limits: request size, request rate per connection, connection rate.

- the ``args`` of one request must stay under 64 KB;
- at most 480 subscribe/unsubscribe/login requests per hour per connection;
- at most 3 new connections per second (per IP: one limiter shared by the process).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

import orjson

MAX_REQUEST_BYTES = 64 * 1024
REQUESTS_PER_HOUR = 480
CONNECTS_PER_SECOND = 3

Arg = dict[str, str]


def ticker_args(inst_ids: list[str]) -> list[Arg]:
    return [{"channel": "tickers", "instId": i} for i in inst_ids]


def candle_args(inst_ids: list[str]) -> list[Arg]:
    return [{"channel": "candle1H", "instId": i} for i in inst_ids]


def subscribe_requests(args: list[Arg], max_bytes: int = MAX_REQUEST_BYTES) -> list[bytes]:
    """Encode ``args`` as few ``subscribe`` requests as fit under ``max_bytes`` each."""
    requests: list[bytes] = []
    batch: list[Arg] = []
    size = 0
    overhead = len(b'{"op":"subscribe","args":[]}')
    for arg in args:
        n = len(orjson.dumps(arg)) + 1
        if batch and overhead + size + n > max_bytes:
            requests.append(orjson.dumps({"op": "subscribe", "args": batch}))
            batch, size = [], 0
        batch.append(arg)
        size += n
    if batch:
        requests.append(orjson.dumps({"op": "subscribe", "args": batch}))
    return requests


class RateLimiter:
    """At most ``limit`` acquisitions in any ``period`` seconds (a sliding window)."""

    def __init__(
        self,
        limit: int,
        period: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.period = period
        self.clock = clock
        self._times: deque[float] = deque(maxlen=limit)
        self._lock = threading.Lock()

    def wait_time(self) -> float:
        """Seconds until the next acquisition is allowed (0: now)."""
        with self._lock:
            if len(self._times) < self.limit:
                return 0.0
            return max(0.0, self._times[0] + self.period - self.clock())

    def try_acquire(self) -> bool:
        with self._lock:
            now = self.clock()
            if len(self._times) == self.limit and now - self._times[0] < self.period:
                return False
            self._times.append(now)
            return True

    def acquire(self, stop: threading.Event) -> bool:
        """Block until allowed (``True``) or until ``stop`` is set (``False``)."""
        while not stop.is_set():
            if self.try_acquire():
                return True
            stop.wait(min(max(self.wait_time(), 0.01), 1.0))
        return False

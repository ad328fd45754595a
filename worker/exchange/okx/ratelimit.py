"""Client-side token buckets for OKX's published REST rate limits.

One ``OkxRequestPacer`` per process is shared by its threads (``shared_pacer()``): OKX counts
per user (and per instrument for trading endpoints), not per connection. A request that finds
its bucket empty waits for the next token instead of failing with 50011.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from worker.domain.errors import RateLimited

WINDOW_S = 2.0


@dataclass(frozen=True, slots=True)
class Rule:
    """``limit`` requests (or orders) per ``WINDOW_S``; ``per_inst`` when keyed by instrument."""

    limit: int
    per_inst: bool = False


# PROTOCOL.md section 7; keys are "METHOD path".
RULES: dict[str, Rule] = {
    "POST /api/v5/trade/order": Rule(60, per_inst=True),
    "POST /api/v5/trade/batch-orders": Rule(300, per_inst=True),
    "POST /api/v5/trade/cancel-order": Rule(60, per_inst=True),
    "GET /api/v5/trade/order": Rule(60, per_inst=True),
    "GET /api/v5/trade/orders-pending": Rule(60),
    "GET /api/v5/trade/orders-history": Rule(40),
    "GET /api/v5/public/instruments": Rule(20, per_inst=True),  # keyed by instType
    "GET /api/v5/market/tickers": Rule(20),
    "GET /api/v5/market/ticker": Rule(20),
    "GET /api/v5/market/candles": Rule(40),
    "GET /api/v5/market/history-candles": Rule(20),
    "GET /api/v5/market/books": Rule(40),
    "GET /api/v5/account/balance": Rule(10),
    "GET /api/v5/public/time": Rule(10),
}
DEFAULT_RULE = Rule(10)  # an endpoint missing from the table gets the strictest common limit
MAX_BUCKETS = 4096  # per-instrument buckets are created on demand; keep the map bounded


class TokenBucket:
    """``capacity`` tokens, refilled continuously at ``capacity / WINDOW_S`` per second."""

    __slots__ = ("capacity", "rate", "tokens", "updated")

    def __init__(self, capacity: int, now: float) -> None:
        self.capacity = float(capacity)
        self.rate = capacity / WINDOW_S
        self.tokens = float(capacity)
        self.updated = now

    def reserve(self, cost: float, now: float, max_wait: float) -> float | None:
        """Reserve ``cost`` tokens and return the seconds until they exist.

        Tokens may go into debt, so callers queue in arrival order and each sleeps once.
        Return ``None`` (reserving nothing) when the wait would exceed ``max_wait``.
        """
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        wait = max(0.0, (cost - self.tokens) / self.rate)
        if wait > max_wait:
            return None
        self.tokens -= cost
        return wait

    def drain(self, now: float) -> None:
        """Empty the bucket: the venue said we went too fast."""
        self.reserve(0.0, now, float("inf"))  # bring the count up to date first
        self.tokens = min(self.tokens, 0.0)


class OkxRequestPacer:
    """Pace REST requests to OKX's limits: token buckets per endpoint (and per instrument
    where OKX counts that way); a request waits for its token rather than fail.

    Websocket connects and subscribe requests are counted by the feed's own sliding window
    (``feed.subscriptions.RateLimiter``), a different limit.
    """

    def __init__(
        self,
        rules: dict[str, Rule] | None = None,
        *,
        max_wait: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._rules = RULES if rules is None else rules
        self._max_wait = max_wait
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._buckets: OrderedDict[tuple[str, str], TokenBucket] = OrderedDict()

    def _bucket(self, endpoint: str, key: str, now: float) -> TokenBucket:
        rule = self._rules.get(endpoint, DEFAULT_RULE)
        bkey = (endpoint, key if rule.per_inst else "")
        bucket = self._buckets.get(bkey)
        if bucket is None:
            bucket = self._buckets[bkey] = TokenBucket(rule.limit, now)
            if len(self._buckets) > MAX_BUCKETS:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(bkey)
        return bucket

    def acquire(self, endpoint: str, key: str = "", cost: int = 1) -> float:
        """Block until ``cost`` tokens are available; return the seconds waited.

        Raise ``RateLimited`` rather than wait longer than ``max_wait``.
        """
        with self._lock:
            now = self._clock()
            wait = self._bucket(endpoint, key, now).reserve(cost, now, self._max_wait)
        if wait is None:
            raise RateLimited(f"client rate limit for {endpoint} {key}: queue too long")
        if wait > 0:
            self._sleep(wait)
        return wait

    def penalize(self, endpoint: str, key: str = "") -> None:
        """Empty the bucket after the venue answered 429/50011 so the next caller waits."""
        with self._lock:
            now = self._clock()
            self._bucket(endpoint, key, now).drain(now)


@cache
def shared_pacer() -> OkxRequestPacer:
    """Return the process-wide pacer shared by every OKX client of this process."""
    return OkxRequestPacer()

"""When the simulator sent each ticker and received each order request, on its own clock.

Benchmarks measure tick to order from outside the engine: from the push of the ticker that
triggers a buy to the arrival of the order request, both stamped here in epoch microseconds
(``time.time_ns() // 1000``, the clock of OKX's ``inTime``/``outTime``). A ticker is stamped
when a connection's writer hands its frame to the socket (``TickerPush``), not when it is
queued: between the two the event loop may still be busy with other work of the simulator's
own (answering the control call that moved the price, other pushes). Bounded: the last
``per_instrument`` pushes per instrument and the first receipt of the last ``orders``
clOrdIds, so a long-running simulator does not grow.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, OrderedDict, deque
from typing import Any


def now_us() -> int:
    return time.time_ns() // 1000


class Timeline:
    def __init__(self, per_instrument: int = 1000, orders: int = 100_000) -> None:
        self.per_instrument = per_instrument
        self.max_orders = orders
        self.tickers: dict[str, deque[int]] = {}
        self.orders: OrderedDict[str, tuple[str, int]] = OrderedDict()
        self.requests: Counter[str] = Counter()  # REST path -> requests (bounded by routes)

    def ticker_sent(self, inst_id: str, us: int) -> None:
        pushes = self.tickers.get(inst_id)
        if pushes is None:
            pushes = self.tickers[inst_id] = deque(maxlen=self.per_instrument)
        pushes.append(us)

    def order_received(self, cl_ord_id: str, inst_id: str, us: int) -> None:
        """Keep the first receipt of a clOrdId (a resend is not a new order request)."""
        if not cl_ord_id or cl_ord_id in self.orders:
            return
        self.orders[cl_ord_id] = (inst_id, us)
        if len(self.orders) > self.max_orders:
            self.orders.popitem(last=False)

    def clear(self) -> None:
        self.tickers.clear()
        self.orders.clear()
        self.requests.clear()

    def to_json(self) -> dict[str, Any]:
        return {
            "tickers": {inst: list(pushes) for inst, pushes in self.tickers.items()},
            "orders": {cid: {"instId": i, "us": us} for cid, (i, us) in self.orders.items()},
            "requests": dict(self.requests),
        }


class TickerPush:
    """One ticker push on its way out: ``written`` is called by each subscriber's writer just
    before it sends the frame; the first call stamps the push as sent (``Timeline.tickers``)."""

    def __init__(self, timeline: Timeline, inst_id: str) -> None:
        self.timeline = timeline
        self.inst_id = inst_id
        self.sent_us: int | None = None
        self._waiters: list[asyncio.Future[int]] = []

    def written(self) -> None:
        if self.sent_us is not None:
            return
        self.sent_us = now_us()
        self.timeline.ticker_sent(self.inst_id, self.sent_us)
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(self.sent_us)
        self._waiters.clear()

    async def sent(self, timeout: float) -> int | None:
        """When it was sent (epoch us), waiting up to ``timeout`` seconds for a writer; None
        if no writer sent it by then (its connection closed first)."""
        if self.sent_us is None:
            waiter: asyncio.Future[int] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await asyncio.wait_for(waiter, timeout)
            except TimeoutError:
                self._waiters.remove(waiter)
        return self.sent_us

"""When the simulator sent each ticker and received each order request, on its own clock.

Benchmarks measure tick to order from outside the engine: from the push of the ticker that
triggers a buy to the arrival of the order request, both stamped here in epoch microseconds
(``time.time_ns() // 1000``, the clock of OKX's ``inTime``/``outTime``). Bounded: the last
``per_instrument`` pushes per instrument and the first receipt of the last ``orders``
clOrdIds, so a long-running simulator does not grow.
"""

from __future__ import annotations

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

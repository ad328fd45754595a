"""Every placement request the venue received, whatever became of it.

The engine's order book only holds orders it accepted. A chaos test also needs the requests
it refused (a duplicate ``clOrdId``, a suspended instrument) and those an injected fault
answered instead of the venue (HTTP 500, 429, a held request), to check that no ``clOrdId``
was ever sent twice. Each request is logged when it arrives and completed when (if) the
venue processes it, which an injected latency can delay by many seconds.
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

MAX_REQUESTS = 500_000


@dataclass
class PlacementRequest:
    seq: int
    received_ms: int  # simulated clock when the request arrived
    source: str  # "order" (POST trade/order), "batch" (trade/batch-orders), "ws"
    cl_ord_id: str
    inst_id: str
    side: str
    px: str
    sz: str
    fault: str = ""  # the injected fault that hit the request ("" for none)
    processed_ms: int | None = None  # when the venue acted on it (None: never)
    s_code: str = ""  # the venue's per-order code ("0" placed), "" if never processed
    s_msg: str = ""
    ord_id: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _text(item: Any, name: str) -> str:
    value = item.get(name) if isinstance(item, dict) else None
    return value if isinstance(value, str) else ("" if value is None else str(value))


class PlacementLog:
    """An append-only log (bounded: the oldest entries go first, counted in ``dropped``)."""

    def __init__(self, maxlen: int = MAX_REQUESTS) -> None:
        self.requests: deque[PlacementRequest] = deque(maxlen=maxlen)
        self.dropped = 0
        self._seq = 0

    def received(self, body: Any, source: str, fault: str, now_ms: int) -> list[PlacementRequest]:
        """Log the orders of one request body (an object, or a list for a batch)."""
        items = body if isinstance(body, list) else [body]
        entries = []
        for item in items:
            self._seq += 1
            entry = PlacementRequest(
                seq=self._seq,
                received_ms=now_ms,
                source=source,
                cl_ord_id=_text(item, "clOrdId"),
                inst_id=_text(item, "instId"),
                side=_text(item, "side"),
                px=_text(item, "px"),
                sz=_text(item, "sz"),
                fault=fault,
            )
            if len(self.requests) == self.requests.maxlen:
                self.dropped += 1
            self.requests.append(entry)
            entries.append(entry)
        return entries

    @staticmethod
    def resolve(entries: list[PlacementRequest], payload: dict[str, Any], now_ms: int) -> None:
        """Record what the venue answered for each order of the request."""
        data = payload.get("data")
        results = data if isinstance(data, list) else []
        for index, entry in enumerate(entries):
            entry.processed_ms = now_ms
            result = results[index] if index < len(results) else None
            if isinstance(result, dict):
                entry.s_code = str(result.get("sCode", ""))
                entry.s_msg = str(result.get("sMsg", ""))
                entry.ord_id = str(result.get("ordId", "") or "")
            else:  # the whole request was refused (top-level code)
                entry.s_code = str(payload.get("code", ""))
                entry.s_msg = str(payload.get("msg", ""))

    def to_json(self) -> list[dict[str, Any]]:
        return [entry.to_json() for entry in self.requests]

    def clear(self) -> None:
        self.requests.clear()
        self.dropped = 0

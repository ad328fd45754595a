"""The trade endpoints' logic: request in, OKX payload out (no HTTP here)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from simulator.matching import WEEK_MS, Engine
from simulator.orders import Order

BATCH_MAX = 20


class RequestError(Exception):
    """A whole request refused with a top-level OKX code."""

    def __init__(self, code: str, msg: str):
        super().__init__(f"{code} {msg}")
        self.code = code
        self.msg = msg


def _summary(entries: list[dict[str, Any]], batch: bool) -> dict[str, Any]:
    failed = sum(1 for e in entries if e["sCode"] != "0")
    if failed == 0:
        code, msg = "0", ""
    elif failed == len(entries) or not batch:
        code, msg = "1", "All operations failed" if batch else "Operation failed."
    else:
        code, msg = "2", "Bulk operation partially succeeded."
    return {"code": code, "msg": msg, "data": entries}


def _batch(body: Any, what: str) -> list[Any]:
    if not isinstance(body, list) or not body:
        raise RequestError("51000", f"Parameter {what} error")
    if len(body) > BATCH_MAX:
        raise RequestError("51000", f"Parameter {what} error: at most {BATCH_MAX} per request")
    return body


def place_order(engine: Engine, body: Any) -> dict[str, Any]:
    return _summary([engine.place(body)], batch=False)


def batch_orders(engine: Engine, body: Any) -> dict[str, Any]:
    seen: set[str] = set()
    return _summary([engine.place(item, seen) for item in _batch(body, "orders")], batch=True)


def cancel_order(engine: Engine, body: Any) -> dict[str, Any]:
    return _summary([engine.cancel(body)], batch=False)


def cancel_batch(engine: Engine, body: Any) -> dict[str, Any]:
    return _summary([engine.cancel(item) for item in _batch(body, "orders")], batch=True)


def get_order(engine: Engine, query: Mapping[str, str]) -> dict[str, Any]:
    inst_id = query.get("instId", "")
    if not inst_id:
        raise RequestError("50014", "Parameter instId can not be empty")
    if inst_id not in engine.instruments:
        raise RequestError(
            "51001", "Instrument ID, Instrument ID code, or Spread ID doesn't exist."
        )
    ord_id, cl_ord_id = query.get("ordId", ""), query.get("clOrdId", "")
    if not ord_id and not cl_ord_id:
        raise RequestError("51000", "Parameter ordId error")
    order = engine.find(inst_id, ord_id, cl_ord_id)
    if order is None:
        raise RequestError("51603", "Order does not exist")
    return {"code": "0", "msg": "", "data": [order.to_okx()]}


def _limit(query: Mapping[str, str]) -> int:
    text = query.get("limit", "") or "100"
    if not text.isdigit() or not 1 <= int(text) <= 100:
        raise RequestError("51000", "Parameter limit error")
    return int(text)


def _cursor(query: Mapping[str, str], name: str) -> int | None:
    text = query.get(name, "")
    if not text:
        return None
    if not text.isdigit():
        raise RequestError("51000", f"Parameter {name} error")
    return int(text)


def _page(orders: Iterable[Order], query: Mapping[str, str]) -> list[dict[str, Any]]:
    """Filter by instId/ordType/state, then page newest first by ordId cursors."""
    limit = _limit(query)
    after, before = _cursor(query, "after"), _cursor(query, "before")
    inst_id = query.get("instId", "")
    ord_types = {t for t in query.get("ordType", "").split(",") if t}
    state = query.get("state", "")
    inst_type = query.get("instType", "")
    if inst_type and inst_type != "SPOT":
        return []
    chosen = [
        o
        for o in orders
        if (not inst_id or o.inst.inst_id == inst_id)
        and (not ord_types or o.ord_type in ord_types)
        and (not state or o.state == state)
        and (after is None or int(o.ord_id) < after)
        and (before is None or int(o.ord_id) > before)
    ]
    chosen.sort(key=lambda o: int(o.ord_id), reverse=True)
    return [o.to_okx() for o in chosen[:limit]]


_INST_TYPES = {"SPOT", "MARGIN", "SWAP", "FUTURES", "OPTION"}


def orders_pending(engine: Engine, query: Mapping[str, str]) -> dict[str, Any]:
    if query.get("instType") and query["instType"] not in _INST_TYPES:
        raise RequestError("51000", "Parameter instType error")
    return {"code": "0", "msg": "", "data": _page(engine.pending_orders(), query)}


def orders_history(engine: Engine, query: Mapping[str, str]) -> dict[str, Any]:
    inst_type = query.get("instType", "")
    if not inst_type:
        raise RequestError("50014", "Parameter instType can not be empty")
    if inst_type not in _INST_TYPES:
        raise RequestError("51000", "Parameter instType error")
    since = engine.clock() - WEEK_MS
    recent = [o for o in engine.history_orders() if o.c_time >= since]
    return {"code": "0", "msg": "", "data": _page(recent, query)}

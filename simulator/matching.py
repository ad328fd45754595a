"""The matching engine: validates spot limit orders, fills them against the current quote.

A buy fills when ask <= px, a sell when bid >= px. Each quote offers ``askSz`` / ``bidSz``
(shared by all orders at that step), so big orders fill in parts over several steps. Orders
that cross on arrival take at the quote (taker, ``T``); resting orders fill at their own price
when the market comes to them (maker, ``M``). Fees follow OKX's sign: negative = charged, in
the base currency for buys and the quote currency for sells.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from simulator.accounts import Accounts, InsufficientBalance
from simulator.decimals import ZERO, round_down
from simulator.instruments import Instrument
from simulator.orders import Fill, Order
from simulator.validation import OrderError, validate_order

WEEK_MS = 7 * 24 * 3600 * 1000
_CANCEL_FAILED = (
    "Order cancellation failed as the order has been filled, canceled or does not exist."
)
UpdateListener = Callable[[Order, Fill | None], None]


@dataclass
class Quote:
    last: Decimal
    bid: Decimal
    ask: Decimal
    bid_sz: Decimal
    ask_sz: Decimal


class Ids:
    """19-digit order ids and numeric trade ids, increasing (newer = larger)."""

    def __init__(self, seed_ms: int):
        self._orders = itertools.count(2_000_000_000_000_000_000 + seed_ms * 1000)
        self._trades = itertools.count(100_000_000 + seed_ms % 100_000_000)

    def order_id(self) -> str:
        return str(next(self._orders))

    def trade_id(self) -> str:
        return str(next(self._trades))


class Engine:
    def __init__(
        self,
        instruments: dict[str, Instrument],
        accounts: Accounts,
        ids: Ids,
        clock: Callable[[], int],
        fee_rate: Decimal,
        history_retention_ms: int,
    ):
        self.instruments = instruments
        self.accounts = accounts
        self.ids = ids
        self.clock = clock
        self.fee_rate = fee_rate
        self.history_retention_ms = history_retention_ms
        self.quotes: dict[str, Quote] = {}
        self.listeners: list[UpdateListener] = []
        self.orders: dict[str, Order] = {}
        self.placements: Counter[str] = Counter()
        self._pending: dict[str, dict[str, Order]] = {i: {} for i in instruments}
        self._by_cl: dict[str, list[str]] = {}
        self._liquidity: dict[str, list[Decimal]] = {}
        self._next_purge = 0

    # Orders in -------------------------------------------------------------------------

    def place(self, params: dict[str, Any], batch_cl_ids: set[str] | None = None) -> dict[str, Any]:
        """Place one order; return its ``data[]`` entry (``sCode`` "0" or an error code)."""
        now = self.clock()
        cl_ord_id = str(params.get("clOrdId") or "") if isinstance(params, dict) else ""
        tag = str(params.get("tag") or "") if isinstance(params, dict) else ""
        try:
            req = validate_order(params, self.instruments)
            if req.cl_ord_id and (
                self._pending_cl(req.cl_ord_id) or req.cl_ord_id in (batch_cl_ids or set())
            ):
                raise OrderError("51016", "Client order ID already exists.")
            inst = req.inst
            try:
                if req.side == "buy":
                    self.accounts.freeze(inst.quote_ccy, req.px * req.sz)
                else:
                    self.accounts.freeze(inst.base_ccy, req.sz)
            except InsufficientBalance as exc:
                raise OrderError("51131", f"Insufficient {exc.args[0]} balance.") from None
        except OrderError as err:
            return _entry("", cl_ord_id, tag, now, err.code, err.msg)
        if batch_cl_ids is not None and req.cl_ord_id:
            batch_cl_ids.add(req.cl_ord_id)
        order = Order(
            ord_id=self.ids.order_id(),
            cl_ord_id=req.cl_ord_id,
            tag=req.tag,
            inst=req.inst,
            side=req.side,
            ord_type=req.ord_type,
            px=req.px,
            sz=req.sz,
            tgt_ccy=req.tgt_ccy,
            c_time=now,
            u_time=now,
        )
        self.orders[order.ord_id] = order
        if order.cl_ord_id:
            self._by_cl.setdefault(order.cl_ord_id, []).append(order.ord_id)
            self.placements[order.cl_ord_id] += 1
        self._on_arrival(order, now)
        return _entry(order.ord_id, order.cl_ord_id, order.tag, now, "0", "Order placed")

    def _on_arrival(self, order: Order, now: int) -> None:
        available = self._take_side(order)
        crosses = available is not None
        size = min(order.sz, available) if available is not None else ZERO
        if order.ord_type == "post_only" and crosses:
            return self._finish(order, "canceled", "31", now)
        if order.ord_type == "fok" and size < order.sz:
            return self._finish(order, "canceled", "13", now)
        self._pending[order.inst.inst_id][order.ord_id] = order
        self._emit(order, None)
        quote = self.quotes.get(order.inst.inst_id)
        if size > 0 and quote is not None:
            px = quote.ask if order.side == "buy" else quote.bid
            self._consume(order, size)
            self._execute(order, px, size, "T", now)
        if order.ord_type == "ioc" and order.is_pending:
            self._finish(order, "canceled", "14", now)
        return None

    def cancel(self, params: dict[str, Any]) -> dict[str, Any]:
        now = self.clock()
        if not isinstance(params, dict):
            return _entry("", "", "", now, "51000", "Parameter instId error")
        inst_id = str(params.get("instId") or "")
        ord_id = str(params.get("ordId") or "")
        cl_ord_id = str(params.get("clOrdId") or "")
        if not inst_id:
            return _entry(
                ord_id, cl_ord_id, None, now, "50014", "Parameter instId can not be empty"
            )
        if not ord_id and not cl_ord_id:
            return _entry("", "", None, now, "51000", "Parameter ordId error")
        order = self.find(inst_id, ord_id, cl_ord_id)
        if order is None or not order.is_pending:
            return _entry(ord_id, cl_ord_id, None, now, "51400", _CANCEL_FAILED)
        self._finish(order, "canceled", "1", now)
        return _entry(order.ord_id, order.cl_ord_id, None, now, "0", "")

    def set_instrument_state(self, inst_id: str, state: str) -> Instrument:
        """Suspend (``suspend``) or resume (``live``) trading in an instrument."""
        inst = replace(self.instruments[inst_id], state=state)
        self.instruments[inst_id] = inst
        return inst

    # Market in -------------------------------------------------------------------------

    def on_quote(self, inst_id: str, quote: Quote) -> None:
        """A new price step: reset its liquidity and fill resting orders it reaches."""
        self.quotes[inst_id] = quote
        self._liquidity[inst_id] = [quote.ask_sz, quote.bid_sz]
        pending = self._pending.get(inst_id)
        if not pending or self.instruments[inst_id].state != "live":
            return  # a suspended instrument does not trade: resting orders wait
        now = self.clock()
        for order in list(pending.values()):
            available = self._take_side(order)
            if available is None:
                continue
            size = min(order.remaining, available)
            if size > 0:
                self._consume(order, size)
                self._execute(order, order.px, size, "M", now)

    def force_fill(self, order: Order, sz: Decimal | None) -> None:
        """Fill ``sz`` (default: all that remains) of a pending order at its price."""
        size = order.remaining if sz is None else min(sz, order.remaining)
        if size > 0:
            self._execute(order, order.px, size, "M", self.clock())

    # Queries ---------------------------------------------------------------------------

    def find(self, inst_id: str, ord_id: str, cl_ord_id: str) -> Order | None:
        """Look up by ordId (wins) or the latest order with ``cl_ord_id``."""
        self.purge()
        order: Order | None = None
        if ord_id:
            order = self.orders.get(ord_id)
        elif cl_ord_id and self._by_cl.get(cl_ord_id):
            order = self.orders.get(self._by_cl[cl_ord_id][-1])
        if order is None or (inst_id and order.inst.inst_id != inst_id):
            return None
        return order

    def pending_orders(self) -> list[Order]:
        return [o for orders in self._pending.values() for o in orders.values()]

    def history_orders(self) -> list[Order]:
        self.purge()
        return [o for o in self.orders.values() if not o.is_pending]

    def forget(self, ord_id: str) -> bool:
        order = self.orders.get(ord_id)
        if order is None or order.is_pending:
            return False
        self._drop(order)
        return True

    def purge(self) -> None:
        """Drop canceled orders that never filled once the retention has passed, and every
        finished order after a week (OKX's history window). Runs at most once per simulated
        second, so lookups stay cheap with many orders."""
        now = self.clock()
        if now < self._next_purge:
            return
        self._next_purge = now + 1000
        limit, week = now - self.history_retention_ms, now - WEEK_MS
        stale = [
            o
            for o in self.orders.values()
            if not o.is_pending
            and (
                o.u_time < week
                or (o.state == "canceled" and o.acc_fill_sz == 0 and o.u_time < limit)
            )
        ]
        for order in stale:
            self._drop(order)

    def reset(self) -> None:
        self._next_purge = 0
        self.orders.clear()
        self.placements.clear()
        self._by_cl.clear()
        for pending in self._pending.values():
            pending.clear()
        self.accounts.reset()

    # Internals -------------------------------------------------------------------------

    def _pending_cl(self, cl_ord_id: str) -> bool:
        return any(self.orders[o].is_pending for o in self._by_cl.get(cl_ord_id, ()))

    def _take_side(self, order: Order) -> Decimal | None:
        """Size the market offers this order now, or ``None`` if the price does not reach it."""
        quote = self.quotes.get(order.inst.inst_id)
        if quote is None:
            return None
        left = self._liquidity.setdefault(order.inst.inst_id, [quote.ask_sz, quote.bid_sz])
        if order.side == "buy" and quote.ask <= order.px:
            return round_down(left[0], order.inst.lot_sz)
        if order.side == "sell" and quote.bid >= order.px:
            return round_down(left[1], order.inst.lot_sz)
        return None

    def _consume(self, order: Order, size: Decimal) -> None:
        left = self._liquidity[order.inst.inst_id]
        left[0 if order.side == "buy" else 1] -= size

    def _execute(self, order: Order, px: Decimal, sz: Decimal, exec_type: str, now: int) -> None:
        inst, acc = order.inst, self.accounts
        if order.side == "buy":
            fee = -(sz * self.fee_rate)
            acc.unfreeze(inst.quote_ccy, order.px * sz)
            acc.add(inst.quote_ccy, -(px * sz))
            acc.add(inst.base_ccy, sz + fee)
        else:
            fee = -(px * sz * self.fee_rate)
            acc.unfreeze(inst.base_ccy, sz)
            acc.add(inst.base_ccy, -sz)
            acc.add(inst.quote_ccy, px * sz + fee)
        fill = Fill(self.ids.trade_id(), px, sz, fee, now, exec_type)
        order.acc_fill_sz += sz
        order.fill_notional += px * sz
        order.fee += fee
        order.last_fill = fill
        order.fills.append(fill)
        order.u_time = now
        if order.remaining == 0:
            order.state = "filled"
            self._pending[inst.inst_id].pop(order.ord_id, None)
        else:
            order.state = "partially_filled"
        self._emit(order, fill)

    def _finish(self, order: Order, state: str, source: str, now: int) -> None:
        inst = order.inst
        if order.side == "buy":
            self.accounts.unfreeze(inst.quote_ccy, order.px * order.remaining)
        else:
            self.accounts.unfreeze(inst.base_ccy, order.remaining)
        order.state = state
        order.cancel_source = source
        order.u_time = now
        self._pending[inst.inst_id].pop(order.ord_id, None)
        self._emit(order, None)

    def _drop(self, order: Order) -> None:
        self.orders.pop(order.ord_id, None)
        ids = self._by_cl.get(order.cl_ord_id)
        if ids and order.ord_id in ids:
            ids.remove(order.ord_id)

    def _emit(self, order: Order, fill: Fill | None) -> None:
        for listener in self.listeners:
            listener(order, fill)


def _entry(
    ord_id: str, cl_ord_id: str, tag: str | None, now: int, code: str, msg: str
) -> dict[str, Any]:
    entry: dict[str, Any] = {"clOrdId": cl_ord_id, "ordId": ord_id}
    if tag is not None:
        entry["tag"] = tag
    entry.update({"ts": str(now), "sCode": code, "sMsg": msg})
    return entry

"""An in-memory spot venue with OKX semantics: the test double of the exchange port.

``InMemoryExchange`` validates, matches, charges fees and fails like OKX does, so that the
engine's tests exercise the same decisions they would against the real venue:

- placement checks the instrument rules (51000 parameter, 51121 lot size, 51020 minimum),
  clOrdId uniqueness among *pending* orders only (51016) and, when balances are set, funds
  (51131); an order that crosses the current price fills at once at the touch (taker);
- a resting order fills at its own price (maker) when ``set_price`` moves the touch through
  it, at most ``set_liquidity`` per side per price event (partial fills);
- a buy pays its fee in the base currency, a sell in the quote currency;
- every state change or fill is pushed to a bounded stream, like the private ``orders``
  channel, read with ``drain_updates``;
- ``inject`` makes the next calls of an operation time out, be refused or be rate limited.

One lock guards all state. ``serve_memory_exchange`` / ``connect_memory_exchange`` (in
``memory_server``) share one instance between processes.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal

from worker.domain.errors import (
    CancelRejected,
    DuplicateClientOrderId,
    ExchangeError,
    ExchangeUnavailable,
    InsufficientFunds,
    InvalidInstrument,
    OrderNotFound,
    OrderRejected,
    RateLimited,
    RequestExpired,
    StateUnknown,
)
from worker.domain.money import InstrumentRules
from worker.domain.orders import OrderState
from worker.exchange.memory_server import connect_memory_exchange, serve_memory_exchange
from worker.exchange.port import Fill, OrderRequest, OrderSnapshot, Placement, Side, Ticker

__all__ = ["InMemoryExchange", "connect_memory_exchange", "serve_memory_exchange"]

DEFAULT_FEE_RATE = Decimal("0.001")
PAGE_LIMIT = 100  # OKX's maximum page size for pending orders
OPERATIONS = ("place_order", "cancel_order", "get_order", "list_pending", "ticker", "instrument")
# What each injected fault raises; "accept_then_timeout" places the order first.
_FAULTS: dict[str, tuple[type[ExchangeError], str | None]] = {
    "timeout": (StateUnknown, None),
    "accept_then_timeout": (StateUnknown, None),
    "unavailable": (ExchangeUnavailable, "50001"),
    "rate_limited": (RateLimited, "50011"),
    "not_found": (OrderNotFound, "51603"),
    "reject": (OrderRejected, "51000"),
}
FAULT_MODES = tuple(_FAULTS)
_PENDING = (OrderState.LIVE, OrderState.PARTIALLY_FILLED)
_ZERO = Decimal(0)
_MAX_CL_ORD_ID = 32


def _fault_error(op: str, mode: str) -> ExchangeError:
    cls, code = _FAULTS[mode]
    return cls(f"injected {mode} on {op}", code=code)


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(slots=True)
class _Order:
    """The venue's mutable record of one order."""

    inst_id: str
    ord_id: str
    cl_ord_id: str
    side: Side
    px: Decimal
    sz: Decimal
    tag: str
    fee_ccy: str
    created_ms: int
    updated_ms: int
    state: OrderState = OrderState.LIVE
    acc_fill_sz: Decimal = _ZERO
    notional: Decimal = _ZERO
    fee: Decimal = _ZERO
    last_fill: Fill | None = None

    @property
    def remaining(self) -> Decimal:
        return self.sz - self.acc_fill_sz

    def snapshot(self, fill: Fill | None) -> OrderSnapshot:
        avg = self.notional / self.acc_fill_sz if self.acc_fill_sz else _ZERO
        return OrderSnapshot(
            inst_id=self.inst_id,
            ord_id=self.ord_id,
            cl_ord_id=self.cl_ord_id,
            side=self.side,
            px=self.px,
            sz=self.sz,
            state=self.state,
            acc_fill_sz=self.acc_fill_sz,
            avg_px=avg,
            fee=self.fee,
            fee_ccy=self.fee_ccy,
            created_ms=self.created_ms,
            updated_ms=self.updated_ms,
            fill=fill,
            tag=self.tag,
        )


class InMemoryExchange:
    """A spot venue held in memory; implements ``worker.exchange.port.Exchange``."""

    def __init__(
        self,
        *,
        fee_rate: Decimal = DEFAULT_FEE_RATE,
        updates_maxlen: int = 10_000,
        clock_ms: Callable[[], int] = _wall_ms,
    ) -> None:
        self._lock = threading.Lock()
        self._fee_rate = fee_rate
        self._clock_ms = clock_ms
        self._last_ms = 0
        self._latency = 0.0
        self._rules: dict[str, InstrumentRules] = {}
        self._quotes: dict[str, Ticker] = {}
        self._liquidity: dict[str, Decimal] = {}
        self._orders: dict[str, _Order] = {}
        self._pending: dict[str, _Order] = {}
        self._by_cl: dict[str, list[str]] = {}
        self._placements: Counter[str] = Counter()
        self._calls: Counter[str] = Counter()
        self._faults: dict[str, deque[str]] = {op: deque() for op in OPERATIONS}
        self._balances: dict[str, Decimal] = {}
        self._frozen: defaultdict[str, Decimal] = defaultdict(Decimal)
        self._updates: deque[OrderSnapshot] = deque(maxlen=updates_maxlen)
        self._ord_seq = itertools.count(600_000_000_000_000_001)
        self._trade_seq = itertools.count(100_000_001)

    # -- set-up and control ------------------------------------------------------------------

    def add_instrument(self, rules: InstrumentRules) -> None:
        """List (or replace) an instrument."""
        with self._lock:
            self._rules[rules.inst_id] = rules

    def set_fee_rate(self, rate: Decimal) -> None:
        with self._lock:
            self._fee_rate = rate

    def set_balance(self, ccy: str, amount: Decimal) -> None:
        """Make ``amount`` of ``ccy`` available; orders then need funds in it (unset: unlimited)."""
        with self._lock:
            self._balances[ccy] = amount + self._frozen[ccy]

    def balance(self, ccy: str) -> Decimal:
        """Return the available (not frozen by pending orders) cash of a currency that was set."""
        with self._lock:
            return self._balances[ccy] - self._frozen[ccy]

    def set_latency(self, seconds: float) -> None:
        """Sleep this long at the start of every port call."""
        self._latency = seconds

    def set_liquidity(self, inst_id: str, sz: Decimal | None) -> None:
        """Cap the size that can fill per side per price event (``None``: unlimited)."""
        with self._lock:
            if sz is None:
                self._liquidity.pop(inst_id, None)
            else:
                self._liquidity[inst_id] = sz

    def set_price(
        self, inst_id: str, last: Decimal, bid: Decimal | None = None, ask: Decimal | None = None
    ) -> None:
        """Move the market; resting orders the touch crosses fill at their own price."""
        with self._lock:
            bid, ask = last if bid is None else bid, last if ask is None else ask
            quote = self._quotes[inst_id] = Ticker(inst_id, last, bid, ask, self._tick())
            budget = {"buy": self._liquidity.get(inst_id), "sell": self._liquidity.get(inst_id)}
            for order in self._crossed(inst_id, quote):
                cap = budget[order.side]
                sz = order.remaining if cap is None else min(order.remaining, cap)
                if sz > 0:
                    self._fill(order, order.px, sz)
                    if cap is not None:
                        budget[order.side] = cap - sz

    def fill(self, order_id: str, sz: Decimal, px: Decimal | None = None) -> OrderSnapshot:
        """Force-fill ``sz`` of a pending order (by ordId, else clOrdId) at its price or ``px``."""
        with self._lock:
            order = self._orders.get(order_id) or self._latest(order_id)
            if order is None or order.state not in _PENDING:
                raise ValueError(f"no pending order {order_id!r}")
            if not 0 < sz <= order.remaining:
                raise ValueError(f"fill size {sz} outside (0, {order.remaining}]")
            self._fill(order, order.px if px is None else px, sz)
            return order.snapshot(order.last_fill)

    def forget(self, ord_id: str) -> None:
        """Drop a terminal order from the history, as OKX does with old canceled orders."""
        with self._lock:
            order = self._orders.get(ord_id)
            if order is None or order.state in _PENDING:
                raise ValueError(f"no terminal order {ord_id!r} to forget")
            del self._orders[ord_id]
            if order.cl_ord_id:
                self._by_cl[order.cl_ord_id].remove(ord_id)

    def inject(self, op: str, mode: str, times: int = 1) -> None:
        """Make the next ``times`` calls of ``op`` fail with ``mode`` (see ``FAULT_MODES``)."""
        if op not in OPERATIONS or mode not in FAULT_MODES or times < 1:
            raise ValueError(f"cannot inject {mode!r} x{times} into {op!r}")
        if mode == "accept_then_timeout" and op != "place_order":
            raise ValueError("accept_then_timeout applies to place_order only")
        with self._lock:
            self._faults[op].extend([mode] * times)

    def clear_faults(self) -> None:
        with self._lock:
            for queue in self._faults.values():
                queue.clear()

    # -- introspection -----------------------------------------------------------------------

    def drain_updates(self) -> list[OrderSnapshot]:
        """Return and clear the pushed order updates, oldest first."""
        with self._lock:
            updates = list(self._updates)
            self._updates.clear()
            return updates

    def orders(self) -> list[OrderSnapshot]:
        """Every order still in the history, terminal ones included, oldest first."""
        with self._lock:
            return [o.snapshot(o.last_fill) for o in self._orders.values()]

    def calls(self) -> dict[str, int]:
        """Calls per port operation, failed ones included (``list_pending``: per page)."""
        with self._lock:
            return {op: self._calls[op] for op in OPERATIONS}

    def placements_for(self, cl_ord_id: str) -> int:
        """How many orders were ever created with this clOrdId."""
        with self._lock:
            return self._placements[cl_ord_id]

    # -- the port ----------------------------------------------------------------------------

    def instrument(self, inst_id: str, *, require_live: bool = True) -> InstrumentRules:
        self._begin("instrument")
        with self._lock:
            if require_live:
                return self._live_rules(inst_id)
            rules = self._rules.get(inst_id)
            if rules is None:
                raise InvalidInstrument(f"instrument {inst_id} does not exist", code="51001")
            return rules

    def clock_skew_ms(self) -> int | None:
        return 0  # the venue keeps the engine's wall clock

    def place_order(self, request: OrderRequest) -> Placement:
        fault = self._begin("place_order")
        with self._lock:
            if request.exp_time_ms is not None and self._clock_ms() > request.exp_time_ms:
                # OKX drops a request that reaches it after its expTime, unprocessed.
                raise RequestExpired(
                    f"request for {request.cl_ord_id} arrived after its expTime", code="50036"
                )
            order = self._create(request)
            placement = Placement(order.ord_id, order.cl_ord_id, order.created_ms)
        if fault is not None:
            raise _fault_error("place_order", fault)
        return placement

    def cancel_order(
        self, inst_id: str, *, ord_id: str | None = None, cl_ord_id: str | None = None
    ) -> None:
        self._begin("cancel_order")
        with self._lock:
            order = self._find(inst_id, ord_id, cl_ord_id)
            if order.state not in _PENDING:
                raise CancelRejected(f"order {order.ord_id} is {order.state}", code="51400")
            self._release(order, order.remaining)
            order.state = OrderState.CANCELED
            self._changed(order, None)

    def get_order(
        self, inst_id: str, *, ord_id: str | None = None, cl_ord_id: str | None = None
    ) -> OrderSnapshot:
        self._begin("get_order")
        with self._lock:
            order = self._find(inst_id, ord_id, cl_ord_id)
            return order.snapshot(order.last_fill)

    def list_pending(self, inst_id: str | None = None) -> Iterator[OrderSnapshot]:
        after: str | None = None
        while True:
            page = self.pending_page(inst_id, after)
            yield from page
            if len(page) < PAGE_LIMIT:
                return
            after = page[-1].ord_id

    def pending_page(
        self, inst_id: str | None = None, after: str | None = None
    ) -> list[OrderSnapshot]:
        """One page of pending orders, newest first, older than ordId ``after`` (one call)."""
        self._begin("list_pending")
        with self._lock:
            ids = sorted(
                (
                    int(oid)
                    for oid, o in self._pending.items()
                    if (inst_id is None or o.inst_id == inst_id)
                    and (after is None or int(oid) < int(after))
                ),
                reverse=True,
            )[:PAGE_LIMIT]
            return [self._pending[str(i)].snapshot(self._pending[str(i)].last_fill) for i in ids]

    def ticker(self, inst_id: str) -> Ticker:
        self._begin("ticker")
        with self._lock:
            quote = self._quotes.get(inst_id)
            if inst_id not in self._rules or quote is None:
                raise InvalidInstrument(f"no market for {inst_id}", code="51001")
            return quote

    # -- internals (called with the lock held, except _begin) ---------------------------------

    def _begin(self, op: str) -> str | None:
        """Count the call, sleep the latency, raise an injected fault; return a deferred one."""
        if self._latency:
            time.sleep(self._latency)
        with self._lock:
            self._calls[op] += 1
            mode = self._faults[op].popleft() if self._faults[op] else None
        if mode is None or mode == "accept_then_timeout":
            return mode
        raise _fault_error(op, mode)

    def _tick(self) -> int:
        """Return a venue time in ms that is later than every earlier one."""
        self._last_ms = max(self._clock_ms(), self._last_ms + 1)
        return self._last_ms

    def _live_rules(self, inst_id: str) -> InstrumentRules:
        rules = self._rules.get(inst_id)
        if rules is None or not rules.live:
            raise InvalidInstrument(f"instrument {inst_id} does not exist", code="51001")
        return rules

    def _create(self, req: OrderRequest) -> _Order:
        rules = self._live_rules(req.inst_id)
        cl = req.cl_ord_id
        if len(cl) > _MAX_CL_ORD_ID or not (cl.isascii() and (cl.isalnum() or not cl)):
            raise OrderRejected(f"clOrdId {cl!r} is not 1-32 letters or digits", code="51000")
        if req.side not in ("buy", "sell"):
            raise OrderRejected(f"side {req.side!r} error", code="51000")
        if req.px <= 0 or req.px % rules.tick_sz != 0:
            raise OrderRejected(f"px {req.px} is not a multiple of {rules.tick_sz}", code="51000")
        if req.sz <= 0 or req.sz % rules.lot_sz != 0:
            raise OrderRejected(f"sz {req.sz} is not a multiple of {rules.lot_sz}", code="51121")
        if req.sz < rules.min_sz:
            raise OrderRejected(f"sz {req.sz} is below the minimum {rules.min_sz}", code="51020")
        pending = self._latest(cl)
        if pending is not None and pending.state in _PENDING:
            raise DuplicateClientOrderId(f"clOrdId {cl} is pending", code="51016")
        ccy, need = (
            (rules.quote_ccy, req.px * req.sz) if req.side == "buy" else (rules.base_ccy, req.sz)
        )
        if ccy in self._balances and self._balances[ccy] - self._frozen[ccy] < need:
            raise InsufficientFunds(f"{need} {ccy} needed", code="51131")
        now = self._tick()
        order = _Order(
            inst_id=req.inst_id,
            ord_id=str(next(self._ord_seq)),
            cl_ord_id=cl,
            side=req.side,
            px=req.px,
            sz=req.sz,
            tag=req.tag,
            fee_ccy=rules.base_ccy if req.side == "buy" else rules.quote_ccy,
            created_ms=now,
            updated_ms=now,
        )
        self._frozen[ccy] += need
        self._orders[order.ord_id] = order
        self._pending[order.ord_id] = order
        if cl:
            self._by_cl.setdefault(cl, []).append(order.ord_id)
        self._placements[cl] += 1
        self._updates.append(order.snapshot(None))
        quote = self._quotes.get(req.inst_id)
        if quote is not None:
            touch = quote.ask_px if req.side == "buy" else quote.bid_px
            if (touch <= req.px) if req.side == "buy" else (touch >= req.px):
                cap = self._liquidity.get(req.inst_id)
                self._fill(order, touch, order.sz if cap is None else min(order.sz, cap))
        return order

    def _crossed(self, inst_id: str, quote: Ticker) -> list[_Order]:
        """Pending orders the touch crosses, in price-time priority."""
        buys = [o for o in self._pending.values() if o.inst_id == inst_id and o.side == "buy"]
        sells = [o for o in self._pending.values() if o.inst_id == inst_id and o.side == "sell"]
        buys = sorted(
            (o for o in buys if o.px >= quote.ask_px), key=lambda o: (-o.px, int(o.ord_id))
        )
        sells = sorted(
            (o for o in sells if o.px <= quote.bid_px), key=lambda o: (o.px, int(o.ord_id))
        )
        return buys + sells

    def _fill(self, order: _Order, px: Decimal, sz: Decimal) -> None:
        """Trade ``sz`` of ``order`` at ``px``: fees, balances, state and the pushed update."""
        if sz <= 0:
            return
        rules = self._rules[order.inst_id]
        if order.side == "buy":
            fee = sz * self._fee_rate
            self._release(order, sz)
            self._credit(rules.quote_ccy, -px * sz)
            self._credit(rules.base_ccy, sz - fee)
        else:
            fee = px * sz * self._fee_rate
            self._release(order, sz)
            self._credit(rules.base_ccy, -sz)
            self._credit(rules.quote_ccy, px * sz - fee)
        now = self._tick()
        fill = Fill(str(next(self._trade_seq)), px, sz, fee, order.fee_ccy, now)
        order.acc_fill_sz += sz
        order.notional += px * sz
        order.fee += fee
        order.last_fill = fill
        order.state = OrderState.FILLED if order.remaining == 0 else OrderState.PARTIALLY_FILLED
        self._changed(order, fill, now)

    def _release(self, order: _Order, sz: Decimal) -> None:
        """Unfreeze the funds that ``sz`` of the order held."""
        rules = self._rules[order.inst_id]
        if order.side == "buy":
            self._frozen[rules.quote_ccy] -= order.px * sz
        else:
            self._frozen[rules.base_ccy] -= sz

    def _credit(self, ccy: str, amount: Decimal) -> None:
        if ccy in self._balances:
            self._balances[ccy] += amount

    def _changed(self, order: _Order, fill: Fill | None, now: int | None = None) -> None:
        order.updated_ms = self._tick() if now is None else now
        if order.state not in _PENDING:
            self._pending.pop(order.ord_id, None)
        self._updates.append(order.snapshot(fill))

    def _latest(self, cl_ord_id: str) -> _Order | None:
        ids = self._by_cl.get(cl_ord_id)
        return self._orders[ids[-1]] if ids else None

    def _find(self, inst_id: str, ord_id: str | None, cl_ord_id: str | None) -> _Order:
        if ord_id is None and cl_ord_id is None:
            raise ValueError("ord_id or cl_ord_id is required")
        if inst_id not in self._rules:  # OKX answers 51001 before it looks for the order
            raise InvalidInstrument(f"instrument {inst_id} does not exist", code="51001")
        order = self._orders.get(ord_id) if ord_id is not None else self._latest(cl_ord_id or "")
        if order is None or order.inst_id != inst_id:
            raise OrderNotFound(f"order {ord_id or cl_ord_id} does not exist", code="51603")
        return order

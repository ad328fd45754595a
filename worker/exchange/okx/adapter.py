"""The OKX v5 adapter of the exchange port (spot, cash, limit orders over REST)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

from worker.domain.errors import ExchangeError, InvalidInstrument
from worker.domain.money import InstrumentRules, quantize_str
from worker.domain.orders import Side
from worker.exchange.okx.errors import MalformedResponse
from worker.exchange.okx.parse import (
    parse_instrument,
    parse_order,
    parse_placement,
    parse_server_time,
    parse_ticker,
)
from worker.exchange.okx.rest import OkxRestClient, Params
from worker.exchange.port import OrderRequest, OrderSnapshot, Placement, Ticker
from worker.logs import log_event

log = logging.getLogger("limitflow.okx")

PAGE_LIMIT = 100
# The instrument table is the process's one instrument-rules cache (``Runtime.rules`` reads
# through it): loaded whole by the warm-up, reloaded whole when older than this.
INSTRUMENTS_TTL_S = 600.0
CLOCK_SKEW_WARN_MS = 5_000  # OKX refuses signatures beyond 30 s; warn long before
SKEW_TTL_S = 600.0


class OkxExchange:
    """Implement ``worker.exchange.port.Exchange`` for OKX spot."""

    def __init__(
        self,
        rest: OkxRestClient,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_clock_skew: Callable[[int], None] | None = None,
    ) -> None:
        """``on_clock_skew(ms)`` hears every measured skew (the process's metrics gauge)."""
        self._rest = rest
        self._clock = clock
        self._on_clock_skew = on_clock_skew
        self._lock = threading.Lock()
        self._instruments: dict[str, InstrumentRules] = {}
        self._instruments_at: float | None = None
        self._skew_ms: int | None = None
        self._skew_at: float | None = None

    def close(self) -> None:
        self._rest.close()

    # Instruments -----------------------------------------------------------------------

    def instrument(self, inst_id: str, *, require_live: bool = True) -> InstrumentRules:
        """Return the trading rules; raise ``InvalidInstrument`` if unknown, or not live
        when ``require_live``."""
        rules = self._instrument_table().get(inst_id)
        if rules is None:
            # Perhaps listed since the last refresh: ask for this one instrument.
            items = self._rest.get(
                "/api/v5/public/instruments",
                {"instType": "SPOT", "instId": inst_id},
                signed=False,
                key="SPOT",
            )
            if not items:
                raise InvalidInstrument(f"okx: unknown instrument {inst_id}")
            rules = parse_instrument(items[0])
            with self._lock:
                self._instruments[rules.inst_id] = rules
        if require_live and not rules.live:
            raise InvalidInstrument(f"okx: instrument {inst_id} is not live")
        return rules

    def warm_up(self, rehearsals: int = 0) -> int:
        """Load the instrument table and open the keep-alive connection, so that the first
        order after a start does neither on its hot path, then build (and never send) a
        placement's signed request ``rehearsals`` times; return the live instruments."""
        live = len(self.list_instruments())
        for _ in range(rehearsals):
            self._rest.rehearse_post(
                ORDER_PATH, _order_body(_REHEARSAL), headers=_deadline_header(_REHEARSAL)
            )
        return live

    def list_instruments(self) -> list[InstrumentRules]:
        """Return every live SPOT instrument."""
        return [r for r in self._instrument_table().values() if r.live]

    def _instrument_table(self) -> dict[str, InstrumentRules]:
        now = self._clock()
        with self._lock:
            fresh = (
                self._instruments_at is not None and now - self._instruments_at < INSTRUMENTS_TTL_S
            )
            if fresh:
                return self._instruments
        items = self._rest.get(
            "/api/v5/public/instruments", {"instType": "SPOT"}, signed=False, key="SPOT"
        )
        table = {r.inst_id: r for r in map(parse_instrument, items)}
        with self._lock:
            self._instruments, self._instruments_at = table, now
        return table

    # Orders ------------------------------------------------------------------------------

    def place_order(self, request: OrderRequest) -> Placement:
        """Place a limit order; see the port's docstring for the error contract."""
        data = self._rest.post(
            ORDER_PATH,
            _order_body(request),
            key=request.inst_id,
            headers=_deadline_header(request),
        )
        if not data:
            raise MalformedResponse("okx POST /api/v5/trade/order: accepted without data")
        placement = parse_placement(data[0])
        # DEBUG: the caller logs the placement at INFO (``order.placed``), with more fields.
        log_event(
            log,
            "okx.order_placed",
            logging.DEBUG,
            inst_id=request.inst_id,
            cl_ord_id=placement.cl_ord_id,
            ord_id=placement.ord_id,
        )
        return placement

    def cancel_order(
        self, inst_id: str, *, ord_id: str | None = None, cl_ord_id: str | None = None
    ) -> None:
        """Request a cancel; confirm the outcome with ``get_order``."""
        body = {"instId": inst_id, **_order_ids(ord_id, cl_ord_id)}
        self._rest.post("/api/v5/trade/cancel-order", body, key=inst_id)
        log_event(log, "okx.cancel_requested", inst_id=inst_id, ord_id=ord_id, cl_ord_id=cl_ord_id)

    def get_order(
        self, inst_id: str, *, ord_id: str | None = None, cl_ord_id: str | None = None
    ) -> OrderSnapshot:
        """Return the latest order with this id; raise ``OrderNotFound`` only on 51603."""
        params = {"instId": inst_id, **_order_ids(ord_id, cl_ord_id)}
        data = self._rest.get("/api/v5/trade/order", params, key=inst_id)
        if not data:
            # An empty success is not an explicit "does not exist".
            raise MalformedResponse(f"okx GET /api/v5/trade/order: empty answer for {params}")
        return parse_order(data[0])

    def list_pending(self, inst_id: str | None = None) -> Iterator[OrderSnapshot]:
        """Yield every live or partially filled SPOT order, newest first, 100 per page."""
        params = {"instType": "SPOT", "instId": inst_id}
        yield from self._paged("/api/v5/trade/orders-pending", params)

    def _paged(self, path: str, params: Params) -> Iterator[OrderSnapshot]:
        after: str | None = None
        while True:
            page = self._rest.get(path, {**params, "after": after, "limit": PAGE_LIMIT})
            for item in page:
                yield parse_order(item)
            if len(page) < PAGE_LIMIT:
                return
            cursor = str(page[-1].get("ordId", ""))
            if not cursor or cursor == after:
                raise MalformedResponse(f"okx {path}: pagination cursor did not advance")
            after = cursor

    # Market and clock ----------------------------------------------------------------------

    def ticker(self, inst_id: str) -> Ticker:
        """Return the current best bid/ask and last price."""
        data = self._rest.get("/api/v5/market/ticker", {"instId": inst_id}, signed=False)
        if not data:
            raise InvalidInstrument(f"okx: no ticker for {inst_id}")
        return parse_ticker(data[0])

    def server_time(self) -> int:
        """Return OKX's clock in epoch ms; warn when ours is more than 5 s off."""
        sent = time.time()
        data = self._rest.get("/api/v5/public/time", signed=False)
        received = time.time()
        if not data or not isinstance(data[0], dict):
            raise MalformedResponse("okx GET /api/v5/public/time: empty answer")
        server_ms = parse_server_time(data[0])
        skew_ms = int((sent + received) * 500) - server_ms
        with self._lock:
            self._skew_ms, self._skew_at = skew_ms, self._clock()
        if self._on_clock_skew is not None:
            self._on_clock_skew(skew_ms)
        if abs(skew_ms) > CLOCK_SKEW_WARN_MS:
            log_event(log, "okx.clock_skew", logging.WARNING, skew_ms=skew_ms, limit_ms=30_000)
        return server_ms

    def clock_skew_ms(self) -> int | None:
        """Our clock minus OKX's, measured at most ``SKEW_TTL_S`` ago; None if unknown."""
        with self._lock:
            fresh = self._skew_at is not None and self._clock() - self._skew_at < SKEW_TTL_S
            if fresh:
                return self._skew_ms
        try:
            self.server_time()
        except ExchangeError:
            return None
        with self._lock:
            return self._skew_ms


ORDER_PATH = "/api/v5/trade/order"
# What a warm-up builds a request for (and never sends).
_REHEARSAL = OrderRequest(
    inst_id="BTC-USDT",
    side=Side.BUY,
    px=Decimal(1),
    sz=Decimal(1),
    cl_ord_id="lfwarmup",
    exp_time_ms=0,
)


def _order_body(request: OrderRequest) -> dict[str, Any]:
    return {
        "instId": request.inst_id,
        "tdMode": "cash",
        "clOrdId": request.cl_ord_id,
        "side": request.side,
        "ordType": "limit",
        "px": quantize_str(request.px),
        "sz": quantize_str(request.sz),
        "tag": request.tag,
    }


def _deadline_header(request: OrderRequest) -> dict[str, str]:
    """OKX's ``expTime`` header: the request's deadline, if it has one."""
    if request.exp_time_ms is None:
        return {}
    return {"expTime": str(request.exp_time_ms)}


def _order_ids(ord_id: str | None, cl_ord_id: str | None) -> dict[str, str]:
    # OKX prefers ordId when both are given; send only one so the answer is unambiguous.
    if ord_id:
        return {"ordId": ord_id}
    if cl_ord_id:
        return {"clOrdId": cl_ord_id}
    raise ValueError("give ord_id or cl_ord_id")

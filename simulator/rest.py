"""HTTP handlers for ``/api/v5``: public market data, the account, and trading.

Private endpoints check the OKX signature over the raw body and the path with its query,
then pass armed faults (``simulator.faults``) before and after doing the work.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from typing import Any

import orjson
from aiohttp import web

from simulator import trade
from simulator.auth import AuthError, Credentials, check_rest
from simulator.candles import is_bar
from simulator.core import Simulator
from simulator.faults import Fault
from simulator.timeline import now_us
from simulator.trade import RequestError

log = logging.getLogger("simulator")
PRIVATE = "/api/v5/"
_RATE_LIMITED = (
    "Rate limit reached. Please refer to API documentation and throttle requests accordingly."
)
_UNKNOWN_INST = "Instrument ID, Instrument ID code, or Spread ID doesn't exist."

Handler = Callable[[web.Request], Awaitable[web.Response]]


def reply(payload: Mapping[str, Any], status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(payload), status=status, content_type="application/json")


def error(code: str, msg: str, status: int = 200) -> web.Response:
    return reply({"code": code, "msg": msg, "data": []}, status)


def _now_us() -> str:
    return str(time.time_ns() // 1000)


class RestApi:
    def __init__(self, sim: Simulator):
        self.sim = sim
        config = sim.config
        self.creds = Credentials(config.api_key, config.api_secret, config.passphrase)
        self._noted_header = False

    def register(self, app: web.Application) -> None:
        get, post = self._get, self._post
        routes = [
            web.get("/api/v5/public/instruments", self._public(self.instruments)),
            web.get("/api/v5/public/time", self._public(self.time)),
            web.get("/api/v5/system/status", self._public(self.status)),
            web.get("/api/v5/market/ticker", self._public(self.ticker)),
            web.get("/api/v5/market/tickers", self._public(self.tickers)),
            web.get("/api/v5/market/candles", self._public(self.candles)),
            web.get("/api/v5/account/balance", get("balance", self.balance, False)),
            web.post("/api/v5/trade/order", post("place_order", trade.place_order)),
            web.post("/api/v5/trade/batch-orders", post("place_order", trade.batch_orders)),
            web.post("/api/v5/trade/cancel-order", post("cancel_order", trade.cancel_order)),
            web.post("/api/v5/trade/cancel-batch-orders", post("cancel_order", trade.cancel_batch)),
            web.get("/api/v5/trade/order", get("get_order", self._engine(trade.get_order))),
            web.get(
                "/api/v5/trade/orders-pending",
                get("orders_pending", self._engine(trade.orders_pending)),
            ),
            web.get(
                "/api/v5/trade/orders-history",
                get("orders_history", self._engine(trade.orders_history)),
            ),
        ]
        app.add_routes(routes)

    # Wrappers --------------------------------------------------------------------------

    def _public(self, fn: Callable[[Mapping[str, str]], dict[str, Any]]) -> Handler:
        async def handler(request: web.Request) -> web.Response:
            self.sim.timeline.requests[request.path] += 1
            fault = self.sim.faults.take("public")
            return await self._run(fault, lambda: fn(request.query), timed=False)

        return handler

    def _engine(
        self, fn: Callable[[Any, Mapping[str, str]], dict[str, Any]]
    ) -> Callable[[Mapping[str, str]], dict[str, Any]]:
        return lambda query: fn(self.sim.engine, query)

    def _get(
        self, op: str, fn: Callable[[Mapping[str, str]], dict[str, Any]], timed: bool = True
    ) -> Handler:
        async def handler(request: web.Request) -> web.Response:
            self.sim.timeline.requests[request.path] += 1
            refused = self._authenticate(request, "")
            if refused is not None:
                return refused
            fault = self.sim.faults.take(op)
            return await self._run(fault, lambda: fn(request.query), timed)

        return handler

    def _post(self, op: str, fn: Callable[[Any, Any], dict[str, Any]]) -> Handler:
        async def handler(request: web.Request) -> web.Response:
            received = now_us()
            self.sim.timeline.requests[request.path] += 1
            raw = await request.read()
            text = raw.decode("utf-8", errors="replace")
            refused = self._authenticate(request, text)
            if refused is not None:
                return refused
            try:
                body = orjson.loads(raw) if raw.strip() else {}
            except orjson.JSONDecodeError:
                return error("50002", "JSON syntax error", 400)
            deadline = request.headers.get("expTime")
            if op == "place_order":
                self._note_orders(body, received)
            fault = self.sim.faults.take(op)
            work: Callable[[], dict[str, Any]] = lambda: self._within(deadline, fn, body)  # noqa: E731
            if op == "place_order":
                work = self._logged(request.path, body, fault, work)
            return await self._run(fault, work, timed=True)

        return handler

    def _within(
        self, deadline: str | None, fn: Callable[[Any, Any], dict[str, Any]], body: Any
    ) -> dict[str, Any]:
        """Do the work unless the request's ``expTime`` has passed on the simulator's clock:
        OKX does not process a request that reaches it after its deadline."""
        if deadline is not None:
            if not deadline.isdigit():
                raise RequestError("50036", f"Invalid expTime {deadline!r}")
            if self.sim.clock.now_ms() > int(deadline):
                self.sim.expired_requests += 1
                raise RequestError(
                    "50036", "The expTime can't be earlier than the current system time."
                )
        return fn(self.sim.engine, body)

    def _note_orders(self, body: Any, received_us: int) -> None:
        for item in body if isinstance(body, list) else [body]:
            if isinstance(item, dict):
                cl_ord_id, inst_id = item.get("clOrdId"), item.get("instId")
                self.sim.timeline.order_received(str(cl_ord_id or ""), str(inst_id), received_us)

    def _logged(
        self, path: str, body: Any, fault: Fault | None, work: Callable[[], dict[str, Any]]
    ) -> Callable[[], dict[str, Any]]:
        """Log a placement request on arrival; complete the entries when the venue acts."""
        source = "batch" if path.endswith("batch-orders") else "order"
        log = self.sim.placement_log
        entries = log.received(body, source, fault.mode if fault else "", self.sim.clock.now_ms())

        def logged_work() -> dict[str, Any]:
            try:
                payload = work()
            except RequestError as exc:
                log.resolve(entries, {"code": exc.code, "msg": exc.msg}, self.sim.clock.now_ms())
                raise
            log.resolve(entries, payload, self.sim.clock.now_ms())
            return payload

        return logged_work

    def _authenticate(self, request: web.Request, body: str) -> web.Response | None:
        if request.headers.get("x-simulated-trading") is None:
            self.sim.missing_demo_header += 1
            if not self._noted_header:
                self._noted_header = True
                log.warning(
                    "simulator.note missing_header=x-simulated-trading path=%s", request.path
                )
        try:
            check_rest(
                self.creds,
                request.headers,
                request.method,
                request.raw_path,
                body,
                self.sim.clock.now_ms(),
                self.sim.config.auth_window_seconds,
            )
        except AuthError as exc:
            return error(exc.code, exc.msg, 401)
        return None

    async def _run(
        self, fault: Fault | None, work: Callable[[], dict[str, Any]], timed: bool
    ) -> web.Response:
        in_us = _now_us()
        if fault is not None:
            if fault.mode == "latency":
                await asyncio.sleep(fault.seconds)
            elif fault.mode == "http_500":
                return error("50001", "Service temporarily unavailable. Try again later", 500)
            elif fault.mode == "rate_limit_429":
                return reply({"msg": "Too Many Requests", "code": "50011"}, 429)
            elif fault.mode == "code_50011":
                return error("50011", _RATE_LIMITED)
            elif fault.mode == "timeout":
                return await self._hold(fault)
        try:
            payload = work()
        except RequestError as exc:
            payload = {"code": exc.code, "msg": exc.msg, "data": []}
        if fault is not None and fault.mode == "accept_then_timeout":
            return await self._hold(fault)
        if timed:
            payload = {**payload, "inTime": in_us, "outTime": _now_us()}
        return reply(payload)

    async def _hold(self, fault: Fault) -> web.Response:
        """Answer nothing until the client gives up (or the fault's seconds pass)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.sim.stopping.wait(), timeout=fault.seconds)
        return error("50004", "Endpoint request timeout. ", 504)

    # Public and account handlers -------------------------------------------------------

    def instruments(self, query: Mapping[str, str]) -> dict[str, Any]:
        inst_type = query.get("instType", "")
        if not inst_type:
            raise RequestError("50014", "Parameter instType can not be empty")
        if inst_type != "SPOT":
            return {"code": "0", "msg": "", "data": []}
        inst_id = query.get("instId", "")
        insts = self.sim.instruments
        if inst_id and inst_id not in insts:
            raise RequestError("51001", _UNKNOWN_INST)
        chosen = [insts[inst_id]] if inst_id else list(insts.values())
        return {"code": "0", "msg": "", "data": [i.to_okx() for i in chosen]}

    def time(self, query: Mapping[str, str]) -> dict[str, Any]:
        return {"code": "0", "msg": "", "data": [{"ts": str(self.sim.clock.now_ms())}]}

    def status(self, query: Mapping[str, str]) -> dict[str, Any]:
        return {"code": "0", "msg": "", "data": []}

    def ticker(self, query: Mapping[str, str]) -> dict[str, Any]:
        inst_id = query.get("instId", "")
        if not inst_id:
            raise RequestError("50014", "Parameter instId can not be empty")
        market = self.sim.markets.get(inst_id)
        if market is None:
            raise RequestError("51001", _UNKNOWN_INST)
        return {"code": "0", "msg": "", "data": [market.ticker()]}

    def tickers(self, query: Mapping[str, str]) -> dict[str, Any]:
        inst_type = query.get("instType", "")
        if not inst_type:
            raise RequestError("50014", "Parameter instType can not be empty")
        markets = self.sim.markets.values() if inst_type == "SPOT" else []
        return {"code": "0", "msg": "", "data": [m.ticker() for m in markets]}

    def candles(self, query: Mapping[str, str]) -> dict[str, Any]:
        inst_id = query.get("instId", "")
        if not inst_id:
            raise RequestError("50014", "Parameter instId can not be empty")
        market = self.sim.markets.get(inst_id)
        if market is None:
            raise RequestError("51001", _UNKNOWN_INST)
        bar = query.get("bar", "") or "1m"
        if not is_bar(bar):
            raise RequestError("51000", "Parameter bar error")
        limit_text = query.get("limit", "") or "100"
        if not limit_text.isdigit() or not 1 <= int(limit_text) <= 300:
            raise RequestError("51000", "Parameter limit error")
        after, before = query.get("after", ""), query.get("before", "")
        for name, value in (("after", after), ("before", before)):
            if value and not value.isdigit():
                raise RequestError("51000", f"Parameter {name} error")
        rows = market.candles(bar).rows(
            int(limit_text), int(after) if after else None, int(before) if before else None
        )
        return {"code": "0", "msg": "", "data": rows}

    def balance(self, query: Mapping[str, str]) -> dict[str, Any]:
        wanted = {c for c in query.get("ccy", "").split(",") if c}

        def price_of(ccy: str) -> Decimal:
            if ccy in ("USDT", "USDC", "USD"):
                return Decimal(1)
            market = self.sim.markets.get(f"{ccy}-USDT")
            return market.last if market else Decimal(0)

        account = self.sim.accounts.to_okx(self.sim.clock.now_ms(), price_of, wanted or None)
        return {"code": "0", "msg": "", "data": [account]}

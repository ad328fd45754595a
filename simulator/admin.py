"""The control API under ``/_sim/`` (JSON, no auth, loopback clients only).

Tests and demos use it to inject faults, move prices and the clock, suspend instruments,
force fills and inspect every order the simulator has seen and every placement request it
received. ``simulator.control.SimControl`` is its client.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import orjson
from aiohttp import web

from simulator.core import Simulator
from simulator.decimals import parse_decimal
from simulator.timeline import TickerPush

_LOOPBACK = {"127.0.0.1", "::1", "localhost"}
WS_ACTIONS = ("drop", "notice_64008", "stop_pong", "idle_close_4004")
WS_PATHS = ("public", "private", "business", "all")
_NOTICE = "The connection will soon be closed for a service upgrade. Please reconnect."
# How long a price move waits for its ticker to go out before it answers without the time.
SENT_WAIT_SECONDS = 1.0


class ControlError(Exception):
    """A bad control request (HTTP 400 with ``{"error": ...}``)."""


async def _sent(push: TickerPush | None) -> int | None:
    """When a ticker went out (its writer runs on this event loop); None if it did not."""
    return None if push is None else await push.sent(SENT_WAIT_SECONDS)


def _json(payload: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(payload), status=status, content_type="application/json")


Action = Callable[[dict[str, Any]], Any]


class AdminApi:
    def __init__(self, sim: Simulator):
        self.sim = sim

    def register(self, app: web.Application) -> None:
        routes = {
            ("POST", "faults"): self.faults,
            ("POST", "ws"): self.ws,
            ("POST", "price"): self.price,
            ("POST", "prices"): self.prices,
            ("POST", "fill"): self.fill,
            ("POST", "forget"): self.forget,
            ("GET", "orders"): self.orders,
            ("GET", "placements"): self.placements,
            ("POST", "instrument"): self.instrument,
            ("POST", "market"): self.market,
            ("POST", "reset"): self.reset,
            ("POST", "clock"): self.clock,
            ("GET", "status"): self.status,
            ("GET", "timeline"): self.timeline,
        }
        for (method, name), action in routes.items():
            app.router.add_route(method, f"/_sim/{name}", self._wrap(action))

    def _wrap(self, action: Action) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handler(request: web.Request) -> web.Response:
            if request.remote not in _LOOPBACK:
                return _json({"error": "the control API answers loopback clients only"}, 403)
            body: Any = {}
            raw = await request.read()
            if raw.strip():
                try:
                    body = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    return _json({"error": "body is not JSON"}, 400)
            if not isinstance(body, dict):
                return _json({"error": "body must be a JSON object"}, 400)
            try:
                result = action(body)
                if inspect.isawaitable(result):
                    result = await result
                return _json(result)
            except (ControlError, ValueError) as exc:
                return _json({"error": str(exc)}, 400)

        return handler

    # Actions ---------------------------------------------------------------------------

    def faults(self, body: dict[str, Any]) -> Any:
        if body.get("clear"):
            self.sim.faults.clear()
            return {"ok": True, "faults": []}
        fault = self.sim.faults.add(
            str(body.get("op", "")),
            str(body.get("mode", "")),
            int(body.get("times", 1)),
            float(body.get("seconds", 0) or 0),
        )
        return {"ok": True, "fault": vars(fault)}

    def ws(self, body: dict[str, Any]) -> Any:
        action, path = body.get("action"), body.get("path", "all")
        if action not in WS_ACTIONS:
            raise ControlError(f"action must be one of {list(WS_ACTIONS)}")
        if path not in WS_PATHS:
            raise ControlError(f"path must be one of {list(WS_PATHS)}")
        conns = self.sim.hub.on_path(str(path))
        for conn in conns:
            if action == "drop":
                if conn.transport is not None:
                    conn.transport.abort()  # type: ignore[attr-defined]
            elif action == "notice_64008":
                conn.send_json(
                    {"event": "notice", "code": "64008", "msg": _NOTICE, "connId": conn.conn_id}
                )
            elif action == "stop_pong":
                conn.answers_ping = False
            else:
                conn.close(4004, "No data received in 30s.")
        return {"ok": True, "connections": len(conns)}

    async def price(self, body: dict[str, Any]) -> Any:
        """Move the price; answered once the ticker has gone out, with when it went out
        (``sentUs``, epoch us; None if nobody subscribes)."""
        inst_id = str(body.get("instId", ""))
        if inst_id not in self.sim.markets:
            raise ControlError(f"unknown instId {inst_id!r}")
        ticker, push = self.sim.set_price(inst_id, body)
        return {"ok": True, "ticker": ticker, "sentUs": await _sent(push)}

    async def prices(self, body: dict[str, Any]) -> Any:
        """Several ``price`` moves in one request (``{"prices": [{instId, last, ...}]}``),
        pushed back to back: a burst of tickers, as a market-wide move sends."""
        items = body.get("prices")
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise ControlError("prices must be a list of objects")
        unknown = [i.get("instId") for i in items if i.get("instId") not in self.sim.markets]
        if unknown:
            raise ControlError(f"unknown instId {unknown[0]!r}")
        pushes = [self.sim.set_price(str(i["instId"]), i)[1] for i in items]
        # Waited for together: a slow subscriber costs the call SENT_WAIT_SECONDS at most.
        sent = await asyncio.gather(*(_sent(push) for push in pushes))
        return {"ok": True, "sentUs": sent}

    def _order(self, body: dict[str, Any]) -> Any:
        ord_id, cl_ord_id = str(body.get("ordId") or ""), str(body.get("clOrdId") or "")
        if not ord_id and not cl_ord_id:
            raise ControlError("give ordId or clOrdId")
        order = self.sim.engine.find("", ord_id, cl_ord_id)
        if order is None:
            raise ControlError("no such order")
        return order

    def fill(self, body: dict[str, Any]) -> Any:
        order = self._order(body)
        if not order.is_pending:
            raise ControlError(f"order {order.ord_id} is {order.state}")
        sz: Decimal | None = None
        if body.get("sz") not in (None, ""):
            sz = parse_decimal(body["sz"])
            if sz is None or sz <= 0:
                raise ControlError("sz must be a positive number")
        self.sim.engine.force_fill(order, sz)
        return {"ok": True, "order": order.to_okx()}

    def forget(self, body: dict[str, Any]) -> Any:
        order = self._order(body)
        if not self.sim.engine.forget(order.ord_id):
            raise ControlError(f"order {order.ord_id} is still {order.state}")
        return {"ok": True}

    def orders(self, body: dict[str, Any]) -> Any:
        engine = self.sim.engine
        return {
            "orders": [o.to_okx() for o in engine.orders.values()],
            "placements": dict(engine.placements),
            # Every execution of every order (the OKX order object shows only the last one).
            "fills": {
                o.ord_id: [
                    {"tradeId": f.trade_id, "px": str(f.px), "sz": str(f.sz), "ts": str(f.ts)}
                    for f in o.fills
                ]
                for o in engine.orders.values()
                if o.fills
            },
        }

    def placements(self, body: dict[str, Any]) -> Any:
        log = self.sim.placement_log
        return {"requests": log.to_json(), "dropped": log.dropped}

    def instrument(self, body: dict[str, Any]) -> Any:
        inst_id = str(body.get("instId", ""))
        if inst_id not in self.sim.instruments:
            raise ControlError(f"unknown instId {inst_id!r}")
        return {
            "ok": True,
            "instrument": self.sim.set_instrument_state(inst_id, str(body.get("state"))),
        }

    def market(self, body: dict[str, Any]) -> Any:
        if "frozen" in body:
            self.sim.market_frozen = bool(body["frozen"])
        return {"ok": True, "frozen": self.sim.market_frozen}

    def reset(self, body: dict[str, Any]) -> Any:
        """Forget orders and faults; ``{"clockToWall": true}`` also sets the clock to now."""
        self.sim.engine.reset()
        self.sim.faults.clear()
        self.sim.timeline.clear()
        if body.get("clockToWall"):
            self.sim.clock.restart(int(time.time() * 1000))
        self.sim.placement_log.clear()
        self.sim.market_frozen = False
        for inst_id, inst in list(self.sim.instruments.items()):
            if inst.state != "live":
                self.sim.set_instrument_state(inst_id, "live")
        return {"ok": True}

    async def clock(self, body: dict[str, Any]) -> Any:
        clock = self.sim.clock
        if body.get("speed") is not None:
            speed = float(body["speed"])
            if speed < 0:
                raise ControlError("speed must be >= 0")
            was_paused = clock.paused
            clock.pause()
            clock.speed = speed
            if not was_paused:
                clock.resume()
        if body.get("pause"):
            clock.pause()
        if body.get("resume"):
            clock.resume()
        seconds = float(body.get("advance_seconds", 0) or 0)
        if seconds < 0:
            raise ControlError("advance_seconds must be >= 0")
        if seconds:
            await self.sim.advance_async(seconds)
        return {"ok": True, "now": str(clock.now_ms()), "paused": clock.paused}

    def status(self, body: dict[str, Any]) -> Any:
        return self.sim.status()

    def timeline(self, body: dict[str, Any]) -> Any:
        """Ticker push times per instrument, first receipt of each order request by
        clOrdId (epoch us, see ``simulator.timeline``), and REST requests per path."""
        return self.sim.timeline.to_json()

"""Websocket endpoints ``/ws/v5/{public,private,business}`` with OKX's op protocol.

Text ``ping`` gets text ``pong``; ``subscribe``/``unsubscribe`` answer one event per arg;
``login`` (private) checks the epoch-seconds signature; a connection that sends nothing for
``ws_idle_timeout`` seconds is closed with 4004.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from simulator.auth import AuthError, Credentials, check_ws_login
from simulator.candles import is_bar
from simulator.core import Simulator
from simulator.hub import Close, Connection, Stamped, sub_key

log = logging.getLogger("simulator")
_MIGRATED = (
    "This channel has been migrated to the '/business' URL. Please subscribe using the new "
    "URL. More details can refer to: "
    "https://www.okx.com/help-center/changes-to-v5-api-websocket-subscription-parameter-and-url"
)


class WsApi:
    def __init__(self, sim: Simulator):
        self.sim = sim
        config = sim.config
        self.creds = Credentials(config.api_key, config.api_secret, config.passphrase)

    def register(self, app: web.Application) -> None:
        for path in ("public", "private", "business"):
            app.router.add_get(f"/ws/v5/{path}", self._handler(path))

    def _handler(self, path: str) -> Any:
        async def handler(request: web.Request) -> web.WebSocketResponse:
            return await self.serve(request, path)

        return handler

    async def serve(self, request: web.Request, path: str) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True, heartbeat=None, max_msg_size=1 << 20)
        await ws.prepare(request)
        conn = self.sim.hub.new_connection(path, request.transport)
        last_seen = [time.monotonic()]
        writer = asyncio.create_task(self._write(ws, conn))
        idle = asyncio.create_task(self._watch_idle(conn, last_seen))
        try:
            async for msg in ws:
                last_seen[0] = time.monotonic()
                if msg.type == WSMsgType.TEXT:
                    self._on_text(conn, msg.data)
                elif msg.type == WSMsgType.BINARY:
                    conn.send_json(_error("60012", "Invalid request: binary frame", conn))
        finally:
            self.sim.hub.remove(conn)
            idle.cancel()
            if not writer.done():
                conn.close(1000, "")
                with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                    await asyncio.wait_for(writer, 1.0)
        return ws

    async def _write(self, ws: web.WebSocketResponse, conn: Connection) -> None:
        while True:
            item = await conn.outbox.get()
            if isinstance(item, Close):
                if not ws.closed:
                    await ws.close(code=item.code, message=item.reason.encode())
                return
            if ws.closed:
                return
            if isinstance(item, Stamped):
                item.on_write()
                item = item.text
            try:
                await ws.send_str(item)
            except ConnectionError:
                return

    async def _watch_idle(self, conn: Connection, last_seen: list[float]) -> None:
        timeout = self.sim.config.ws_idle_timeout
        while not conn.closing:
            await asyncio.sleep(min(1.0, timeout / 4))
            if time.monotonic() - last_seen[0] > timeout:
                conn.close(4004, "No data received in 30s.")

    # Ops -------------------------------------------------------------------------------

    def _on_text(self, conn: Connection, text: str) -> None:
        if text == "ping":
            if conn.answers_ping:
                conn.send("pong")
            return
        try:
            request = orjson.loads(text)
        except orjson.JSONDecodeError:
            conn.send_json(_error("60012", f"Invalid request: {text}", conn))
            return
        if not isinstance(request, dict):
            conn.send_json(_error("60012", f"Invalid request: {text}", conn))
            return
        op = request.get("op")
        args = request.get("args")
        req_id = request.get("id")
        if op == "login":
            self._login(conn, args, req_id)
        elif op in ("subscribe", "unsubscribe"):
            if not isinstance(args, list) or not args or not all(isinstance(a, dict) for a in args):
                conn.send_json(_error("60012", f"Invalid request: {text}", conn, req_id))
                return
            for arg in args:
                self._subscription(conn, op, arg, req_id)
        else:
            conn.send_json(_error("60019", f"Invalid op: op:{op}", conn, req_id))

    def _login(self, conn: Connection, args: Any, req_id: Any) -> None:
        try:
            check_ws_login(
                self.creds, args, self.sim.clock.now_ms(), self.sim.config.auth_window_seconds
            )
        except AuthError as exc:
            conn.send_json(_error(exc.code, exc.msg, conn, req_id))
            return
        conn.logged_in = True
        event: dict[str, Any] = {"event": "login", "code": "0", "msg": "", "connId": conn.conn_id}
        if req_id is not None:
            event = {"id": req_id, **event}
        conn.send_json(event)

    def _subscription(self, conn: Connection, op: str, arg: dict[str, Any], req_id: Any) -> None:
        problem = self._check_arg(conn, arg)
        if problem is not None:
            conn.send_json(_error(problem[0], problem[1], conn, req_id))
            return
        key = sub_key(arg)
        if op == "subscribe":
            conn.subs[key] = dict(arg)
        else:
            conn.subs.pop(key, None)
        event: dict[str, Any] = {"event": op, "arg": arg, "connId": conn.conn_id}
        if req_id is not None:
            event = {"id": req_id, **event}
        conn.send_json(event)

    def _check_arg(self, conn: Connection, arg: dict[str, Any]) -> tuple[str, str] | None:
        channel = str(arg.get("channel", ""))
        inst_id = str(arg.get("instId", ""))
        missing = ("60018", f"Wrong URL or channel:{channel},instId:{inst_id} doesn't exist")
        if channel.startswith("candle"):
            if not is_bar(channel.removeprefix("candle")):
                return missing
            if conn.path == "public":
                return ("64001", _MIGRATED)
            if conn.path != "business":
                return missing
            return None if inst_id in self.sim.markets else missing
        if channel in ("tickers", "trades"):
            if conn.path != "public" or inst_id not in self.sim.markets:
                return missing
            return None
        if channel == "orders":
            if conn.path != "private":
                return missing
            if not conn.logged_in:
                return ("60011", "Please log in")
            inst_type = str(arg.get("instType", ""))
            if inst_type not in ("SPOT", "MARGIN", "SWAP", "FUTURES", "OPTION", "ANY"):
                return ("60013", f"Invalid args: instType:{inst_type}")
            return None
        return missing


def _error(code: str, msg: str, conn: Connection, req_id: Any = None) -> dict[str, Any]:
    event: dict[str, Any] = {"event": "error", "code": code, "msg": msg, "connId": conn.conn_id}
    if req_id is not None:
        event = {"id": req_id, **event}
    return event

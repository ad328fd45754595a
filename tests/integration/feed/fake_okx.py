"""A small OKX-shaped server for the feed's integration tests (aiohttp, 127.0.0.1).

Speaks the public REST endpoints the feed reads and the websocket protocol of
``/ws/v5/public`` and ``/ws/v5/business``: subscribe acks (one event per arg), text
``ping``/``pong``, pushes to subscribers, and the failure modes the feed must survive.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import WSMsgType, web


class FakeOkx:
    def __init__(self, instruments: list[dict[str, str]], candle_open: str | None = None) -> None:
        self.instruments = instruments
        self.candle_open = candle_open
        self.candle_ts = "0"
        self.answer_pings = True
        self.connects: dict[str, int] = {"public": 0, "business": 0}
        self.subscribed: dict[str, int] = {"public": 0, "business": 0}  # args acked, total
        self.pings = 0
        self._sockets: dict[str, list[web.WebSocketResponse]] = {"public": [], "business": []}
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self.port = 0
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    # Lifecycle -----------------------------------------------------------------------------

    def start(self) -> FakeOkx:
        self._thread.start()
        self._call(self._start())
        return self

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get("/api/v5/public/instruments", self._instruments)
        app.router.add_get("/api/v5/market/candles", self._candles)
        app.router.add_get("/ws/v5/public", self._ws_public)
        app.router.add_get("/ws/v5/business", self._ws_business)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    def stop(self) -> None:
        self._call(self._stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    async def _stop(self) -> None:
        await self._close_all("public")
        await self._close_all("business")
        assert self._runner is not None
        await self._runner.cleanup()

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    @property
    def urls(self) -> dict[str, str]:
        base = f"127.0.0.1:{self.port}"
        return {
            "OKX_REST_URL": f"http://{base}",
            "OKX_WS_PUBLIC_URL": f"ws://{base}/ws/v5/public",
            "OKX_WS_BUSINESS_URL": f"ws://{base}/ws/v5/business",
        }

    # REST ----------------------------------------------------------------------------------

    async def _instruments(self, request: web.Request) -> web.Response:
        return web.json_response({"code": "0", "msg": "", "data": self.instruments})

    async def _candles(self, request: web.Request) -> web.Response:
        rows = []
        if self.candle_open is not None:
            o = self.candle_open
            rows = [[self.candle_ts, o, o, o, o, "1", "1", "1", "0"]]
        return web.json_response({"code": "0", "msg": "", "data": rows})

    # Websocket -----------------------------------------------------------------------------

    async def _ws_public(self, request: web.Request) -> web.WebSocketResponse:
        return await self._ws(request, "public")

    async def _ws_business(self, request: web.Request) -> web.WebSocketResponse:
        return await self._ws(request, "business")

    async def _ws(self, request: web.Request, path: str) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.connects[path] += 1
        self._sockets[path].append(ws)
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                if msg.data == "ping":
                    self.pings += 1
                    if self.answer_pings:
                        await ws.send_str("pong")
                    continue
                req = orjson.loads(msg.data)
                if req.get("op") == "subscribe":
                    for arg in req["args"]:
                        ack = {"event": "subscribe", "arg": arg, "connId": "fake0001"}
                        await ws.send_str(orjson.dumps(ack).decode())
                        self.subscribed[path] += 1
        finally:
            if ws in self._sockets[path]:
                self._sockets[path].remove(ws)
        return ws

    async def _send(self, path: str, texts: list[str]) -> None:
        for ws in list(self._sockets[path]):
            for text in texts:
                await ws.send_str(text)

    async def _close_all(self, path: str) -> None:
        for ws in list(self._sockets[path]):
            await ws.close()

    def push(self, path: str, *messages: Any) -> None:
        """Send each message (dicts as JSON, strings verbatim) to every connection on ``path``."""
        texts = [m if isinstance(m, str) else orjson.dumps(m).decode() for m in messages]
        self._call(self._send(path, texts))

    def drop(self, path: str) -> None:
        self._call(self._close_all(path))

    def open_connections(self, path: str) -> int:
        return len(self._sockets[path])


def wait_for(cond: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    import time

    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)

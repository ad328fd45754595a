"""A scripted OKX v5 server (REST + private websocket) on 127.0.0.1 for adapter tests.

It checks every signed request's headers against the raw bytes received, records what it
got, and answers from per-endpoint queues of scripted replies.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web
from pydantic import SecretStr

from worker.exchange.okx.rest import Credentials
from worker.exchange.okx.signing import rest_signature, ws_login_signature

KEY, SECRET, PASSPHRASE = "test-key-123", "test-secret-456", "test-pass-789"
CREDENTIALS = Credentials(SecretStr(KEY), SecretStr(SECRET), SecretStr(PASSPHRASE))


@dataclass
class Reply:
    body: Any
    status: int = 200
    delay: float = 0.0
    raw: bool = False  # send ``body`` as text, unparsed
    stall: float = 0.0  # send the status and half the body, then wait this long


def ok(data: list[Any]) -> Reply:
    return Reply({"code": "0", "msg": "", "data": data})


def fail(code: str, msg: str = "", status: int = 200, data: list[Any] | None = None) -> Reply:
    return Reply({"code": code, "msg": msg, "data": data or []}, status=status)


@dataclass
class Seen:
    method: str
    path_qs: str
    headers: dict[str, str]
    body: str


@dataclass
class WsState:
    """What the private websocket does and what it received."""

    pong: bool = True
    logins: list[dict[str, Any]] = field(default_factory=list)
    subscribes: list[dict[str, Any]] = field(default_factory=list)
    pings: int = 0
    connections: int = 0
    refuse_login: bool = False


class FakeOkx:
    def __init__(self) -> None:
        self.replies: dict[tuple[str, str], deque[Reply]] = defaultdict(deque)
        self.defaults: dict[tuple[str, str], Reply] = {}
        self.seen: list[Seen] = []
        self.bad_signatures = 0
        self.ws = WsState()
        self._sockets: list[web.WebSocketResponse] = []
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.port = 0

    # Scripting -------------------------------------------------------------------------

    def script(self, method: str, path: str, *replies: Reply) -> None:
        self.replies[(method, path)].extend(replies)

    def default(self, method: str, path: str, reply: Reply) -> None:
        self.defaults[(method, path)] = reply

    def requests(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.path_qs.split("?")[0] == path]

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/v5/private"

    # Lifecycle --------------------------------------------------------------------------

    def start(self) -> FakeOkx:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get("/ws/v5/private", self._ws)
        app.router.add_route("*", "/{tail:.*}", self._rest)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    def stop(self) -> None:
        async def _stop() -> None:
            for ws in list(self._sockets):
                await ws.close()
            if self._runner is not None:
                await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(_stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    # REST -------------------------------------------------------------------------------

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        raw = (await request.read()).decode()
        headers = dict(request.headers)
        self.seen.append(Seen(request.method, request.path_qs, headers, raw))
        if "OK-ACCESS-KEY" in request.headers:
            ts = request.headers.get("OK-ACCESS-TIMESTAMP", "")
            expected = rest_signature(SECRET, ts, request.method, request.path_qs, raw)
            if (
                request.headers.get("OK-ACCESS-SIGN") != expected
                or request.headers.get("OK-ACCESS-KEY") != KEY
                or request.headers.get("OK-ACCESS-PASSPHRASE") != PASSPHRASE
            ):
                self.bad_signatures += 1
                return web.json_response(
                    {"code": "50113", "msg": "Invalid Sign", "data": []}, status=401
                )
        key = (request.method, request.path)
        queue = self.replies.get(key)
        reply = queue.popleft() if queue else self.defaults.get(key)
        if reply is None:
            return web.json_response({"code": "50000", "msg": "unscripted", "data": []}, status=400)
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.stall:
            body = json.dumps(reply.body).encode()
            stalled = web.StreamResponse(status=reply.status)
            stalled.content_length = len(body)
            stalled.content_type = "application/json"
            await stalled.prepare(request)
            await stalled.write(body[: len(body) // 2])
            await asyncio.sleep(reply.stall)
            return stalled
        if reply.raw:
            return web.Response(text=str(reply.body), status=reply.status)
        return web.json_response(reply.body, status=reply.status)

    # Private websocket ----------------------------------------------------------------

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.ws.connections += 1
        self._sockets.append(ws)
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                if msg.data == "ping":
                    self.ws.pings += 1
                    if self.ws.pong:
                        await ws.send_str("pong")
                    continue
                await self._ws_request(ws, json.loads(msg.data))
        finally:
            self._sockets.remove(ws)
        return ws

    async def _ws_request(self, ws: web.WebSocketResponse, req: dict[str, Any]) -> None:
        if req.get("op") == "login":
            args = req["args"][0]
            self.ws.logins.append(args)
            good = args.get("apiKey") == KEY and args.get("sign") == ws_login_signature(
                SECRET, str(args.get("timestamp"))
            )
            if good and not self.ws.refuse_login:
                await ws.send_json({"event": "login", "code": "0", "msg": "", "connId": "c1"})
            else:
                await ws.send_json({"event": "error", "code": "60009", "msg": "Login failed."})
                await ws.close()
        elif req.get("op") == "subscribe":
            self.ws.subscribes.append(req["args"][0])
            await ws.send_json({"event": "subscribe", "arg": req["args"][0], "connId": "c1"})

    def _call(self, coro_factory: Any) -> None:
        async def run() -> None:
            for ws in list(self._sockets):
                await coro_factory(ws)

        asyncio.run_coroutine_threadsafe(run(), self._loop).result(5)

    def push(self, message: dict[str, Any]) -> None:
        """Send ``message`` to every connected private websocket."""
        self._call(lambda ws: ws.send_json(message))

    def push_raw(self, frame: bytes, *, binary: bool = False) -> None:
        """Send ``frame`` as it is, in a text frame (even if it is not UTF-8) or a binary one."""
        if binary:
            self._call(lambda ws: ws.send_bytes(frame))
        else:
            # aiohttp only sends str as text; its writer sends any bytes with the text opcode.
            self._call(lambda ws: ws._writer.send_frame(frame, WSMsgType.TEXT))

    def close_sockets(self) -> None:
        self._call(lambda ws: ws.close())

    @property
    def open_sockets(self) -> int:
        return len(self._sockets)

"""The HTTP + websocket server on one port, and ``start_simulator`` for tests.

``start_simulator(**opts)`` runs the simulator in a background thread with its own event
loop and returns a handle with ``rest_url``, ``ws_url`` and ``stop()``; ``port=0`` picks a
free port.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from simulator.admin import AdminApi
from simulator.config import SimConfig
from simulator.core import Simulator
from simulator.rest import RestApi
from simulator.ws import WsApi

log = logging.getLogger("simulator")


def build_app(sim: Simulator) -> web.Application:
    app = web.Application(client_max_size=1 << 20)
    RestApi(sim).register(app)
    WsApi(sim).register(app)
    AdminApi(sim).register(app)
    return app


class Server:
    """One simulator served on ``host:port``; ``start``/``stop`` run on the caller's loop."""

    def __init__(self, config: SimConfig):
        self.config = config
        self.sim = Simulator(config)
        self.runner: web.AppRunner | None = None
        self.port = config.port
        self._driver: asyncio.Task[None] | None = None

    @property
    def rest_url(self) -> str:
        return f"http://{self.config.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.config.host}:{self.port}/ws/v5"

    async def start(self) -> None:
        self.runner = web.AppRunner(build_app(self.sim), access_log=None, shutdown_timeout=2.0)
        await self.runner.setup()
        site = web.TCPSite(self.runner, self.config.host, self.config.port)
        await site.start()
        sockets = getattr(site._server, "sockets", None) or []
        if sockets:
            self.port = sockets[0].getsockname()[1]
        self._driver = asyncio.create_task(self.sim.run())
        log.info(
            "simulator.ready url=%s mode=%s instruments=%d",
            self.rest_url,
            self.sim.mode,
            len(self.sim.instruments),
        )

    async def stop(self) -> None:
        self.sim.stopping.set()
        for conn in list(self.sim.hub.connections):
            conn.close(1001, "simulator stopping")
        if self._driver is not None:
            self._driver.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._driver
        if self.runner is not None:
            await self.runner.cleanup()
        log.info("simulator.stopped url=%s", self.rest_url)


@dataclass
class SimulatorHandle:
    """A simulator running in a background thread."""

    server: Server
    loop: asyncio.AbstractEventLoop
    thread: threading.Thread

    @property
    def rest_url(self) -> str:
        return self.server.rest_url

    @property
    def ws_url(self) -> str:
        return self.server.ws_url

    @property
    def port(self) -> int:
        return self.server.port

    def stop(self, timeout: float = 10.0) -> None:
        if not self.thread.is_alive():
            return
        future = asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop)
        with contextlib.suppress(Exception):
            future.result(timeout)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout)

    def __enter__(self) -> SimulatorHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_simulator(**opts: Any) -> SimulatorHandle:
    """Start a simulator in a background thread; options are ``SimConfig`` fields."""
    config = SimConfig.from_options(**opts)
    server = Server(config)
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(server.start())
        except BaseException as exc:
            failure.append(exc)
            ready.set()
            loop.close()
            return
        ready.set()
        try:
            loop.run_forever()
        finally:
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

    thread = threading.Thread(target=run, name="simulator", daemon=True)
    thread.start()
    ready.wait(30)
    if failure:
        raise failure[0]
    return SimulatorHandle(server, loop, thread)

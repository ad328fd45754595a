"""Websocket connections and their subscriptions; fans pushes out to subscribers.

Each connection has a bounded outbox drained by its own writer task, so a slow client
cannot hold up the market: when its outbox is full it is closed with 4005, as OKX does.
A push can carry an ``on_write`` callback, which the writer calls just before it sends the
frame (``simulator.timeline.TickerPush`` stamps tickers that way).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

OUTBOX_SIZE = 20_000


@dataclass(frozen=True)
class Close:
    code: int
    reason: str


@dataclass(frozen=True)
class Stamped:
    """A frame whose writer calls ``on_write`` just before sending it."""

    text: str
    on_write: Callable[[], None]


@dataclass(eq=False)
class Connection:
    path: str  # "public" | "private" | "business"
    conn_id: str
    transport: asyncio.BaseTransport | None = None
    outbox: asyncio.Queue[str | Stamped | Close] = field(
        default_factory=lambda: asyncio.Queue(maxsize=OUTBOX_SIZE)
    )
    subs: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    logged_in: bool = False
    answers_ping: bool = True
    closing: bool = False

    def send(self, text: str, on_write: Callable[[], None] | None = None) -> None:
        if self.closing:
            return
        try:
            self.outbox.put_nowait(text if on_write is None else Stamped(text, on_write))
        except asyncio.QueueFull:
            self.close(4005, "Buffer is full, cannot write data.")

    def send_json(self, payload: dict[str, Any]) -> None:
        self.send(orjson.dumps(payload).decode())

    def close(self, code: int, reason: str) -> None:
        if self.closing:
            return
        self.closing = True
        while True:  # make room: the close goes out before anything still queued
            try:
                self.outbox.get_nowait()
            except asyncio.QueueEmpty:
                break
        self.outbox.put_nowait(Close(code, reason))


def sub_key(arg: dict[str, Any]) -> tuple[str, str, str]:
    """Identify a subscription; only ``orders`` is told apart by ``instType``."""
    channel = str(arg.get("channel", ""))
    inst_type = str(arg.get("instType", "")) if channel == "orders" else ""
    return (channel, str(arg.get("instId", "")), inst_type)


class Hub:
    def __init__(self) -> None:
        self.connections: set[Connection] = set()
        self._ids = itertools.count(0x1A2B3C4D)

    def new_connection(self, path: str, transport: asyncio.BaseTransport | None) -> Connection:
        conn = Connection(path=path, conn_id=f"{next(self._ids):08x}", transport=transport)
        self.connections.add(conn)
        return conn

    def remove(self, conn: Connection) -> None:
        self.connections.discard(conn)

    def on_path(self, path: str) -> list[Connection]:
        return [c for c in self.connections if path in ("all", c.path)]

    def publish(
        self,
        path: str,
        channel: str,
        inst_id: str,
        payload: dict[str, Any],
        on_write: Callable[[], None] | None = None,
    ) -> int:
        """Send one push to every ``path`` connection subscribed to (channel, instId);
        ``on_write``: see ``Connection.send``."""
        key = (channel, inst_id, "")
        text: str | None = None
        sent = 0
        for conn in self.connections:
            if conn.path == path and key in conn.subs:
                text = text or orjson.dumps(payload).decode()
                conn.send(text, on_write)
                sent += 1
        return sent

    def wants(self, path: str, channel: str, inst_id: str) -> bool:
        key = (channel, inst_id, "")
        return any(c.path == path and key in c.subs for c in self.connections)

    def subscribed_candles(self) -> set[tuple[str, str]]:
        """(channel, instId) pairs with at least one business subscriber."""
        return {
            (k[0], k[1])
            for c in self.connections
            if c.path == "business"
            for k in c.subs
            if k[0].startswith("candle")
        }

    def publish_order(self, inst_id: str, data: dict[str, Any], uid: str) -> None:
        """Push an ``orders`` update to logged-in subscribers whose args match it."""
        for conn in self.connections:
            if conn.path != "private" or not conn.logged_in:
                continue
            for (channel, sub_inst, inst_type), arg in conn.subs.items():
                if channel != "orders" or inst_type not in ("SPOT", "ANY"):
                    continue
                if sub_inst and sub_inst != inst_id:
                    continue
                conn.send_json({"arg": {**arg, "uid": uid}, "data": [data]})
                break

"""The private ``orders`` channel: every order push becomes an ``apply_order_update`` task.

One connection per account: log in, subscribe to SPOT orders, forward each pushed order as
an ``OrderSnapshot`` message. Fills are forwarded once per ``tradeId`` (a bounded LRU set
remembers the recent ones). OKX drops idle connections after 30 s, so after ``ping_after``
seconds of silence we send the text ``ping`` and reconnect when no ``pong`` follows. Any close
or error reconnects after an exponential backoff with jitter; notice 64008 (service upgrade)
reconnects at once. Pushes sent while no connection listened are lost (a restart, an outage
before the first start, a reconnect), so every connection, the first one included, asks the
workers for ``sync_active_orders`` once it is subscribed.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
import websocket

from worker.domain.errors import LimitflowError
from worker.exchange.okx.errors import MalformedResponse, error_for_code
from worker.exchange.okx.keepalive import (
    PING,
    UPGRADE_NOTICE,
    Keepalive,
    ReconnectWatch,
    backoff,
)
from worker.exchange.okx.parse import parse_order
from worker.exchange.okx.rest import Credentials
from worker.exchange.okx.signing import ws_login_args
from worker.exchange.port import snapshot_to_message
from worker.logs import log_event
from worker.task_names import APPLY_ORDER_UPDATE, SYNC_ACTIVE_ORDERS

log = logging.getLogger("limitflow.orders_stream")

Publish = Callable[[str, list[object]], None]
Connect = Callable[..., Any]
OnReconnectLoop = Callable[[int, str], None]
ORDERS_ARG = {"channel": "orders", "instType": "SPOT"}


@dataclass(frozen=True, slots=True)
class Timing:
    """Keepalive and reconnect timing (tests shorten these)."""

    ping_after: float = 20.0
    pong_timeout: float = 10.0
    poll: float = 0.5
    connect_timeout: float = 10.0
    reply_timeout: float = 10.0
    backoff_base: float = 1.0
    backoff_max: float = 60.0


class StreamError(LimitflowError):
    """The connection cannot be used any more: reconnect."""


class PublishFailed(StreamError):
    """The broker refused a message: reconnect, and resynchronize once it is back."""


class SeenTrades:
    """A bounded set of recent ``(inst_id, trade_id)`` pairs, oldest forgotten first."""

    def __init__(self, size: int = 50_000) -> None:
        self._size = size
        self._keys: OrderedDict[tuple[str, str], None] = OrderedDict()

    def __contains__(self, key: tuple[str, str]) -> bool:
        return key in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, key: tuple[str, str]) -> None:
        self._keys[key] = None
        self._keys.move_to_end(key)
        if len(self._keys) > self._size:
            self._keys.popitem(last=False)


class OrdersStream:
    """Consume the ``orders`` channel until ``stop()``; run it in the foreground or a thread.

    ``publish(task_name, args)`` enqueues a task (``app.send_task`` in production); ``clock``
    times keepalives, ``wall_clock`` stamps the login, ``rng`` jitters the backoff.
    """

    def __init__(
        self,
        url: str,
        credentials: Credentials,
        publish: Publish,
        *,
        timing: Timing = Timing(),
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        rng: Callable[[], float] = random.random,
        connect: Connect = websocket.create_connection,
        seen_size: int = 50_000,
        on_reconnect_loop: OnReconnectLoop | None = None,
    ) -> None:
        self.url = url
        self._credentials = credentials
        self._publish = publish
        self._timing = timing
        self._clock = clock
        self._wall_clock = wall_clock
        self._rng = rng
        self._connect = connect
        self._seen = SeenTrades(seen_size)
        self._stop = threading.Event()
        self.ready = threading.Event()
        self.connections = 0
        # Read by the metrics collector of ``python -m worker.orders_stream``.
        self.frames = 0
        self.updates = 0
        self.reconnect_reasons: Counter[str] = Counter()
        self._on_reconnect_loop = on_reconnect_loop
        self._loops = ReconnectWatch()

    def __repr__(self) -> str:
        return f"OrdersStream(url={self.url!r})"

    def stop(self) -> None:
        """Ask the loop to finish; it returns within ``timing.poll`` seconds."""
        self._stop.set()

    def run(self) -> None:
        """Connect, consume and reconnect until ``stop()``."""
        attempt = 0
        while not self._stop.is_set():
            self.connections += 1
            reason, healthy = self._session()
            if self._stop.is_set():
                break
            attempt = 0 if healthy else attempt + 1
            delay = 0.0  # the upgrade notice: reconnect at once
            if reason != "notice":
                t = self._timing
                delay = backoff(attempt, t.backoff_base, t.backoff_max, self._rng)
            log_event(log, "orders_stream.reconnecting", reason=reason, delay_s=round(delay, 3))
            self.reconnect_reasons[reason] += 1
            now = self._clock()
            if self._loops.note(now) and self._on_reconnect_loop is not None:
                self._on_reconnect_loop(self._loops.recent(now), reason)
            self._stop.wait(delay)
        log_event(log, "orders_stream.stopped", connections=self.connections)

    # One connection ------------------------------------------------------------------------

    def _session(self) -> tuple[str, bool]:
        """Run one connection; return why it ended and whether it got subscribed."""
        try:
            # UTF-8 is checked by the JSON parser, in C: websocket-client's own check is a
            # Python loop over every byte of every frame (a third of the stream's CPU).
            ws = self._connect(
                self.url, timeout=self._timing.connect_timeout, skip_utf8_validation=True
            )
        except (OSError, websocket.WebSocketException) as exc:
            log_event(log, "orders_stream.connect_failed", logging.WARNING, error=repr(exc))
            return "connect_failed", False
        subscribed = False
        try:
            ws.settimeout(self._timing.poll)
            self._login(ws)
            self._subscribe(ws)
            subscribed = True
            # Pushes sent while no connection listened are lost: let reconciliation catch up.
            self._send_task(SYNC_ACTIVE_ORDERS, [])
            log_event(log, "orders_stream.resync_requested", connection=self.connections)
            if not self.ready.is_set():
                log_event(log, "orders_stream.ready", url=self.url, channel="orders")
                self.ready.set()
            return self._listen(ws), True
        except (OSError, websocket.WebSocketException) as exc:
            log_event(log, "orders_stream.disconnected", logging.WARNING, error=repr(exc))
            return "disconnected", subscribed
        except LimitflowError as exc:
            log_event(log, "orders_stream.failed", logging.WARNING, error=str(exc))
            return type(exc).__name__, subscribed
        finally:
            _close(ws)

    def _login(self, ws: Any) -> None:
        args = ws_login_args(*self._credentials.values(), str(int(self._wall_clock())))
        ws.send(orjson.dumps({"op": "login", "args": [args]}).decode())
        self._await_event(ws, "login")

    def _subscribe(self, ws: Any) -> None:
        ws.send(orjson.dumps({"op": "subscribe", "args": [ORDERS_ARG]}).decode())
        self._await_event(ws, "subscribe")

    def _await_event(self, ws: Any, event: str) -> None:
        deadline = self._clock() + self._timing.reply_timeout
        while self._clock() < deadline and not self._stop.is_set():
            msg = self._recv_json(ws)
            if msg is None:
                continue
            got = msg.get("event")
            if got == event:
                code = str(msg.get("code", "0"))
                if code != "0":
                    raise error_for_code(code, str(msg.get("msg", "")), where=f"ws {event}")
                return
            if got == "error":
                code = str(msg.get("code", ""))
                raise error_for_code(code, str(msg.get("msg", "")), where=f"ws {event}")
        raise StreamError(f"no {event} reply within {self._timing.reply_timeout}s")

    def _recv_json(self, ws: Any) -> dict[str, Any] | None:
        """Return the next JSON message, ``None`` after a poll timeout or a non-JSON frame."""
        try:
            raw = _recv(ws)
        except websocket.WebSocketTimeoutException:
            return None
        if raw == b"":
            raise StreamError("closed by the server")
        try:
            msg = orjson.loads(raw)
        except ValueError:
            return None
        return msg if isinstance(msg, dict) else None

    def _listen(self, ws: Any) -> str:
        now = self._clock()
        keepalive = Keepalive(self._timing.ping_after, self._timing.pong_timeout, now)
        while not self._stop.is_set():
            due = keepalive.check(now)
            if due == PING:
                ws.send(PING)
                keepalive.sent(now)
            elif due is not None:
                log_event(log, "orders_stream.pong_missing", logging.WARNING)
                return "no_pong"
            try:
                raw = _recv(ws)
            except websocket.WebSocketTimeoutException:
                now = self._clock()
                continue
            if raw == b"":
                return "closed"
            now = self._clock()
            keepalive.received(now)  # any frame proves the link is alive
            self.frames += 1
            if raw == b"pong":
                continue
            reason = self._on_message(raw)
            if reason is not None:
                return reason
        return "stopped"

    def _on_message(self, raw: bytes) -> str | None:
        """Handle one frame; return a reason to reconnect, else ``None``."""
        try:
            msg = orjson.loads(raw)
        except ValueError:
            log_event(log, "orders_stream.bad_frame", logging.WARNING, size=len(raw))
            return None
        if not isinstance(msg, dict):
            return None
        event = msg.get("event")
        if event == "notice" and str(msg.get("code")) == UPGRADE_NOTICE:
            log_event(log, "orders_stream.upgrade_notice", code=UPGRADE_NOTICE)
            return "notice"
        if event in ("error", "channel-conn-count-error"):
            log_event(
                log,
                "orders_stream.server_error",
                logging.ERROR,
                kind=event,
                code=msg.get("code"),
                msg=msg.get("msg"),
            )
            return "server_error"
        arg = msg.get("arg")
        data = msg.get("data")
        if isinstance(arg, dict) and arg.get("channel") == "orders" and isinstance(data, list):
            for item in data:
                if isinstance(item, dict):
                    self._on_order(item)
        return None

    def _on_order(self, item: dict[str, Any]) -> None:
        try:
            snap = parse_order(item)
        except MalformedResponse as exc:
            log_event(
                log,
                "orders_stream.bad_order",
                logging.ERROR,
                ord_id=item.get("ordId"),
                error=str(exc),
            )
            return
        key = (snap.inst_id, snap.fill.trade_id) if snap.fill is not None else None
        if key is not None and key in self._seen:
            log_event(log, "orders_stream.duplicate_fill", logging.DEBUG, trade_id=key[1])
            return
        self._send_task(APPLY_ORDER_UPDATE, [snapshot_to_message(snap)])
        self.updates += 1
        if key is not None:
            self._seen.add(key)  # only once the broker has it: a failed send is not seen
        log_event(
            log,
            "orders_stream.order_update",
            logging.DEBUG,
            inst_id=snap.inst_id,
            ord_id=snap.ord_id,
            state=snap.state.value,
        )

    def _send_task(self, name: str, args: list[object]) -> None:
        try:
            self._publish(name, args)
        except Exception as exc:  # the broker client's errors have no common base we can name
            raise PublishFailed(f"cannot enqueue {name}: {type(exc).__name__}: {exc}") from exc


def _recv(ws: Any) -> bytes:
    """The next text or binary frame, as bytes (not decoded: a frame that is not UTF-8 is
    refused by the JSON parser like any other bad frame); ``b""`` once the server closes."""
    opcode, data = ws.recv_data()
    if opcode in (websocket.ABNF.OPCODE_TEXT, websocket.ABNF.OPCODE_BINARY):
        return bytes(data)
    return b""


def _close(ws: Any) -> None:
    """Close politely if the link still works, and always release the socket."""
    try:
        ws.close(timeout=0.5)
    except (OSError, websocket.WebSocketException):
        pass  # the peer is gone already; shutdown() below frees the socket
    finally:
        # websocket-client's close() is a no-op once it saw the peer's close frame.
        ws.shutdown()

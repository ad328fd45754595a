"""One OKX websocket connection, kept alive: subscribe, ping, reconnect, resubscribe.

OKX drops a connection that has received nothing from us for 30 s, however much it sends:
``worker.exchange.okx.keepalive`` sends the text ``ping`` whenever nothing was sent, or
nothing received, for ``ping_after`` seconds, and gives up when no answer follows within
``pong_timeout``.
Any close or error reconnects after an exponential backoff with jitter; the 64008 notice
(service upgrade) reconnects at once. Each new connection subscribes again. Reconnects that
come in a loop are reported once per window to ``on_reconnect_loop`` (an alert).
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import websocket

from feed.logs import log_event
from feed.subscriptions import REQUESTS_PER_HOUR, Arg, RateLimiter, subscribe_requests
from worker.exchange.okx.keepalive import (
    PING,
    UPGRADE_NOTICE,
    Keepalive,
    ReconnectWatch,
    backoff,
)

OnText = Callable[[bytes, int], "dict[str, Any] | None"]
OnSubscribed = Callable[[str, int, int], None]
OnReconnectLoop = Callable[[str, int, str], None]


@dataclass(frozen=True)
class Timing:
    """Keepalive and reconnect timing (tests shorten these)."""

    ping_after: float = 20.0
    pong_timeout: float = 10.0
    poll: float = 0.5
    connect_timeout: float = 10.0
    subscribe_timeout: float = 10.0
    backoff_base: float = 1.0
    backoff_max: float = 60.0
    healthy_after: float = 30.0


@dataclass
class _Acks:
    """Answers to this connection's subscribe requests."""

    acked: int = 0
    errors: int = 0


class Connection:
    """A websocket connection for one set of subscription ``args``; run it in a thread."""

    def __init__(
        self,
        name: str,
        url: str,
        args: list[Arg],
        on_text: OnText,
        on_subscribed: OnSubscribed,
        connect_limiter: RateLimiter,
        stop: threading.Event,
        timing: Timing | None = None,
        on_reconnect_loop: OnReconnectLoop | None = None,
    ) -> None:
        self.name = name
        self.url = url
        self.args = args
        self.on_text = on_text
        self.on_subscribed = on_subscribed
        self.connect_limiter = connect_limiter
        self.stop = stop
        self.timing = timing or Timing()
        self.on_reconnect_loop = on_reconnect_loop
        self.connects = 0
        self.frames = 0  # received (read by the metrics collector)
        self.reconnect_reasons: dict[str, int] = {}
        self._rng = random.Random()
        self._loops = ReconnectWatch()

    def run(self) -> None:
        """Connect, stream and reconnect until ``stop`` is set."""
        attempt = 0
        while not self.stop.is_set():
            if not self.connect_limiter.acquire(self.stop):
                break
            started = time.monotonic()
            reason = self._connect_and_stream()
            if self.stop.is_set():
                break
            self.reconnect_reasons[reason] = self.reconnect_reasons.get(reason, 0) + 1
            if reason == "notice" or time.monotonic() - started >= self.timing.healthy_after:
                attempt = 0
            delay = 0.0  # the upgrade notice: reconnect at once
            if reason != "notice":
                t = self.timing
                delay = backoff(attempt, t.backoff_base, t.backoff_max, self._rng.random)
            attempt += 1
            log_event(
                "feed.ws_reconnect",
                logging.WARNING,
                conn=self.name,
                reason=reason,
                delay_s=round(delay, 3),
            )
            now = time.monotonic()
            if self._loops.note(now) and self.on_reconnect_loop is not None:
                self.on_reconnect_loop(self.name, self._loops.recent(now), reason)
            self.stop.wait(delay)

    def _connect_and_stream(self) -> str:
        try:
            ws = websocket.create_connection(
                self.url, timeout=self.timing.connect_timeout, skip_utf8_validation=True
            )
        except (websocket.WebSocketException, OSError) as exc:
            log_event("feed.ws_connect_failed", logging.WARNING, conn=self.name, error=repr(exc))
            return "connect_failed"
        self.connects += 1
        try:
            ws.settimeout(self.timing.poll)
            return self._stream(ws)
        except (websocket.WebSocketException, OSError) as exc:
            log_event("feed.ws_error", logging.WARNING, conn=self.name, error=repr(exc))
            return "error"
        finally:
            with contextlib.suppress(websocket.WebSocketException, OSError):
                ws.close(timeout=1)
            ws.shutdown()  # type: ignore[no-untyped-call]  # close() skips it after a peer close

    def _subscribe(
        self, ws: websocket.WebSocket, limiter: RateLimiter, keepalive: Keepalive
    ) -> int:
        sent = 0
        for request in subscribe_requests(self.args):
            if not limiter.acquire(self.stop):
                break
            ws.send(request.decode())
            keepalive.sent(time.monotonic())
            sent += 1
        log_event("feed.ws_subscribing", conn=self.name, args=len(self.args), requests=sent)
        return sent

    def _stream(self, ws: websocket.WebSocket) -> str:
        timing = self.timing
        keepalive = Keepalive(timing.ping_after, timing.pong_timeout, time.monotonic())
        self._subscribe(ws, RateLimiter(REQUESTS_PER_HOUR, 3600.0), keepalive)
        acks = _Acks()
        reported = False
        now = time.monotonic()
        sub_deadline = now + timing.subscribe_timeout
        while not self.stop.is_set():
            if not reported and now >= sub_deadline:
                reported = True
                self.on_subscribed(self.name, acks.acked, len(self.args))
            if not self._keep_alive(ws, keepalive, now):
                return "pong_timeout"
            try:
                opcode, frame = ws.recv_data_frame(True)
            except websocket.WebSocketTimeoutException:
                now = time.monotonic()
                continue
            now = time.monotonic()
            keepalive.received(now)
            self.frames += 1
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                return "closed"
            event = self._event(opcode, frame.data)
            if event is None:
                continue
            if self._on_event(event, acks):
                return "notice"
            if not reported and acks.acked + acks.errors >= len(self.args):
                reported = True
                self.on_subscribed(self.name, acks.acked, len(self.args))
        return "stopped"

    @staticmethod
    def _keep_alive(ws: websocket.WebSocket, keepalive: Keepalive, now: float) -> bool:
        """Send a ping when one is due; False when the pong is overdue."""
        due = keepalive.check(now)
        if due is None:
            return True
        if due != PING:
            return False
        ws.send(PING)
        keepalive.sent(now)
        return True

    def _event(self, opcode: int, data: bytes) -> dict[str, Any] | None:
        """The event of a text or binary frame, from ``on_text``; None for anything else."""
        if opcode not in (websocket.ABNF.OPCODE_TEXT, websocket.ABNF.OPCODE_BINARY):
            return None
        if data == b"pong":
            return None
        return self.on_text(data, int(time.time() * 1000))

    def _on_event(self, event: dict[str, Any], acks: _Acks) -> bool:
        """Count a subscribe ack or error and log errors and notices; True on the upgrade notice."""
        kind = event.get("event")
        if kind == "subscribe":
            acks.acked += 1
        elif kind == "error":
            acks.errors += 1
            log_event(
                "feed.ws_error_event",
                logging.WARNING,
                conn=self.name,
                code=event.get("code"),
                msg=event.get("msg"),
            )
        elif kind == "notice":
            log_event("feed.ws_notice", logging.WARNING, conn=self.name, code=event.get("code"))
            return str(event.get("code")) == UPGRADE_NOTICE
        return False

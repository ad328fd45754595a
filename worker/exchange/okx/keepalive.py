"""Keeping an OKX websocket alive, shared by the feed's connections and the orders stream.

OKX closes a connection that has received nothing from its client for 30 s, however much it
sends itself; and a client should not trust a connection it has heard nothing from. So the
text ``ping`` goes out whenever nothing was *sent* for ``ping_after`` seconds (a feed that
only listens would otherwise be closed every 30 s) as well as when nothing was *received*
for that long; a connection that answers nothing within ``pong_timeout`` after a ping is
dead. Any frame received counts as an answer.

A connection that ends reconnects after ``backoff`` (exponential, with jitter), or at once
after the ``UPGRADE_NOTICE``. ``ReconnectWatch`` tells a connection that keeps dropping (a
reconnect loop) from one that reconnects now and then, so that only the first is worth an
alert.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

PING = "ping"
UPGRADE_NOTICE = "64008"  # OKX's notice of a service upgrade: reconnect now, without backoff


def backoff(attempt: int, base: float, cap: float, rng: Callable[[], float]) -> float:
    """Half to all of ``base * 2**attempt`` seconds, capped at ``cap``; ``rng()`` is in [0, 1)."""
    ceiling = min(cap, base * 2.0 ** min(attempt, 30))
    return ceiling * (0.5 + rng() / 2)


class Keepalive:
    """When to send ``ping`` and when to give up; the caller owns the socket and the clock.

    Call ``sent(now)`` after every frame sent, ``received(now)`` after every frame received,
    and ``check(now)`` on every turn of the receive loop (frames or poll timeouts): it returns
    ``"ping"`` when a ping is due (the caller sends it, then calls ``sent``), ``"dead"`` when
    the last ping went unanswered, else ``None``.
    """

    __slots__ = ("_due", "last_rx", "last_tx", "ping_after", "ping_sent", "pong_timeout")

    def __init__(self, ping_after: float, pong_timeout: float, now: float) -> None:
        self.ping_after = ping_after
        self.pong_timeout = pong_timeout
        self.last_rx = now
        self.last_tx = now
        self.ping_sent: float | None = None
        self._due = now + ping_after  # the earliest time check() has anything to do

    def sent(self, now: float) -> None:
        self.last_tx = now
        self._schedule()

    def received(self, now: float) -> None:
        self.last_rx = now
        if self.ping_sent is not None:
            self.ping_sent = None
            self._schedule()

    def check(self, now: float) -> str | None:
        if now < self._due:  # the hot path: one comparison per frame
            return None
        if self.ping_sent is not None:
            return "dead" if now - self.ping_sent >= self.pong_timeout else None
        if now - self.last_rx >= self.ping_after or now - self.last_tx >= self.ping_after:
            self.ping_sent = now
            self._due = now + self.pong_timeout
            return PING
        self._schedule()
        return None

    def _schedule(self) -> None:
        if self.ping_sent is not None:
            self._due = self.ping_sent + self.pong_timeout
        else:
            self._due = min(self.last_rx, self.last_tx) + self.ping_after


class ReconnectWatch:
    """Say when reconnects come in a loop: ``threshold`` within ``window`` seconds.

    ``note(now)`` records one reconnect and returns True when it completes a loop that was
    not reported in the last ``window`` seconds (so a loop is reported once per window).
    """

    def __init__(self, threshold: int = 5, window: float = 600.0) -> None:
        self.threshold = threshold
        self.window = window
        self._times: deque[float] = deque(maxlen=threshold)
        self._reported_at: float | None = None

    def note(self, now: float) -> bool:
        self._times.append(now)
        if len(self._times) < self.threshold or now - self._times[0] > self.window:
            return False
        if self._reported_at is not None and now - self._reported_at < self.window:
            return False
        self._reported_at = now
        return True

    def recent(self, now: float) -> int:
        """Reconnects within the last ``window`` seconds (at most ``threshold``)."""
        return sum(1 for t in self._times if now - t <= self.window)

"""The simulated clock: runs at ``speed`` times real time, can be paused and advanced."""

from __future__ import annotations

import time


class SimClock:
    """Milliseconds of simulated time since the epoch.

    ``speed`` 1 follows real time; 60 runs a minute per second; 0 stands still unless the
    market driver or a test moves it (``advance`` / ``set``).
    """

    def __init__(self, start_ms: int | None = None, speed: float = 1.0, paused: bool = False):
        self.speed = speed
        self.paused = paused
        self._base_ms = float(start_ms if start_ms is not None else int(time.time() * 1000))
        self._base_real = time.monotonic()

    def now_ms(self) -> int:
        return int(self._now())

    def _now(self) -> float:
        if self.paused or self.speed <= 0:
            return self._base_ms
        return self._base_ms + (time.monotonic() - self._base_real) * 1000.0 * self.speed

    def _rebase(self, sim_ms: float) -> None:
        self._base_ms = sim_ms
        self._base_real = time.monotonic()

    def advance(self, ms: float) -> None:
        self._rebase(self._now() + ms)

    def set(self, ms: int) -> None:
        """Move to ``ms`` (never backwards)."""
        self._rebase(max(self._now(), float(ms)))

    def restart(self, ms: int) -> None:
        """Move to ``ms`` even backwards (a test's fresh start; never in a running market)."""
        self._rebase(float(ms))

    def pause(self) -> None:
        self._rebase(self._now())
        self.paused = True

    def resume(self) -> None:
        self._rebase(self._now())
        self.paused = False

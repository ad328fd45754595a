"""``original_gap`` (Gap): buy at the last price once it is ``gap_pct`` below the highest last
price of the trailing ``gap_window_seconds``; one buy per instrument per epoch-aligned window.

The trailing maximum is a monotonic deque over time slots of ``window / SLOTS`` ms: a slot
keeps only its highest price and a price is dropped once a later one is at least as high, so
the deque never holds more than ``SLOTS + 1`` entries whatever the tick rate. The window's
edge is exact to one slot (under 0.2 % of the window).
"""

from __future__ import annotations

from collections import deque
from decimal import Decimal

from feed.state import InstrumentState, Tick
from feed.strategies.base import Candidate, window_bucket
from worker.strategy_config import OriginalGapParams

STRATEGY = "original_gap"
SLOTS = 512


class GapWindow:
    """The maximum of the last price over a sliding window, in bounded memory."""

    __slots__ = ("_entries", "floor", "high", "limit", "nslots", "slot_ms", "window_ms")

    def __init__(self, window_ms: int) -> None:
        self.window_ms = window_ms
        self.slot_ms = max(1, window_ms // SLOTS)
        self.nslots = -(-window_ms // self.slot_ms)
        self._entries: deque[tuple[int, Decimal]] = deque()
        # The maximum as of the last evaluation (``Gap.evaluate`` sets it; the closest-approach
        # tracker reads it) and the strategy's trigger price for it, kept until the maximum
        # changes (most ticks do not change it: one multiplication saved per tick).
        self.high: Decimal | None = None
        self.limit = Decimal(0)
        # A tick above the floor needs no closer look: the trigger price, or higher while the
        # closest approach is tracked (``feed.approach``: its gate, kept there).
        self.floor = self.limit

    def push(self, ts: int, px: Decimal) -> Decimal:
        """Add a price at ``ts``; return the maximum over the window ending at ``ts``."""
        entries = self._entries
        slot = ts // self.slot_ms
        while entries and entries[-1][1] <= px:
            entries.pop()
        if not entries or entries[-1][0] != slot:
            entries.append((slot, px))
        oldest = slot - self.nslots
        while entries[0][0] <= oldest:
            entries.popleft()
        return entries[0][1]

    def __len__(self) -> int:
        return len(self._entries)


class Gap:
    """The strategy with its parameters; ``keep`` (1 - gap_pct) is computed once."""

    __slots__ = ("keep", "params", "window_ms")

    def __init__(self, params: OriginalGapParams) -> None:
        self.params = params
        self.keep = 1 - params.gap_pct
        self.window_ms = params.gap_window_seconds * 1000

    def evaluate(self, state: InstrumentState, tick: Tick) -> Candidate | None:
        """Feed ``tick`` into the instrument's window; return the buy it triggers, if any."""
        window = state.gap
        if window is None or window.window_ms != self.window_ms:
            window = state.gap = GapWindow(self.window_ms)
        high = window.push(tick.ts, tick.last)
        if high is not window.high:
            window.high, window.limit = high, high * self.keep
            watch = state.approach  # closest approaches, when tracked (``feed.approach``)
            if watch is None:
                window.floor = window.limit
            else:
                window.floor = high  # until the tracker's gate is recomputed for this high
                if tick.last is high and watch.window.ref is not None:
                    return None  # the new high itself: no closer than the window's closest
        if tick.last > window.floor:
            return None
        if state.approach is not None:
            state.approach.look_gap(state, tick)
        if tick.last > window.limit:
            return None
        window_ms = self.window_ms
        key = tick.ts // window_ms
        if state.fired.get(STRATEGY) == key:
            return None
        bucket = window_bucket(key * window_ms, self.params.gap_window_seconds)
        return Candidate(STRATEGY, tick.inst_id, key, bucket, tick.last)

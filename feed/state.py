"""Per-instrument market state: the only memory the strategies read.

Everything here is keyed by instrument (a fixed, configured set) and holds a constant number
of values per instrument, so memory is bounded by the instrument count. Time is never read
here: every timestamp comes from the exchange's messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from worker.domain.money import InstrumentRules

if TYPE_CHECKING:
    from feed.strategies.gap import GapWindow

HOUR_MS = 3_600_000
DAY_MS = 86_400_000

# Where an hour open came from; a higher rank replaces a lower one for the same hour.
RANK_TICK = 0  # the first tick seen in the hour: used only when nothing better is known
RANK_REST = 1  # GET /api/v5/market/candles at start-up
RANK_CANDLE = 2  # the candle1H channel: the exchange's own open, wins over REST


@dataclass(slots=True)
class Tick:
    """One ticker update, parsed. Prices are exact; optional fields may be missing."""

    inst_id: str
    last: Decimal
    ts: int
    bid: Decimal | None = None
    sod_utc0: Decimal | None = None
    raw: dict[str, Any] | None = None  # the push item, for fields parsed only when needed


class InstrumentState:
    """What the feed knows about one instrument right now."""

    __slots__ = (
        "approach",
        "bid",
        "fired",
        "gap",
        "hour_idx",
        "hour_open",
        "hour_rank",
        "inst_id",
        "last",
        "last_ts",
        "rules",
        "sod",
        "sod_text",
    )

    def __init__(self, rules: InstrumentRules) -> None:
        self.inst_id = rules.inst_id
        self.rules = rules
        self.last: Decimal | None = None
        self.bid: Decimal | None = None
        self.last_ts = 0
        self.hour_idx = -1  # UTC hour number (epoch ms // HOUR_MS) that hour_open belongs to
        self.hour_open: Decimal | None = None
        self.hour_rank = -1
        # strategy -> the last bucket key it fired in; buckets only move forward (timestamps
        # going backwards are refused), so one key per strategy is all the dedup we need.
        self.fired: dict[str, int] = {}
        self.gap: GapWindow | None = None
        # The last sodUtc0 parsed, with its text: a memo for parse_ticker (the value
        # changes once a day, and parsing decimals is the feed's largest cost).
        self.sod_text: str | None = None
        self.sod: Decimal | None = None
        # This instrument's closest-approach record (``feed.approach``), None when not tracked.
        self.approach: Any = None

    def set_hour_open(self, hour_idx: int, px: Decimal, rank: int) -> bool:
        """Record ``px`` as the open of ``hour_idx`` unless a better source already did."""
        if hour_idx > self.hour_idx or (hour_idx == self.hour_idx and rank >= self.hour_rank):
            self.hour_idx = hour_idx
            self.hour_open = px
            self.hour_rank = rank
            return True
        return False

    def open_for(self, ts: int) -> Decimal | None:
        """The hour open for the hour containing ``ts``, if known."""
        return self.hour_open if ts // HOUR_MS == self.hour_idx else None

    def apply(self, tick: Tick) -> None:
        """Take ``tick`` as the latest price (the caller checked its timestamp)."""
        hour = tick.ts // HOUR_MS
        # The first tick of an hour stands in for its open only if we were already watching
        # in an earlier hour: a feed started mid-hour has not seen the hour's first trade.
        if hour > self.hour_idx and self.last_ts and self.last_ts // HOUR_MS < hour:
            self.set_hour_open(hour, tick.last, RANK_TICK)
        self.last = tick.last
        self.last_ts = tick.ts
        if tick.bid is not None:
            self.bid = tick.bid
        # Closest approaches (``feed.approach``): most ticks are above the hour's gate and
        # inside the running buckets, and cost these two comparisons.
        watch = self.approach
        if watch is not None and (tick.ts >= watch.next_end or tick.last < watch.h_gate):
            watch.look(self, tick)

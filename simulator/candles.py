"""Candles built from ticks: OKX bar names, bucket alignment, bounded series per bar."""

from __future__ import annotations

from collections import deque
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from simulator.decimals import ZERO, fmt

MINUTE = 60_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR
_UTC8 = 8 * HOUR
_MONDAY_OFFSET = 4 * DAY  # the epoch was a Thursday

_FIXED: dict[str, int] = {
    "1m": MINUTE, "3m": 3 * MINUTE, "5m": 5 * MINUTE, "15m": 15 * MINUTE,
    "30m": 30 * MINUTE, "1H": HOUR, "2H": 2 * HOUR, "4H": 4 * HOUR, "6H": 6 * HOUR,
    "12H": 12 * HOUR, "1D": DAY, "2D": 2 * DAY, "3D": 3 * DAY, "5D": 5 * DAY, "1W": 7 * DAY,
}  # fmt: skip
_MONTHS = {"1M": 1, "3M": 3}
MAX_ROWS = 1440


def is_bar(bar: str) -> bool:
    plain = bar.removesuffix("utc")
    if bar.endswith("utc") and plain not in ("6H", "12H", "1D", "2D", "3D", "5D", "1W", "1M", "3M"):
        return False
    return plain in _FIXED or plain in _MONTHS


def bucket_start(bar: str, ts: int) -> int:
    """Open time (ms) of the ``bar`` candle containing ``ts``.

    Bars of 6H and longer are aligned to UTC+8 unless they carry the ``utc`` suffix, as on
    OKX; weeks start on Monday.
    """
    plain = bar.removesuffix("utc")
    offset = 0 if bar.endswith("utc") or plain in ("1m", "3m", "5m", "15m", "30m") else _UTC8
    if plain in _MONTHS:
        local = datetime.fromtimestamp(ts / 1000, UTC) + timedelta(milliseconds=offset)
        month = (local.month - 1) // _MONTHS[plain] * _MONTHS[plain] + 1
        start = datetime(local.year, month, 1, tzinfo=UTC) - timedelta(milliseconds=offset)
        return int(start.timestamp() * 1000)
    size = _FIXED[plain]
    extra = _MONDAY_OFFSET if plain == "1W" else 0
    shifted = ts + offset - extra
    return shifted - shifted % size - offset + extra


class Candle:
    __slots__ = ("c", "h", "l", "o", "start", "vol", "vol_ccy")

    def __init__(self, start: int, px: Decimal):
        self.start = start
        self.o = self.h = self.l = self.c = px
        self.vol = ZERO
        self.vol_ccy = ZERO

    def add(self, px: Decimal, vol: Decimal, vol_ccy: Decimal) -> None:
        self.h = max(self.h, px)
        self.l = min(self.l, px)
        self.c = px
        self.vol += vol
        self.vol_ccy += vol_ccy

    def row(self, confirm: bool) -> list[str]:
        """``[ts, o, h, l, c, vol, volCcy, volCcyQuote, confirm]`` (SPOT: volCcy is quote)."""
        return [
            str(self.start), fmt(self.o), fmt(self.h), fmt(self.l), fmt(self.c),
            fmt(self.vol), fmt(self.vol_ccy), fmt(self.vol_ccy), "1" if confirm else "0",
        ]  # fmt: skip


class CandleSeries:
    """The newest ``MAX_ROWS`` candles of one bar; the last one is still open."""

    def __init__(self, bar: str):
        self.bar = bar
        self.candles: deque[Candle] = deque(maxlen=MAX_ROWS)

    def add(self, ts: int, px: Decimal, vol: Decimal, vol_ccy: Decimal) -> Candle | None:
        """Add a tick; return the candle it closed, if it opened a new one."""
        start = bucket_start(self.bar, ts)
        current = self.candles[-1] if self.candles else None
        if current is not None and current.start == start:
            current.add(px, vol, vol_ccy)
            return None
        if current is not None and current.start > start:
            current.add(px, vol, vol_ccy)  # a late tick counts in the open candle
            return None
        fresh = Candle(start, px)
        fresh.add(px, vol, vol_ccy)
        self.candles.append(fresh)
        return current

    def put(self, candle: Candle) -> None:
        """Insert or replace a whole candle (replayed pushes)."""
        if self.candles and self.candles[-1].start == candle.start:
            self.candles[-1] = candle
        elif not self.candles or self.candles[-1].start < candle.start:
            self.candles.append(candle)

    def rows(
        self, limit: int, after: int | None = None, before: int | None = None
    ) -> list[list[str]]:
        """Newest first; ``after`` = older than that ts, ``before`` = newer than that ts."""
        out: list[list[str]] = []
        last = len(self.candles) - 1
        for index in range(last, -1, -1):
            candle = self.candles[index]
            if after is not None and candle.start >= after:
                continue
            if before is not None and candle.start <= before:
                break
            out.append(candle.row(confirm=index != last))
            if len(out) >= limit:
                break
        return out


def aggregate(source: CandleSeries, bar: str) -> CandleSeries:
    """Build a longer bar's series from a shorter one (for bars first asked for late)."""
    series = CandleSeries(bar)
    for candle in source.candles:
        start = bucket_start(bar, candle.start)
        current = series.candles[-1] if series.candles else None
        if current is None or current.start != start:
            current = Candle(start, candle.o)
            series.candles.append(current)
        current.h = max(current.h, candle.h)
        current.l = min(current.l, candle.l)
        current.c = candle.c
        current.vol += candle.vol
        current.vol_ccy += candle.vol_ccy
    return series

"""Per-instrument market state: best bid/ask, last trade, candles and consistent 24h stats."""

from __future__ import annotations

from collections import deque
from decimal import Decimal
from typing import Any

from simulator.candles import DAY, Candle, CandleSeries, aggregate, bucket_start
from simulator.decimals import ZERO, fmt, parse_decimal
from simulator.instruments import Instrument
from simulator.matching import Quote

# Series kept from the first tick; other bars are aggregated from these when first asked for.
_ALWAYS = ("1m", "1H", "1D", "1Dutc")


def _source_bar(bar: str) -> str:
    plain = bar.removesuffix("utc")
    if plain in ("1m", "3m", "5m", "15m", "30m"):
        return "1m"
    if plain in ("1H", "2H", "4H", "6H", "12H"):
        return "1H"
    return "1Dutc" if bar.endswith("utc") else "1D"


class InstrumentMarket:
    def __init__(self, inst: Instrument):
        self.inst = inst
        self.last = inst.start_px
        self.last_sz = ZERO
        self.bid = self.ask = inst.start_px
        self.bid_sz = self.ask_sz = ZERO
        self.ts = 0
        self.series: dict[str, CandleSeries] = {bar: CandleSeries(bar) for bar in _ALWAYS}
        # Closed minutes of the last 24h, with running volume sums and monotonic deques
        # for the sliding high and low (so each tick costs O(1)).
        self._window: deque[Candle] = deque()
        self._highs: deque[Candle] = deque()
        self._lows: deque[Candle] = deque()
        self._closed_vol = ZERO
        self._closed_vol_ccy = ZERO
        # Recorded 24h stats (replay) win over computed ones.
        self.recorded: dict[str, str] | None = None

    def quote(self) -> Quote:
        return Quote(self.last, self.bid, self.ask, self.bid_sz, self.ask_sz)

    def tick(
        self,
        ts: int,
        last: Decimal,
        bid: Decimal,
        ask: Decimal,
        bid_sz: Decimal,
        ask_sz: Decimal,
        trade_sz: Decimal,
    ) -> dict[str, Candle]:
        """Apply one price step; return the candles it closed, by bar."""
        self.ts = max(self.ts, ts)
        self.last, self.bid, self.ask = last, bid, ask
        self.bid_sz, self.ask_sz, self.last_sz = bid_sz, ask_sz, trade_sz
        closed: dict[str, Candle] = {}
        vol_ccy = trade_sz * last
        for bar, series in self.series.items():
            done = series.add(ts, last, trade_sz, vol_ccy)
            if done is not None:
                closed[bar] = done
        if "1m" in closed:
            self._close_minute(closed["1m"])
        return closed

    def candles(self, bar: str) -> CandleSeries:
        """The series of ``bar``, aggregated from a kept one the first time it is asked for."""
        series = self.series.get(bar)
        if series is None:
            series = aggregate(self.series[_source_bar(bar)], bar)
            self.series[bar] = series
        return series

    def _close_minute(self, candle: Candle) -> None:
        self._window.append(candle)
        self._closed_vol += candle.vol
        self._closed_vol_ccy += candle.vol_ccy
        while self._highs and self._highs[-1].h <= candle.h:
            self._highs.pop()
        self._highs.append(candle)
        while self._lows and self._lows[-1].l >= candle.l:
            self._lows.pop()
        self._lows.append(candle)
        since = self.ts - DAY
        while self._window and self._window[0].start < since:
            old = self._window.popleft()
            self._closed_vol -= old.vol
            self._closed_vol_ccy -= old.vol_ccy
            if self._highs and self._highs[0] is old:
                self._highs.popleft()
            if self._lows and self._lows[0] is old:
                self._lows.popleft()

    def stats_24h(self) -> dict[str, str]:
        if self.recorded is not None:
            return self.recorded
        minutes = self.series["1m"].candles
        current = minutes[-1] if minutes else None
        oldest = self._window[0] if self._window else current
        highs = [c.h for c in (self._highs[0] if self._highs else None, current) if c]
        lows = [c.l for c in (self._lows[0] if self._lows else None, current) if c]
        vol = self._closed_vol + (current.vol if current else ZERO)
        vol_ccy = self._closed_vol_ccy + (current.vol_ccy if current else ZERO)
        return {
            "open24h": fmt(oldest.o if oldest else self.last),
            "high24h": fmt(max(highs, default=self.last)),
            "low24h": fmt(min(lows, default=self.last)),
            "volCcy24h": fmt(vol_ccy),
            "vol24h": fmt(vol),
            "sodUtc0": fmt(self._day_open("1Dutc")),
            "sodUtc8": fmt(self._day_open("1D")),
        }

    def _day_open(self, bar: str) -> Decimal:
        candles = self.series[bar].candles
        if candles and candles[-1].start == bucket_start(bar, self.ts):
            return candles[-1].o
        return self.last

    def ticker(self) -> dict[str, Any]:
        """The 16-field ticker of the ``tickers`` channel and GET market/ticker(s)."""
        stats = self.stats_24h()
        return {
            "instType": "SPOT",
            "instId": self.inst.inst_id,
            "last": fmt(self.last),
            "lastSz": fmt(self.last_sz),
            "askPx": fmt(self.ask),
            "askSz": fmt(self.ask_sz),
            "bidPx": fmt(self.bid),
            "bidSz": fmt(self.bid_sz),
            "open24h": stats["open24h"],
            "high24h": stats["high24h"],
            "low24h": stats["low24h"],
            "volCcy24h": stats["volCcy24h"],
            "vol24h": stats["vol24h"],
            "ts": str(self.ts),
            "sodUtc0": stats["sodUtc0"],
            "sodUtc8": stats["sodUtc8"],
        }

    def apply_ticker(self, data: dict[str, Any]) -> dict[str, Candle]:
        """Take a recorded ticker as the market state (its 24h stats are used as they are)."""
        last = parse_decimal(data.get("last")) or self.last
        bid = parse_decimal(data.get("bidPx")) or last
        ask = parse_decimal(data.get("askPx")) or last
        bid_sz = parse_decimal(data.get("bidSz")) or ZERO
        ask_sz = parse_decimal(data.get("askSz")) or ZERO
        ts = int(data.get("ts") or self.ts)
        closed = self.tick(ts, last, bid, ask, bid_sz, ask_sz, ZERO)
        self.last_sz = parse_decimal(data.get("lastSz")) or ZERO
        if all(isinstance(data.get(k), str) for k in _STAT_KEYS):
            self.recorded = {k: data[k] for k in _STAT_KEYS}
        return closed


_STAT_KEYS = ("open24h", "high24h", "low24h", "volCcy24h", "vol24h", "sodUtc0", "sodUtc8")

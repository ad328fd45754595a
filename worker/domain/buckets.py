"""Trigger buckets: the span in which a strategy buys a slot at most once (DESIGN
"Strategies"), named as in signal ids. The feed names them the same way
(``feed.strategies.base``); ``python -m worker why`` asks about the one containing a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from worker.domain.errors import ConfigError
from worker.domain.strategies import BY_ID, GAP, STABLE

HOUR_S = 3600
DAY_S = 86400


@dataclass(frozen=True, slots=True)
class Bucket:
    """One strategy's trigger bucket: ``[start, end)``, its kind and its name in signal ids."""

    strategy: str
    kind: str  # hour | window | day
    start: datetime
    end: datetime
    name: str

    def signal_id(self, inst_id: str) -> str:
        return f"{self.strategy}:{inst_id}:{self.name}"

    def describe(self) -> str:
        """``the hour 08:00-09:00 UTC of 2026-11-24``, ``the UTC day 2026-11-24``, ..."""
        day = f"{self.start:%Y-%m-%d}"
        if self.kind == "day":
            return f"the UTC day {day}"
        span = f"{self.start:%H:%M}-{self.end:%H:%M}"
        if self.kind == "window":
            seconds = int((self.end - self.start).total_seconds())
            span = f"{self.start:%H:%M:%S}-{self.end:%H:%M:%S}"
            return f"the {seconds} s window {span} UTC of {day}"
        return f"the hour {span} UTC of {day}"


def bucket_at(strategy: str, at: datetime, gap_window_seconds: int) -> Bucket:
    """The bucket of ``strategy`` that contains ``at`` (Gap's windows are
    ``gap_window_seconds`` wide, as configured)."""
    seconds = int(at.timestamp())
    if strategy == GAP.id:
        width = gap_window_seconds
        start = _utc(seconds - seconds % width)
        name = f"{start:%Y%m%dT%H%M%S}w{width}"
        return Bucket(strategy, "window", start, start + timedelta(seconds=width), name)
    if strategy == STABLE.id:
        start = _utc(seconds - seconds % DAY_S)
        return Bucket(strategy, "day", start, start + timedelta(days=1), f"{start:%Y%m%d}")
    if strategy not in BY_ID:
        raise ConfigError(f"unknown strategy {strategy!r}")
    start = _utc(seconds - seconds % HOUR_S)
    return Bucket(strategy, "hour", start, start + timedelta(hours=1), f"{start:%Y%m%d%H}")


def _utc(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)

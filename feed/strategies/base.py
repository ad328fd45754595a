"""What a strategy returns, and the one place where a candidate is sized for the exchange."""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal

from worker.domain.money import InstrumentRules


@dataclass(frozen=True, slots=True)
class Candidate:
    """A buy a strategy wants: ``bucket_key`` orders buckets, ``bucket`` names one in ids."""

    strategy: str
    inst_id: str
    bucket_key: int
    bucket: str
    px: Decimal


@dataclass(frozen=True, slots=True)
class Sized:
    """A candidate priced to ``tickSz`` and checked against ``lotSz``/``minSz``."""

    px: Decimal
    quote_sz: Decimal
    base_sz: Decimal


def size_order(rules: InstrumentRules, px: Decimal, order_usdt: Decimal) -> Sized | None:
    """Round ``px`` down to ``tickSz``; ``None`` when ``order_usdt`` buys less than ``minSz``."""
    px = rules.price_down(px)
    if px <= 0:
        return None
    base = rules.size_down(order_usdt / px)
    if base < rules.min_sz or base <= 0:
        return None
    return Sized(px=px, quote_sz=order_usdt, base_sz=base)


def hour_bucket(hour_idx: int) -> str:
    """``YYYYMMDDHH`` (UTC) of an hour number."""
    return time.strftime("%Y%m%d%H", time.gmtime(hour_idx * 3600))


def day_bucket(day_idx: int) -> str:
    """``YYYYMMDD`` (UTC) of a day number."""
    return time.strftime("%Y%m%d", time.gmtime(day_idx * 86400))


def window_bucket(start_ms: int, window_seconds: int) -> str:
    """``YYYYMMDDTHHMMSS`` (UTC) of a window's start, with its length: ``...w60``."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(start_ms // 1000))
    return f"{stamp}w{window_seconds}"

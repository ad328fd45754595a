"""What a strategy returns, and the one place where a candidate is sized for the exchange."""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal

from worker.domain.money import InstrumentRules
from worker.domain.sizing import BELOW_MIN_SIZE, Unsizable, size_buy


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
    """A candidate priced to ``tickSz``, to be bought for ``quote_sz``."""

    px: Decimal
    quote_sz: Decimal


def size_order(
    rules: InstrumentRules,
    px: Decimal,
    order_usdt: Decimal,
    *,
    fee_rate: Decimal,
    max_order_usdt: Decimal | None = None,
) -> Sized | Unsizable:
    """Size a candidate by the workers' rule (``worker.domain.sizing``).

    ``Unsizable`` only when the workers would skip it as ``below_min_size`` (it cannot buy a
    sellable lot within ``order_usdt`` and ``max_order_usdt``); any other limit is the
    workers' to apply and record.
    """
    cap = max_order_usdt if max_order_usdt is not None else order_usdt
    result = size_buy(rules, px, quote_sz=order_usdt, fee_rate=fee_rate, max_order_usdt=cap)
    if isinstance(result, Unsizable):
        if result.reason == BELOW_MIN_SIZE:
            return result
        return Sized(px=rules.price_down(px), quote_sz=order_usdt)
    return Sized(px=result.px, quote_sz=order_usdt)


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

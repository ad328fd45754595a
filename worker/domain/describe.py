"""How facts are written in sentences: times in UTC, ages, prices and percentages."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

_PLACES = Decimal("1E-12")


def when(dt: datetime) -> str:
    """``2026-11-24 08:27:03 UTC``."""
    return dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def clock(dt: datetime) -> str:
    """``08:27:03`` (UTC), for times within a day already named."""
    return dt.astimezone(UTC).strftime("%H:%M:%S")


def age(seconds: float) -> str:
    """A duration as a person says it: ``3.2 s``, ``90 s``, ``15 min``, ``2.1 h``, ``3 days``."""
    seconds = abs(seconds)
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.0f} days"


def num(value: Decimal) -> str:
    """A price or size as written for people: ``61,234.5``, ``0.00016``."""
    d = value.quantize(_PLACES) if value.as_tuple().exponent < -12 else value  # type: ignore[operator]
    d = d.normalize()
    if d == d.to_integral_value():
        d = d.quantize(Decimal(1))
    return f"{d:,f}"


def pct(fraction: Decimal, places: int = 1) -> str:
    """A fraction as a percentage: ``Decimal("0.021")`` -> ``2.1 %``."""
    return f"{(fraction * 100).quantize(Decimal(1).scaleb(-places)):f} %"

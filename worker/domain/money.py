"""Exact money: instrument rules and the one place where prices and sizes are rounded."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation


def to_decimal(value: object, field: str = "value") -> Decimal:
    """Parse a decimal from a string or int (never a float: floats are not exact)."""
    if isinstance(value, bool | float):
        raise ValueError(f"{field} must be a decimal string, not {type(value).__name__}")
    if isinstance(value, Decimal):
        d = value
    elif isinstance(value, int | str):
        try:
            d = Decimal(str(value).strip())
        except InvalidOperation:
            raise ValueError(f"{field} is not a number: {value!r}") from None
    else:
        raise ValueError(f"{field} must be a decimal string, not {type(value).__name__}")
    if not d.is_finite():
        raise ValueError(f"{field} must be finite, got {value!r}")
    return d


def round_down(value: Decimal, step: Decimal) -> Decimal:
    """Round ``value`` down to a multiple of ``step``."""
    return (value / step).to_integral_value(rounding=ROUND_FLOOR) * step


def round_up(value: Decimal, step: Decimal) -> Decimal:
    """Round ``value`` up to a multiple of ``step``."""
    return (value / step).to_integral_value(rounding=ROUND_CEILING) * step


@dataclass(frozen=True, slots=True)
class InstrumentRules:
    """What the exchange allows for one instrument (OKX ``tickSz``, ``lotSz``, ``minSz``)."""

    inst_id: str
    tick_sz: Decimal
    lot_sz: Decimal
    min_sz: Decimal
    base_ccy: str
    quote_ccy: str
    live: bool = True

    def price_down(self, px: Decimal) -> Decimal:
        return round_down(px, self.tick_sz).normalize() if px else px

    def price_up(self, px: Decimal) -> Decimal:
        return round_up(px, self.tick_sz).normalize() if px else px

    def size_down(self, sz: Decimal) -> Decimal:
        return round_down(sz, self.lot_sz).normalize() if sz else sz

    def is_tradable_size(self, sz: Decimal) -> bool:
        return sz >= self.min_sz and sz > 0 and round_down(sz, self.lot_sz) == sz


def quantize_str(d: Decimal) -> str:
    """Format a decimal the way OKX expects: plain notation, no exponent, no trailing zeros."""
    s = format(d.normalize(), "f")
    return s

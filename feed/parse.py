"""Turn OKX push messages into ``Tick`` values, refusing bad input with a reason.

Reasons are a fixed vocabulary (``REASONS``) so counters keyed by them stay bounded.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from feed.state import InstrumentState, Tick

REASONS = (
    "malformed_json",
    "not_object",
    "missing_field",
    "bad_number",
    "non_positive",
    "bad_ts",
    "unknown_instrument",
    "ts_backwards",
    "unknown_message",
    "invalid_signal",
)


class BadInput(Exception):
    """A message (or part of one) that cannot be used; ``reason`` is one of ``REASONS``."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


_ZERO = Decimal(0)


def price(value: Any, field: str) -> Decimal:
    """A positive, finite decimal from an OKX string field (a JSON number is tolerated)."""
    if type(value) is int or type(value) is float:
        value = repr(value)
    if type(value) is not str:
        raise BadInput("missing_field" if value is None else "bad_number", field)
    try:
        d = Decimal(value)
    except InvalidOperation:
        raise BadInput("bad_number", field) from None
    if not d.is_finite():
        raise BadInput("bad_number", field)
    if d <= _ZERO:
        raise BadInput("non_positive", field)
    return d


def _optional(item: dict[str, Any], field: str) -> Decimal | None:
    value = item.get(field)
    if value is None or value == "":
        return None
    return price(value, field)


def timestamp(value: Any) -> int:
    """Epoch milliseconds from an OKX string (or integer) field."""
    if type(value) is str and value.isdigit():
        ts = int(value)
    elif type(value) is int:
        ts = value
    else:
        raise BadInput("missing_field" if value is None else "bad_ts", "ts")
    if ts <= 0:
        raise BadInput("bad_ts", "ts")
    return ts


def parse_ticker(item: Any, day_fields: bool = True, memo: InstrumentState | None = None) -> Tick:
    """One element of a ``tickers`` push's ``data`` array.

    With ``day_fields``, ``sodUtc0`` is parsed at once and the raw item is kept so that the
    24h statistics can be parsed later by ``day_stats``, only when a trigger needs them:
    most ticks never do, and decimal parsing is the feed's largest cost. For the same
    reason a field that repeats a value already parsed is not parsed again: ``bidPx`` equal
    to ``last``, and ``sodUtc0`` equal to the instrument's previous one (``memo``, the
    instrument's state; it changes once a day).
    """
    if type(item) is not dict:
        raise BadInput("not_object", "data[]")
    inst_id = item.get("instId")
    if type(inst_id) is not str:
        raise BadInput("missing_field", "instId")
    last_text = item.get("last")
    last = price(last_text, "last")
    ts = timestamp(item.get("ts"))
    bid_text = item.get("bidPx")
    bid = None
    if bid_text:
        bid = last if bid_text == last_text else price(bid_text, "bidPx")
    if not day_fields:
        return Tick(inst_id, last, ts, bid)
    sod_text = item.get("sodUtc0")
    if memo is not None and type(sod_text) is str and sod_text == memo.sod_text:
        sod = memo.sod
    else:
        sod = _optional(item, "sodUtc0")
        if memo is not None and type(sod_text) is str:
            memo.sod_text, memo.sod = sod_text, sod
    return Tick(inst_id, last, ts, bid, sod, item)


def day_stats(tick: Tick) -> tuple[Decimal, Decimal, Decimal] | None:
    """``(high24h, low24h, volCcy24h)`` of a tick parsed with day fields, None if missing."""
    item = tick.raw
    if item is None:
        return None
    high, low = _optional(item, "high24h"), _optional(item, "low24h")
    vol = item.get("volCcy24h")
    if high is None or low is None or vol is None or vol == "":
        return None
    if type(vol) is int or type(vol) is float:
        vol = repr(vol)
    if type(vol) is not str:
        raise BadInput("bad_number", "volCcy24h")
    try:
        volume = Decimal(vol)
    except InvalidOperation:
        raise BadInput("bad_number", "volCcy24h") from None
    if not volume.is_finite() or volume < _ZERO:
        raise BadInput("bad_number", "volCcy24h")
    return high, low, volume


def parse_candle(row: Any) -> tuple[int, Decimal]:
    """``(open time ms, open price)`` from one candle row ``[ts, o, h, l, c, ...]``."""
    if type(row) is not list or len(row) < 5:
        raise BadInput("missing_field", "candle")
    return timestamp(row[0]), price(row[1], "o")

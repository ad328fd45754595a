"""Replay of recorded OKX websocket pushes (one JSON message per line).

Lines are the raw text a client received (``{"arg": {...}, "data": [...]}``), optionally
wrapped as ``{"recv_ms": ..., "msg": {...}}``. Subscribe acks and other events are skipped.
Time comes from the recorded ``ts`` of tickers and trades; candle pushes (whose ``ts`` is the
candle's open) take the wrapper's ``recv_ms`` or else the time of the message before them.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from simulator.decimals import parse_decimal


class ReplayError(ValueError):
    """The replay file cannot be used."""


@dataclass(frozen=True)
class ReplayEvent:
    ts: int
    channel: str
    inst_id: str
    msg: dict[str, Any]


def _event_ts(
    channel: str, data: list[Any], recv_ms: int | None, previous: int | None
) -> int | None:
    if recv_ms is not None and channel.startswith("candle"):
        return recv_ms
    if channel.startswith("candle"):
        return previous if previous is not None else _first_int(data[0][0] if data else None)
    stamps = [_first_int(d.get("ts")) for d in data if isinstance(d, dict)]
    known = [s for s in stamps if s is not None]
    if known:
        return max(known)
    return recv_ms if recv_ms is not None else previous


def _first_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def load_replay(path: Path) -> list[ReplayEvent]:
    """Parse ``path`` into time-ordered events; raise ``ReplayError`` on a malformed line."""
    events: list[ReplayEvent] = []
    previous: int | None = None
    try:
        lines = path.read_bytes().splitlines()
    except OSError as exc:
        raise ReplayError(f"cannot read replay file {path}: {exc.strerror}") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            raise ReplayError(f"{path}:{number}: not JSON") from None
        if not isinstance(record, dict):
            raise ReplayError(f"{path}:{number}: not a JSON object")
        recv_ms = _first_int(record.get("recv_ms"))
        msg = record.get("msg", record)
        if isinstance(msg, str):  # a wrapper may hold the raw text
            try:
                msg = orjson.loads(msg)
            except orjson.JSONDecodeError:
                continue
        if not isinstance(msg, dict) or "data" not in msg or not isinstance(msg.get("arg"), dict):
            continue  # subscribe acks, pongs, notices
        arg = msg["arg"]
        channel = str(arg.get("channel", ""))
        data = msg["data"] if isinstance(msg["data"], list) else []
        inst_id = str(arg.get("instId", ""))
        if channel not in ("tickers", "trades") and not channel.startswith("candle"):
            continue
        ts = _event_ts(channel, data, recv_ms, previous)
        if ts is None or not inst_id:
            raise ReplayError(f"{path}:{number}: no timestamp or instId")
        previous = max(previous or ts, ts)
        events.append(ReplayEvent(previous, channel, inst_id, msg))
    if not events:
        raise ReplayError(f"{path}: no tickers, trades or candle pushes")
    return events


def first_prices(events: list[ReplayEvent]) -> dict[str, Decimal]:
    """The first recorded price of every instrument in the file."""
    prices: dict[str, Decimal] = {}
    for event in events:
        if event.inst_id in prices:
            continue
        for item in event.msg["data"]:
            if isinstance(item, dict):
                price = parse_decimal(item.get("last") or item.get("px"))
            else:
                price = parse_decimal(item[4]) if len(item) > 4 else None
            if price is not None and price > 0:
                prices[event.inst_id] = price
                break
    return prices

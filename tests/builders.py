"""Shared builders: settings, runtimes, instruments and signal messages."""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from worker.domain.money import InstrumentRules
from worker.settings import Settings, load_settings

BTC = InstrumentRules(
    "BTC-USDT", Decimal("0.1"), Decimal("0.00000001"), Decimal("0.00001"), "BTC", "USDT"
)
ETH = InstrumentRules(
    "ETH-USDT", Decimal("0.01"), Decimal("0.000001"), Decimal("0.001"), "ETH", "USDT"
)
SOL = InstrumentRules(
    "SOL-USDT", Decimal("0.01"), Decimal("0.0001"), Decimal("0.01"), "SOL", "USDT"
)
# lotSz = minSz = 1: a buy of one unit nets 0.999 after the fee, less than a lot.
XRP = InstrumentRules("XRP-USDT", Decimal("0.0001"), Decimal("1"), Decimal("1"), "XRP", "USDT")
INSTRUMENTS = (BTC, ETH, SOL, XRP)
PRICES = {
    "BTC-USDT": Decimal("60000"),
    "ETH-USDT": Decimal("3000"),
    "SOL-USDT": Decimal("150"),
    "XRP-USDT": Decimal("0.5"),
}

_seq = itertools.count()


def make_settings(**values: Any) -> Settings:
    base: dict[str, Any] = {"MEMORY_SYNC_INTERVAL_SECONDS": 0, "LOG_LEVEL": "WARNING"}
    base.update(values)
    return load_settings({k: str(v) for k, v in base.items()})


def now_ms() -> int:
    return int(time.time() * 1000)


def buy_message(
    strategy: str = "hourly_limit_ws",
    inst_id: str = "BTC-USDT",
    *,
    px: str | None = None,
    quote_sz: str = "10",
    signal_id: str | None = None,
    created_at: int | None = None,
    ttl_ms: int | None = 600_000,
    **extra: Any,
) -> dict[str, Any]:
    created = created_at if created_at is not None else now_ms()
    msg: dict[str, Any] = {
        "v": 1,
        "kind": "buy",
        "signal_id": signal_id or f"{strategy}:{inst_id}:t{next(_seq)}",
        "strategy": strategy,
        "inst_id": inst_id,
        "px": px if px is not None else str(PRICES[inst_id]),
        "quote_sz": quote_sz,
        "created_at": created,
    }
    if ttl_ms is not None:
        msg["expires_at"] = created + ttl_ms
    msg.update(extra)
    return msg


def sell_message(
    strategy: str = "hourly_limit_ws",
    inst_id: str = "BTC-USDT",
    reason: str = "stop_loss",
    **extra: Any,
) -> dict[str, Any]:
    return extra | {
        "v": 1,
        "kind": "sell",
        "signal_id": f"sell:{strategy}:{inst_id}:{next(_seq)}",
        "strategy": strategy,
        "inst_id": inst_id,
        "reason": reason,
        "created_at": now_ms(),
    }


@dataclass
class ManualClock:
    """A UTC clock that tests move by hand."""

    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class RecordingScheduler:
    """Collects follow-up tasks instead of sending them to a broker."""

    sent: list[tuple[str, list[Any], float | None]] = field(default_factory=list)

    def __call__(self, task: str, args: list[Any], countdown: float | None = None) -> None:
        self.sent.append((task, args, countdown))

    def names(self) -> list[str]:
        return [t for t, _, _ in self.sent]

"""The signal message: the one contract between producers (the feed, a webhook, a person) and
the workers.

A signal is a small JSON object sent as the single argument of the ``process_buy_signal`` or
``process_sell_signal`` task. Version 1::

    buy:  {"v": 1, "kind": "buy", "signal_id": "hourly_limit_ws:BTC-USDT:2026112408",
           "strategy": "hourly_limit_ws", "inst_id": "BTC-USDT",
           "px": "61234.5", "quote_sz": "10",            # or "sz": "0.0002" (base currency)
           "created_at": 1795939200000,                  # epoch milliseconds
           "expires_at": 1795939210000}                  # optional: created_at + SIGNAL_TTL
    sell: {"v": 1, "kind": "sell", "signal_id": "...", "strategy": "...", "inst_id": "...",
           "reason": "stop_loss", "created_at": 1795939200000,
           "px": "60100.1"}                              # optional: the best bid seen

Prices and sizes are decimal strings (floats are refused: they are not exact). Unknown keys are
refused, so a typo never passes silently. ``signal_id`` is deterministic for buys (strategy,
instrument, trigger bucket): sending the same signal twice executes it at most once.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, TypeVar

import pydantic
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from worker.domain.describe import age, when
from worker.domain.errors import InvalidSignal
from worker.domain.ids import is_inst_id
from worker.domain.money import to_decimal
from worker.domain.strategies import STRATEGIES
from worker.validation import Problem, explain

SCHEMA_VERSION = 1
SIGNAL_ID_RE = re.compile(r"^[\x21-\x7e]{1,200}$")
SELL_REASONS = ("stop_loss", "time_exit", "take_profit", "manual")

Millis = Annotated[int, Field(strict=True, gt=0)]


def _positive_decimal(value: Any, field: str) -> Decimal:
    d = to_decimal(value, field)
    if d <= 0:
        raise ValueError(f"{field} must be positive, got {value}")
    return d


class _SignalBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Literal[1]
    signal_id: str
    strategy: str
    inst_id: str
    created_at: Millis

    @field_validator("signal_id")
    @classmethod
    def _check_signal_id(cls, value: str) -> str:
        if not SIGNAL_ID_RE.match(value):
            raise ValueError("signal_id must be 1-200 printable ASCII characters without spaces")
        return value

    @field_validator("strategy")
    @classmethod
    def _check_strategy(cls, value: str) -> str:
        if value not in STRATEGIES:
            raise ValueError(f"unknown strategy {value!r} (known: {', '.join(STRATEGIES)})")
        return value

    @field_validator("inst_id")
    @classmethod
    def _check_inst_id(cls, value: str) -> str:
        if not is_inst_id(value):
            raise ValueError(f"inst_id must look like BTC-USDT, got {value!r}")
        return value

    @property
    def slot(self) -> tuple[str, str]:
        return (self.inst_id, self.strategy)


class BuySignal(_SignalBase):
    kind: Literal["buy"]
    px: Decimal
    sz: Decimal | None = None
    quote_sz: Decimal | None = None
    expires_at: Millis | None = None

    @field_validator("px", "sz", "quote_sz", mode="before")
    @classmethod
    def _check_amount(cls, value: Any, info: pydantic.ValidationInfo) -> Any:
        if value is None:
            return None
        return _positive_decimal(value, info.field_name or "amount")

    @model_validator(mode="after")
    def _one_size(self) -> BuySignal:
        if (self.sz is None) == (self.quote_sz is None):
            raise ValueError("give exactly one of sz (base currency) or quote_sz (quote currency)")
        if self.expires_at is not None and self.expires_at < self.created_at:
            raise ValueError("expires_at is before created_at")
        return self

    def expiry_ms(self, ttl_seconds: int) -> int:
        return self.expires_at or self.created_at + ttl_seconds * 1000

    def is_expired(self, ttl_seconds: int, now_ms: int | None = None) -> bool:
        now = now_ms if now_ms is not None else int(time.time() * 1000)
        return now > self.expiry_ms(ttl_seconds)


class SellSignal(_SignalBase):
    kind: Literal["sell"]
    reason: Literal["stop_loss", "time_exit", "take_profit", "manual"]
    px: Decimal | None = None

    @field_validator("px", mode="before")
    @classmethod
    def _check_px(cls, value: Any) -> Any:
        return None if value is None else _positive_decimal(value, "px")


M = TypeVar("M", BuySignal, SellSignal)


def _describe(problem: Problem) -> str:
    return f"{problem.where or 'message'}: {problem.message}"


def _parse(model: type[M], message: Any) -> M:
    if not isinstance(message, dict):
        raise InvalidSignal(f"a signal must be a JSON object, got {type(message).__name__}")
    try:
        return model.model_validate(message)
    except pydantic.ValidationError as exc:
        raise InvalidSignal(explain(exc, _describe)) from None


def parse_buy(message: Any) -> BuySignal:
    """Validate a buy message; raise ``InvalidSignal`` with one readable sentence."""
    return _parse(BuySignal, message)


def parse_sell(message: Any) -> SellSignal:
    """Validate a sell message; raise ``InvalidSignal`` with one readable sentence."""
    return _parse(SellSignal, message)


def to_message(signal: BuySignal | SellSignal) -> dict[str, Any]:
    """Serialize a signal for a task argument (decimals as strings, no ``None`` values)."""
    out: dict[str, Any] = {}
    for key, value in signal.model_dump(exclude_none=True).items():
        out[key] = format(value, "f") if isinstance(value, Decimal) else value
    return out


# Epoch milliseconds of 2001-09-09: a time below it was given in seconds, not milliseconds.
_MILLIS_FLOOR = 1_000_000_000_000


def time_warnings(message: dict[str, Any], ttl_seconds: int, now_ms: int) -> list[str]:
    """What looks wrong with a valid signal's times (``enqueue`` warns, then sends it)."""

    out: list[str] = []
    created = message.get("created_at")
    if not isinstance(created, int):
        return out
    if created < _MILLIS_FLOOR:
        out.append(
            f"created_at {created} looks like seconds, not milliseconds "
            f"(in milliseconds: {created * 1000})"
        )
    if message.get("kind") == "buy":
        expires = message.get("expires_at") or created + ttl_seconds * 1000
        if now_ms > expires:
            out.append(
                f"this buy signal expired {age((now_ms - expires) / 1000)} ago (at "
                f"{when(datetime.fromtimestamp(expires / 1000, UTC))}): the workers will "
                "record it as expired and not buy"
            )
    return out

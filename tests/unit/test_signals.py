from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from worker.domain.errors import InvalidSignal
from worker.signals import parse_buy, parse_sell, to_message


def buy(**over: Any) -> dict[str, Any]:
    msg: dict[str, Any] = {
        "v": 1,
        "kind": "buy",
        "signal_id": "hourly_limit_ws:BTC-USDT:2026112408",
        "strategy": "hourly_limit_ws",
        "inst_id": "BTC-USDT",
        "px": "61234.5",
        "quote_sz": "10",
        "created_at": 1_795_939_200_000,
    }
    msg.update(over)
    return {k: v for k, v in msg.items() if v is not None}


def test_valid_buy_round_trips() -> None:
    signal = parse_buy(buy())
    assert signal.px == Decimal("61234.5") and signal.quote_sz == Decimal("10")
    assert parse_buy(to_message(signal)) == signal


def test_expiry() -> None:
    signal = parse_buy(buy())
    assert not signal.is_expired(10, 1_795_939_210_000)
    assert signal.is_expired(10, 1_795_939_210_001)
    explicit = parse_buy(buy(expires_at=1_795_939_201_000))
    assert explicit.is_expired(10, 1_795_939_201_001)


@pytest.mark.parametrize(
    ("override", "words"),
    [
        ({"px": "-1"}, "px must be positive"),
        ({"px": 1.5}, "decimal string"),
        ({"px": "abc"}, "not a number"),
        ({"strategy": "moon"}, "unknown strategy"),
        ({"inst_id": "btc/usdt"}, "inst_id"),
        ({"quote_sz": None}, "exactly one of sz"),
        ({"sz": "1"}, "exactly one of sz"),
        ({"created_at": "yesterday"}, "created_at"),
        ({"v": 2}, "v"),
        ({"extra": 1}, "extra"),
        ({"signal_id": None}, "signal_id"),
        ({"signal_id": "has space"}, "signal_id"),
    ],
)
def test_bad_buys_are_refused_with_a_reason(override: dict[str, Any], words: str) -> None:
    with pytest.raises(InvalidSignal, match=words):
        parse_buy(buy(**override))


@pytest.mark.parametrize("junk", [None, 5, "text", [1, 2]])
def test_non_objects_are_refused(junk: Any) -> None:
    with pytest.raises(InvalidSignal, match="JSON object"):
        parse_buy(junk)


def test_sell_signal() -> None:
    msg = {
        "v": 1,
        "kind": "sell",
        "signal_id": "s1",
        "strategy": "batch_buy_ws",
        "inst_id": "ETH-USDT",
        "reason": "stop_loss",
        "created_at": 1,
    }
    assert parse_sell(msg).reason == "stop_loss"
    with pytest.raises(InvalidSignal, match="reason"):
        parse_sell({**msg, "reason": "bored"})

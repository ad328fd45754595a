from __future__ import annotations

import time
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


def sell(**over: Any) -> dict[str, Any]:
    msg: dict[str, Any] = {
        "v": 1,
        "kind": "sell",
        "signal_id": "s1",
        "strategy": "batch_buy_ws",
        "inst_id": "ETH-USDT",
        "reason": "stop_loss",
        "created_at": 1,
    }
    msg.update(over)
    return {k: v for k, v in msg.items() if v is not None}


@pytest.mark.parametrize(
    ("override", "reason"),
    [
        ({"px": "0"}, "px: px must be positive, got 0"),
        ({"px": "0.000"}, "px: px must be positive, got 0.000"),
        ({"quote_sz": "0"}, "quote_sz: quote_sz must be positive, got 0"),
        ({"quote_sz": None, "sz": "0"}, "sz: sz must be positive, got 0"),
        ({"px": 1.5}, "px: px must be a decimal string, not float"),
        (
            {"sz": "1"},
            "message: give exactly one of sz (base currency) or quote_sz (quote currency)",
        ),
        ({"expires_at": 1_795_939_199_999}, "message: expires_at is before created_at"),
    ],
)
def test_a_refused_buy_says_why_in_one_sentence(override: dict[str, Any], reason: str) -> None:
    with pytest.raises(InvalidSignal) as caught:
        parse_buy(buy(**override))
    assert str(caught.value) == reason


def test_every_problem_of_a_message_is_named() -> None:
    with pytest.raises(InvalidSignal) as caught:
        parse_buy(buy(inst_id="btc", px="-1"))
    assert str(caught.value) == (
        "inst_id: inst_id must look like BTC-USDT, got 'btc'; px: px must be positive, got -1"
    )


def test_a_zero_sell_price_is_refused() -> None:
    with pytest.raises(InvalidSignal, match="px must be positive"):
        parse_sell(sell(px="0"))
    assert parse_sell(sell(px="94.9")).px == Decimal("94.9")


@pytest.mark.parametrize("parse", [parse_buy, parse_sell])
def test_a_non_object_is_named_by_its_type(parse: Any) -> None:
    with pytest.raises(InvalidSignal) as caught:
        parse([1, 2])
    assert str(caught.value) == "a signal must be a JSON object, got list"


def test_a_signal_may_expire_when_it_is_created_not_before() -> None:
    signal = parse_buy(buy(expires_at=1_795_939_200_000))
    assert signal.is_expired(60, 1_795_939_200_001)
    assert not signal.is_expired(60, 1_795_939_200_000)


def test_expiry_against_the_real_clock() -> None:
    now = int(time.time() * 1000)
    assert not parse_buy(buy(created_at=now)).is_expired(60)
    assert not parse_buy(buy(created_at=now - 50_000)).is_expired(60)
    assert parse_buy(buy(created_at=now - 70_000)).is_expired(60)
    assert not parse_buy(buy(created_at=now - 70_000, expires_at=now + 60_000)).is_expired(10)
    assert parse_buy(buy(created_at=now - 3_600_000, expires_at=now - 1_000)).is_expired(3_600)


def test_the_slot_is_the_instrument_and_the_strategy() -> None:
    assert parse_buy(buy()).slot == ("BTC-USDT", "hourly_limit_ws")
    assert parse_sell(sell()).slot == ("ETH-USDT", "batch_buy_ws")


def test_to_message_omits_absent_fields_and_writes_plain_decimals() -> None:
    message = to_message(parse_buy(buy(quote_sz=None, sz="0.00000001", px="1E+2")))
    assert message == {
        "v": 1,
        "kind": "buy",
        "signal_id": "hourly_limit_ws:BTC-USDT:2026112408",
        "strategy": "hourly_limit_ws",
        "inst_id": "BTC-USDT",
        "px": "100",
        "sz": "0.00000001",
        "created_at": 1_795_939_200_000,
    }
    assert "px" not in to_message(parse_sell(sell()))

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from worker.domain.errors import InvalidSignal
from worker.domain.ids import buy_cl_ord_id, is_inst_id, parse_cl_ord_id, sell_cl_ord_id
from worker.domain.money import (
    InstrumentRules,
    quantize_str,
    round_down,
    round_up,
    to_decimal,
)
from worker.domain.strategies import STRATEGIES

RULES = InstrumentRules(
    "BTC-USDT", Decimal("0.1"), Decimal("0.00000001"), Decimal("0.00001"), "BTC", "USDT"
)


def test_rounding_to_tick_and_lot() -> None:
    assert RULES.price_down(Decimal("61234.56")) == Decimal("61234.5")
    assert RULES.price_up(Decimal("61234.51")) == Decimal("61234.6")
    assert RULES.price_up(Decimal("61234.5")) == Decimal("61234.5")
    assert RULES.size_down(Decimal("0.000163300001")) == Decimal("0.00016330")
    assert RULES.is_tradable_size(Decimal("0.00001"))
    assert not RULES.is_tradable_size(Decimal("0.000009"))


@given(
    st.decimals(min_value=Decimal("0.00000001"), max_value=Decimal("1e9"), places=10),
    st.sampled_from([Decimal("0.1"), Decimal("0.01"), Decimal("0.0001"), Decimal("5")]),
)
def test_rounding_properties(value: Decimal, step: Decimal) -> None:
    down, up = round_down(value, step), round_up(value, step)
    assert down <= value <= up
    assert up - down in (0, step)
    assert (down / step) == (down / step).to_integral_value()


@pytest.mark.parametrize("bad", [1.5, True, "abc", "NaN", "Infinity", None, [1]])
def test_to_decimal_refuses_inexact_or_junk(bad: object) -> None:
    with pytest.raises(ValueError):
        to_decimal(bad)


def test_cl_ord_ids_are_29_alphanumerics_and_parse_back() -> None:
    for strategy in STRATEGIES:
        buy = buy_cl_ord_id(strategy, f"{strategy}:BTC-USDT:2026112408")
        sell = sell_cl_ord_id(strategy, 42, 1)
        for cid in (buy, sell):
            assert len(cid) == 29 and cid.isalnum() and cid.startswith("lf")
        assert parse_cl_ord_id(buy) == (strategy, "buy")
        assert parse_cl_ord_id(sell) == (strategy, "sell")
    assert buy_cl_ord_id("hourly_limit_ws", "a") == buy_cl_ord_id("hourly_limit_ws", "a")
    assert buy_cl_ord_id("hourly_limit_ws", "a") != buy_cl_ord_id("hourly_limit_ws", "b")
    assert sell_cl_ord_id("hourly_limit_ws", 1, 1) != sell_cl_ord_id("hourly_limit_ws", 1, 2)
    assert buy_cl_ord_id("hourly_limit_ws", "x")[2:4] == "hl"
    assert buy_cl_ord_id("batch_buy_ws", "x")[2:5] == "bbb"


@pytest.mark.parametrize(
    "cid", ["", "lfhlb", "xxhlb" + "0" * 24, "lfzzb" + "0" * 24, "lfhlq" + "0" * 24]
)
def test_foreign_cl_ord_ids_are_not_ours(cid: str) -> None:
    assert parse_cl_ord_id(cid) is None


@pytest.mark.parametrize("position", range(5, 29))
@pytest.mark.parametrize("char", ["g", "z", "A", "F", "X", "-", " "])
def test_a_non_hex_character_anywhere_in_the_hash_is_not_ours(position: int, char: str) -> None:
    cid = buy_cl_ord_id("hourly_limit_ws", "hourly_limit_ws:BTC-USDT:2026112408")
    assert parse_cl_ord_id(cid) == ("hourly_limit_ws", "buy")
    assert parse_cl_ord_id(cid[:position] + char + cid[position + 1 :]) is None


def test_an_unknown_strategy_is_named_in_the_error() -> None:
    with pytest.raises(InvalidSignal, match="unknown strategy 'moon'"):
        buy_cl_ord_id("moon", "x")


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (1.5, "value must be a decimal string, not float"),
        (True, "value must be a decimal string, not bool"),
        (None, "value must be a decimal string, not NoneType"),
        ([1], "value must be a decimal string, not list"),
        ("abc", "value is not a number: 'abc'"),
        ("NaN", "value must be finite, got 'NaN'"),
        (Decimal("-Infinity"), "value must be finite, got Decimal('-Infinity')"),
    ],
)
def test_to_decimal_says_what_is_wrong(bad: object, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        to_decimal(bad)
    assert str(caught.value) == message
    with pytest.raises(ValueError, match=r"^px "):
        to_decimal(bad, "px")


def test_zero_is_never_a_tradable_size_even_without_a_minimum() -> None:
    free = InstrumentRules("X-USDT", Decimal("0.1"), Decimal("0.01"), Decimal("0"), "X", "USDT")
    assert not free.is_tradable_size(Decimal("0"))
    assert free.is_tradable_size(Decimal("0.01"))


@pytest.mark.parametrize(
    ("value", "sent"),
    [
        ("61234.50", "61234.5"),  # trailing zeros go
        ("1.2300", "1.23"),
        ("100", "100"),  # but not the zeros of an integer
        ("100.000", "100"),
        ("0.000", "0"),
        ("1E+3", "1000"),  # large exponents are written out
        ("1.5E+10", "15000000000"),
        ("2.50E+2", "250"),
        ("1E-8", "0.00000001"),  # so are small ones
        ("0.000001000", "0.000001"),
        ("1.2E-10", "0.00000000012"),
        ("123456789.123456789", "123456789.123456789"),
    ],
)
def test_quantize_str_writes_plain_decimals_without_trailing_zeros(value: str, sent: str) -> None:
    assert quantize_str(Decimal(value)) == sent


@pytest.mark.parametrize("inst_id", ["BTC-USDT", "1INCH-USDT", "A-B", "ABCDEFGHIJ0123456789-USDT"])
def test_instrument_ids_are_two_upper_case_tickers(inst_id: str) -> None:
    assert is_inst_id(inst_id)


@pytest.mark.parametrize(
    "text",
    [
        "btc-usdt",
        "BTC",
        "BTC-",
        "-USDT",
        "BTC/USDT",
        "BTC-USDT-SWAP",
        "ÄB-USDT",
        "X" * 21 + "-USDT",
    ],
)
def test_anything_else_is_not_an_instrument_id(text: str) -> None:
    assert not is_inst_id(text)

"""Sizing a buy: price down to tickSz, size down to lotSz, and a lot that can be sold.

OKX takes a buy's fee in the base currency: what a buy delivers is its size minus the fee.
A buy is sized only if that, rounded down to lotSz, is still at least minSz.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from worker.domain.money import InstrumentRules, round_down
from worker.domain.sizing import (
    BELOW_MIN_SIZE,
    RISK_LIMIT,
    SizedBuy,
    Unsizable,
    is_dust,
    lot_from_fill,
    lot_of_buy,
    min_sellable_buy,
    sellable_rest,
    size_buy,
)

D = Decimal
FEE = D("0.001")
NO_CAP = D("1000000")
# lotSz = minSz = 1: one unit nets 0.999 after the fee, which is no lot at all.
WHOLE = InstrumentRules("XRP-USDT", D("0.0001"), D("1"), D("1"), "XRP", "USDT")
SOL = InstrumentRules("SOL-USDT", D("0.01"), D("0.0001"), D("0.01"), "SOL", "USDT")
BTC = InstrumentRules("BTC-USDT", D("0.1"), D("0.00000001"), D("0.00001"), "BTC", "USDT")


def sized(result: SizedBuy | Unsizable) -> SizedBuy:
    assert isinstance(result, SizedBuy), result
    return result


def refused(result: SizedBuy | Unsizable, reason: str = BELOW_MIN_SIZE) -> Unsizable:
    assert isinstance(result, Unsizable), result
    assert result.reason == reason, result
    return result


def by_quote(rules: InstrumentRules, px: str, quote: str, cap: Decimal = NO_CAP) -> object:
    return size_buy(rules, D(px), quote_sz=D(quote), fee_rate=FEE, max_order_usdt=cap)


def test_a_buy_of_exactly_min_size_is_skipped_because_it_nets_less() -> None:
    result = refused(by_quote(WHOLE, "0.5", "0.5"))  # buys 1, nets 0.999
    assert "nets 0.999" in result.detail
    assert "needs a buy of 2 (1 USDT)" in result.detail and "budget 0.5" in result.detail


def test_budget_for_two_units_buys_two_and_nets_one_whole_lot() -> None:
    buy = sized(by_quote(WHOLE, "0.5", "1"))
    assert (buy.px, buy.sz, buy.net_sz) == (D("0.5"), D("2"), D("1"))
    assert lot_from_fill(WHOLE, buy.sz, buy.sz * FEE) == (D("1"), D("0.998"))


def test_a_buy_whose_fee_was_charged_in_the_base_currency_delivers_less() -> None:
    assert lot_of_buy(SOL, D("1.5"), D("0.0015"), "SOL") == (D("1.4985"), D("0"))
    assert lot_of_buy(WHOLE, D("2"), D("0.002"), "XRP") == (D("1"), D("0.998"))


def test_a_fee_in_the_quote_currency_leaves_the_lot_whole() -> None:
    assert lot_of_buy(SOL, D("1.5"), D("0.15"), "USDT") == (D("1.5"), D("0"))
    assert lot_of_buy(WHOLE, D("2"), D("0.002"), "") == (D("2"), D("0"))


def test_what_remains_of_a_lot_is_rounded_down_and_below_min_size_is_dust() -> None:
    assert sellable_rest(SOL, D("1.5"), D("0.49995")) == D("1.0000")
    assert not is_dust(SOL, D("1.5"), D("1.49"))  # 0.01 left: exactly minSz
    assert is_dust(SOL, D("1.5"), D("1.4901"))  # 0.0099 left
    assert sellable_rest(WHOLE, D("3"), D("1.5")) == D("1")
    assert is_dust(WHOLE, D("3"), D("2.0001"))


def test_net_exactly_min_size_is_enough() -> None:
    # 1.000 of a lotSz 0.001 / minSz 0.999 coin nets exactly 0.999.
    rules = InstrumentRules("ABC-USDT", D("0.0001"), D("0.001"), D("0.999"), "ABC", "USDT")
    assert sized(by_quote(rules, "1", "1")).net_sz == D("0.999")
    assert min_sellable_buy(rules, FEE) == D("1")
    refused(by_quote(rules, "1", "0.9999"))  # 0.999 nets 0.998001 -> 0.998


def test_lot_size_different_from_min_size() -> None:
    # minSz 0.015 is not a multiple of lotSz 0.01: the least lot is 0.02, so buy 0.03.
    rules = InstrumentRules("ABC-USDT", D("0.01"), D("0.01"), D("0.015"), "ABC", "USDT")
    assert min_sellable_buy(rules, FEE) == D("0.03")
    refused(by_quote(rules, "100", "2.99"))  # 0.02 nets 0.01998 -> 0.01 < 0.015
    assert sized(by_quote(rules, "100", "3")).net_sz == D("0.02")
    # SOL: lotSz 0.0001 below minSz 0.01.
    assert min_sellable_buy(SOL, FEE) == D("0.0101")
    assert sized(by_quote(SOL, "150", "1.515")).sz == D("0.0101")
    refused(by_quote(SOL, "150", "1.5"))  # 0.01 nets 0.00999


@pytest.mark.parametrize(
    ("px", "quote", "want_px", "want_sz"),
    [
        ("1", "10", "1", "10"),
        ("0.99999", "10", "0.9999", "10"),  # 10 / 0.9999 = 10.001 -> 10
        ("0.5", "10", "0.5", "20"),
        ("0.00012345", "10", "0.0001", "100000"),
    ],
)
def test_prices_at_or_below_one(px: str, quote: str, want_px: str, want_sz: str) -> None:
    buy = sized(by_quote(WHOLE, px, quote))
    assert (buy.px, buy.sz) == (D(want_px), D(want_sz))
    assert str(buy.px) == want_px and str(buy.sz) == want_sz  # plain, exact, no exponent


@pytest.mark.parametrize("px", ["0.00004", "0.00009999", "1E-20"])
def test_a_price_that_rounds_to_zero_is_below_min_size(px: str) -> None:
    result = refused(by_quote(WHOLE, px, "10"))
    assert "rounds to 0 at tickSz 0.0001" in result.detail
    refused(size_buy(WHOLE, D(px), sz=D("5"), fee_rate=FEE, max_order_usdt=NO_CAP))


def test_explicit_base_size_is_rounded_down_not_up() -> None:
    buy = sized(size_buy(SOL, D("150"), sz=D("0.06979"), fee_rate=FEE, max_order_usdt=NO_CAP))
    assert (buy.sz, buy.net_sz) == (D("0.0697"), D("0.0696"))
    result = refused(size_buy(SOL, D("150"), sz=D("0.01"), fee_rate=FEE, max_order_usdt=NO_CAP))
    assert "sz 0.01 nets 0.00999" in result.detail and "needs a buy of 0.0101" in result.detail


def test_quote_and_base_size_agree() -> None:
    by_base = sized(
        size_buy(BTC, D("60000"), sz=D("0.00016666"), fee_rate=FEE, max_order_usdt=NO_CAP)
    )
    assert by_base == sized(by_quote(BTC, "60000.05", "10"))


def test_exactly_one_of_sz_and_quote_sz() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        size_buy(SOL, D("1"), fee_rate=FEE, max_order_usdt=NO_CAP)
    with pytest.raises(ValueError, match="exactly one"):
        size_buy(SOL, D("1"), sz=D("1"), quote_sz=D("1"), fee_rate=FEE, max_order_usdt=NO_CAP)


@pytest.mark.parametrize("rate", ["-0.001", "1", "2"])
def test_a_fee_rate_outside_zero_to_one_is_refused(rate: str) -> None:
    with pytest.raises(ValueError, match="fee rate"):
        size_buy(SOL, D("1"), quote_sz=D("1"), fee_rate=D(rate), max_order_usdt=NO_CAP)


def test_without_a_fee_min_size_is_enough() -> None:
    buy = sized(size_buy(WHOLE, D("0.5"), quote_sz=D("0.5"), fee_rate=D(0), max_order_usdt=NO_CAP))
    assert (buy.sz, buy.net_sz) == (D("1"), D("1"))


def test_the_smallest_sellable_buy_above_max_order_usdt_is_below_min_size() -> None:
    # 2 units at 60 = 120 USDT are needed; MAX_ORDER_USDT is 100.
    result = refused(by_quote(WHOLE, "60", "130", cap=D("100")))
    assert "MAX_ORDER_USDT=100" in result.detail
    refused(by_quote(WHOLE, "60", "60", cap=D("100")))


def test_a_sellable_buy_above_max_order_usdt_is_a_risk_limit() -> None:
    result = refused(by_quote(WHOLE, "10", "200", cap=D("100")), RISK_LIMIT)
    assert result.detail == "order value 200 > MAX_ORDER_USDT=100"


def test_an_order_worth_exactly_max_order_usdt_is_allowed() -> None:
    buy = sized(by_quote(WHOLE, "10", "100", cap=D("100")))  # 10 units at 10 = 100 USDT
    assert (buy.sz, buy.px * buy.sz) == (D("10"), D("100"))


def test_a_smallest_sellable_buy_worth_exactly_max_order_usdt_is_a_risk_limit_above_it() -> None:
    # 2 units at 50 = 100 USDT is the smallest sellable buy and just fits: asking for more is
    # a risk limit, not "below min size".
    result = refused(by_quote(WHOLE, "50", "150", cap=D("100")), RISK_LIMIT)
    assert result.detail == "order value 150 > MAX_ORDER_USDT=100"


def test_the_details_name_the_numbers() -> None:
    by_base = refused(size_buy(WHOLE, D("0.5"), sz=D("1"), fee_rate=FEE, max_order_usdt=NO_CAP))
    assert by_base.detail == (
        "sz 1 nets 0.999 after a fee of up to 0.001, below minSz 1 (lotSz 1): "
        "a sellable lot needs a buy of 2 (1 USDT)"
    )
    by_quote_ = refused(by_quote(WHOLE, "0.5", "0.5"))
    assert by_quote_.detail == (
        "0.5 USDT buys 1 at 0.5, which nets 0.999 after a fee of up to 0.001, below minSz 1 "
        "(lotSz 1): a sellable lot needs a buy of 2 (1 USDT), over the budget 0.5 USDT"
    )
    too_big = refused(by_quote(WHOLE, "60", "130", cap=D("100")))
    assert too_big.detail == (
        "the smallest sellable buy, 2 at 60 = 120 USDT, is over MAX_ORDER_USDT=100"
    )


def test_giving_both_or_neither_size_says_so() -> None:
    with pytest.raises(ValueError) as err:
        size_buy(SOL, D("1"), fee_rate=FEE, max_order_usdt=NO_CAP)
    assert str(err.value) == "give exactly one of sz and quote_sz"


steps = st.sampled_from([D("1"), D("0.1"), D("0.01"), D("0.0001"), D("0.00000001"), D("0.5")])


@given(
    tick=steps,
    lot=steps,
    min_lots=st.integers(1, 20),
    px=st.decimals(D("0.00000001"), D("100000"), places=8),
    quote=st.decimals(D("0.01"), D("1000"), places=2),
    fee=st.sampled_from([D(0), D("0.0008"), D("0.001"), D("0.0015"), D("0.0999")]),
)
def test_every_sized_buy_nets_a_sellable_lot_and_every_refusal_is_right(
    tick: Decimal, lot: Decimal, min_lots: int, px: Decimal, quote: Decimal, fee: Decimal
) -> None:
    rules = InstrumentRules("ABC-USDT", tick, lot, lot * min_lots / 3, "ABC", "USDT")
    result = size_buy(rules, px, quote_sz=quote, fee_rate=fee, max_order_usdt=NO_CAP)
    if isinstance(result, SizedBuy):
        assert result.px == round_down(px, tick) and result.px > 0
        assert result.sz == round_down(result.sz, lot) and result.sz > 0
        assert result.px * result.sz <= quote
        # Whatever fee up to the bound is charged, the lot is sellable: never dust.
        size, _ = lot_from_fill(rules, result.sz, result.sz * fee)
        assert size >= rules.min_sz and size == result.net_sz
    else:
        assert result.reason == BELOW_MIN_SIZE
        px_down = round_down(px, tick)
        if px_down > 0:
            gross = round_down(quote / px_down, lot)
            assert lot_from_fill(rules, gross, gross * fee)[0] < rules.min_sz

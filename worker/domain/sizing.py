"""Sizing a buy: the one place where a signal's price and amount become an order.

OKX charges a spot buy's fee in the base currency, so a buy delivers its size minus the fee:
one unit of a coin with ``lotSz = minSz = 1`` nets 0.999, a lot that can never be sold. A buy
is therefore sized so that what it nets at a fee-rate upper bound, rounded down to ``lotSz``,
is still at least ``minSz``; a budget that cannot buy that much is ``below_min_size``.
``lot_from_fill`` (and ``lot_of_buy``) compute a filled buy's lot with the very same rule.
Used by the workers (``worker.services.buy``, ``worker.services.settle``) and by the feed
(``feed.strategies.base``).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from worker.domain.money import InstrumentRules, quantize_str, round_up
from worker.domain.results import SkipReason

BELOW_MIN_SIZE = SkipReason.BELOW_MIN_SIZE
RISK_LIMIT = SkipReason.RISK_LIMIT
# OKX's regular spot taker rate, and the simulator's default.
DEFAULT_FEE_RATE_BOUND = Decimal("0.001")
_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class SizedBuy:
    """A buy the exchange accepts whose lot can be sold."""

    px: Decimal  # the limit price, rounded down to tickSz
    sz: Decimal  # the base size, rounded down to lotSz
    net_sz: Decimal  # the lot it delivers at the fee bound (>= minSz, a multiple of lotSz)


@dataclass(frozen=True, slots=True)
class Unsizable:
    """Why a buy cannot be sized: ``below_min_size`` or ``risk_limit``, with the numbers."""

    reason: SkipReason
    detail: str


def lot_from_fill(
    rules: InstrumentRules, filled: Decimal, fee_in_base: Decimal
) -> tuple[Decimal, Decimal]:
    """What a filled buy delivered: ``(lot size, dust)``. The base-currency fee is taken off,
    the rest is rounded down to ``lotSz``; a lot below ``minSz`` is all dust."""
    net = max(filled - fee_in_base, _ZERO)
    size = rules.size_down(net)
    if size < rules.min_sz:
        return _ZERO, net
    return size, net - size


def lot_of_buy(
    rules: InstrumentRules, filled: Decimal, fee: Decimal, fee_ccy: str
) -> tuple[Decimal, Decimal]:
    """What a buy delivered: ``(lot size, dust)``. Its fee is taken off when it was charged
    in the base currency (``lot_from_fill``); a fee in the quote currency is part of the cost.
    """
    return lot_from_fill(rules, filled, fee if fee_ccy == rules.base_ccy else _ZERO)


def sellable_rest(rules: InstrumentRules, size: Decimal, sold: Decimal) -> Decimal:
    """What of a lot of ``size`` can still be sold once ``sold`` is: rounded down to
    ``lotSz``. Below ``minSz`` it is dust, and the lot closes."""
    return rules.size_down(size - sold)


def is_dust(rules: InstrumentRules, size: Decimal, sold: Decimal) -> bool:
    """Whether what remains of a lot is too small to sell (below ``minSz`` once rounded)."""
    return sellable_rest(rules, size, sold) < rules.min_sz


def min_sellable_buy(rules: InstrumentRules, fee_rate: Decimal) -> Decimal:
    """The smallest buy (a multiple of ``lotSz``) that nets a sellable lot at ``fee_rate``."""
    least_lot = round_up(rules.min_sz, rules.lot_sz)  # the smallest multiple of lotSz >= minSz
    return _plain(round_up(least_lot / (1 - fee_rate), rules.lot_sz))


def size_buy(
    rules: InstrumentRules,
    px: Decimal,
    *,
    sz: Decimal | None = None,
    quote_sz: Decimal | None = None,
    fee_rate: Decimal,
    max_order_usdt: Decimal,
) -> SizedBuy | Unsizable:
    """Size a limit buy of ``sz`` (base currency) or of ``quote_sz`` (quote currency) at ``px``.

    The price is rounded down to ``tickSz`` and the size down to ``lotSz``. The buy is
    ``below_min_size`` when it would net less than ``minSz`` after a fee of up to
    ``fee_rate``, including when the smallest buy that would not costs more than
    ``max_order_usdt``; it is ``risk_limit`` when it is sellable but worth more than that.
    """
    if (sz is None) == (quote_sz is None):
        raise ValueError("give exactly one of sz and quote_sz")
    if not _ZERO <= fee_rate < 1:
        raise ValueError(f"the fee rate must be at least 0 and below 1, got {fee_rate}")
    limit = _plain(rules.price_down(px))
    if limit <= 0:
        return Unsizable(
            BELOW_MIN_SIZE, f"price {_s(px)} rounds to 0 at tickSz {_s(rules.tick_sz)}"
        )
    raw = sz if sz is not None else quote_sz / limit  # type: ignore[operator]
    gross = _plain(rules.size_down(raw))
    net = gross * (1 - fee_rate)
    need = min_sellable_buy(rules, fee_rate)
    quote = rules.quote_ccy
    if gross < need:
        if quote_sz is None:
            bought, budget = f"sz {_s(gross)}", ""
        else:
            bought = f"{_s(quote_sz)} {quote} buys {_s(gross)} at {_s(limit)}, which"
            budget = f", over the budget {_s(quote_sz)} {quote}"
        return Unsizable(
            BELOW_MIN_SIZE,
            f"{bought} nets {_s(net)} after a fee of up to {_s(fee_rate)}, below minSz "
            f"{_s(rules.min_sz)} (lotSz {_s(rules.lot_sz)}): a sellable lot needs a buy of "
            f"{_s(need)} ({_s(need * limit)} {quote}){budget}",
        )
    value = limit * gross
    if value > max_order_usdt:
        if need * limit > max_order_usdt:
            return Unsizable(
                BELOW_MIN_SIZE,
                f"the smallest sellable buy, {_s(need)} at {_s(limit)} = {_s(need * limit)} "
                f"{quote}, is over MAX_ORDER_USDT={_s(max_order_usdt)}",
            )
        return Unsizable(
            RISK_LIMIT, f"order value {_s(value)} > MAX_ORDER_USDT={_s(max_order_usdt)}"
        )
    return SizedBuy(px=limit, sz=gross, net_sz=_plain(rules.size_down(net)))


def _plain(d: Decimal) -> Decimal:
    """The same number written without an exponent (``1E+1`` -> ``10``)."""
    return Decimal(quantize_str(d))


def _s(d: Decimal) -> str:
    return quantize_str(d)

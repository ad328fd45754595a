"""A buy signal's order size under an instrument's rules and the settings' limits.

Its own module so that the buy path and the worker's warm-up (``worker.runtime``) size
alike without importing each other.
"""

from __future__ import annotations

from decimal import Decimal

from worker.domain.money import InstrumentRules
from worker.domain.results import SkipReason
from worker.domain.sizing import Unsizable, size_buy
from worker.settings import Settings
from worker.signals import BuySignal


def order_size(
    signal: BuySignal, rules: InstrumentRules, settings: Settings
) -> tuple[Decimal, Decimal, tuple[SkipReason, str] | None]:
    """Price, size, and why the order cannot go (see ``worker.domain.sizing``)."""
    sized = size_buy(
        rules,
        signal.px,
        sz=signal.sz,
        quote_sz=signal.quote_sz,
        fee_rate=settings.FEE_RATE_BOUND,
        max_order_usdt=settings.MAX_ORDER_USDT,
    )
    if isinstance(sized, Unsizable):
        return Decimal(0), Decimal(0), (sized.reason, sized.detail)
    return sized.px, sized.sz, None

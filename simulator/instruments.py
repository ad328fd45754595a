"""SPOT instrument rules (tickSz, lotSz, minSz) and their OKX ``public/instruments`` shape."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from simulator.decimals import fmt

# (tickSz, lotSz, minSz, typical price, typical 24h quote volume); rough OKX values.
_KNOWN: dict[str, tuple[str, str, str, str, str]] = {
    "BTC": ("0.1", "0.00000001", "0.00001", "65000", "900000000"),
    "ETH": ("0.01", "0.000001", "0.0001", "3200", "400000000"),
    "SOL": ("0.01", "0.000001", "0.001", "150", "150000000"),
    "XRP": ("0.0001", "0.000001", "1", "0.6", "60000000"),
    "DOGE": ("0.00001", "0.000001", "10", "0.15", "50000000"),
    "LTC": ("0.01", "0.000001", "0.001", "80", "20000000"),
    "ADA": ("0.0001", "0.000001", "1", "0.45", "15000000"),
    "LINK": ("0.001", "0.000001", "0.01", "15", "15000000"),
    "AVAX": ("0.01", "0.000001", "0.01", "30", "12000000"),
    "DOT": ("0.001", "0.000001", "0.1", "6.5", "10000000"),
}
_GENERIC = ("0.0001", "0.000001", "1", "1", "2000000")


@dataclass(frozen=True)
class Instrument:
    inst_id: str
    base_ccy: str
    quote_ccy: str
    tick_sz: Decimal
    lot_sz: Decimal
    min_sz: Decimal
    start_px: Decimal
    daily_volume_quote: Decimal
    # OKX's instrument state: "live", or "suspend" (listed, but no new orders and no trading).
    state: str = "live"

    def to_okx(self) -> dict[str, Any]:
        """The docs' SPOT item of GET /api/v5/public/instruments."""
        return {
            "alias": "",
            "auctionEndTime": "",
            "baseCcy": self.base_ccy,
            "category": "1",
            "ctMult": "",
            "ctType": "",
            "ctVal": "",
            "ctValCcy": "",
            "contTdSwTime": "",
            "expTime": "",
            "futureSettlement": False,
            "groupId": "1",
            "instFamily": "",
            "instId": self.inst_id,
            "instType": "SPOT",
            "lever": "",
            "listTime": "1606468572000",
            "lotSz": fmt(self.lot_sz),
            "maxIcebergSz": "9999999999.0000000000000000",
            "maxLmtAmt": "1000000",
            "maxLmtSz": "9999999999",
            "maxMktAmt": "1000000",
            "maxMktSz": "",
            "maxStopSz": "",
            "maxTriggerSz": "9999999999.0000000000000000",
            "maxTwapSz": "9999999999.0000000000000000",
            "minSz": fmt(self.min_sz),
            "optType": "",
            "openType": "",
            "preMktSwTime": "",
            "quoteCcy": self.quote_ccy,
            "tradeQuoteCcyList": [self.quote_ccy],
            "settleCcy": "",
            "state": self.state,
            "ruleType": "normal",
            "stk": "",
            "tickSz": fmt(self.tick_sz),
            "uly": "",
            "instIdCode": None,
            "instCategory": "1",
            "upcChg": [],
        }


def make_instrument(
    inst_id: str,
    price_hint: Decimal | None = None,
    rules: tuple[Decimal, Decimal, Decimal] | None = None,
) -> Instrument:
    """Rules for ``inst_id``: known coins get OKX-like values, others generic ones.

    ``price_hint`` (a recorded price) fixes the start price and, for unknown coins, a tick
    size with as many decimals as the recorded price. ``rules`` (tickSz, lotSz, minSz)
    overrides both.
    """
    base, _, quote = inst_id.upper().partition("-")
    if not base or not quote:
        raise ValueError(f"{inst_id!r} is not a SPOT instrument id like BTC-USDT")
    known = _KNOWN.get(base)
    tick, lot, min_sz, px, vol = known or _GENERIC
    tick_sz = Decimal(tick)
    if price_hint is not None:
        px = str(price_hint)
        if known is None:
            exponent = price_hint.normalize().as_tuple().exponent
            places = max(0, -exponent) if isinstance(exponent, int) else 4
            tick_sz = Decimal(1).scaleb(-places)
    lot_sz, min_sz_d = Decimal(lot), Decimal(min_sz)
    if rules is not None:
        tick_sz, lot_sz, min_sz_d = rules
    return Instrument(
        inst_id=f"{base}-{quote}",
        base_ccy=base,
        quote_ccy=quote,
        tick_sz=tick_sz,
        lot_sz=lot_sz,
        min_sz=min_sz_d,
        start_px=Decimal(px),
        daily_volume_quote=Decimal(vol),
    )

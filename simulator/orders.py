"""A simulated order and its OKX wire shapes (REST order object, ``orders`` channel push)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from simulator.decimals import ZERO, fmt
from simulator.instruments import Instrument

PENDING_STATES = frozenset({"live", "partially_filled"})
ORDER_TYPES = frozenset({"limit", "post_only", "ioc", "fok"})


@dataclass
class Fill:
    """One execution, as reported in the push that announces it."""

    trade_id: str
    px: Decimal
    sz: Decimal
    fee: Decimal  # negative = charged
    ts: int
    exec_type: str  # "T" taker / "M" maker


@dataclass
class Order:
    ord_id: str
    cl_ord_id: str
    tag: str
    inst: Instrument
    side: str
    ord_type: str
    px: Decimal
    sz: Decimal
    tgt_ccy: str
    c_time: int
    u_time: int
    state: str = "live"
    acc_fill_sz: Decimal = ZERO
    fill_notional: Decimal = ZERO
    fee: Decimal = ZERO
    cancel_source: str = ""
    last_fill: Fill | None = None
    fills: list[Fill] = field(default_factory=list)

    @property
    def remaining(self) -> Decimal:
        return self.sz - self.acc_fill_sz

    @property
    def is_pending(self) -> bool:
        return self.state in PENDING_STATES

    @property
    def fee_ccy(self) -> str:
        return self.inst.base_ccy if self.side == "buy" else self.inst.quote_ccy

    @property
    def avg_px(self) -> Decimal | None:
        if self.acc_fill_sz == 0:
            return None
        return (self.fill_notional / self.acc_fill_sz).quantize(self.inst.tick_sz / 1000000)

    def to_okx(self) -> dict[str, Any]:
        """The object of GET /api/v5/trade/order, orders-pending and orders-history."""
        fill = self.last_fill
        avg = self.avg_px
        return {
            "accFillSz": fmt(self.acc_fill_sz),
            "algoClOrdId": "",
            "algoId": "",
            "attachAlgoClOrdId": "",
            "attachAlgoOrds": [],
            "avgPx": fmt(avg) if avg is not None else "",
            "cTime": str(self.c_time),
            "cancelSource": self.cancel_source,
            "cancelSourceReason": _CANCEL_REASONS.get(self.cancel_source, ""),
            "category": "normal",
            "ccy": "",
            "clOrdId": self.cl_ord_id,
            "fee": fmt(self.fee),
            "feeCcy": self.fee_ccy,
            "fillPx": fmt(fill.px) if fill else "",
            "fillSz": fmt(fill.sz) if fill else "0",
            "fillTime": str(fill.ts) if fill else "",
            "instId": self.inst.inst_id,
            "instType": "SPOT",
            "isTpLimit": "false",
            "lever": "",
            "linkedAlgoOrd": {"algoId": ""},
            "ordId": self.ord_id,
            "ordType": self.ord_type,
            "pnl": "0",
            "posSide": "net",
            "px": fmt(self.px),
            "pxType": "",
            "pxUsd": "",
            "pxVol": "",
            "quickMgnType": "",
            "rebate": "0",
            "rebateCcy": self.inst.quote_ccy if self.side == "buy" else self.inst.base_ccy,
            "reduceOnly": "false",
            "side": self.side,
            "slOrdPx": "",
            "slTriggerPx": "",
            "slTriggerPxType": "",
            "source": "",
            "state": self.state,
            "stpId": "",
            "stpMode": "cancel_maker",
            "sz": fmt(self.sz),
            "tag": self.tag,
            "tdMode": "cash",
            "tgtCcy": self.tgt_ccy,
            "tpOrdPx": "",
            "tpTriggerPx": "",
            "tpTriggerPxType": "",
            "tradeId": fill.trade_id if fill else "",
            "uTime": str(self.u_time),
        }

    def to_push(self, fill: Fill | None, last_px: Decimal | None) -> dict[str, Any]:
        """The ``orders`` channel object; ``fill`` describes this update only (or none)."""
        data = self.to_okx()
        notional = self.px * self.sz
        data.update(
            {
                "amendResult": "",
                "amendSource": "",
                "code": "0",
                "msg": "",
                "reqId": "",
                "execType": fill.exec_type if fill else "",
                "fillPx": fmt(fill.px) if fill else "",
                "fillSz": fmt(fill.sz) if fill else "0",
                "fillTime": str(fill.ts) if fill else "",
                "tradeId": fill.trade_id if fill else "",
                "fillFee": fmt(fill.fee) if fill else "0",
                "fillFeeCcy": self.fee_ccy if fill else "",
                "fillNotionalUsd": fmt(fill.px * fill.sz) if fill else "",
                "fillPnl": "0",
                "fillPxVol": "",
                "fillPxUsd": "",
                "fillMarkVol": "",
                "fillFwdPx": "",
                "fillMarkPx": "",
                "fillIdxPx": "",
                "notionalUsd": fmt(notional),
                "tradeQuoteCcy": self.inst.quote_ccy,
                "lastPx": fmt(last_px) if last_px is not None else "",
            }
        )
        return data


_CANCEL_REASONS = {
    "1": "Order canceled by user",
    "13": "FOK order was canceled because it could not be fully filled",
    "14": "IOC order was partially canceled because it could not be fully filled",
    "31": "The post-only order will take liquidity in taker orders",
}

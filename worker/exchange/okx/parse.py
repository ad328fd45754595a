"""Turn OKX JSON objects into the port's types (and a few protocol-level ones).

OKX sends every number as a string and uses ``""`` for "none"; both are handled here so that
the engine only ever sees ``Decimal``, ``int`` milliseconds and ``OrderState`` members.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from worker.domain.money import InstrumentRules, to_decimal
from worker.domain.orders import OrderState
from worker.exchange.okx.errors import MalformedResponse
from worker.exchange.port import Fill, OrderSnapshot, Placement, Side, Ticker

ZERO = Decimal(0)

_STATES = {
    "live": OrderState.LIVE,
    "partially_filled": OrderState.PARTIALLY_FILLED,
    "filled": OrderState.FILLED,
    "canceled": OrderState.CANCELED,
    # Canceled by market-maker protection: for a spot order it is just canceled.
    "mmp_canceled": OrderState.CANCELED,
}


def _dec(obj: dict[str, Any], key: str) -> Decimal:
    raw = obj.get(key, "")
    if raw in ("", None):
        return ZERO
    if type(raw) is float:  # OKX sends strings; tolerate a peer that sends JSON numbers
        raw = repr(raw)
    try:
        return to_decimal(raw, key)
    except ValueError as exc:
        raise MalformedResponse(f"okx: bad {key}: {exc}") from None


def _ms(obj: dict[str, Any], key: str) -> int:
    raw = obj.get(key, "")
    if raw in ("", None):
        return 0
    try:
        return int(str(raw))
    except ValueError:
        raise MalformedResponse(f"okx: bad {key} {raw!r}") from None


def _str(obj: dict[str, Any], key: str) -> str:
    raw = obj.get(key)
    return "" if raw is None else str(raw)


def _required(obj: dict[str, Any], key: str) -> str:
    value = _str(obj, key)
    if not value:
        raise MalformedResponse(f"okx: {key} missing")
    return value


def order_state(raw: str) -> OrderState:
    """Translate an OKX order state string."""
    try:
        return _STATES[raw]
    except KeyError:
        raise MalformedResponse(f"okx: unknown order state {raw!r}") from None


def parse_side(raw: str) -> Side:
    if raw == "buy":
        return Side.BUY
    if raw == "sell":
        return Side.SELL
    raise MalformedResponse(f"okx: unknown side {raw!r}")


def parse_fill(item: dict[str, Any], fee: Decimal) -> Fill | None:
    """Return the trade an order object reports, when ``tradeId`` is set.

    Pushes carry the trade's own ``fillFee``; REST answers do not, so a REST fill carries the
    order's cumulative fee when it is the only fill, else zero (use the snapshot's ``fee``).
    """
    trade_id = _str(item, "tradeId")
    if not trade_id:
        return None
    fill_sz = _dec(item, "fillSz")
    if "fillFee" in item:
        fill_fee = -_dec(item, "fillFee")
    else:
        fill_fee = fee if fill_sz == _dec(item, "accFillSz") else ZERO
    return Fill(
        trade_id=trade_id,
        px=_dec(item, "fillPx"),
        sz=fill_sz,
        fee=fill_fee,
        fee_ccy=_str(item, "fillFeeCcy") or _str(item, "feeCcy"),
        ts_ms=_ms(item, "fillTime") or _ms(item, "uTime"),
    )


def parse_order(item: dict[str, Any]) -> OrderSnapshot:
    """Translate an order object (REST order endpoints or the ``orders`` channel)."""
    # OKX's fee is negative when charged; the port's is positive when charged.
    fee = -_dec(item, "fee")
    return OrderSnapshot(
        inst_id=_required(item, "instId"),
        ord_id=_required(item, "ordId"),
        cl_ord_id=_str(item, "clOrdId"),
        side=parse_side(_str(item, "side")),
        px=_dec(item, "px"),
        sz=_dec(item, "sz"),
        state=order_state(_str(item, "state")),
        acc_fill_sz=_dec(item, "accFillSz"),
        avg_px=_dec(item, "avgPx"),  # "" (REST) or "0" (push) when nothing filled
        fee=fee,
        fee_ccy=_str(item, "feeCcy"),
        created_ms=_ms(item, "cTime"),
        updated_ms=_ms(item, "uTime"),
        fill=parse_fill(item, fee),
        tag=_str(item, "tag"),
    )


def parse_placement(item: dict[str, Any]) -> Placement:
    """Translate one accepted result of ``trade/order`` or ``trade/batch-orders``."""
    return Placement(
        ord_id=_required(item, "ordId"), cl_ord_id=_str(item, "clOrdId"), ts_ms=_ms(item, "ts")
    )


def parse_instrument(item: dict[str, Any]) -> InstrumentRules:
    """Translate a ``public/instruments`` item; ``live`` is false unless state is "live"."""
    rules = InstrumentRules(
        inst_id=_required(item, "instId"),
        tick_sz=_dec(item, "tickSz"),
        lot_sz=_dec(item, "lotSz"),
        min_sz=_dec(item, "minSz"),
        # Spot ids are BASE-QUOTE: fall back on them when a peer omits the currencies.
        base_ccy=_str(item, "baseCcy") or _required(item, "instId").partition("-")[0],
        quote_ccy=_str(item, "quoteCcy") or _required(item, "instId").partition("-")[2],
        live=_str(item, "state") == "live",
    )
    if rules.tick_sz <= 0 or rules.lot_sz <= 0:
        raise MalformedResponse(f"okx: {rules.inst_id} has no tickSz/lotSz")
    return rules


def parse_ticker(item: dict[str, Any]) -> Ticker:
    return Ticker(
        inst_id=_required(item, "instId"),
        last=_dec(item, "last"),
        bid_px=_dec(item, "bidPx"),
        ask_px=_dec(item, "askPx"),
        ts_ms=_ms(item, "ts"),
    )


def parse_server_time(item: dict[str, Any]) -> int:
    """Return ``public/time``'s epoch milliseconds."""
    ts = _ms(item, "ts")
    if ts <= 0:
        raise MalformedResponse("okx: public/time without ts")
    return ts

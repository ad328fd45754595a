"""Order request validation with OKX's codes (51000, 51001, 51020, 51022, 51121, 51204, ...)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from simulator.decimals import is_multiple, parse_decimal
from simulator.instruments import Instrument
from simulator.orders import ORDER_TYPES

_CL_ORD_ID = re.compile(r"^[A-Za-z0-9]{1,32}$")
_TAG = re.compile(r"^[A-Za-z0-9]{1,16}$")
# OKX refuses new orders on a suspended instrument with 51022.
SUSPENDED_CODE = "51022"
SUSPENDED_MSG = "Instrument suspended."


class OrderError(Exception):
    """An order refused with an OKX ``sCode`` and ``sMsg``."""

    def __init__(self, code: str, msg: str):
        super().__init__(f"{code} {msg}")
        self.code = code
        self.msg = msg


@dataclass(frozen=True)
class OrderRequest:
    inst: Instrument
    side: str
    ord_type: str
    px: Decimal
    sz: Decimal
    cl_ord_id: str
    tag: str
    tgt_ccy: str


def _param_error(name: str) -> OrderError:
    return OrderError("51000", f"Parameter {name} error")


def _text(params: dict[str, Any], name: str) -> str:
    value = params.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _param_error(name)
    return value.strip()


# The order's text fields after the instrument, in the order OKX checks them, each with what it
# accepts; a value it refuses is a 51000 on that parameter. Only market orders may be sized in
# the quote currency, so tgtCcy=quote_ccy is refused too.
_FIELDS: tuple[tuple[str, Callable[[str], bool]], ...] = (
    ("tdMode", lambda v: v == "cash"),
    ("side", lambda v: v in ("buy", "sell")),
    ("ordType", lambda v: v in ORDER_TYPES),
    ("clOrdId", lambda v: not v or bool(_CL_ORD_ID.match(v))),
    ("tag", lambda v: not v or bool(_TAG.match(v))),
    ("tgtCcy", lambda v: v in ("", "base_ccy")),
)


def validate_order(params: Any, instruments: dict[str, Instrument]) -> OrderRequest:
    """Check one place-order body; raise ``OrderError`` like OKX would."""
    if not isinstance(params, dict):
        raise OrderError("51000", "Parameter order error")
    inst = _instrument(params, instruments)
    fields = _fields(params)
    px = _price(params, inst)
    sz = _size(params, inst)
    return OrderRequest(
        inst,
        fields["side"],
        fields["ordType"],
        px,
        sz,
        fields["clOrdId"],
        fields["tag"],
        fields["tgtCcy"],
    )


def _instrument(params: dict[str, Any], instruments: dict[str, Instrument]) -> Instrument:
    inst_id = _text(params, "instId")
    if not inst_id:
        raise OrderError("50014", "Parameter instId can not be empty")
    inst = instruments.get(inst_id)
    if inst is None:
        raise OrderError("51001", "Instrument ID, Instrument ID code, or Spread ID doesn't exist.")
    if inst.state != "live":
        raise OrderError(SUSPENDED_CODE, SUSPENDED_MSG)
    return inst


def _fields(params: dict[str, Any]) -> dict[str, str]:
    values = {}
    for name, accepts in _FIELDS:
        value = _text(params, name)
        if not accepts(value):
            raise _param_error(name)
        values[name] = value
    return values


def _price(params: dict[str, Any], inst: Instrument) -> Decimal:
    raw_px = params.get("px")
    if raw_px in (None, ""):
        raise OrderError("51204", "The price for the limit order cannot be empty.")
    px = parse_decimal(raw_px)
    if px is None or px <= 0 or not is_multiple(px, inst.tick_sz):
        raise _param_error("px")
    return px


def _size(params: dict[str, Any], inst: Instrument) -> Decimal:
    sz = parse_decimal(params.get("sz"))
    if sz is None or sz <= 0:
        raise _param_error("sz")
    if not is_multiple(sz, inst.lot_sz):
        raise OrderError("51121", "Order quantity must be a multiple of the lot size.")
    if sz < inst.min_sz:
        raise OrderError("51020", "Your order should meet or exceed the minimum order amount.")
    return sz

"""The exchange port: the few operations the engine needs from a venue.

Adapters translate the venue's wire format into these types and its error codes into the
tree of ``worker.domain.errors``. Everything here is exchange-neutral: states are
``OrderState`` members, amounts are ``Decimal``, times are epoch milliseconds.

Contract every adapter keeps:

- ``place_order`` returns only when the venue accepted the order. A refusal raises
  ``OrderRejected`` (or a subclass); a pending order with the same clOrdId raises
  ``DuplicateClientOrderId``; no answer raises ``StateUnknown``; overload raises
  ``RateLimited`` / ``ExchangeUnavailable``.
- ``get_order`` raises ``OrderNotFound`` only on an explicit "does not exist" answer.
- ``cancel_order`` returns when the venue accepted the cancel request (not when the order is
  canceled: confirm with ``get_order``); ``CancelRejected`` when it is already filled, canceled
  or being canceled; ``OrderNotFound`` when it does not exist.
- ``fee`` is what the venue charged (positive = charged; a rebate is negative), in ``fee_ccy``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol, runtime_checkable

from worker.domain.money import InstrumentRules, to_decimal
from worker.domain.orders import OrderState
from worker.domain.orders import Side as Side  # re-exported: part of the port


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """A limit order to place (spot, cash)."""

    inst_id: str
    side: Side
    px: Decimal
    sz: Decimal
    cl_ord_id: str
    tag: str = "limitflow"
    # The request deadline (OKX ``expTime``, epoch ms): the venue drops a request that
    # reaches it later. None: no deadline.
    exp_time_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Placement:
    """The venue's acknowledgement of a placement."""

    ord_id: str
    cl_ord_id: str
    ts_ms: int


@dataclass(frozen=True, slots=True)
class Fill:
    """One trade against one of our orders, de-duplicated by ``trade_id``."""

    trade_id: str
    px: Decimal
    sz: Decimal
    fee: Decimal
    fee_ccy: str
    ts_ms: int


@dataclass(frozen=True, slots=True)
class OrderSnapshot:
    """What the venue says about an order at ``updated_ms``.

    ``state`` is one of LIVE, PARTIALLY_FILLED, FILLED, CANCELED. ``acc_fill_sz``, ``avg_px``
    and ``fee`` are cumulative. ``fill`` is the trade this update reports, when it reports one
    (a websocket push, or the last trade of a REST answer).
    """

    inst_id: str
    ord_id: str
    cl_ord_id: str
    side: Side
    px: Decimal
    sz: Decimal
    state: OrderState
    acc_fill_sz: Decimal
    avg_px: Decimal
    fee: Decimal
    fee_ccy: str
    created_ms: int
    updated_ms: int
    fill: Fill | None = None
    tag: str = ""


@dataclass(frozen=True, slots=True)
class Ticker:
    inst_id: str
    last: Decimal
    bid_px: Decimal
    ask_px: Decimal
    ts_ms: int


@runtime_checkable
class Exchange(Protocol):
    """The venue, as the engine sees it."""

    def instrument(self, inst_id: str, *, require_live: bool = True) -> InstrumentRules:
        """Return the trading rules; raise ``InvalidInstrument`` if unknown, or not live
        when ``require_live`` (a suspended instrument's rules still settle its orders)."""
        ...

    def clock_skew_ms(self) -> int | None:
        """Our clock minus the venue's in ms, recently measured; None when unknown."""
        ...

    def place_order(self, request: OrderRequest) -> Placement:
        """Place a limit order; see the module docstring for the error contract."""
        ...

    def cancel_order(
        self, inst_id: str, *, ord_id: str | None = None, cl_ord_id: str | None = None
    ) -> None:
        """Request a cancel; confirm the outcome with ``get_order``."""
        ...

    def get_order(
        self, inst_id: str, *, ord_id: str | None = None, cl_ord_id: str | None = None
    ) -> OrderSnapshot:
        """Return the latest order with this id; raise ``OrderNotFound`` if there is none."""
        ...

    def list_pending(self, inst_id: str | None = None) -> Iterator[OrderSnapshot]:
        """Yield every live or partially filled order, paging as needed."""
        ...

    def ticker(self, inst_id: str) -> Ticker:
        """Return the current best bid/ask and last price."""
        ...


def snapshot_to_message(snap: OrderSnapshot) -> dict[str, object]:
    """Serialize a snapshot as the argument of the ``apply_order_update`` task."""
    msg: dict[str, object] = {
        "v": 1,
        "inst_id": snap.inst_id,
        "ord_id": snap.ord_id,
        "cl_ord_id": snap.cl_ord_id,
        "side": snap.side,
        "px": str(snap.px),
        "sz": str(snap.sz),
        "state": snap.state.value,
        "acc_fill_sz": str(snap.acc_fill_sz),
        "avg_px": str(snap.avg_px),
        "fee": str(snap.fee),
        "fee_ccy": snap.fee_ccy,
        "created_ms": snap.created_ms,
        "updated_ms": snap.updated_ms,
        "tag": snap.tag,
    }
    if snap.fill is not None:
        f = snap.fill
        msg["fill"] = {
            "trade_id": f.trade_id,
            "px": str(f.px),
            "sz": str(f.sz),
            "fee": str(f.fee),
            "fee_ccy": f.fee_ccy,
            "ts_ms": f.ts_ms,
        }
    return msg


def snapshot_from_message(msg: dict[str, object]) -> OrderSnapshot:
    """Inverse of ``snapshot_to_message``; raise ``ValueError``/``KeyError`` on a bad message."""

    def dec(d: dict[str, object], key: str) -> Decimal:
        return to_decimal(d[key], key)

    state = OrderState(str(msg["state"]))
    if state not in (
        OrderState.LIVE,
        OrderState.PARTIALLY_FILLED,
        OrderState.FILLED,
        OrderState.CANCELED,
    ):
        raise ValueError(f"an exchange cannot report state {state}")
    try:
        side = Side(str(msg["side"]))
    except ValueError:
        raise ValueError(f"side must be buy or sell, got {msg['side']!r}") from None
    raw_fill = msg.get("fill")
    fill = None
    if isinstance(raw_fill, dict):
        fill = Fill(
            trade_id=str(raw_fill["trade_id"]),
            px=dec(raw_fill, "px"),
            sz=dec(raw_fill, "sz"),
            fee=dec(raw_fill, "fee"),
            fee_ccy=str(raw_fill["fee_ccy"]),
            ts_ms=int(str(raw_fill["ts_ms"])),
        )
    return OrderSnapshot(
        inst_id=str(msg["inst_id"]),
        ord_id=str(msg["ord_id"]),
        cl_ord_id=str(msg["cl_ord_id"]),
        side=side,
        px=dec(msg, "px"),
        sz=dec(msg, "sz"),
        state=state,
        acc_fill_sz=dec(msg, "acc_fill_sz"),
        avg_px=dec(msg, "avg_px"),
        fee=dec(msg, "fee"),
        fee_ccy=str(msg["fee_ccy"]),
        created_ms=int(str(msg["created_ms"])),
        updated_ms=int(str(msg["updated_ms"])),
        fill=fill,
        tag=str(msg.get("tag", "")),
    )


@runtime_checkable
class WarmsUp(Protocol):
    """An adapter with something to prepare before its first order (optional)."""

    def warm_up(self, rehearsals: int = 0) -> int:
        """Load what the first order would otherwise fetch, and run the placement's own code
        ``rehearsals`` times without placing anything; return how many instruments."""
        ...

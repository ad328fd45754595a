"""An intent: an order row just written (``pending_submit``), with what is needed to send it."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from worker.domain.orders import Side
from worker.ledger.models import Order


@dataclass(frozen=True, slots=True)
class Intent:
    """An order row that was just written, with everything needed to send it."""

    order_id: int
    inst_id: str
    strategy: str
    side: Side
    px: Decimal
    sz: Decimal
    cl_ord_id: str

    @classmethod
    def of(cls, order: Order) -> Intent:
        return cls(
            order.id,
            order.inst_id,
            order.strategy,
            Side(order.side),
            order.px,
            order.sz,
            order.cl_ord_id,
        )

"""Lots the engine cannot sell: refusals counted, ``needs_attention``, an operator's settlement.

Every explicit refusal of a lot's exit (take-profit or exit order rejected by the exchange) is
counted on the lot. At ``MAX_EXIT_REFUSALS`` the lot moves to ``needs_attention``: the engine
stops placing exits for it (reconciliation and sell signals skip it), logs one ERROR, and
keeps the slot blocked, since the coins may still be held. ``python -m worker settle-lot``
closes it (sold elsewhere, or written off) or hands it back to the engine (``--retry``).
Ambiguous answers (timeouts, 5xx) are never refusals: nothing here counts them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from worker import notify
from worker.domain.errors import CommandRefused
from worker.domain.lots import LotState, Settlement
from worker.domain.orders import OPEN_STATES, OrderState
from worker.ledger.db import Ledger
from worker.ledger.models import Lot, Order
from worker.logs import log_event

log = logging.getLogger("limitflow.lots")
OPEN = [s.value for s in OPEN_STATES]
SETTLE_COMMAND = "python -m worker settle-lot {lot_id} --sold-elsewhere PX | --write-off | --retry"


@dataclass(frozen=True, slots=True)
class NeedsAttention:
    """A lot that has just moved to ``needs_attention`` (logged once, after commit)."""

    lot_id: int
    inst_id: str
    strategy: str
    remaining: Decimal
    refusals: int
    error: str

    def log(self) -> None:
        log_event(
            log,
            "lot.needs_attention",
            level=logging.ERROR,
            lot_id=self.lot_id,
            inst_id=self.inst_id,
            strategy=self.strategy,
            remaining=self.remaining,
            refusals=self.refusals,
            error=self.error,
            settle_with=SETTLE_COMMAND.format(lot_id=self.lot_id),
        )
        notify.alert(
            "needs_attention",
            f"lot {self.lot_id} ({self.inst_id}/{self.strategy}) needs attention",
            f"The exchange refused its exits {self.refusals} times ({self.error}); "
            f"{self.remaining} remain unsold and block the slot. Settle it with: "
            + SETTLE_COMMAND.format(lot_id=self.lot_id),
        )


def note_exit_refused(
    s: Session, order: Order, max_refusals: int, error: str
) -> NeedsAttention | None:
    """Count an explicit refusal of ``order``, one of a lot's exits; return what to log when
    the lot has just reached ``max_refusals`` and moved to ``needs_attention``.

    The caller holds the slot lock and has already marked the order ``rejected``.
    """
    if order.side != "sell" or order.lot_id is None:
        return None
    lot = s.get(Lot, order.lot_id)
    if lot is None or lot.state != LotState.OPEN:
        return None
    lot.exit_refusals += 1
    if lot.exit_refusals < max_refusals:
        return None
    lot.state = LotState.NEEDS_ATTENTION.value
    return NeedsAttention(
        lot.id, lot.inst_id, lot.strategy, lot.size - lot.sold_sz, lot.exit_refusals, error
    )


@dataclass(frozen=True, slots=True)
class Settled:
    """What ``settle_lot`` did, for the operator's printout."""

    lot_id: int
    inst_id: str
    strategy: str
    action: str  # sold_elsewhere | written_off | retry
    size: Decimal
    pnl: Decimal | None  # None while the lot is unsold (``retry``)


def settle_lot(
    ledger: Ledger, lot_id: int, action: str, now: datetime, px: Decimal | None = None
) -> Settled:
    """Settle a lot in ``needs_attention``, under its slot lock.

    ``sold_elsewhere``: what remained was sold outside the engine at ``px`` (net of fees).
    ``written_off``: nothing will come of what remained. Both close the lot and free its slot.
    ``retry``: the cause is fixed; the lot is ``open`` again, refusals counted from zero, and
    reconciliation places its exit. Raise ``CommandRefused`` (changing nothing) otherwise.
    """
    if action == Settlement.SOLD_ELSEWHERE and (px is None or px <= 0):
        raise CommandRefused("--sold-elsewhere needs the positive price the coins were sold at")
    with ledger.begin() as s:
        lot = s.get(Lot, lot_id)
        if lot is None:
            raise CommandRefused(f"there is no lot {lot_id}")
        ledger.lock_slot(s, lot.inst_id, lot.strategy)
        s.refresh(lot)
        if lot.state != LotState.NEEDS_ATTENTION:
            raise CommandRefused(
                f"lot {lot_id} is {lot.state}, not in needs_attention: only a lot the engine "
                "gave up on can be settled by hand"
            )
        resting = s.scalar(
            select(Order.cl_ord_id).where(Order.lot_id == lot_id, Order.state.in_(OPEN))
        )
        if resting is not None:
            raise CommandRefused(
                f"lot {lot_id} still has order {resting} open; let reconciliation settle it first"
            )
        remaining = lot.size - lot.sold_sz
        if action == "retry":
            lot.state, lot.exit_refusals = LotState.OPEN.value, 0
        elif action in (Settlement.SOLD_ELSEWHERE, Settlement.WRITTEN_OFF):
            if action == Settlement.SOLD_ELSEWHERE:
                assert px is not None
                lot.sold_sz = lot.size
                lot.proceeds += remaining * px
            lot.state, lot.settlement, lot.closed_at = LotState.CLOSED.value, action, now
        else:
            raise CommandRefused(f"unknown settlement {action!r}")
        done = Settled(
            lot.id,
            lot.inst_id,
            lot.strategy,
            action,
            remaining,
            None if action == "retry" else lot.proceeds - lot.cost,
        )
    log_event(
        log,
        "lot.settled",
        level=logging.WARNING,
        lot_id=done.lot_id,
        inst_id=done.inst_id,
        strategy=done.strategy,
        action=action,
        size=remaining,
        px=px,
        pnl=done.pnl,
    )
    return done


def needs_attention(s: Session) -> list[dict[str, Any]]:
    """Every lot in ``needs_attention``, with its last refusal and the command that settles it."""
    out = []
    for lot in s.scalars(
        select(Lot).where(Lot.state == LotState.NEEDS_ATTENTION.value).order_by(Lot.id)
    ):
        last = s.execute(
            select(Order.last_error, Order.updated_at)
            .where(Order.lot_id == lot.id, Order.state == OrderState.REJECTED.value)
            .order_by(Order.id.desc())
            .limit(1)
        ).first()
        out.append(
            {
                "lot_id": lot.id,
                "inst_id": lot.inst_id,
                "strategy": lot.strategy,
                "remaining": format(lot.size - lot.sold_sz, "f"),
                "avg_px": format(lot.avg_px, "f"),
                "exit_refusals": lot.exit_refusals,
                "last_refusal": last.last_error if last else "",
                "since": last.updated_at.isoformat() if last else None,
                "settle_with": SETTLE_COMMAND.format(lot_id=lot.id),
            }
        )
    return out

"""The facts behind a refused buy, written into the signal's ``detail``.

Fetched only when a buy is refused, inside the transaction that refused it (the slot lock is
still held, so the facts are the ones the decision saw): the accept path never pays for them.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Float, select
from sqlalchemy import cast as sql_cast

from worker.domain.describe import age, num, when
from worker.domain.lots import LotState
from worker.domain.results import SkipReason
from worker.ledger.db import Executor
from worker.ledger.models import Lot, Order
from worker.ledger.states import OPEN, UNSOLD_LOT_SQL
from worker.ledger.switches import pause_detail

# At most this many positions are named in a risk-limit detail (it fits the column).
NAMED_POSITIONS = 5


def blocker_detail(
    session: Executor,
    reason: str,
    inst_id: str,
    strategy: str,
    now: datetime,
    guard_seconds: int,
) -> str:
    """The facts behind a ``slot_blocker`` reason (``slot_busy``, ``unsold_lot``,
    ``cooldown``, ``paused``)."""
    if reason == SkipReason.SLOT_BUSY:
        return open_order_detail(session, inst_id, strategy, now)
    if reason == SkipReason.UNSOLD_LOT:
        return unsold_lot_detail(session, inst_id, strategy, now)
    if reason == SkipReason.COOLDOWN:
        return cooldown_detail(session, inst_id, strategy, now, guard_seconds)
    if reason == SkipReason.PAUSED:
        return pause_detail(session, strategy)
    return ""


def open_order_detail(session: Executor, inst_id: str, strategy: str, now: datetime) -> str:
    row = session.execute(
        select(
            Order.cl_ord_id, Order.side, Order.purpose, Order.state, Order.created_at, Order.lot_id
        )
        .where(Order.inst_id == inst_id, Order.strategy == strategy, Order.state.in_(OPEN))
        .order_by(Order.id)
        .limit(1)
    ).first()
    if row is None:
        return "an order was open (settled since)"
    lot = f" of lot {row.lot_id}" if row.lot_id is not None else ""
    return (
        f"order {row.cl_ord_id} ({row.side} {row.purpose}{lot}) is {row.state}, "
        f"open since {when(row.created_at)} ({age((now - row.created_at).total_seconds())} ago)"
    )


def unsold_lot_detail(session: Executor, inst_id: str, strategy: str, now: datetime) -> str:
    row = session.execute(
        select(
            Lot.id,
            Lot.state,
            Lot.size,
            Lot.sold_sz,
            Lot.avg_px,
            Lot.opened_at,
            Lot.exit_after,
            Lot.exit_refusals,
            Order.cl_ord_id,
        )
        .join(Order, Order.id == Lot.buy_order_id)
        .where(Lot.inst_id == inst_id, Lot.strategy == strategy, Lot.state.in_(UNSOLD_LOT_SQL))
        .order_by(Lot.id)
        .limit(1)
    ).first()
    if row is None:
        return "a lot was unsold (sold since)"
    held = f"{num(row.size - row.sold_sz)} unsold of {num(row.size)} bought at {num(row.avg_px)}"
    opened = f"opened {when(row.opened_at)} ({age((now - row.opened_at).total_seconds())} ago)"
    if row.state == LotState.NEEDS_ATTENTION:
        return (
            f"lot {row.id} needs attention ({row.exit_refusals} exits refused; {held}, "
            f"bought by {row.cl_ord_id}, {opened}): settle it with "
            f"`python -m worker settle-lot {row.id}`"
        )
    return (
        f"lot {row.id} is unsold ({held} by {row.cl_ord_id}, {opened}; "
        f"time exit at {when(row.exit_after)})"
    )


def cooldown_detail(
    session: Executor, inst_id: str, strategy: str, now: datetime, guard_seconds: int
) -> str:
    since = now - timedelta(seconds=guard_seconds)
    row = session.execute(
        select(Order.cl_ord_id, Order.created_at, Order.filled_sz, Order.avg_px, Order.state)
        .where(
            Order.inst_id == inst_id,
            Order.strategy == strategy,
            Order.side == "buy",
            Order.created_at > since,
            sql_cast(Order.filled_sz, Float) > 0,
        )
        .order_by(Order.created_at.desc())
        .limit(1)
    ).first()
    if row is None:
        return f"cooldown (BUY_GUARD_WINDOW_SECONDS={guard_seconds})"
    ends = row.created_at + timedelta(seconds=guard_seconds)
    return (
        f"cooldown until {when(ends)} ({age((ends - now).total_seconds())} from now; "
        f"BUY_GUARD_WINDOW_SECONDS={guard_seconds}), started by buy {row.cl_ord_id} of "
        f"{when(row.created_at)} that bought {num(row.filled_sz)} at {num(row.avg_px)} "
        f"({row.state})"
    )


def positions_detail(session: Executor, limit: int, refused_order_id: int | None = None) -> str:
    """Why ``MAX_OPEN_POSITIONS`` refused a buy: the positions held, the first few named
    (not counting ``refused_order_id``, the refused buy's own intent, about to be undone)."""
    buys = session.execute(
        select(Order.inst_id, Order.strategy, Order.cl_ord_id)
        .where(Order.side == "buy", Order.state.in_(OPEN), Order.id != (refused_order_id or 0))
        .order_by(Order.id)
    ).all()
    lots = session.execute(
        select(Lot.inst_id, Lot.strategy, Lot.id)
        .where(Lot.state.in_(UNSOLD_LOT_SQL))
        .order_by(Lot.id)
    ).all()
    named = [f"{i}/{s} lot {lot_id}" for i, s, lot_id in lots]
    named += [f"{i}/{s} buy {cl}" for i, s, cl in buys]
    shown = ", ".join(named[:NAMED_POSITIONS])
    more = f" and {len(named) - NAMED_POSITIONS} more" if len(named) > NAMED_POSITIONS else ""
    return (
        f"MAX_OPEN_POSITIONS={limit} reached: {len(named)} held ({len(lots)} unsold lots, "
        f"{len(buys)} open buys): {shown}{more}"
    )

"""Reconciliation: bring the ledger in line with the exchange (beat, and at worker start).

Both entry points take a named lock, so a second beat or an overlapping run returns at once.
A network error never settles anything: the order is counted as ``unknown`` and left alone.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from worker.domain.errors import CancelRejected, OrderNotFound, Retryable
from worker.domain.ids import CL_ORD_PREFIX
from worker.domain.orders import OPEN_STATES, OrderState
from worker.exchange.port import OrderSnapshot
from worker.ledger.models import Lot, Order
from worker.logs import log_event
from worker.runtime import Runtime
from worker.services.orders import lookup
from worker.services.sell import SellNotDone, exit_lot, sell_lot_on_schedule
from worker.services.updates import apply_snapshot_and_follow_up

log = logging.getLogger("limitflow.reconcile")
OPEN = [s.value for s in OPEN_STATES]
GONE = (OrderState.FAILED.value, OrderState.CANCELED.value)
REPORT_KEYS = ("restored", "cleaned", "adopted", "canceled", "sold", "unchanged", "unknown")


def _report(counts: Counter[str], **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {key: counts.get(key, 0) for key in REPORT_KEYS}
    out.update(extra)
    return out


def sync_active_orders(rt: Runtime) -> dict[str, Any]:
    """Check every open order against the exchange, adopt ours, enforce time limits."""
    with rt.ledger.named_lock("sync_active_orders") as got:
        if not got:
            return _report(Counter(), skipped="another run holds the lock")
        counts: Counter[str] = Counter()
        pending = _pending_by_cl_ord_id(rt)
        _check_open_orders(rt, pending, counts)
        if pending is not None:
            _adopt_missing(rt, pending, counts)
        _cancel_stale_buys(rt, counts)
        _sell_lots(rt, counts)
        rt.cache.clear()
        rt.events.publish_all()
        report = _report(counts, listing="ok" if pending is not None else "unavailable")
    log_event(log, "reconcile.sync", **report)
    return report


def purge_pending(rt: Runtime) -> dict[str, Any]:
    """Settle intents older than the pending timeout by looking them up by clOrdId."""
    with rt.ledger.named_lock("purge_pending") as got:
        if not got:
            return _report(Counter(), skipped="another run holds the lock")
        timeout = rt.settings.PENDING_TIMEOUT_SECONDS
        cutoff = rt.now() - timedelta(seconds=timeout)
        with rt.ledger.begin() as s:
            ids = list(
                s.scalars(
                    select(Order.id)
                    .where(
                        Order.state == OrderState.PENDING_SUBMIT.value,
                        Order.created_at <= cutoff,
                    )
                    .order_by(Order.id)
                )
            )
        counts: Counter[str] = Counter()
        for order_id in ids:
            counts[_classify(lookup(rt, order_id, declare_missing_after=timeout))] += 1
        report = _report(counts)
    log_event(log, "reconcile.purge", **report)
    return report


def _classify(result: str) -> str:
    if result == "unknown":
        return "unknown"
    if result in ("missing", OrderState.PENDING_SUBMIT.value):
        return "unchanged"
    if result == OrderState.FAILED.value:
        return "cleaned"
    return "restored"


def _pending_by_cl_ord_id(rt: Runtime) -> dict[str, OrderSnapshot] | None:
    try:
        return {snap.cl_ord_id or snap.ord_id: snap for snap in rt.exchange.list_pending()}
    except Retryable as exc:
        log_event(log, "reconcile.listing_failed", level=logging.WARNING, error=str(exc))
        return None


def _check_open_orders(
    rt: Runtime, pending: dict[str, OrderSnapshot] | None, counts: Counter[str]
) -> None:
    timeout = rt.settings.PENDING_TIMEOUT_SECONDS
    young = rt.now() - timedelta(seconds=timeout)
    with rt.ledger.begin() as s:
        rows = s.execute(
            select(Order.id, Order.cl_ord_id, Order.state, Order.filled_sz, Order.created_at)
            .where(Order.state.in_(OPEN))
            .order_by(Order.id)
        ).all()
    for order_id, cl_ord_id, state, filled_sz, created_at in rows:
        snap = pending.get(cl_ord_id) if pending is not None else None
        if snap is not None:
            if snap.state.value == state and snap.acc_fill_sz == filled_sz:
                counts["unchanged"] += 1
                continue
            result = apply_snapshot_and_follow_up(rt, snap, order_id=order_id)
            counts["unchanged" if result == state else "restored"] += 1
            continue
        if state == OrderState.PENDING_SUBMIT.value and created_at > young:
            counts["unchanged"] += 1  # still within the pending timeout: purge_pending's job
            continue
        result = lookup(rt, order_id, declare_missing_after=timeout)
        if result == "unknown":
            counts["unknown"] += 1
        elif result in ("missing", state):
            counts["unchanged"] += 1
        elif result in GONE and state != result:
            counts["cleaned"] += 1
        else:
            counts["restored"] += 1


def _adopt_missing(rt: Runtime, pending: dict[str, OrderSnapshot], counts: Counter[str]) -> None:
    ours = [snap for snap in pending.values() if snap.cl_ord_id.startswith(CL_ORD_PREFIX)]
    if not ours:
        return
    with rt.ledger.begin() as s:
        known = set(
            s.scalars(
                select(Order.cl_ord_id).where(Order.cl_ord_id.in_([o.cl_ord_id for o in ours]))
            )
        )
    for snap in ours:
        if snap.cl_ord_id not in known:
            result = apply_snapshot_and_follow_up(rt, snap)
            if result not in ("foreign", "conflict"):
                counts["adopted"] += 1


def _cancel_stale_buys(rt: Runtime, counts: Counter[str]) -> None:
    cutoff = rt.now() - timedelta(seconds=rt.settings.BUY_ORDER_TTL_SECONDS)
    live = [OrderState.LIVE.value, OrderState.PARTIALLY_FILLED.value]
    with rt.ledger.begin() as s:
        stale = s.execute(
            select(Order.id, Order.inst_id, Order.ord_id, Order.cl_ord_id).where(
                Order.side == "buy", Order.state.in_(live), Order.created_at <= cutoff
            )
        ).all()
    for order_id, inst_id, ord_id, cl_ord_id in stale:
        try:
            rt.exchange.cancel_order(inst_id, ord_id=ord_id, cl_ord_id=cl_ord_id)
        except (CancelRejected, OrderNotFound):
            pass
        except Retryable:
            counts["unknown"] += 1
            continue
        result = lookup(rt, order_id, declare_missing_after=rt.settings.PENDING_TIMEOUT_SECONDS)
        if result == OrderState.CANCELED.value:
            counts["canceled"] += 1
        elif result == "unknown":
            counts["unknown"] += 1


def _sell_lots(rt: Runtime, counts: Counter[str]) -> None:
    now = rt.now()
    with rt.ledger.begin() as s:
        lots = s.execute(select(Lot.id, Lot.exit_after).where(Lot.state == "open")).all()
        resting = set(
            s.scalars(select(Order.lot_id).where(Order.lot_id.is_not(None), Order.state.in_(OPEN)))
        )
    for lot_id, exit_after in lots:
        try:
            if lot_id not in resting:
                result = sell_lot_on_schedule(rt, lot_id)
            elif now >= exit_after:
                result = exit_lot(rt, lot_id, None, "time_exit")
            else:
                continue
        except (SellNotDone, Retryable):
            counts["unknown"] += 1
            continue
        if result in ("exit_placed", "take_profit_placed", "dust"):
            counts["sold"] += 1

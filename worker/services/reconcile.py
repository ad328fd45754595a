"""Reconciliation: bring the ledger in line with the exchange (beat, and at worker start).

Both entry points take a named lock, so a second beat or an overlapping run returns at once.
A network error never settles anything: the order is counted as ``unknown`` and left alone.
"""

from __future__ import annotations

import contextlib
import logging
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any, TypeVar

from sqlalchemy import Float, cast, select

from worker.domain.errors import CancelRejected, ExchangeError, OrderNotFound, Retryable
from worker.domain.ids import CL_ORD_PREFIX
from worker.domain.lots import LotState
from worker.domain.orders import INFERRED_STATES, OPEN_STATES, OrderState, Side
from worker.domain.results import ExitResult, Verdict
from worker.exchange.port import OrderSnapshot
from worker.ledger.models import ORPHAN, Lot, Order
from worker.ledger.orders import lock_order
from worker.ledger.reports import save_report
from worker.logs import log_event
from worker.runtime import Runtime
from worker.services.lookup import lookup
from worker.services.placement import finish
from worker.services.sell import exit_lot, sell_lot_on_schedule
from worker.services.settle import settle
from worker.services.updates import apply_snapshot_and_follow_up

log = logging.getLogger("limitflow.reconcile")
OPEN = [s.value for s in OPEN_STATES]
GONE = (OrderState.FAILED.value, OrderState.CANCELED.value)
INFERRED = [s.value for s in INFERRED_STATES]
REPORT_KEYS = (
    "restored",
    "cleaned",
    "adopted",
    "taken_back",
    "canceled",
    "sold",
    "unchanged",
    "unknown",
)
# Orders the ledger inferred rejected or failed are looked up again for this long: a late
# placement or a misread answer shows up within minutes, and OKX keeps history for days.
TAKE_BACK_LOOKBACK = timedelta(hours=24)
TAKE_BACK_PER_RUN = 100

T = TypeVar("T")


class Run:
    """One reconciliation run's counts, and the bulkhead around each order and lot."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()

    def each(self, what: str, items: Iterable[T], settle_one: Callable[[T], None]) -> None:
        """Settle every item on its own: a failure is counted, logged once, and the run goes
        on (one suspended instrument or failing lookup must not stop the rest)."""
        for item in items:
            try:
                settle_one(item)
            except Retryable:
                self.counts["unknown"] += 1
            except Exception as exc:  # the bulkhead: counted in the report, never swallowed
                reason = _reason(exc)
                self.errors[reason] += 1
                log_event(
                    log,
                    "reconcile.item_failed",
                    level=logging.ERROR,
                    item=what,
                    id=_item_id(item),
                    reason=reason,
                    error=str(exc)[:300],
                )

    def report(self, **extra: Any) -> dict[str, Any]:
        out: dict[str, Any] = {key: self.counts.get(key, 0) for key in REPORT_KEYS}
        out["errors"] = dict(self.errors)
        out.update(extra)
        return out


def _reason(exc: Exception) -> str:
    name = type(exc).__name__
    snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")
    return snake if isinstance(exc, ExchangeError) else f"internal_{snake}"


def _item_id(item: object) -> str:
    if isinstance(item, tuple) and item:
        return str(item[0])
    if isinstance(item, OrderSnapshot):
        return item.cl_ord_id or item.ord_id
    return str(item)


def _report(counts: Counter[str], **extra: Any) -> dict[str, Any]:
    run = Run()
    run.counts = counts
    return run.report(**extra)


def sync_active_orders(rt: Runtime) -> dict[str, Any]:
    """Check every open order against the exchange, adopt ours, take back what the ledger
    inferred gone, enforce time limits, and sell what is due."""
    with rt.ledger.named_lock("sync_active_orders") as got:
        if not got:
            return _report(Counter(), skipped="another run holds the lock")
        run = Run()
        pending = _pending_by_cl_ord_id(rt)
        _check_open_orders(rt, pending, run)
        if pending is not None:
            _adopt_missing(rt, pending, run)
        _take_back_inferred(rt, pending, run)
        _cancel_stale_buys(rt, run)
        _lots_for_filled_buys(rt, run)
        _sell_lots(rt, run)
        rt.cache.clear()
        rt.events.publish_all()
        report = run.report(listing="ok" if pending is not None else "unavailable")
        save_report(rt.ledger, "sync_active_orders", report, rt.now())
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
        run = Run()

        def purge_one(order_id: int) -> None:
            run.counts[_classify(lookup(rt, order_id, declare_missing_after=timeout))] += 1

        run.each("order", ids, purge_one)
        report = run.report()
        save_report(rt.ledger, "purge_pending", report, rt.now())
    log_event(log, "reconcile.purge", **report)
    return report


def _classify(result: OrderState | Verdict) -> str:
    if result == Verdict.UNKNOWN:
        return "unknown"
    if result in (Verdict.MISSING, OrderState.PENDING_SUBMIT):
        return "unchanged"
    if result == OrderState.FAILED:
        return "cleaned"
    return "restored"


def _pending_by_cl_ord_id(rt: Runtime) -> dict[str, OrderSnapshot] | None:
    try:
        return {snap.cl_ord_id or snap.ord_id: snap for snap in rt.exchange.list_pending()}
    except Retryable as exc:
        log_event(log, "reconcile.listing_failed", level=logging.WARNING, error=str(exc))
        return None


def _check_open_orders(rt: Runtime, pending: dict[str, OrderSnapshot] | None, run: Run) -> None:
    timeout = rt.settings.PENDING_TIMEOUT_SECONDS
    young = rt.now() - timedelta(seconds=timeout)
    with rt.ledger.begin() as s:
        rows = s.execute(
            select(Order.id, Order.cl_ord_id, Order.state, Order.filled_sz, Order.created_at)
            .where(Order.state.in_(OPEN))
            .order_by(Order.id)
        ).all()

    def check(row: Any) -> None:
        order_id, cl_ord_id, state, filled_sz, created_at = row
        snap = pending.get(cl_ord_id) if pending is not None else None
        if snap is not None:
            if snap.state.value == state and snap.acc_fill_sz == filled_sz:
                run.counts["unchanged"] += 1
                return
            result = apply_snapshot_and_follow_up(rt, snap, order_id=order_id)
            run.counts["unchanged" if result == state else "restored"] += 1
            return
        if state == OrderState.PENDING_SUBMIT.value and created_at > young:
            run.counts["unchanged"] += 1  # still within the pending timeout: purge_pending's job
            return
        result = lookup(rt, order_id, declare_missing_after=timeout)
        if result == Verdict.UNKNOWN:
            run.counts["unknown"] += 1
        elif result in (Verdict.MISSING, state):
            run.counts["unchanged"] += 1
        elif result in GONE and state != result:
            run.counts["cleaned"] += 1
        else:
            run.counts["restored"] += 1

    run.each("order", rows, check)


def _adopt_missing(rt: Runtime, pending: dict[str, OrderSnapshot], run: Run) -> None:
    """Adopt resting orders of ours the ledger lacks; cancel those it cannot adopt."""
    ours = [snap for snap in pending.values() if snap.cl_ord_id.startswith(CL_ORD_PREFIX)]
    if not ours:
        return
    with rt.ledger.begin() as s:
        known = set(
            s.scalars(
                select(Order.cl_ord_id).where(Order.cl_ord_id.in_([o.cl_ord_id for o in ours]))
            )
        )

    def adopt_one(snap: OrderSnapshot) -> None:
        result = apply_snapshot_and_follow_up(rt, snap)
        if result == Verdict.FOREIGN:
            run.counts["canceled"] += 1  # ours by its prefix, but not adoptable: canceled
        elif result != Verdict.CONFLICT:
            run.counts["adopted"] += 1

    run.each("order", [snap for snap in ours if snap.cl_ord_id not in known], adopt_one)


def _take_back_inferred(rt: Runtime, pending: dict[str, OrderSnapshot] | None, run: Run) -> None:
    """The exchange's facts beat the ledger's inferences: look up the orders the ledger
    recently inferred rejected or failed, and take back any the exchange shows."""
    since = rt.now() - TAKE_BACK_LOOKBACK
    with rt.ledger.begin() as s:
        rows = s.execute(
            select(Order.id, Order.cl_ord_id)
            .where(Order.state.in_(INFERRED), Order.updated_at >= since)
            .order_by(Order.updated_at.desc())
            .limit(TAKE_BACK_PER_RUN)
        ).all()

    def take_back(row: Any) -> None:
        order_id, cl_ord_id = row
        snap = pending.get(cl_ord_id) if pending is not None else None
        if snap is not None:
            result = apply_snapshot_and_follow_up(rt, snap, order_id=order_id)
        else:
            result = lookup(rt, order_id)
        if result not in INFERRED and result not in (
            Verdict.MISSING,
            Verdict.UNKNOWN,
            Verdict.GONE,
        ):
            run.counts["taken_back"] += 1

    run.each("order", rows, take_back)


def _cancel_stale_buys(rt: Runtime, run: Run) -> None:
    """Cancel buys resting past BUY_ORDER_TTL_SECONDS, and orphans still resting."""
    cutoff = rt.now() - timedelta(seconds=rt.settings.BUY_ORDER_TTL_SECONDS)
    live = [OrderState.LIVE.value, OrderState.PARTIALLY_FILLED.value]
    with rt.ledger.begin() as s:
        stale = s.execute(
            select(Order.id, Order.inst_id, Order.ord_id, Order.cl_ord_id).where(
                Order.side == Side.BUY,
                Order.state.in_(live),
                (Order.created_at <= cutoff) | (Order.purpose == ORPHAN),
            )
        ).all()

    def cancel(row: Any) -> None:
        order_id, inst_id, ord_id, cl_ord_id = row
        with contextlib.suppress(CancelRejected, OrderNotFound):  # done already: look it up
            rt.exchange.cancel_order(inst_id, ord_id=ord_id, cl_ord_id=cl_ord_id)
        result = lookup(rt, order_id, declare_missing_after=rt.settings.PENDING_TIMEOUT_SECONDS)
        if result == OrderState.CANCELED.value:
            run.counts["canceled"] += 1
        elif result == Verdict.UNKNOWN:
            run.counts["unknown"] += 1

    run.each("order", stale, cancel)


def _lots_for_filled_buys(rt: Runtime, run: Run) -> None:
    """Backstop: a buy that ended with something filled has its lot (settling it may have
    been deferred, e.g. while its instrument's rules could not be fetched)."""
    ended = [OrderState.FILLED.value, OrderState.CANCELED.value]
    with rt.ledger.begin() as s:
        rows = s.execute(
            select(Order.id, Order.inst_id, Order.strategy)
            .outerjoin(Lot, Lot.buy_order_id == Order.id)
            .where(
                Order.side == Side.BUY,
                Order.state.in_(ended),
                cast(Order.filled_sz, Float) > 0,
                Lot.id.is_(None),
            )
        ).all()

    def make_lot(row: Any) -> None:
        order_id, inst_id, strategy = row
        with rt.ledger.begin() as s:
            order = lock_order(rt.ledger, s, order_id, (inst_id, strategy))
            assert order is not None
            intents, freed = settle(rt, s, order, became_terminal=True)
        finish(rt, intents, freed)
        run.counts["restored"] += 1

    run.each("order", rows, make_lot)


def _sell_lots(rt: Runtime, run: Run) -> None:
    now = rt.now()
    with rt.ledger.begin() as s:
        lots = s.execute(
            select(Lot.id, Lot.exit_after).where(Lot.state == LotState.OPEN.value)
        ).all()
        resting = set(
            s.scalars(select(Order.lot_id).where(Order.lot_id.is_not(None), Order.state.in_(OPEN)))
        )

    def sell(row: Any) -> None:
        lot_id, exit_after = row
        if lot_id not in resting:
            result = sell_lot_on_schedule(rt, lot_id)
        elif now >= exit_after:
            result = exit_lot(rt, lot_id, None, "time_exit")
        else:
            return
        if result in (ExitResult.EXIT_PLACED, ExitResult.TAKE_PROFIT_PLACED, ExitResult.DUST):
            run.counts["sold"] += 1

    run.each("lot", lots, sell)

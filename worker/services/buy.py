"""The buy path: from a buy signal to an order on the exchange, at most once per signal."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any

import orjson

from worker import metrics
from worker.domain.errors import Fatal, InvalidSignal
from worker.domain.ids import buy_cl_ord_id
from worker.domain.orders import OrderState, Side
from worker.domain.results import BUSY, SkipReason
from worker.ledger.admission import Admission, Blocked, admit, late_detail
from worker.ledger.signals import record_outcome, record_signal
from worker.runtime import Runtime
from worker.services.intents import Intent
from worker.services.placement import JustCommitted, send
from worker.services.sizing import order_size
from worker.signals import BuySignal, parse_buy


@dataclass(frozen=True, slots=True)
class BuyResult:
    """What became of a buy signal (one line of the task's log)."""

    signal_id: str
    slot: str
    outcome: str  # accepted | skipped | duplicate | invalid
    reason: str = ""
    order_state: str = ""


log = logging.getLogger("limitflow.buy")


def fallback_signal_id(message: Any) -> str:
    """An id for a message too broken to carry its own: a hash of its content."""
    raw = orjson.dumps(message, default=str, option=orjson.OPT_SORT_KEYS)
    return "invalid:" + hashlib.sha256(raw).hexdigest()[:32]


def record_invalid(rt: Runtime, message: Any, kind: str, error: str) -> str:
    """Record a message that cannot be executed; return the id it was recorded under.

    Never under the ``signal_id`` it carries: that id stays free for the corrected message.
    The row gets an id derived from the content, and names the given id in its detail.
    """
    given = message.get("signal_id") if isinstance(message, dict) else None
    signal_id = fallback_signal_id(message)
    if isinstance(given, str) and given:
        error = f"signal_id {given[:200]}: {error}"
    payload = message if isinstance(message, dict) else {"message": repr(message)[:500]}
    with rt.ledger.connect() as s:
        record_signal(
            rt.ledger,
            s,
            signal_id=signal_id,
            kind=kind,
            outcome="invalid",
            reason=SkipReason.INVALID_MESSAGE,
            detail=error,
            now=rt.now(),
            strategy=_short_text(message, "strategy", 32),
            inst_id=_short_text(message, "inst_id", 40),
            payload=orjson.loads(orjson.dumps(payload, default=str)),
        )
    return signal_id


def _short_text(message: Any, key: str, limit: int) -> str | None:
    """A text field of a broken message, kept when it fits its column ("why" finds it)."""
    value = message.get(key) if isinstance(message, dict) else None
    return value if isinstance(value, str) and 0 < len(value) <= limit else None


def record_unexecuted(rt: Runtime, message: Any, error: str) -> BuyResult:
    """Record a valid signal that could not be executed (the exchange kept failing)."""
    signal = parse_buy(message)
    with rt.ledger.connect() as s:
        record_outcome(rt.ledger, s, signal, rt.now(), "skipped", SkipReason.EXCHANGE_ERROR, error)
    slot = f"{signal.inst_id}/{signal.strategy}"
    return BuyResult(signal.signal_id, slot, "skipped", SkipReason.EXCHANGE_ERROR)


def process_buy(rt: Runtime, message: Any) -> BuyResult:
    """Decide and execute one buy signal (see DESIGN "Buy path")."""
    try:
        signal = parse_buy(message)
    except InvalidSignal as exc:
        signal_id = record_invalid(rt, message, "buy", str(exc))
        return BuyResult(signal_id, "-", "invalid", str(exc))
    slot = signal.slot
    slot_name = f"{signal.inst_id}/{signal.strategy}"
    settings = rt.settings
    now = rt.now()

    def skip(reason: SkipReason, detail: str = "", *, cache_busy: bool = False) -> BuyResult:
        with rt.ledger.connect() as s:
            record_outcome(rt.ledger, s, signal, now, "skipped", reason, detail)
        rt.cache.remember_signal(signal.signal_id, "skipped")
        if cache_busy:
            rt.cache.mark_busy(slot, reason)
        return BuyResult(signal.signal_id, slot_name, "skipped", reason)

    if not settings.strategies.params(signal.strategy).enabled:
        # The feed sends nothing for it; a signal sent by hand or by a webhook stops here.
        return skip(
            SkipReason.DISABLED, f"{signal.strategy} has enabled = false in STRATEGY_CONFIG"
        )
    now_ms = int(now.timestamp() * 1000)
    if signal.is_expired(settings.SIGNAL_TTL_SECONDS, now_ms):
        return skip(
            SkipReason.EXPIRED,
            late_detail(signal, settings.SIGNAL_TTL_SECONDS, now_ms, "a worker took it"),
        )
    if rt.cache.seen_outcome(signal.signal_id) is not None:
        return BuyResult(signal.signal_id, slot_name, "duplicate", "cached")
    busy = rt.cache.busy_entry(slot)
    if busy is not None:
        # Cheap, lock-free record; final like any other outcome of this signal.
        seen, why = busy
        ttl = rt.cache.busy.ttl
        return skip(
            SkipReason.CACHED_BUSY, f"this worker saw the slot {seen} within {ttl:g} s: {why}"
        )

    try:
        rules = rt.rules(signal.inst_id)
    except Fatal as exc:
        return skip(SkipReason.INVALID_INSTRUMENT, str(exc))
    px, sz, size_problem = order_size(signal, rules, settings)

    request = Admission(
        signal=signal,
        cl_ord_id=buy_cl_ord_id(signal.strategy, signal.signal_id),
        px=px,
        sz=sz,
        unsizable=size_problem,
        guard_seconds=settings.BUY_GUARD_WINDOW_SECONDS,
        ttl_seconds=settings.SIGNAL_TTL_SECONDS,
        max_positions=settings.MAX_OPEN_POSITIONS,
        pending_timeout_seconds=settings.PENDING_TIMEOUT_SECONDS,
    )
    admission = admit(rt.ledger, request, rt.now)
    rt.cache.remember_signal(signal.signal_id, "recorded")
    if isinstance(admission, Blocked):
        return _blocked(rt, signal, slot_name, admission)
    metrics.order_state(Side.BUY, OrderState.PENDING_SUBMIT)
    cl_ord_id = request.cl_ord_id
    rt.cache.mark_busy(
        slot, SkipReason.SLOT_BUSY, f"order {cl_ord_id} was placed for {signal.signal_id}"
    )
    intent = Intent(
        admission.order_id, signal.inst_id, signal.strategy, Side.BUY, px, sz, cl_ord_id
    )
    state = send(rt, intent, JustCommitted(admission.deadline_at))
    if state == OrderState.LIVE:
        metrics.tick_to_order(signal.created_at)
    return BuyResult(signal.signal_id, slot_name, "accepted", order_state=state)


def _blocked(rt: Runtime, signal: BuySignal, slot_name: str, blocked: Blocked) -> BuyResult:
    """The result of a signal the ledger did not admit; a busy slot is remembered in the cache."""
    if blocked.reason is SkipReason.DUPLICATE:
        return BuyResult(signal.signal_id, slot_name, "duplicate", "recorded")
    if blocked.reason in BUSY:
        rt.cache.mark_busy(signal.slot, blocked.reason, blocked.detail)
    return BuyResult(signal.signal_id, slot_name, "skipped", blocked.reason)

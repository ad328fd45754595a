"""The buy path: from a buy signal to an order on the exchange, at most once per signal."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson

from worker import metrics
from worker.domain.deadlines import placement_deadline, to_epoch_ms
from worker.domain.describe import when
from worker.domain.errors import Fatal, InvalidSignal
from worker.domain.ids import buy_cl_ord_id
from worker.domain.money import InstrumentRules
from worker.domain.sizing import Unsizable, size_buy
from worker.ledger import facts, ops
from worker.runtime import Runtime
from worker.services.orders import Intent, send
from worker.settings import Settings
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
        ops.record_signal(
            rt.ledger,
            s,
            signal_id=signal_id,
            kind=kind,
            outcome="invalid",
            reason="invalid_message",
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
        ops.record_outcome(rt.ledger, s, signal, rt.now(), "skipped", "exchange_error", error)
    slot = f"{signal.inst_id}/{signal.strategy}"
    return BuyResult(signal.signal_id, slot, "skipped", "exchange_error")


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

    def skip(reason: str, detail: str = "", *, cache_busy: bool = False) -> BuyResult:
        with rt.ledger.connect() as s:
            ops.record_outcome(rt.ledger, s, signal, now, "skipped", reason, detail)
        rt.cache.remember_signal(signal.signal_id, "skipped")
        if cache_busy:
            rt.cache.mark_busy(slot, reason)
        return BuyResult(signal.signal_id, slot_name, "skipped", reason)

    if not settings.strategies.params(signal.strategy).enabled:
        # The feed sends nothing for it; a signal sent by hand or by a webhook stops here.
        return skip("disabled", f"{signal.strategy} has enabled = false in STRATEGY_CONFIG")
    now_ms = int(now.timestamp() * 1000)
    if signal.is_expired(settings.SIGNAL_TTL_SECONDS, now_ms):
        return skip(
            "expired", _late(signal, settings.SIGNAL_TTL_SECONDS, now_ms, "a worker took it")
        )
    if rt.cache.seen_outcome(signal.signal_id) is not None:
        return BuyResult(signal.signal_id, slot_name, "duplicate", "cached")
    busy = rt.cache.busy_entry(slot)
    if busy is not None:
        # Cheap, lock-free record; final like any other outcome of this signal.
        seen, why = busy
        ttl = rt.cache.busy.ttl
        return skip("cached_busy", f"this worker saw the slot {seen} within {ttl:g} s: {why}")

    try:
        rules = rt.rules(signal.inst_id)
    except Fatal as exc:
        return skip("invalid_instrument", str(exc))
    px, sz, size_problem = _order_size(signal, rules, settings)

    with rt.ledger.connect() as s:
        rt.ledger.lock_slot(s, signal.inst_id, signal.strategy)
        # The intent's time is taken under the lock, just before its commit: its deadline
        # (expTime) must not already be eaten by the wait for the lock.
        locked_at = rt.now()
        reason = ops.slot_blocker(
            rt.ledger,
            s,
            signal.inst_id,
            signal.strategy,
            locked_at,
            settings.BUY_GUARD_WINDOW_SECONDS,
            signal.signal_id,
        )
        if reason == "duplicate":
            rt.cache.remember_signal(signal.signal_id, "recorded")
            return BuyResult(signal.signal_id, slot_name, "duplicate", "recorded")
        detail = ""
        now_ms = to_epoch_ms(locked_at)
        if reason is not None:
            # Only a refusal pays for its facts, under the lock that decided it.
            detail = facts.blocker_detail(
                s, reason, *slot, locked_at, settings.BUY_GUARD_WINDOW_SECONDS
            )
        if reason is None and signal.is_expired(settings.SIGNAL_TTL_SECONDS, now_ms):
            # It waited for the lock past its expiry: perishable, never executed late.
            ttl = settings.SIGNAL_TTL_SECONDS
            reason, detail = "expired", _late(signal, ttl, now_ms, "the slot lock was taken")
        if reason is None and size_problem:
            reason, detail = size_problem
        limit = settings.MAX_OPEN_POSITIONS
        if reason is None:
            cl_ord_id = buy_cl_ord_id(signal.strategy, signal.signal_id)
            deadline = placement_deadline(locked_at, settings.PENDING_TIMEOUT_SECONDS)
            order_id = ops.admit(
                rt.ledger, s, signal, locked_at, cl_ord_id, px, sz, limit, deadline
            )
            if order_id is None:
                reason, detail = "risk_limit", facts.positions_detail(s, limit)
            else:
                intent = Intent(order_id, signal.inst_id, signal.strategy, "buy", px, sz, cl_ord_id)
                metrics.order_state("buy", "pending_submit")
        if reason is not None:
            ops.record_outcome(rt.ledger, s, signal, locked_at, "skipped", reason, detail)
    rt.cache.remember_signal(signal.signal_id, "recorded")
    if reason is not None:
        if reason in ("slot_busy", "unsold_lot", "cooldown"):
            rt.cache.mark_busy(slot, reason, detail)
        return BuyResult(signal.signal_id, slot_name, "skipped", reason)
    rt.cache.mark_busy(slot, "slot_busy", f"order {cl_ord_id} was placed for {signal.signal_id}")
    state = send(rt, intent)
    if state == "live":
        metrics.tick_to_order(signal.created_at)
    return BuyResult(signal.signal_id, slot_name, "accepted", order_state=state)


def _late(signal: BuySignal, ttl_seconds: int, now_ms: int, before: str) -> str:
    """How late an expired signal was, and by which expiry."""
    expiry = signal.expiry_ms(ttl_seconds)
    rule = "its expires_at" if signal.expires_at else f"SIGNAL_TTL_SECONDS={ttl_seconds}"
    return (
        f"expired {now_ms - expiry} ms before {before} (created {when(_utc(signal.created_at))}, "
        f"expiry {when(_utc(expiry))} by {rule})"
    )


def _utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _order_size(
    signal: BuySignal, rules: InstrumentRules, settings: Settings
) -> tuple[Decimal, Decimal, tuple[str, str] | None]:
    """Price, size, and why the order cannot go (see ``worker.domain.sizing``)."""
    sized = size_buy(
        rules,
        signal.px,
        sz=signal.sz,
        quote_sz=signal.quote_sz,
        fee_rate=settings.FEE_RATE_BOUND,
        max_order_usdt=settings.MAX_ORDER_USDT,
    )
    if isinstance(sized, Unsizable):
        return Decimal(0), Decimal(0), (sized.reason, sized.detail)
    return sized.px, sized.sz, None

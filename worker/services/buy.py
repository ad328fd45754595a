"""The buy path: from a buy signal to an order on the exchange, at most once per signal."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson

from worker.domain.errors import Fatal, InvalidSignal
from worker.domain.ids import buy_cl_ord_id
from worker.domain.money import InstrumentRules
from worker.domain.sizing import Unsizable, size_buy
from worker.ledger import ops
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
    """Record a message that cannot be executed; return the id it was recorded under."""
    given = message.get("signal_id") if isinstance(message, dict) else None
    signal_id = given if isinstance(given, str) and 0 < len(given) <= 200 else None
    signal_id = signal_id or fallback_signal_id(message)
    payload = message if isinstance(message, dict) else {"message": repr(message)[:500]}
    with rt.ledger.connect() as s:
        inserted = ops.record_signal(
            rt.ledger,
            s,
            signal_id=signal_id,
            kind=kind,
            outcome="invalid",
            reason="invalid_message",
            detail=error,
            now=rt.now(),
            payload=orjson.loads(orjson.dumps(payload, default=str)),
        )
        if not inserted:
            # The id belongs to a valid signal already recorded: keep both facts apart.
            ops.record_signal(
                rt.ledger,
                s,
                signal_id=fallback_signal_id(message),
                kind=kind,
                outcome="invalid",
                reason="invalid_message",
                detail=error,
                now=rt.now(),
            )
    return signal_id


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

    if signal.is_expired(settings.SIGNAL_TTL_SECONDS, int(now.timestamp() * 1000)):
        return skip("expired")
    if rt.cache.seen_outcome(signal.signal_id) is not None:
        return BuyResult(signal.signal_id, slot_name, "duplicate", "cached")
    busy = rt.cache.busy_reason(slot)
    if busy is not None:
        # Cheap, lock-free record; final like any other outcome of this signal.
        return skip("cached_busy", f"cache said {busy}")

    try:
        rules = rt.rules(signal.inst_id)
    except Fatal as exc:
        return skip("invalid_instrument", str(exc))
    px, sz, size_problem = _order_size(signal, rules, settings)

    with rt.ledger.connect() as s:
        rt.ledger.lock_slot(s, signal.inst_id, signal.strategy)
        reason = ops.slot_blocker(
            rt.ledger,
            s,
            signal.inst_id,
            signal.strategy,
            now,
            settings.BUY_GUARD_WINDOW_SECONDS,
            signal.signal_id,
        )
        if reason == "duplicate":
            rt.cache.remember_signal(signal.signal_id, "recorded")
            return BuyResult(signal.signal_id, slot_name, "duplicate", "recorded")
        detail = ""
        if reason is None and size_problem:
            reason, detail = size_problem
        limit = settings.MAX_OPEN_POSITIONS
        if reason is None:
            cl_ord_id = buy_cl_ord_id(signal.strategy, signal.signal_id)
            order_id = ops.admit(rt.ledger, s, signal, now, cl_ord_id, px, sz, limit)
            if order_id is None:
                reason, detail = "risk_limit", f"MAX_OPEN_POSITIONS={limit}"
            else:
                intent = Intent(order_id, signal.inst_id, signal.strategy, "buy", px, sz, cl_ord_id)
        if reason is not None:
            ops.record_outcome(rt.ledger, s, signal, now, "skipped", reason, detail)
    rt.cache.remember_signal(signal.signal_id, "recorded")
    if reason is not None:
        if reason in ("slot_busy", "unsold_lot", "cooldown"):
            rt.cache.mark_busy(slot, reason)
        return BuyResult(signal.signal_id, slot_name, "skipped", reason)
    rt.cache.mark_busy(slot, "slot_busy")
    state = send(rt, intent)
    return BuyResult(signal.signal_id, slot_name, "accepted", order_state=state)


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

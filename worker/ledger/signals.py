"""Recording what became of each signal (the ``signals`` table: "why" reads it)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import update

from worker.ledger.db import Executor, Ledger
from worker.ledger.models import Signal
from worker.signals import BuySignal, SellSignal, to_message


def record_signal(
    ledger: Ledger,
    session: Executor,
    *,
    signal_id: str,
    kind: str,
    outcome: str,
    now: datetime,
    strategy: str | None = None,
    inst_id: str | None = None,
    reason: str = "",
    detail: str = "",
    order_id: int | None = None,
    created_ms: int | None = None,
    payload: dict[str, Any] | None = None,
) -> bool:
    """Record a signal's outcome once; return False if the signal was already recorded."""
    return ledger.insert_ignore(
        session,
        Signal,
        {
            "signal_id": signal_id[:200],
            "kind": kind,
            "strategy": strategy,
            "inst_id": inst_id,
            "outcome": outcome,
            "reason": reason,
            "detail": detail[:500],
            "order_id": order_id,
            "created_ms": created_ms,
            "received_at": now,
            "payload": payload,
        },
    )


def record_outcome(
    ledger: Ledger,
    session: Executor,
    signal: BuySignal | SellSignal,
    now: datetime,
    outcome: str,
    reason: str = "",
    detail: str = "",
    order_id: int | None = None,
) -> bool:
    """Record a valid signal's outcome once (see ``record_signal``)."""
    return record_signal(
        ledger,
        session,
        signal_id=signal.signal_id,
        kind=signal.kind,
        strategy=signal.strategy,
        inst_id=signal.inst_id,
        outcome=outcome,
        reason=reason,
        detail=detail,
        order_id=order_id,
        now=now,
        created_ms=signal.created_at,
        payload=to_message(signal),
    )


def update_outcome(
    session: Executor, signal_id: str, outcome: str, reason: str = "", detail: str = ""
) -> None:
    """Replace a recorded signal's outcome (a sell's ``accepted`` once it ended)."""
    session.execute(
        update(Signal)
        .where(Signal.signal_id == signal_id[:200])
        .values(outcome=outcome, reason=reason[:32], detail=detail[:500])
    )

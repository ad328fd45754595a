"""The last report of each reconcile task, kept in the database for ``status``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from worker.ledger.db import Executor, Ledger
from worker.ledger.models import ReconcileReport


@dataclass(frozen=True, slots=True)
class LastReport:
    task: str
    finished_at: datetime
    report: dict[str, Any]


def save_report(ledger: Ledger, task: str, report: dict[str, Any], now: datetime) -> None:
    """Replace ``task``'s last report."""
    dialect = sqlite if ledger.sqlite else postgresql
    stmt = dialect.insert(ReconcileReport).values(task=task, finished_at=now, report=report)
    stmt = stmt.on_conflict_do_update(
        index_elements=[ReconcileReport.task],
        set_={"finished_at": stmt.excluded.finished_at, "report": stmt.excluded.report},
    )
    with ledger.connect() as conn:
        conn.execute(stmt)


def last_reports(session: Executor) -> list[LastReport]:
    """Every task's last report, by task name."""
    rows = session.execute(select(ReconcileReport).order_by(ReconcileReport.task)).scalars()
    return [LastReport(r.task, r.finished_at, dict(r.report)) for r in rows]

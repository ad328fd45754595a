"""Writing the feed's closest approaches and coverage (``feed.approach``), and forgetting them.

The feed calls ``ApproachStore.save`` from its housekeeping thread with a batch of rows: one
upsert per table (a running bucket's row is replaced by its later snapshots, and by its final
row when the bucket ends). ``prune`` deletes what is older than ``APPROACH_RETENTION_DAYS``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite

from worker.ledger.db import Ledger
from worker.ledger.models import ClosestApproach, FeedCoverage

Row = dict[str, Any]


def _upsert(ledger: Ledger, model: type[Any]) -> Any:
    table = model.__table__
    dialect = sqlite if ledger.sqlite else postgresql
    stmt = dialect.insert(table)
    keys = [c.name for c in table.primary_key.columns]
    return stmt.on_conflict_do_update(
        index_elements=keys,
        set_={c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keys},
    )


class ApproachStore:
    """The database side of the feed's ``ApproachSink``."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self._approaches = _upsert(ledger, ClosestApproach)
        self._coverage = _upsert(ledger, FeedCoverage)

    @classmethod
    def from_url(cls, url: str) -> ApproachStore:
        return cls(Ledger.from_url(url))

    def save(self, approaches: list[Row], coverage: list[Row]) -> None:
        """Write one batch in one transaction."""
        if not approaches and not coverage:
            return
        with self.ledger.connect() as conn:
            if approaches:
                conn.execute(self._approaches, approaches)
            if coverage:
                conn.execute(self._coverage, coverage)

    def prune(self, before: datetime) -> int:
        """Delete what ended before ``before``; return the number of rows deleted."""
        with self.ledger.connect() as conn:
            gone = conn.execute(delete(ClosestApproach).where(ClosestApproach.bucket_end < before))
            covered = conn.execute(delete(FeedCoverage).where(FeedCoverage.hour_start < before))
        return int(gone.rowcount) + int(covered.rowcount)

"""Every SQL statement a ledger sends, whichever way it goes.

On PostgreSQL a statement goes through SQLAlchemy's pool or the ledger's lane
(``worker.ledger.lane``), which SQLAlchemy's events do not see: both end in a psycopg cursor,
so that is where they are recorded. SQLite has no lane: SQLAlchemy's events see everything.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from sqlalchemy import event

from worker.ledger.db import Ledger


@contextmanager
def psycopg_statements(
    monkeypatch: pytest.MonkeyPatch,
    before: Callable[[psycopg.Cursor[Any], str, Any], None],
    after: Callable[[str], None] | None = None,
) -> Iterator[None]:
    """Call ``before`` with the cursor, the statement (whitespace collapsed) and its
    parameters as every psycopg cursor sends one, and ``after`` once it has run, until the
    block ends: SQLAlchemy's pool and the lane alike."""
    execute = psycopg.Cursor.execute

    def recording(cur: psycopg.Cursor[Any], query: Any, params: Any = None, **kw: Any) -> Any:
        statement = " ".join(str(query).split())
        before(cur, statement, params)
        result = execute(cur, query, params, **kw)
        if after is not None:
            after(statement)
        return result

    with monkeypatch.context() as patch:
        patch.setattr(psycopg.Cursor, "execute", recording)
        yield


@contextmanager
def statements_sent(
    ledger: Ledger,
    monkeypatch: pytest.MonkeyPatch,
    sink: Callable[[str], None],
    after: Callable[[str], None] | None = None,
) -> Iterator[None]:
    """Call ``sink`` with each statement (whitespace collapsed) before it is sent, and
    ``after`` once it has run (PostgreSQL only), until the block ends."""
    if ledger.sqlite:

        def before(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            sink(" ".join(statement.split()))

        event.listen(ledger.engine, "before_cursor_execute", before)
        try:
            yield
        finally:
            event.remove(ledger.engine, "before_cursor_execute", before)
        return
    with psycopg_statements(monkeypatch, lambda _cur, statement, _params: sink(statement), after):
        yield

"""Our state names written into SQL, shared by the ledger's statements."""

from __future__ import annotations

from typing import Any

from sqlalchemy import literal_column

from worker.domain.lots import UNSOLD_STATES
from worker.domain.orders import OPEN_STATES

OPEN = sorted(s.value for s in OPEN_STATES)


def constants(values: list[str]) -> list[Any]:
    """Our own state names written into the SQL: an ``IN`` list of bound values would be
    re-rendered ("expanded") on every execution of a statement that is otherwise built once.
    """
    assert all(v.isidentifier() for v in values)
    return [literal_column(f"'{v}'") for v in values]


OPEN_SQL = constants(OPEN)
# A lot that needs attention is unsold too: it blocks its slot and counts as a position.
UNSOLD_LOT_SQL = constants([s.value for s in UNSOLD_STATES])

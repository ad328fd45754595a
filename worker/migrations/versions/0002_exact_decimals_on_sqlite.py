"""exact decimals on sqlite

SQLite has no decimal type: the NUMERIC(38, 18) columns of 0001 store REALs there (0.3 reads
back as 0.29999999999999998). Money is stored as canonical text on SQLite from now on (see
``worker.ledger.models.Money``). This migration gives the money columns TEXT affinity and
rewrites every stored value as the shortest decimal that reads back as the same double, which
is the decimal the engine wrote. A no-op on PostgreSQL, whose NUMERIC is exact.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from decimal import Decimal

import sqlalchemy as sa
from alembic import op

from worker.ledger.models import canonical_money

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

MONEY_COLUMNS = {
    "orders": ("px", "sz", "filled_sz", "avg_px", "fee"),
    "fills": ("px", "sz", "fee"),
    "lots": ("size", "avg_px", "sold_sz", "proceeds", "cost", "dust_sz", "take_profit_px"),
}


def _exact(value: object) -> str:
    if isinstance(value, float):
        # repr is the shortest decimal that round-trips: the value the engine meant.
        return canonical_money(Decimal(repr(value)))
    return canonical_money(Decimal(str(value)))


def _convert(new_type: sa.types.TypeEngine, old_type: sa.types.TypeEngine, as_text: bool) -> None:
    bind = op.get_bind()
    for table, columns in MONEY_COLUMNS.items():
        listed = ", ".join(columns)
        rows = bind.exec_driver_sql(f"SELECT id, {listed} FROM {table}").all()
        # SQLite cannot change a column's type: batch mode copies the table into a new one
        # (indexes, including the partial unique ones, are created again from the old ones).
        with op.batch_alter_table(table, recreate="always") as batch:
            for column in columns:
                batch.alter_column(
                    column, type_=new_type, existing_type=old_type, existing_nullable=False
                )
        if not rows:
            continue
        assignments = ", ".join(f"{c} = :{c}" for c in columns)
        convert = _exact if as_text else (lambda v: float(Decimal(str(v))))
        bind.execute(
            sa.text(f"UPDATE {table} SET {assignments} WHERE id = :id"),
            [
                {"id": row[0], **{c: convert(v) for c, v in zip(columns, row[1:])}}
                for row in rows
            ],
        )
    problems = bind.exec_driver_sql("PRAGMA foreign_key_check").all()
    if problems:
        raise RuntimeError(f"foreign keys broken by the conversion: {problems[:5]}")


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    _convert(sa.Text(), sa.Numeric(precision=38, scale=18), as_text=True)


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    _convert(sa.Numeric(precision=38, scale=18), sa.Text(), as_text=False)

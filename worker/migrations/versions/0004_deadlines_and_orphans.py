"""request deadlines (expTime) and orphans

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from alembic import op
import sqlalchemy as sa
import worker.ledger.models


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

OPEN = "state IN ('pending_submit', 'live', 'partially_filled')"
OLD_ORDERS = f"side = 'buy' AND {OPEN}"
NEW_ORDERS = f"side = 'buy' AND purpose <> 'orphan' AND {OPEN}"
OLD_LOTS = "state IN ('open', 'needs_attention')"
NEW_LOTS = f"{OLD_LOTS} AND NOT orphan"


def _swap_index(table: str, name: str, old: str, new: str) -> None:
    with op.batch_alter_table(table, schema=None) as batch_op:
        batch_op.drop_index(name, sqlite_where=sa.text(old), postgresql_where=sa.text(old))
        batch_op.create_index(
            name, ['inst_id', 'strategy'], unique=True,
            sqlite_where=sa.text(new), postgresql_where=sa.text(new),
        )


def upgrade() -> None:
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.add_column(sa.Column(
            'deadline_at', worker.ledger.models.UTCDateTime(timezone=True), nullable=True
        ))
    with op.batch_alter_table('lots', schema=None) as batch_op:
        batch_op.add_column(sa.Column(
            'orphan', sa.Boolean(), server_default=sa.text('false'), nullable=False
        ))
    _swap_index('orders', 'uq_orders_open_buy_per_slot', OLD_ORDERS, NEW_ORDERS)
    _swap_index('lots', 'uq_lots_open_per_slot', OLD_LOTS, NEW_LOTS)


def downgrade() -> None:
    _swap_index('lots', 'uq_lots_open_per_slot', NEW_LOTS, OLD_LOTS)
    _swap_index('orders', 'uq_orders_open_buy_per_slot', NEW_ORDERS, OLD_ORDERS)
    with op.batch_alter_table('lots', schema=None) as batch_op:
        batch_op.drop_column('orphan')
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_column('deadline_at')

"""orders.state holds only the order lifecycle's states

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30

A CHECK constraint ties the ``state`` column to ``worker.domain.orders.OrderState``: a typo or
an exchange string that slipped past the adapter is refused by the database. The values are
written out here (a migration is a fixed point in history); a test compares them with the
enum. SQLite cannot add a constraint to a table: ``batch_alter_table`` copies it.
"""

from alembic import op


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

NAME = 'ck_orders_state'
STATES = (
    "state IN ('pending_submit', 'live', 'partially_filled', 'filled', 'canceled', "
    "'rejected', 'failed')"
)


def upgrade() -> None:
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.create_check_constraint(NAME, STATES)


def downgrade() -> None:
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_constraint(NAME, type_='check')

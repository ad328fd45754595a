"""lots that need attention: a wider state, exit refusals, the operator's settlement

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01

A lot whose exits the exchange refuses MAX_EXIT_REFUSALS times moves to ``needs_attention``
(15 characters: the state column grows from 8 to 16). Such a lot is still unsold, so the
partial unique index that allows one unsold lot per slot covers it too.
"""

from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

UNSOLD = sa.text("state IN ('open', 'needs_attention')")
OPEN_ONLY = sa.text("state = 'open'")


def upgrade() -> None:
    # On SQLite the batch recreates the table; the partial index is dropped first and created
    # again afterwards, so its WHERE clause never depends on how SQLite indexes are reflected.
    with op.batch_alter_table('lots', schema=None) as batch_op:
        batch_op.drop_index('uq_lots_open_per_slot', sqlite_where=OPEN_ONLY, postgresql_where=OPEN_ONLY)
    with op.batch_alter_table('lots', schema=None) as batch_op:
        batch_op.alter_column('state', existing_type=sa.String(length=8), type_=sa.String(length=16), existing_nullable=False)
        batch_op.add_column(sa.Column('exit_refusals', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('settlement', sa.String(length=16), server_default='', nullable=False))
    with op.batch_alter_table('lots', schema=None) as batch_op:
        batch_op.create_index('uq_lots_open_per_slot', ['inst_id', 'strategy'], unique=True, sqlite_where=UNSOLD, postgresql_where=UNSOLD)


def downgrade() -> None:
    # A lot that needs attention is still unsold: it goes back to ``open``, which is what it
    # was before this revision existed.
    op.execute("UPDATE lots SET state = 'open' WHERE state = 'needs_attention'")
    with op.batch_alter_table('lots', schema=None) as batch_op:
        batch_op.drop_index('uq_lots_open_per_slot', sqlite_where=UNSOLD, postgresql_where=UNSOLD)
    with op.batch_alter_table('lots', schema=None) as batch_op:
        batch_op.drop_column('settlement')
        batch_op.drop_column('exit_refusals')
        batch_op.alter_column('state', existing_type=sa.String(length=16), type_=sa.String(length=8), existing_nullable=False)
    with op.batch_alter_table('lots', schema=None) as batch_op:
        batch_op.create_index('uq_lots_open_per_slot', ['inst_id', 'strategy'], unique=True, sqlite_where=OPEN_ONLY, postgresql_where=OPEN_ONLY)

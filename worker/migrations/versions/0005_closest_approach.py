"""closest approaches, feed coverage, reconcile reports

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02

``closest_approaches``: per strategy, instrument, trigger bucket and feed run, how close the
strategy came to buying (what ``python -m worker why`` says when no signal fired).
``feed_coverage``: per instrument, UTC hour and feed run, when the feed heard its tickers.
``reconcile_reports``: the last report of each reconcile task (``status`` shows them).
Money columns are NUMERIC(38, 18) on PostgreSQL and canonical text on SQLite (``Money``).
"""

from alembic import op
import sqlalchemy as sa
import worker.ledger.models


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def _time(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, worker.ledger.models.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table('closest_approaches',
    sa.Column('strategy', sa.String(length=32), nullable=False),
    sa.Column('inst_id', sa.String(length=40), nullable=False),
    _time('bucket_start'),
    sa.Column('run_id', sa.String(length=32), nullable=False),
    sa.Column('bucket', sa.String(length=32), nullable=False),
    _time('bucket_end'),
    sa.Column('reference', worker.ledger.models.Money(), nullable=True),
    sa.Column('closest', worker.ledger.models.Money(), nullable=True),
    _time('closest_at', nullable=True),
    sa.Column('trigger', worker.ledger.models.Money(), nullable=False),
    _time('fired_at', nullable=True),
    sa.Column('peak_count', sa.Integer(), nullable=True),
    sa.Column('detail', sa.String(length=300), nullable=False),
    _time('first_tick_at'),
    sa.Column('complete', sa.Boolean(), nullable=False),
    _time('updated_at'),
    sa.PrimaryKeyConstraint('strategy', 'inst_id', 'bucket_start', 'run_id')
    )
    with op.batch_alter_table('closest_approaches', schema=None) as batch_op:
        batch_op.create_index('ix_closest_approaches_end', ['bucket_end'], unique=False)

    op.create_table('feed_coverage',
    sa.Column('inst_id', sa.String(length=40), nullable=False),
    _time('hour_start'),
    sa.Column('run_id', sa.String(length=32), nullable=False),
    _time('first_tick_at'),
    _time('last_tick_at'),
    _time('gap_start', nullable=True),
    _time('gap_end', nullable=True),
    _time('updated_at'),
    sa.PrimaryKeyConstraint('inst_id', 'hour_start', 'run_id')
    )
    with op.batch_alter_table('feed_coverage', schema=None) as batch_op:
        batch_op.create_index('ix_feed_coverage_hour', ['hour_start'], unique=False)

    op.create_table('reconcile_reports',
    sa.Column('task', sa.String(length=32), nullable=False),
    _time('finished_at'),
    sa.Column('report', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('task')
    )


def downgrade() -> None:
    op.drop_table('reconcile_reports')
    with op.batch_alter_table('feed_coverage', schema=None) as batch_op:
        batch_op.drop_index('ix_feed_coverage_hour')
    op.drop_table('feed_coverage')
    with op.batch_alter_table('closest_approaches', schema=None) as batch_op:
        batch_op.drop_index('ix_closest_approaches_end')
    op.drop_table('closest_approaches')

"""limitflow_admit(): a buy's admission in one round trip on PostgreSQL

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30

The buy path's common case (a free slot under the positions limit) used five round trips:
BEGIN, the slot lock, the blockers with the intent's INSERT, the positions lock with the
count, COMMIT. This function does the same steps as ``worker.ledger.admission.try_admit``
inside one statement, run in autocommit, so one round trip decides, writes and commits.

It only ever ADMITS, or says ``duplicate`` (which writes nothing in either path). Every other
outcome (a blocker, over the limit, a wait for the slot's lock longer than it was given)
returns without writing anything the caller keeps, and the caller runs ``try_admit``, which
records the refusal with its facts. Each statement of a PL/pgSQL function takes a new
snapshot under READ COMMITTED, so the blockers are read after the slot lock is granted and
the count after the positions lock is granted, as in ``try_admit``.

The state names are written out here (a migration is a fixed point in history); a test runs
this function and ``try_admit`` on the same generated ledgers and compares them. SQLite has
no functions: the embedded default always runs ``try_admit``.
"""

from alembic import op


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

# worker.ledger.admission.POSITIONS_LOCK (lock_key("open_positions")).
POSITIONS_LOCK = 3755142730312903034

SIGNATURE = (
    "limitflow_admit(varchar, varchar, varchar, timestamptz, varchar, integer, double precision,"
    " varchar, numeric, numeric, timestamptz, timestamptz, varchar, bigint, json)"
)

CREATE = f"""
CREATE FUNCTION limitflow_admit(
    p_inst_id varchar,
    p_strategy varchar,
    p_signal_id varchar,
    p_since timestamptz,
    p_pause_flag varchar,
    p_max_positions integer,
    p_max_wait_ms double precision,
    p_cl_ord_id varchar,
    p_px numeric,
    p_sz numeric,
    p_now timestamptz,
    p_deadline timestamptz,
    p_kind varchar,
    p_created_ms bigint,
    p_payload json,
    OUT admitted_id bigint,
    OUT verdict varchar
) LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    started timestamptz := clock_timestamp();
    positions bigint;
BEGIN
    -- 1. The slot's row lock (Ledger.lock_slot).
    INSERT INTO slots (inst_id, strategy, created_at) VALUES (p_inst_id, p_strategy, p_now)
        ON CONFLICT (inst_id, strategy) DO UPDATE SET strategy = EXCLUDED.strategy;
    IF extract(epoch FROM clock_timestamp() - started) * 1000 > p_max_wait_ms THEN
        verdict := 'waited';  -- the intent's time must be taken under the lock
        RETURN;
    END IF;
    -- 2. The blockers, in their order of precedence (worker.domain.results.BLOCKERS).
    IF EXISTS (SELECT 1 FROM signals WHERE signal_id = p_signal_id) THEN
        verdict := 'duplicate';
        RETURN;
    END IF;
    IF EXISTS (
        SELECT 1 FROM orders WHERE inst_id = p_inst_id AND strategy = p_strategy
            AND state IN ('live', 'partially_filled', 'pending_submit')
    ) OR EXISTS (
        SELECT 1 FROM lots WHERE inst_id = p_inst_id AND strategy = p_strategy
            AND state IN ('open', 'needs_attention')
    ) OR EXISTS (
        SELECT 1 FROM orders WHERE inst_id = p_inst_id AND strategy = p_strategy
            AND side = 'buy' AND created_at > p_since AND CAST(filled_sz AS float) > 0
    ) OR EXISTS (
        SELECT 1 FROM engine_flags WHERE name IN ('paused', p_pause_flag) AND enabled
    ) THEN
        verdict := 'blocked';
        RETURN;
    END IF;
    -- The intent and its signal's row (try_admit's ADMIT statement).
    INSERT INTO orders (
        cl_ord_id, inst_id, strategy, side, purpose, state, px, sz, signal_id, created_at,
        updated_at, submitted_at, deadline_at, filled_sz, avg_px, fee, fee_ccy,
        exchange_updated_ms, last_error
    ) VALUES (
        p_cl_ord_id, p_inst_id, p_strategy, 'buy', 'entry', 'pending_submit', p_px, p_sz,
        p_signal_id, p_now, p_now, p_now, p_deadline, 0, 0, 0, '', 0, ''
    ) RETURNING id INTO admitted_id;
    INSERT INTO signals (
        signal_id, kind, strategy, inst_id, outcome, reason, detail, created_ms, received_at,
        payload, order_id
    ) VALUES (
        left(p_signal_id, 200), p_kind, p_strategy, p_inst_id, 'accepted', '', '',
        p_created_ms, p_now, p_payload, admitted_id
    ) ON CONFLICT DO NOTHING;
    -- 3. The positions lock, then the count in a statement of its own (a snapshot taken
    -- after every admission that held the lock before has committed).
    PERFORM pg_advisory_xact_lock({POSITIONS_LOCK});
    SELECT (SELECT count(*) FROM orders WHERE side = 'buy'
                AND state IN ('live', 'partially_filled', 'pending_submit'))
         + (SELECT count(*) FROM lots WHERE state IN ('open', 'needs_attention'))
      INTO positions;
    IF positions > p_max_positions THEN
        DELETE FROM signals WHERE signal_id = left(p_signal_id, 200)
            AND order_id = admitted_id;
        DELETE FROM orders WHERE id = admitted_id;
        admitted_id := NULL;
        verdict := 'risk_limit';
        RETURN;
    END IF;
    verdict := 'admitted';
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(CREATE)


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(f"DROP FUNCTION {SIGNATURE}")

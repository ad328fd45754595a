"""SQLAlchemy models of the ledger. Money is exact (``Money``); times are timezone-aware UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Context, Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    literal,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql import operators
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator, TypeEngine

NUMERIC = Numeric(38, 18)
# BIGINT primary keys on PostgreSQL, INTEGER (the rowid alias) on SQLite.
BigId = BigInteger().with_variant(Integer(), "sqlite")

OPEN_ORDER_SQL = "state IN ('pending_submit', 'live', 'partially_filled')"
# An orphan is an order of ours that the slot's rules could not keep (another buy held the
# slot when the exchange showed it): it is canceled, and what it bought is sold at once.
ORPHAN = "orphan"
# The values the orders' ``state`` column may hold: ``worker.domain.orders.OrderState``, as
# written by migration 0006 (SQL text, not built from the enum: a new state needs a migration).
ORDER_STATE_CHECK_NAME = "ck_orders_state"
ORDER_STATE_CHECK = (
    "state IN ('pending_submit', 'live', 'partially_filled', 'filled', 'canceled', "
    "'rejected', 'failed')"
)
# Unsold lots (see ``worker.domain.lots.UNSOLD_STATES``): at most one per slot.
UNSOLD_LOT_SQL = "state IN ('open', 'needs_attention')"


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every database (SQLite would hand back naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the ledger; use UTC-aware datetimes")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# NUMERIC(38, 18): 20 digits before the point, 18 after (PostgreSQL rounds half away from 0).
_QUANTUM = Decimal("1E-18")
_LIMIT = Decimal("1E+20")
_CONTEXT = Context(prec=60)


def canonical_money(value: Decimal | int | str) -> str:
    """The text SQLite stores for a money value: what NUMERIC(38, 18) would hold, written in
    plain notation without trailing zeros (equal numbers, equal strings): ``0.0696``, ``10``.
    """
    if isinstance(value, float | bool):
        raise TypeError(f"money must be a Decimal, not {type(value).__name__}: floats are inexact")
    d = Decimal(value)
    if not d.is_finite():
        raise ValueError(f"money must be finite, got {value!r}")
    d = d.quantize(_QUANTUM, rounding=ROUND_HALF_UP, context=_CONTEXT)
    if d.copy_abs() >= _LIMIT:  # copy_abs: abs() would round to 28 digits
        raise ValueError(f"{value} does not fit NUMERIC(38, 18)")
    if not d:
        return "0"
    return format(d.normalize(_CONTEXT), "f")


class _SqliteNumber(FunctionElement[Decimal]):
    """A money expression compared as a number: ``CAST(x AS NUMERIC)`` on SQLite, ``x``
    elsewhere."""

    inherit_cache = True


@compiles(_SqliteNumber)
def _number_default(element: _SqliteNumber, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.clauses, **kw)


@compiles(_SqliteNumber, "sqlite")
def _number_sqlite(element: _SqliteNumber, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST({compiler.process(element.clauses, **kw)} AS NUMERIC)"


# Comparisons that order numbers. Equality needs no cast: equal numbers are equal strings.
_ORDERING = frozenset(
    {operators.lt, operators.le, operators.gt, operators.ge, operators.between_op}
)


class Money(TypeDecorator[Decimal]):
    """Exact decimals: NUMERIC(38, 18) on PostgreSQL, canonical text on SQLite.

    SQLite has no decimal type: NUMERIC stores a REAL there (0.3 came back as
    0.29999999999999998). Text is exact, but compares as text ("9" > "10"), so every ordering
    comparison of a money column in SQL (``<``, ``<=``, ``>``, ``>=``, ``between``) is cast to
    a number on SQLite; ``==``/``!=`` compare the canonical strings exactly. A cast number is
    a double: exact for signs and for values up to 15 significant digits. Never SUM, AVG,
    MIN, MAX, ORDER BY or do arithmetic on money in SQL: SQLite would do it on floats or on
    text. Read the rows and compute with ``Decimal`` in Python.
    """

    impl = NUMERIC
    cache_ok = True

    class comparator_factory(TypeDecorator.Comparator[Decimal]):
        def operate(self, op: Any, *other: Any, **kwargs: Any) -> ColumnElement[Any]:
            if op in _ORDERING:
                expr = _SqliteNumber(self.expr)
                others = [_SqliteNumber(_as_money(o, self.type)) for o in other]
                return op(expr, *others, **kwargs)  # type: ignore[no-any-return]
            return super().operate(op, *other, **kwargs)

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(Text())
        return dialect.type_descriptor(NUMERIC)

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return canonical_money(value)
        if isinstance(value, float | bool):
            raise TypeError(f"money must be a Decimal, not {type(value).__name__}")
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None or isinstance(value, Decimal):
            return value
        if isinstance(value, float):  # a REAL left by SQLite arithmetic
            return Decimal(repr(value))
        return Decimal(value)


def _as_money(value: Any, type_: TypeEngine[Any]) -> Any:
    """A plain value becomes a bound money parameter (canonical text on SQLite)."""
    if hasattr(value, "__clause_element__"):  # a mapped attribute such as ``Lot.sold_sz``
        value = value.__clause_element__()
    return value if isinstance(value, ColumnElement) else literal(value, type_)


class Base(DeclarativeBase):
    type_annotation_map = {Decimal: Money(), datetime: UTCDateTime()}


class Slot(Base):
    """One row per (instrument, strategy): the row that buys and sells lock."""

    __tablename__ = "slots"

    inst_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    strategy: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_at: Mapped[datetime]


class Order(Base):
    """An order we intend to place, placed, or adopted from the exchange."""

    __tablename__ = "orders"
    __table_args__ = (
        # Backstop for promise 1: at most one open buy per slot, whatever the code does.
        Index(
            "uq_orders_open_buy_per_slot",
            "inst_id",
            "strategy",
            unique=True,
            sqlite_where=text(f"side = 'buy' AND purpose <> '{ORPHAN}' AND {OPEN_ORDER_SQL}"),
            postgresql_where=text(f"side = 'buy' AND purpose <> '{ORPHAN}' AND {OPEN_ORDER_SQL}"),
        ),
        Index("ix_orders_slot_created", "inst_id", "strategy", "created_at"),
        Index("ix_orders_state", "state"),
        # Only the order lifecycle's states (migration 0006; a test keeps the two in step).
        CheckConstraint(ORDER_STATE_CHECK, name=ORDER_STATE_CHECK_NAME),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    cl_ord_id: Mapped[str] = mapped_column(String(32), unique=True)
    ord_id: Mapped[str | None] = mapped_column(String(32), index=True)
    inst_id: Mapped[str] = mapped_column(String(40))
    strategy: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(4))
    # entry | take_profit | exit | adopted | orphan
    purpose: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(20))
    px: Mapped[Decimal]
    sz: Mapped[Decimal]
    filled_sz: Mapped[Decimal] = mapped_column(default=Decimal(0))
    avg_px: Mapped[Decimal] = mapped_column(default=Decimal(0))
    fee: Mapped[Decimal] = mapped_column(default=Decimal(0))
    fee_ccy: Mapped[str] = mapped_column(String(16), default="")
    signal_id: Mapped[str | None] = mapped_column(String(200), index=True)
    # The lot a sell closes (no foreign key: lots already reference orders).
    lot_id: Mapped[int | None] = mapped_column(BigId, index=True)
    exchange_updated_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    submitted_at: Mapped[datetime | None]
    # The request deadline sent as OKX ``expTime`` (see ``worker.domain.deadlines``); None for
    # orders we did not place ourselves (adopted) and for rows written before it existed.
    deadline_at: Mapped[datetime | None]
    cancel_requested_at: Mapped[datetime | None]
    last_error: Mapped[str] = mapped_column(String(300), default="")


class Fill(Base):
    """One trade of one order; OKX ``tradeId`` is unique per instrument."""

    __tablename__ = "fills"
    __table_args__ = (UniqueConstraint("inst_id", "trade_id", name="uq_fills_trade"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    inst_id: Mapped[str] = mapped_column(String(40))
    trade_id: Mapped[str] = mapped_column(String(40))
    px: Mapped[Decimal]
    sz: Mapped[Decimal]
    fee: Mapped[Decimal]
    fee_ccy: Mapped[str] = mapped_column(String(16))
    ts_ms: Mapped[int] = mapped_column(BigInteger)


class Lot(Base):
    """What a buy delivered: net of a base-currency fee, rounded down to ``lotSz``."""

    __tablename__ = "lots"
    __table_args__ = (
        # Backstop for promise 1: at most one unsold lot per slot.
        Index(
            "uq_lots_open_per_slot",
            "inst_id",
            "strategy",
            unique=True,
            sqlite_where=text(f"{UNSOLD_LOT_SQL} AND NOT orphan"),
            postgresql_where=text(f"{UNSOLD_LOT_SQL} AND NOT orphan"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    buy_order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), unique=True)
    inst_id: Mapped[str] = mapped_column(String(40))
    strategy: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16), index=True)  # a domain.lots.LotState
    size: Mapped[Decimal]
    avg_px: Mapped[Decimal]
    sold_sz: Mapped[Decimal] = mapped_column(default=Decimal(0))
    proceeds: Mapped[Decimal] = mapped_column(default=Decimal(0))  # quote received, net of fees
    cost: Mapped[Decimal]  # quote paid for ``size`` (fees included)
    dust_sz: Mapped[Decimal] = mapped_column(default=Decimal(0))
    take_profit_px: Mapped[Decimal]
    sell_attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Bought by an orphan buy (see ``ORPHAN``): sold at once, never held for a take-profit.
    orphan: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    # Exits the exchange explicitly refused; at MAX_EXIT_REFUSALS the lot needs attention.
    exit_refusals: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # How an operator closed it (a domain.lots.Settlement), or "" when the engine did.
    settlement: Mapped[str] = mapped_column(String(16), default="", server_default="")
    opened_at: Mapped[datetime]
    exit_after: Mapped[datetime]
    closed_at: Mapped[datetime | None]


class Signal(Base):
    """Every signal received, with its outcome: "why didn't it buy at 08:27?" is one query."""

    __tablename__ = "signals"
    __table_args__ = (Index("ix_signals_slot_received", "inst_id", "strategy", "received_at"),)

    signal_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))  # buy | sell | unknown
    strategy: Mapped[str | None] = mapped_column(String(32))
    inst_id: Mapped[str | None] = mapped_column(String(40))
    outcome: Mapped[str] = mapped_column(String(16))  # accepted | skipped | invalid
    reason: Mapped[str] = mapped_column(String(32), default="")
    detail: Mapped[str] = mapped_column(String(500), default="")
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"))
    created_ms: Mapped[int | None] = mapped_column(BigInteger)
    received_at: Mapped[datetime]
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class EngineFlag(Base):
    """Named switches stored in the database (``paused``)."""

    __tablename__ = "engine_flags"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime]


class Lease(Base):
    """A named lock with an expiry (used on SQLite, where advisory locks do not exist)."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64), default="")
    expires_at: Mapped[datetime]


class ClosestApproach(Base):
    """How close a strategy came to buying an instrument in one trigger bucket, as the feed saw
    it (``feed.approach``): the deepest the price went below the strategy's reference.

    The feed writes its rows in batches when buckets end (and refreshes the running bucket's
    row now and then), one row per feed run: a restart mid-bucket leaves two rows, which
    ``why`` merges. Rows older than ``APPROACH_RETENTION_DAYS`` are deleted.
    """

    __tablename__ = "closest_approaches"
    __table_args__ = (Index("ix_closest_approaches_end", "bucket_end"),)

    strategy: Mapped[str] = mapped_column(String(32), primary_key=True)
    inst_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    bucket_start: Mapped[datetime] = mapped_column(primary_key=True)
    run_id: Mapped[str] = mapped_column(String(32), primary_key=True)  # the feed process
    bucket: Mapped[str] = mapped_column(String(32))  # the bucket as named in signal ids
    bucket_end: Mapped[datetime]
    # What the trigger is measured from (hour open, trailing high, sodUtc0), and the last
    # price at the closest approach; None while the reference was unknown.
    reference: Mapped[Decimal | None]
    closest: Mapped[Decimal | None]
    closest_at: Mapped[datetime | None]
    trigger: Mapped[Decimal]  # the drop below the reference that fires (drop_pct, gap_pct)
    fired_at: Mapped[datetime | None]  # when the feed produced a buy in this bucket
    peak_count: Mapped[int | None] = mapped_column(Integer)  # batch: most down at once
    detail: Mapped[str] = mapped_column(String(300), default="")
    first_tick_at: Mapped[datetime]  # the first ticker of the bucket this feed run heard
    complete: Mapped[bool] = mapped_column(Boolean, default=False)  # watched to the bucket's end
    updated_at: Mapped[datetime]


class FeedCoverage(Base):
    """When the feed heard an instrument's tickers, per UTC hour and feed run: what tells
    "the feed was down 08:10-08:40" and "that instrument is not subscribed" apart."""

    __tablename__ = "feed_coverage"
    __table_args__ = (Index("ix_feed_coverage_hour", "hour_start"),)

    inst_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    hour_start: Mapped[datetime] = mapped_column(primary_key=True)
    run_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    # Sampled once a second from the feed's state: exact to about a second.
    first_tick_at: Mapped[datetime]
    last_tick_at: Mapped[datetime]
    # The longest silence between two tickers within the hour.
    gap_start: Mapped[datetime | None]
    gap_end: Mapped[datetime | None]
    updated_at: Mapped[datetime]


class ReconcileReport(Base):
    """The last report of each reconcile task (``sync_active_orders``, ``purge_pending``)."""

    __tablename__ = "reconcile_reports"

    task: Mapped[str] = mapped_column(String(32), primary_key=True)
    finished_at: Mapped[datetime]
    report: Mapped[dict[str, Any]] = mapped_column(JSON)

"""SQLAlchemy models of the ledger. Money is NUMERIC; times are timezone-aware UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NUMERIC = Numeric(38, 18)
# BIGINT primary keys on PostgreSQL, INTEGER (the rowid alias) on SQLite.
BigId = BigInteger().with_variant(Integer(), "sqlite")

OPEN_ORDER_SQL = "state IN ('pending_submit', 'live', 'partially_filled')"
# An orphan is an order of ours that the slot's rules could not keep (another buy held the
# slot when the exchange showed it): it is canceled, and what it bought is sold at once.
ORPHAN = "orphan"
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


class Base(DeclarativeBase):
    type_annotation_map = {Decimal: NUMERIC, datetime: UTCDateTime()}


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

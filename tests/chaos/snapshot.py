"""What the invariants are checked on: the simulator's own books and the ledger, read once the
engine has stopped, plus the signals the feed says it published.

The simulator is the truth: every order it has seen (with every execution), every placement
request it received (refused and fault-hit ones too) and its instrument rules. The ledger
tells which lot a sell belongs to and what the engine believes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg.rows import dict_row

from simulator.control import SimControl
from worker.domain.ids import parse_cl_ord_id

PENDING = frozenset({"live", "partially_filled"})
INF = float("inf")


@dataclass(frozen=True)
class Rules:
    lot_sz: Decimal
    min_sz: Decimal

    def size_down(self, size: Decimal) -> Decimal:
        return (size / self.lot_sz).to_integral_value(rounding="ROUND_FLOOR") * self.lot_sz


@dataclass
class SimOrder:
    ord_id: str
    cl_ord_id: str
    inst_id: str
    side: str
    state: str
    sz: Decimal
    acc_fill_sz: Decimal
    fee: Decimal
    fee_ccy: str
    c_time: int
    u_time: int
    fills: list[tuple[int, Decimal]]  # (ts, sz) of every execution

    @property
    def slot(self) -> tuple[str, str] | None:
        parsed = parse_cl_ord_id(self.cl_ord_id)
        return (self.inst_id, parsed[0]) if parsed else None

    @property
    def net_bought(self) -> Decimal:
        """What a buy delivered: its fills less a fee charged in the base currency."""
        base = self.inst_id.split("-")[0]
        return self.acc_fill_sz + (self.fee if self.fee_ccy == base else Decimal(0))

    @property
    def ended_ms(self) -> float:
        return INF if self.state in PENDING else float(self.u_time)


@dataclass
class Snapshot:
    sim_orders: list[SimOrder]
    requests: list[dict[str, Any]]
    rules: dict[str, Rules]
    orders: list[dict[str, Any]]
    lots: list[dict[str, Any]]
    signals: list[dict[str, Any]]
    published: dict[str, str]  # signal_id -> "buy" | "sell", as the feed logged them
    undelivered: set[str] = field(default_factory=set)  # the feed could not publish these
    suspended: set[str] = field(default_factory=set)  # instruments suspended at the end

    def __post_init__(self) -> None:
        self.sim_by_cl: dict[str, list[SimOrder]] = {}
        for sim_order in sorted(self.sim_orders, key=lambda o: int(o.ord_id)):
            self.sim_by_cl.setdefault(sim_order.cl_ord_id, []).append(sim_order)
        self.order_by_cl = {o["cl_ord_id"]: o for o in self.orders}
        self.order_by_id = {o["id"]: o for o in self.orders}
        self.lot_by_buy = {lot["buy_order_id"]: lot for lot in self.lots}
        self.sells_by_lot: dict[int, list[dict[str, Any]]] = {}
        for order in self.orders:
            if order["side"] == "sell" and order["lot_id"] is not None:
                self.sells_by_lot.setdefault(order["lot_id"], []).append(order)
        self.signal_by_id = {s["signal_id"]: s for s in self.signals}

    def save(self, path: Path) -> None:
        """Write everything checked to a JSON file, for the post-mortem."""
        doc = {
            "sim_orders": [vars(o) for o in self.sim_orders],
            "placement_requests": self.requests,
            "orders": self.orders,
            "lots": self.lots,
            "signals": self.signals,
            "published": self.published,
            "undelivered": sorted(self.undelivered),
            "suspended": sorted(self.suspended),
        }
        path.write_text(json.dumps(doc, default=str, indent=1))

    def sim_orders_of(self, ledger_orders: list[dict[str, Any]]) -> list[SimOrder]:
        return [o for lo in ledger_orders for o in self.sim_by_cl.get(lo["cl_ord_id"], [])]


def _dec(value: Any) -> Decimal:
    return Decimal(str(value)) if value not in (None, "") else Decimal(0)


def read_simulator(ctl: SimControl) -> tuple[list[SimOrder], list[dict[str, Any]]]:
    book = ctl.orders()
    fills = book.get("fills", {})
    orders = [
        SimOrder(
            ord_id=o["ordId"],
            cl_ord_id=o["clOrdId"],
            inst_id=o["instId"],
            side=o["side"],
            state=o["state"],
            sz=_dec(o["sz"]),
            acc_fill_sz=_dec(o["accFillSz"]),
            fee=_dec(o["fee"]),
            fee_ccy=o["feeCcy"],
            c_time=int(o["cTime"]),
            u_time=int(o["uTime"]),
            fills=[(int(f["ts"]), _dec(f["sz"])) for f in fills.get(o["ordId"], [])],
        )
        for o in book["orders"]
    ]
    return orders, ctl.placement_requests()


def read_rules(rest_url: str) -> dict[str, Rules]:
    with httpx.Client(base_url=rest_url, timeout=30) as client:
        items = client.get("/api/v5/public/instruments", params={"instType": "SPOT"}).json()
    return {i["instId"]: Rules(_dec(i["lotSz"]), _dec(i["minSz"])) for i in items["data"]}


def read_ledger(url: str) -> tuple[list[dict[str, Any]], ...]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        orders = conn.execute(
            "SELECT id, cl_ord_id, ord_id, inst_id, strategy, side, purpose, state, sz,"
            " filled_sz, signal_id, lot_id, created_at FROM orders ORDER BY id"
        ).fetchall()
        lots = conn.execute(
            "SELECT id, buy_order_id, inst_id, strategy, state, size, sold_sz, dust_sz"
            " FROM lots ORDER BY id"
        ).fetchall()
        signals = conn.execute(
            "SELECT signal_id, kind, strategy, inst_id, outcome, reason, order_id"
            " FROM signals ORDER BY received_at"
        ).fetchall()
    return orders, lots, signals


def read_feed_signals(logs: list[Path]) -> tuple[dict[str, str], set[str]]:
    """Signals the feed logged (``feed.buy_signal`` / ``feed.sell_signal``, JSON logs) and
    those it then failed to hand to the broker (``feed.publish_failed`` / ``_dropped``)."""
    published: dict[str, str] = {}
    undelivered: set[str] = set()
    for path in logs:
        for line in path.read_text("utf-8", "replace").splitlines():
            if not line.startswith("{"):
                continue
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            event, signal_id = doc.get("event"), doc.get("signal_id")
            if not isinstance(signal_id, str):
                continue
            if event == "feed.buy_signal":
                published[signal_id] = "buy"
            elif event == "feed.sell_signal":
                published[signal_id] = "sell"
            elif event in ("feed.publish_failed", "feed.publish_dropped"):
                undelivered.add(signal_id)
    return published, undelivered


def take_snapshot(ctl: SimControl, rest_url: str, db_url: str, feed_logs: list[Path]) -> Snapshot:
    sim_orders, requests = read_simulator(ctl)
    orders, lots, signals = read_ledger(db_url)
    published, undelivered = read_feed_signals(feed_logs)
    suspended = set(ctl.status().get("suspended", []))
    return Snapshot(
        sim_orders,
        requests,
        read_rules(rest_url),
        orders,
        lots,
        signals,
        published,
        undelivered,
        suspended,
    )

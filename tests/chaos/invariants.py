"""The soak's invariants, checked on the simulator's books joined with the ledger.

Each check returns sentences, one per violation, that name the orders involved so that a
reader can find them in the logs. The simulator decides what happened; the ledger is used only
to attribute sells to lots (a sell's ``clOrdId`` hashes its lot id) and to say what the engine
believes.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from tests.chaos.snapshot import INF, PENDING, Rules, SimOrder, Snapshot

INVARIANTS = {
    "a": "one position per slot: no two buys open or unsold at once",
    "b": "no clOrdId sent twice",
    "c": "every filled buy has its lot; every open lot has a resting take-profit or exit",
    "d": "nothing sold that was not bought",
    "e": "nothing live on the exchange that the ledger does not know",
    "f": "every signal has exactly one recorded outcome",
}
LEDGER_OPEN = frozenset({"pending_submit", "live", "partially_filled"})


def _num(value: Any) -> str:
    return format(Decimal(value).normalize(), "f")


def _inst(snap: Snapshot, inst_id: str) -> str:
    return f"{inst_id}, suspended" if inst_id in snap.suspended else inst_id


def hms(ms: float) -> str:
    if ms == INF:
        return "never"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%H:%M:%S.%f")[:-3]


def check_all(snap: Snapshot) -> dict[str, list[str]]:
    return {
        "a": one_position_per_slot(snap),
        "b": no_clordid_sent_twice(snap),
        "c": filled_buys_have_lots_and_lots_have_exits(snap),
        "d": nothing_sold_that_was_not_bought(snap),
        "e": nothing_live_unknown(snap),
        "f": one_outcome_per_signal(snap),
    }


# (a) -----------------------------------------------------------------------------------------


def _ledger_row(snap: Snapshot, order: SimOrder) -> dict[str, Any] | None:
    """The ledger's row for this exchange order (a second order under a clOrdId the ledger
    holds with another ordId is not known to the ledger)."""
    row = snap.order_by_cl.get(order.cl_ord_id)
    if row is None or (row["ord_id"] not in (None, order.ord_id)):
        return None
    return row


def _sold_out_ms(snap: Snapshot, lot: dict[str, Any], rules: Rules) -> float | None:
    """When the exchange's sells of ``lot`` left less than ``minSz`` to sell (the ledger then
    closes the lot as dust); 0 when there was never enough to sell."""
    remaining = Decimal(lot["size"])
    if rules.size_down(remaining) < rules.min_sz:
        return 0.0
    fills = sorted(
        f for o in snap.sim_orders_of(snap.sells_by_lot.get(lot["id"], [])) for f in o.fills
    )
    for ts, sz in fills:
        remaining -= sz
        if rules.size_down(remaining) < rules.min_sz:
            return float(ts)
    return None


def buy_interval(snap: Snapshot, buy: SimOrder) -> tuple[float, float, str]:
    """(placed, no longer open nor unsold, why it ends there) on the exchange's clock."""
    start = float(buy.c_time)
    if buy.acc_fill_sz == 0:
        return start, buy.ended_ms, "open, nothing filled" if buy.state in PENDING else "unfilled"
    row = _ledger_row(snap, buy)
    lot = snap.lot_by_buy.get(row["id"]) if row is not None else None
    if lot is None:
        why = "filled, unknown to the ledger" if row is None else "filled, no lot in the ledger"
        return start, INF, why
    sold = _sold_out_ms(snap, lot, snap.rules[buy.inst_id])
    if sold is None:
        return start, INF, f"lot {lot['id']} unsold ({lot['state']} in the ledger)"
    return start, max(sold, buy.ended_ms), f"lot {lot['id']} sold"


def one_position_per_slot(snap: Snapshot) -> list[str]:
    by_slot: dict[tuple[str, str], list[tuple[float, float, str, SimOrder]]] = defaultdict(list)
    for order in snap.sim_orders:
        if order.side == "buy" and order.slot is not None:
            by_slot[order.slot].append((*buy_interval(snap, order), order))
    found = []
    for slot, buys in sorted(by_slot.items()):
        buys.sort(key=lambda b: b[0])
        for j, (start, _, _, later) in enumerate(buys):
            clash = [b for b in buys[:j] if b[1] > start]
            if clash:
                first_start, first_end, why, first = clash[0]
                found.append(
                    f"{slot[0]} {slot[1]}: buy {later.cl_ord_id} placed {hms(start)} while buy "
                    f"{first.cl_ord_id} (placed {hms(first_start)}, {why}, until "
                    f"{hms(first_end)}) held the slot"
                )
    return found


# (b) -----------------------------------------------------------------------------------------


def no_clordid_sent_twice(snap: Snapshot) -> list[str]:
    sent: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for request in snap.requests:
        if request["cl_ord_id"]:
            sent[request["cl_ord_id"]].append(request)
    found = []
    for cl_ord_id, requests in sent.items():
        if len(requests) > 1:
            attempts = "; ".join(
                f"{hms(r['received_ms'])} fault={r['fault'] or '-'} -> "
                f"{r['s_code'] or 'never processed'}"
                for r in requests
            )
            row = snap.order_by_cl.get(cl_ord_id)
            state = row["state"] if row else "not in the ledger"
            found.append(f"{cl_ord_id} sent {len(requests)} times ({attempts}); ledger: {state}")
    return found


# (c) -----------------------------------------------------------------------------------------


def filled_buys_have_lots_and_lots_have_exits(snap: Snapshot) -> list[str]:
    found = []
    for buy in snap.sim_orders:
        if buy.side != "buy" or buy.slot is None or buy.acc_fill_sz == 0:
            continue
        inst = _inst(snap, buy.inst_id)
        what = f"buy {buy.cl_ord_id} ({inst}, {_num(buy.acc_fill_sz)} filled, {buy.state})"
        row = snap.order_by_cl.get(buy.cl_ord_id)
        if row is None:
            found.append(f"{what} is not in the ledger")
            continue
        if row["ord_id"] not in (None, buy.ord_id):
            found.append(f"{what} is ordId {buy.ord_id}; the ledger holds {row['ord_id']}")
            continue
        problems = []
        if Decimal(row["filled_sz"]) != buy.acc_fill_sz:
            problems.append(f"the ledger has {_num(row['filled_sz'])} filled")
        if buy.state not in PENDING and row["id"] not in snap.lot_by_buy:
            problems.append("no lot")
        if problems:
            found.append(f"{what}: {', '.join(problems)} (ledger state {row['state']})")
    for lot in snap.lots:
        if lot["state"] != "open" or lot["inst_id"] in snap.suspended:
            continue  # a suspended instrument refuses exits: its lots wait, by design
        sells = snap.sells_by_lot.get(lot["id"], [])
        on_venue = snap.sim_orders_of(sells)
        if any(o.state in PENDING for o in on_venue):
            continue
        what = f"lot {lot['id']} ({lot['inst_id']} {lot['strategy']}, {_num(lot['size'])})"
        rules = snap.rules[lot["inst_id"]]
        if _sold_out_ms(snap, lot, rules) is not None:
            found.append(f"{what} was sold on the exchange but is still open in the ledger")
            continue
        tried = ", ".join(f"{s['cl_ord_id']}={s['state']}" for s in sells) or "none"
        found.append(f"{what} is open with no resting take-profit or exit (sells: {tried})")
    return found


# (d) -----------------------------------------------------------------------------------------


def nothing_sold_that_was_not_bought(snap: Snapshot) -> list[str]:
    bought: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    sold: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for order in snap.sim_orders:
        if order.slot is None:
            continue
        if order.side == "buy":
            bought[order.slot] += order.net_bought
        else:
            sold[order.slot] += order.acc_fill_sz
    found = [
        f"{slot[0]} {slot[1]}: sold {sold[slot]} but bought (net of fees) {bought[slot]}"
        for slot in sorted(sold)
        if sold[slot] > bought[slot]
    ]
    for lot in snap.lots:
        buy_row = snap.order_by_id.get(lot["buy_order_id"])
        if buy_row is None:
            continue
        net = sum(
            (o.net_bought for o in snap.sim_by_cl.get(buy_row["cl_ord_id"], [])
             if o.ord_id == buy_row["ord_id"]),
            Decimal(0),
        )  # fmt: skip
        sells = snap.sim_orders_of(snap.sells_by_lot.get(lot["id"], []))
        out = sum((o.acc_fill_sz for o in sells), Decimal(0))
        if out > net:
            found.append(
                f"lot {lot['id']} ({lot['inst_id']} {lot['strategy']}): sells filled {out} "
                f"but its buy {buy_row['cl_ord_id']} delivered {net}"
            )
    return found


# (e) -----------------------------------------------------------------------------------------


def nothing_live_unknown(snap: Snapshot) -> list[str]:
    found = []
    for order in snap.sim_orders:
        if order.state not in PENDING:
            continue
        what = f"{order.side} {order.cl_ord_id or '(no clOrdId)'} ordId {order.ord_id} "
        what += f"({_inst(snap, order.inst_id)}, {order.state} since {hms(order.c_time)})"
        row = snap.order_by_cl.get(order.cl_ord_id)
        if row is None:
            found.append(f"{what} is live and unknown to the ledger")
        elif row["ord_id"] not in (None, order.ord_id):
            found.append(f"{what} is live; the ledger holds ordId {row['ord_id']} for it")
        elif row["state"] not in ("live", "partially_filled"):
            found.append(f"{what} is live; the ledger says {row['state']}")
    return found


# (f) -----------------------------------------------------------------------------------------


def one_outcome_per_signal(snap: Snapshot) -> list[str]:
    found = []
    for signal_id, kind in snap.published.items():
        if signal_id in snap.undelivered:
            continue
        if signal_id not in snap.signal_by_id:
            found.append(f"{kind} signal {signal_id} was published but has no recorded outcome")
    for row in snap.signals:
        sid, outcome = row["signal_id"], row["outcome"]
        if not outcome:
            found.append(f"signal {sid} is recorded without an outcome")
        if row["kind"] == "buy" and outcome == "accepted":
            executed = snap.order_by_id.get(row["order_id"])
            if executed is None or executed["signal_id"] != sid:
                found.append(f"buy signal {sid} is accepted but no order executes it")
    for order in snap.orders:
        sid = order["signal_id"]
        if order["side"] != "buy" or not sid:
            continue
        signal = snap.signal_by_id.get(sid)
        if signal is None:
            found.append(f"order {order['cl_ord_id']} executes signal {sid}, which has no row")
        elif signal["outcome"] != "accepted" or signal["order_id"] != order["id"]:
            found.append(
                f"order {order['cl_ord_id']} executes signal {sid}, recorded as "
                f"{signal['outcome']} ({signal['reason'] or '-'}): two outcomes"
            )
    return found

"""Crashes (kill -9) and restarts with real worker processes: no stale block, no double buy."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
from sqlalchemy import select

from tests.builders import buy_message
from tests.integration.workers.conftest import Cluster
from tests.processes import wait_drained, wait_for
from worker.app import PROCESS_BUY_SIGNAL, PURGE_PENDING
from worker.domain.ids import buy_cl_ord_id
from worker.ledger.models import Lot, Order

pytestmark = pytest.mark.integration


def order_states(cluster: Cluster) -> dict[str, str]:
    with cluster.ledger.begin() as s:
        return {o.cl_ord_id: o.state for o in s.scalars(select(Order))}


@pytest.mark.parametrize(
    ("timeout", "hold", "lands", "expected", "placed"),
    [
        (8, 1.5, True, "live", 1),  # send window 2 s: it lands in time
        (3, 4.0, True, "failed", 0),  # send window 0.75 s: the venue drops it (expTime)
        (3, 4.0, False, "failed", 0),  # it never arrives at all
    ],
    ids=["landed-in-time", "arrived-after-its-deadline", "never-arrived"],
)
def test_kill_between_intent_and_placement_is_settled_by_purge(
    cluster: Cluster, timeout: int, hold: float, lands: bool, expected: str, placed: int
) -> None:
    cluster.env["PENDING_TIMEOUT_SECONDS"] = str(timeout)
    [victim] = cluster.pool.start(1)
    # The venue holds the placement request: the worker dies while it waits, after its
    # intent is committed. The request lands, arrives too late to count, or never arrives.
    cluster.venue.delay_placements(hold, lands=lands)
    msg = buy_message()
    cid = buy_cl_ord_id("hourly_limit_ws", msg["signal_id"])
    cluster.send(PROCESS_BUY_SIGNAL, msg)
    wait_for(lambda: order_states(cluster).get(cid) == "pending_submit", 30, "the intent row")
    sent = time.monotonic()
    time.sleep(0.5)
    victim.kill9()
    time.sleep(hold + 0.5)
    cluster.venue.clear_faults()
    assert order_states(cluster)[cid] == "pending_submit"  # the dead worker could not finish

    cluster.pool.start(1)  # its start-up purge may find the intent still too young
    time.sleep(max(0.0, timeout + 1.0 - (time.monotonic() - sent)))
    # As beat would: purge until settled. A missing order fails only once its deadline plus
    # the clock skew margin has passed (the paused test simulator's clock looks skewed).
    give_up = time.monotonic() + 60
    while order_states(cluster)[cid] != expected and time.monotonic() < give_up:
        cluster.send(PURGE_PENDING)
        time.sleep(2.0)
    assert order_states(cluster)[cid] == expected
    assert cluster.venue.placements_for(cid) == placed
    # The slot is not blocked for good: a failed intent frees it for the next signal.
    if expected == "failed":
        nxt = buy_message()
        cluster.send(PROCESS_BUY_SIGNAL, nxt)
        nxt_cid = buy_cl_ord_id("hourly_limit_ws", nxt["signal_id"])
        wait_for(lambda: order_states(cluster).get(nxt_cid) == "live", 30, "next buy live")


def test_restart_reconciles_what_changed_while_every_worker_was_down(cluster: Cluster) -> None:
    cluster.pool.start(2)
    msgs = [
        buy_message("hourly_limit_ws", "BTC-USDT"),
        buy_message("original_gap", "ETH-USDT"),
        buy_message("stable_buy_ws", "SOL-USDT"),
    ]
    cids = [buy_cl_ord_id(m["strategy"], m["signal_id"]) for m in msgs]
    for msg in msgs:
        cluster.send(PROCESS_BUY_SIGNAL, msg)
    wait_for(lambda: all(order_states(cluster).get(c) == "live" for c in cids), 30, "3 live buys")
    # The BTC buy fills while the workers run: a lot and its take-profit appear.
    cluster.venue.set_price("BTC-USDT", Decimal("60000"))
    cluster.push_updates()
    wait_drained(cluster.broker_url)
    with cluster.ledger.begin() as s:
        [tp] = s.scalars(select(Order).where(Order.purpose == "take_profit")).all()
        tp_cid = tp.cl_ord_id

    cluster.pool.kill_all()
    # While nobody listens: the ETH buy fills, the SOL buy is canceled, the take-profit fills.
    with cluster.pushes_lost():
        cluster.venue.set_price("ETH-USDT", Decimal("3000"))
        cluster.venue.cancel_order("SOL-USDT", cl_ord_id=cids[2])
        cluster.venue.set_price("BTC-USDT", Decimal("61000"))

    cluster.pool.start(1)  # reconciles once at start
    wait_for(
        lambda: (
            order_states(cluster).get(tp_cid) == "filled"
            and order_states(cluster).get(cids[1]) == "filled"
            and order_states(cluster).get(cids[2]) == "canceled"
        ),
        60,
        "the start-up reconciliation",
    )
    wait_drained(cluster.broker_url)
    with cluster.ledger.begin() as s:
        lots = {lot.inst_id: lot.state for lot in s.scalars(select(Lot))}
        eth_tp = s.scalars(
            select(Order).where(Order.purpose == "take_profit", Order.inst_id == "ETH-USDT")
        ).all()
    assert lots == {"BTC-USDT": "closed", "ETH-USDT": "open"}
    assert len(eth_tp) == 1 and eth_tp[0].state == "live"
    # Nothing is bought twice: the same signals again change nothing.
    for msg in msgs:
        cluster.send(PROCESS_BUY_SIGNAL, msg)
    wait_drained(cluster.broker_url)
    assert [cluster.venue.placements_for(c) for c in cids] == [1, 1, 1]

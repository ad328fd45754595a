"""The chaos soak's invariant checks on hand-built books: each flags what it must, and a
clean buy -> take-profit -> buy cycle flags nothing."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from tests.chaos.invariants import buy_interval, check_all
from tests.chaos.snapshot import INF, Rules, SimOrder, Snapshot
from worker.domain.ids import buy_cl_ord_id, sell_cl_ord_id

INST, STRATEGY = "ADA-USDT", "original_gap"
RULES = {INST: Rules(lot_sz=Decimal("0.000001"), min_sz=Decimal("1"))}


class Book:
    """A simulator book and a ledger, built step by step."""

    def __init__(self) -> None:
        self.sim: list[SimOrder] = []
        self.requests: list[dict[str, Any]] = []
        self.orders: list[dict[str, Any]] = []
        self.lots: list[dict[str, Any]] = []
        self.signals: list[dict[str, Any]] = []
        self.published: dict[str, str] = {}
        self._ids = iter(range(1, 1000))

    def sim_order(
        self, cl: str, side: str, state: str, filled: str, c_time: int, u_time: int
    ) -> SimOrder:
        fills = [(u_time, Decimal(filled))] if Decimal(filled) else []
        fee = -Decimal(filled) / 1000 if side == "buy" else Decimal(0)
        order = SimOrder(
            ord_id=str(2_000_000 + len(self.sim)), cl_ord_id=cl, inst_id=INST, side=side,
            state=state, sz=Decimal("25"), acc_fill_sz=Decimal(filled), fee=fee,
            fee_ccy="ADA" if side == "buy" else "USDT", c_time=c_time, u_time=u_time,
            fills=fills,
        )  # fmt: skip
        self.sim.append(order)
        self.requests.append({"cl_ord_id": cl, "received_ms": c_time, "fault": "", "s_code": "0"})
        return order

    def ledger_order(
        self, cl: str, side: str, state: str, filled: str, sim: SimOrder | None, **extra: Any
    ) -> dict[str, Any]:
        row = {
            "id": next(self._ids), "cl_ord_id": cl, "ord_id": sim.ord_id if sim else None,
            "inst_id": INST, "strategy": STRATEGY, "side": side, "purpose": "entry",
            "state": state, "sz": Decimal(25), "filled_sz": Decimal(filled),
            "signal_id": None, "lot_id": None,
        }  # fmt: skip
        row.update(extra)
        self.orders.append(row)
        return row

    def buy(
        self, signal: str, c_time: int, u_time: int, *, filled: str = "25", ledger: str = "filled"
    ) -> tuple[SimOrder, dict[str, Any]]:
        cl = buy_cl_ord_id(STRATEGY, signal)
        sim = self.sim_order(cl, "buy", "filled" if Decimal(filled) else "canceled", filled,
                             c_time, u_time)  # fmt: skip
        row = self.ledger_order(cl, "buy", ledger, filled if ledger == "filled" else "0",
                                sim if ledger != "failed" else None, signal_id=signal)  # fmt: skip
        self.signals.append(
            {"signal_id": signal, "kind": "buy", "strategy": STRATEGY, "inst_id": INST,
             "outcome": "accepted", "reason": "", "order_id": row["id"]}
        )  # fmt: skip
        self.published[signal] = "buy"
        return sim, row

    def lot(self, buy_row: dict[str, Any], size: str = "24.975", state: str = "open") -> int:
        lot_id = len(self.lots) + 1
        self.lots.append(
            {"id": lot_id, "buy_order_id": buy_row["id"], "inst_id": INST, "strategy": STRATEGY,
             "state": state, "size": Decimal(size), "sold_sz": Decimal(0), "dust_sz": Decimal(0)}
        )  # fmt: skip
        return lot_id

    def sell(self, lot_id: int, state: str, filled: str, c_time: int, u_time: int) -> None:
        cl = sell_cl_ord_id(STRATEGY, lot_id, 1)
        sim = self.sim_order(cl, "sell", state, filled, c_time, u_time)
        ledger_state = state if state != "partially_filled" else "partially_filled"
        self.ledger_order(cl, "sell", ledger_state, filled, sim, lot_id=lot_id,
                          purpose="take_profit")  # fmt: skip

    def snapshot(self) -> Snapshot:
        return Snapshot(self.sim, self.requests, RULES, self.orders, self.lots, self.signals,
                        self.published)  # fmt: skip

    def violations(self) -> dict[str, list[str]]:
        return {k: v for k, v in check_all(self.snapshot()).items() if v}


def clean_cycle(book: Book) -> None:
    """Buy at 1 s, take-profit filled at 3 s, next buy at 5 s that still rests its TP."""
    _, first = book.buy("og:ADA:1", 1000, 1500)
    lot = book.lot(first, state="closed")
    book.sell(lot, "filled", "24.975", 1600, 3000)
    _, second = book.buy("og:ADA:2", 5000, 5200)
    book.sell(book.lot(second), "live", "0", 5300, 5300)


def test_a_clean_cycle_breaks_nothing() -> None:
    book = Book()
    clean_cycle(book)
    assert book.violations() == {}


def test_a_late_placement_that_filled_holds_the_slot_forever() -> None:
    book = Book()
    late, _ = book.buy("og:ADA:1", 1000, 1000, ledger="failed")
    _, second = book.buy("og:ADA:2", 5000, 5200)
    book.sell(book.lot(second), "live", "0", 5300, 5300)
    assert buy_interval(book.snapshot(), late)[1] == INF
    found = book.violations()
    assert set(found) == {"a", "c"}
    assert "held the slot" in found["a"][0] and "unknown to the ledger" not in found["a"][0]
    (problem,) = found["c"]
    assert "the ledger has 0 filled, no lot (ledger state failed)" in problem


def test_a_second_buy_while_the_take_profit_still_rests() -> None:
    book = Book()
    _, first = book.buy("og:ADA:1", 1000, 1500)
    lot = book.lot(first, state="closed")
    book.sell(lot, "filled", "24.975", 1600, 9000)  # sold only at 9 s
    _, second = book.buy("og:ADA:2", 5000, 5200)
    book.sell(book.lot(second), "live", "0", 5300, 5300)
    (text,) = book.violations()["a"]
    assert text.startswith(f"{INST} {STRATEGY}: buy {buy_cl_ord_id(STRATEGY, 'og:ADA:2')}")


def test_a_lot_of_dust_frees_the_slot_when_the_buy_ends() -> None:
    book = Book()
    _, first = book.buy("og:ADA:1", 1000, 1500, filled="0.5")
    book.lot(first, size="0.4995", state="closed")  # below minSz 1: never sold
    book.buy("og:ADA:2", 5000, 5200, filled="0")
    assert "a" not in book.violations()


def test_b_a_clordid_sent_twice() -> None:
    book = Book()
    clean_cycle(book)
    again = dict(book.requests[0], received_ms=7000, s_code="51016")
    book.requests.append(again)
    (text,) = book.violations()["b"]
    assert "sent 2 times" in text and "51016" in text


def test_c_an_open_lot_without_a_resting_exit() -> None:
    book = Book()
    _, row = book.buy("og:ADA:1", 1000, 1500)
    lot = book.lot(row)
    book.sell(lot, "canceled", "0", 1600, 2000)
    (text,) = book.violations()["c"]
    assert "no resting take-profit or exit" in text


def test_c_lots_on_a_suspended_instrument_may_wait_without_an_exit() -> None:
    book = Book()
    _, row = book.buy("og:ADA:1", 1000, 1500)
    book.sell(book.lot(row), "canceled", "0", 1600, 2000)
    snap = book.snapshot()
    snap.suspended.add(INST)
    assert check_all(snap)["c"] == []


def test_c_a_lot_sold_on_the_exchange_but_open_in_the_ledger() -> None:
    book = Book()
    _, row = book.buy("og:ADA:1", 1000, 1500)
    lot = book.lot(row)
    book.sell(lot, "filled", "24.975", 1600, 2000)
    book.orders[-1]["state"] = "live"  # the ledger missed the fill
    found = book.violations()
    assert any("still open in the ledger" in v for v in found["c"])
    assert "live; the ledger says" not in str(found.get("e"))


def test_c_fills_missing_from_the_ledger() -> None:
    book = Book()
    clean_cycle(book)
    book.orders[0]["filled_sz"] = Decimal(20)
    (text,) = book.violations()["c"]
    assert "the ledger has 20 filled" in text


def test_d_more_sold_than_bought() -> None:
    book = Book()
    _, row = book.buy("og:ADA:1", 1000, 1500)
    lot = book.lot(row, state="closed")
    book.sell(lot, "filled", "24.975", 1600, 2000)
    book.sim_order(sell_cl_ord_id(STRATEGY, lot, 2), "sell", "filled", "24.975", 2100, 2200)
    book.ledger_order(sell_cl_ord_id(STRATEGY, lot, 2), "sell", "failed", "0", None, lot_id=lot)
    found = book.violations()["d"]
    assert len(found) == 2  # the slot and the lot
    assert "sold 49.95" in found[0]


@pytest.mark.parametrize(("ledger_state", "flagged"), [("live", False), ("failed", True)])
def test_e_live_orders_the_ledger_must_know(ledger_state: str, flagged: bool) -> None:
    book = Book()
    _, row = book.buy("og:ADA:1", 1000, 1500)
    lot = book.lot(row)
    book.sell(lot, "live", "0", 1600, 1600)
    book.orders[-1]["state"] = ledger_state
    assert ("e" in book.violations()) is flagged


def test_e_a_live_order_unknown_to_the_ledger() -> None:
    book = Book()
    book.sim_order("lfogbffffffffffffffffffffffff", "buy", "live", "0", 1000, 1000)
    (text,) = book.violations()["e"]
    assert "unknown to the ledger" in text


def test_f_signals_without_or_with_two_outcomes() -> None:
    book = Book()
    clean_cycle(book)
    book.published["og:ADA:9"] = "buy"  # published, never recorded
    book.published["og:ADA:10"] = "buy"
    book.signals[0]["outcome"], book.signals[0]["reason"] = "skipped", "slot_busy"
    snap = book.snapshot()
    snap.undelivered.add("og:ADA:10")  # the feed could not publish it: not counted
    found = check_all(snap)["f"]
    assert any("og:ADA:9 was published but has no recorded outcome" in v for v in found)
    assert any("recorded as skipped (slot_busy): two outcomes" in v for v in found)
    assert not any("og:ADA:10" in v for v in found)

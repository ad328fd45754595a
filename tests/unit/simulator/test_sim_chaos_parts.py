"""The simulator's chaos parts on their own: fault rules, the placement log, suspension."""

from __future__ import annotations

import pytest
from sim_unit_helpers import Recorder, order, set_quote

from simulator.faults import PUSH_OP, Faults
from simulator.matching import Engine
from simulator.placements import PlacementLog


def test_push_faults_are_taken_only_by_pushes_and_count_down() -> None:
    faults = Faults()
    faults.add(PUSH_OP, "duplicate", times=2)
    faults.add("any", "http_500", times=1)
    rest = faults.take("place_order")
    assert rest is not None and rest.mode == "http_500"
    assert faults.take("get_order") is None  # the "any" fault was used up
    taken = [faults.take(PUSH_OP) for _ in range(3)]
    assert [f.mode if f else None for f in taken] == ["duplicate", "duplicate", None]


def test_any_never_hits_pushes() -> None:
    faults = Faults()
    faults.add("any", "latency", times=-1)
    assert faults.take(PUSH_OP) is None


@pytest.mark.parametrize(
    ("op", "mode", "error"),
    [
        (PUSH_OP, "http_500", "mode of orders_push"),
        ("place_order", "drop", "mode must be one of"),
        ("websocket", "drop", "op must be one of"),
    ],
)
def test_bad_fault_rules_are_refused(op: str, mode: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        Faults().add(op, mode)


def test_placement_log_resolves_each_order_of_a_batch() -> None:
    log = PlacementLog()
    entries = log.received(
        [{"clOrdId": "a", "instId": "BTC-USDT", "side": "buy", "px": "1", "sz": 2}, "junk"],
        "batch",
        "",
        1000,
    )
    payload = {"code": "2", "data": [{"sCode": "0", "ordId": "7"}, {"sCode": "51000"}]}
    log.resolve(entries, payload, 1500)
    first, second = log.to_json()
    assert (first["cl_ord_id"], first["sz"], first["s_code"], first["ord_id"]) == (
        "a",
        "2",
        "0",
        "7",
    )
    assert (second["cl_ord_id"], second["s_code"], second["processed_ms"]) == ("", "51000", 1500)


def test_placement_log_takes_a_top_level_refusal_for_every_order() -> None:
    log = PlacementLog()
    entries = log.received({"clOrdId": "x"}, "order", "latency", 1)
    log.resolve(entries, {"code": "50102", "msg": "Timestamp request expired"}, 2)
    assert log.to_json()[0]["s_code"] == "50102"


def test_placement_log_is_bounded_and_counts_what_it_forgot() -> None:
    log = PlacementLog(maxlen=2)
    for n in range(3):
        log.received({"clOrdId": f"c{n}"}, "order", "", n)
    assert [e["cl_ord_id"] for e in log.to_json()] == ["c1", "c2"]
    assert log.dropped == 1


def test_suspended_instrument_refuses_orders_and_stops_matching(
    engine: Engine, recorder: Recorder
) -> None:
    resting = engine.place(order(px="99", clOrdId="r1"))
    assert resting["sCode"] == "0"
    engine.set_instrument_state("BTC-USDT", "suspend")
    refused = engine.place(order(px="99", clOrdId="r2"))
    assert (refused["sCode"], refused["sMsg"]) == ("51022", "Instrument suspended.")
    set_quote(engine, bid="98", ask="98.5")
    assert engine.orders[resting["ordId"]].state == "live"
    engine.set_instrument_state("BTC-USDT", "live")
    set_quote(engine, bid="98", ask="98.5")
    assert engine.orders[resting["ordId"]].state == "filled"
    assert engine.instruments["BTC-USDT"].to_okx()["state"] == "live"

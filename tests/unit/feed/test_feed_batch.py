from decimal import Decimal

from feed_builders import HOUR, T0, Harness, only, rules

INSTS = [f"C{i}-USDT" for i in range(12)]


def harness(**params: object) -> Harness:
    h = Harness(only("batch_buy_ws", **params), *(rules(i, tick="0.001") for i in INSTS))
    for inst in INSTS:
        h.candle(inst, T0, "100")
    return h


def test_needs_min_count_at_once() -> None:
    h = harness(min_count=3, max_count=10)
    assert h.tick("C0-USDT", "97", T0 + 1) == []  # exactly 3 % down: counts
    assert h.tick("C1-USDT", "96", T0 + 2) == []
    assert h.tick("C2-USDT", "97.001", T0 + 3) == []  # just above: not yet
    got = h.tick("C2-USDT", "95", T0 + 4)
    assert [s.inst_id for s in got] == ["C2-USDT", "C1-USDT", "C0-USDT"]  # deepest first
    assert [str(s.px) for s in got] == ["95", "96", "97"]
    assert all(s.signal_id.endswith(":2026112908") for s in got)


def test_recovery_drops_an_instrument_from_the_count() -> None:
    h = harness(min_count=3)
    h.tick("C0-USDT", "97", T0 + 1)
    h.tick("C1-USDT", "97", T0 + 2)
    h.tick("C0-USDT", "99", T0 + 3)  # recovered
    assert h.tick("C2-USDT", "97", T0 + 4) == []


def test_buys_only_the_max_count_deepest() -> None:
    h = harness(min_count=5, max_count=3)
    for i, px in enumerate(["96", "90", "95", "93"]):
        assert h.tick(INSTS[i], px, T0 + i + 1) == []
    got = h.tick(INSTS[4], "91", T0 + 10)
    assert [s.inst_id for s in got] == ["C1-USDT", "C4-USDT", "C3-USDT"]
    # The hour's batch is used up: a new deeper instrument does not buy.
    assert h.tick(INSTS[5], "80", T0 + 11) == []


def test_once_per_instrument_per_hour_and_again_next_hour() -> None:
    h = harness(min_count=2, max_count=4)
    h.tick("C0-USDT", "96", T0 + 1)
    assert len(h.tick("C1-USDT", "95", T0 + 2)) == 2
    assert h.tick("C1-USDT", "94", T0 + 3) == []  # already bought this hour
    [late] = h.tick("C2-USDT", "90", T0 + 4)  # joins later in the hour, room left
    assert late.inst_id == "C2-USDT"
    for inst in ("C0-USDT", "C1-USDT"):
        h.candle(inst, T0 + HOUR, "100")
    h.tick("C0-USDT", "96", T0 + HOUR + 1)
    got = h.tick("C1-USDT", "96", T0 + HOUR + 2)
    assert {s.signal_id for s in got} == {
        "batch_buy_ws:C0-USDT:2026112909",
        "batch_buy_ws:C1-USDT:2026112909",
    }


def test_deep_set_resets_when_the_hour_turns() -> None:
    h = harness(min_count=2)
    h.tick("C0-USDT", "96", T0 + 1)
    # Next hour: C0's old dip does not count any more.
    h.candle("C1-USDT", T0 + HOUR, "100")
    assert h.tick("C1-USDT", "96", T0 + HOUR + 1) == []
    assert len(h.engine.batch_state.deep) == 1
    assert h.engine.batch_state.deep["C1-USDT"][1] == Decimal("96")

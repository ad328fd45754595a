from decimal import Decimal

from feed_builders import HOUR, T0, Harness, only, rules

from feed.state import RANK_CANDLE, InstrumentState, Tick
from feed.strategies.base import Candidate
from feed.strategies.batch import Batch, BatchState
from worker.strategy_config import BatchBuyParams

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


def test_never_more_than_max_count_in_an_hour_even_after_a_bought_one_recovers() -> None:
    h = harness(min_count=2, max_count=2)
    h.tick("C0-USDT", "90", T0 + 1)
    assert [s.inst_id for s in h.tick("C1-USDT", "95", T0 + 2)] == ["C0-USDT", "C1-USDT"]
    h = harness(min_count=2, max_count=3)
    h.tick("C0-USDT", "90", T0 + 1)
    assert len(h.tick("C1-USDT", "95", T0 + 2)) == 2
    h.tick("C0-USDT", "100", T0 + 3)  # C0 recovers: it leaves the deep set, not the count
    h.tick("C1-USDT", "100", T0 + 4)
    h.tick("C2-USDT", "96", T0 + 5)
    got = h.tick("C3-USDT", "94", T0 + 6)  # two new deep ones, one place left
    assert [s.inst_id for s in got] == ["C3-USDT"]
    assert h.tick("C4-USDT", "80", T0 + 7) == []
    assert len(h.buys) == 3


def test_the_last_free_place_goes_to_the_deepest_not_yet_bought() -> None:
    h = harness(min_count=2, max_count=3)
    h.tick("C0-USDT", "90", T0 + 1)
    assert len(h.tick("C1-USDT", "92", T0 + 2)) == 2
    # C0 and C1 are still the deepest, but bought: the third place goes to C2.
    [last] = h.tick("C2-USDT", "96", T0 + 3)
    assert last.inst_id == "C2-USDT"
    assert h.tick("C3-USDT", "95", T0 + 4) == []  # the hour's three places are used


def test_deepest_is_relative_to_each_instrument_hour_open() -> None:
    opens = {"C0-USDT": "50000", "C1-USDT": "2", "C2-USDT": "300"}
    h = Harness(
        only("batch_buy_ws", min_count=3, max_count=2),
        *(rules(i, tick="0.001") for i in opens),
    )
    for inst, px in opens.items():
        h.candle(inst, T0, px)
    assert h.tick("C0-USDT", "45000", T0 + 1) == []  # -10 %, the highest price
    assert h.tick("C1-USDT", "1.94", T0 + 2) == []  # -3 %, the lowest price
    got = h.tick("C2-USDT", "276", T0 + 3)  # -8 %
    assert [(s.inst_id, s.px) for s in got] == [("C0-USDT", 45000), ("C2-USDT", 276)]


def test_equally_deep_instruments_are_taken_in_instrument_order() -> None:
    h = harness(min_count=2, max_count=1)
    h.candle("C0-USDT", T0, "200")
    h.tick("C0-USDT", "190", T0 + 1)  # -5 %
    [got] = h.tick("C1-USDT", "95", T0 + 2)  # -5 % too, at a lower price
    assert got.inst_id == "C0-USDT"


def test_a_tick_from_the_previous_hour_yields_an_empty_list() -> None:
    params = BatchBuyParams(min_count=1, max_count=5)
    batch = BatchState()
    strategy = Batch(params, batch)
    state = InstrumentState(rules("C0-USDT"))
    state.set_hour_open(T0 // HOUR, Decimal("100"), RANK_CANDLE)
    bought = strategy.evaluate(state, Tick("C0-USDT", Decimal("90"), T0 + 1))
    assert bought == [Candidate("batch_buy_ws", "C0-USDT", T0 // HOUR, "2026112908", Decimal("90"))]
    other = InstrumentState(rules("C1-USDT"))
    other.set_hour_open(T0 // HOUR + 1, Decimal("100"), RANK_CANDLE)
    strategy.evaluate(other, Tick("C1-USDT", Decimal("100"), T0 + HOUR + 1))
    state.set_hour_open(T0 // HOUR - 1, Decimal("100"), RANK_CANDLE)
    late = strategy.evaluate(state, Tick("C0-USDT", Decimal("80"), T0 - 1))
    assert late == [] and isinstance(late, list)
    assert batch.hour_idx == T0 // HOUR + 1  # the late tick did not take the batch back

"""Every structure keyed by instrument or bucket stays bounded over long runs."""

from feed_builders import HOUR, T0, Harness, rules, ticker

from worker.strategy_config import StrategyConfig

INSTS = [f"C{i}-USDT" for i in range(20)]


def test_structures_stay_bounded_over_many_hours_and_ticks() -> None:
    h = Harness(StrategyConfig(), *(rules(i, tick="0.0001") for i in INSTS))
    engine = h.engine
    ts = T0
    for n in range(60_000):
        ts += 997  # ~16.6 hours in total
        inst = INSTS[n % len(INSTS)]
        px = 100 - (n % 500) / 50  # saw-tooth between 90 and 100
        engine.handle_raw(
            ticker(
                inst,
                f"{px:.4f}",
                ts,
                sodUtc0="100",
                high24h="101",
                low24h="99",
                volCcy24h="5000000",
            )
        )
        if n % 7 == 0:
            engine.handle_raw(b"junk")
    assert ts - T0 > 16 * HOUR
    assert engine.ticks == 60_000 and len(h.buys) > 100
    assert set(engine.states) == set(INSTS)
    for state in engine.states.values():
        assert len(state.fired) <= 4
        assert state.gap is not None and len(state.gap) <= 514
    assert len(engine.batch_state.deep) <= len(INSTS)
    assert len(engine.batch_state.bought) <= StrategyConfig().batch_buy_ws.max_count
    assert set(engine.bad) <= {
        "malformed_json",
        "not_object",
        "missing_field",
        "bad_number",
        "non_positive",
        "bad_ts",
        "unknown_instrument",
        "ts_backwards",
        "unknown_message",
        "invalid_signal",
    }
    assert len(engine._warn._last) <= 2

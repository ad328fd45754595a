"""The feed records each strategy's closest approach per instrument and bucket, and when it
heard each instrument (issue 8, item 1): what ``why`` says when no signal fired."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from feed_builders import ALL, HOUR, T0, Harness, only, rules

from feed import approach
from feed.approach import ApproachTracker, CoverageSampler
from worker.strategy_config import StrategyConfig, parse_strategy_config

NOW = datetime(2026, 12, 1, tzinfo=UTC)
MIN = 60_000


def tracked(config: StrategyConfig, *inst: Any) -> tuple[Harness, ApproachTracker]:
    h = Harness(config, *(inst or (rules(),)))
    tracker = ApproachTracker(config, h.engine.batch_state, "run1", h.engine.states)
    h.engine.approach = tracker
    return h, tracker


def rows(tracker: ApproachTracker, running: bool = False) -> list[Any]:
    return tracker.drain(NOW, running)


def at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def test_hourly_records_the_deepest_drop_below_the_open_when_the_hour_ends() -> None:
    h, tracker = tracked(only("hourly_limit_ws"))
    h.engine.seed_hour_open("BTC-USDT", T0, Decimal("100"))
    for minute, last in ((1, "99"), (20, "97.9"), (40, "98.5")):
        assert h.tick("BTC-USDT", last, T0 + minute * MIN) == []
    assert rows(tracker) == []  # the hour is still running
    h.tick("BTC-USDT", "99", T0 + HOUR + 1)
    [row] = rows(tracker)
    assert row["strategy"] == "hourly_limit_ws" and row["bucket"] == "2026112908"
    assert (row["reference"], row["closest"], row["trigger"]) == (
        Decimal("100"),
        Decimal("97.9"),
        Decimal("0.03"),
    )
    assert row["closest_at"] == at(T0 + 20 * MIN) and row["fired_at"] is None
    assert row["complete"] and row["bucket_start"] == at(T0) and row["bucket_end"] == at(T0 + HOUR)
    assert row["first_tick_at"] == at(T0 + MIN)


def test_a_strategy_that_fired_says_when() -> None:
    h, tracker = tracked(only("hourly_limit_ws"))
    h.engine.seed_hour_open("BTC-USDT", T0, Decimal("100"))
    assert len(h.tick("BTC-USDT", "96.9", T0 + 27 * MIN)) == 1
    [row] = rows(tracker, running=True)
    assert row["fired_at"] == at(T0 + 27 * MIN) and not row["complete"]
    assert row["closest"] == Decimal("96.9") and row["detail"] == ""


def test_a_buy_the_feed_did_not_send_says_why() -> None:
    xrp = rules("XRP-USDT", tick="0.0001", lot="1", min_sz="100")  # 10 USDT buys 20 < 100
    h, tracker = tracked(only("hourly_limit_ws"), xrp)
    h.engine.seed_hour_open("XRP-USDT", T0, Decimal("0.5"))
    assert h.tick("XRP-USDT", "0.48", T0 + MIN) == []
    [row] = rows(tracker, running=True)
    assert row["fired_at"] == at(T0 + MIN)
    assert row["detail"].startswith("the feed did not send it: below_min_size: ")


def test_the_lowest_price_is_measured_from_the_open_known_then() -> None:
    h, tracker = tracked(only("hourly_limit_ws"))
    h.engine.seed_hour_open("BTC-USDT", T0, Decimal("100"))
    h.tick("BTC-USDT", "98", T0 + MIN)
    [row] = rows(tracker, running=True)
    assert (row["closest"], row["reference"]) == (Decimal("98"), Decimal("100"))
    h.candle("BTC-USDT", T0, "99")  # the exchange's own open replaces the REST one
    h.tick("BTC-USDT", "97.5", T0 + 2 * MIN)
    h.tick("BTC-USDT", "98.5", T0 + 3 * MIN)
    [row] = rows(tracker, running=True)
    assert (row["closest"], row["reference"]) == (Decimal("97.5"), Decimal("99"))


def test_an_open_learned_later_in_the_hour_still_measures_its_lowest_price() -> None:
    h, tracker = tracked(only("hourly_limit_ws"))
    h.tick("BTC-USDT", "97", T0 + MIN)  # started mid-hour: the open is not known yet
    h.engine.seed_hour_open("BTC-USDT", T0, Decimal("100"))  # the REST seed arrives
    h.tick("BTC-USDT", "99", T0 + 2 * MIN)
    [row] = rows(tracker, running=True)
    assert (row["closest"], row["reference"]) == (Decimal("97"), Decimal("100"))


def test_no_hour_open_no_approach() -> None:
    h, tracker = tracked(only("hourly_limit_ws"))
    h.tick("BTC-USDT", "99", T0 + MIN)  # started mid-hour, no candle: the open is unknown
    [row] = rows(tracker, running=True)
    assert row["closest"] is None and row["reference"] is None
    assert row["first_tick_at"] == at(T0 + MIN)


def test_batch_records_how_many_were_down_at_once() -> None:
    insts = [rules(f"C{i}-USDT") for i in range(4)]
    h, tracker = tracked(only("batch_buy_ws"), *insts)
    for r in insts:
        h.engine.seed_hour_open(r.inst_id, T0, Decimal("100"))
    h.tick("C0-USDT", "96", T0 + MIN)
    h.tick("C1-USDT", "96.5", T0 + 2 * MIN)
    h.tick("C2-USDT", "96.9", T0 + 3 * MIN)
    h.tick("C0-USDT", "99", T0 + 4 * MIN)  # C0 recovers: two down now
    h.tick("C3-USDT", "96", T0 + 5 * MIN)  # three again
    assert h.buys == []  # min_count is 5
    for r in insts:
        h.tick(r.inst_id, "100", T0 + HOUR + MIN)
    found = rows(tracker)
    by_inst = {r["inst_id"]: r for r in found}
    assert {r["peak_count"] for r in found} == {3}
    assert by_inst["C0-USDT"]["closest"] == Decimal("96")
    assert by_inst["C2-USDT"]["closest"] == Decimal("96.9")


def test_gap_records_the_deepest_drop_below_the_trailing_high_per_window() -> None:
    h, tracker = tracked(only("original_gap"))
    start = T0 + 10 * MIN  # a window boundary
    h.tick("BTC-USDT", "100", start + 1_000)
    h.tick("BTC-USDT", "98.9", start + 20_000)  # 1.1 % below the high 100
    h.tick("BTC-USDT", "99.5", start + 40_000)
    h.tick("BTC-USDT", "99", start + 61_000)  # the next window
    found = rows(tracker)
    [row] = [r for r in found if r["strategy"] == "original_gap"]
    assert row["bucket"] == "20261129T081000w60"
    assert (row["reference"], row["closest"]) == (Decimal("100"), Decimal("98.9"))
    assert row["trigger"] == Decimal("0.02")


def test_stable_records_the_drop_below_sod_and_its_other_conditions() -> None:
    h, tracker = tracked(only("stable_buy_ws"))
    day = {"sodUtc0": "100", "high24h": "108", "low24h": "100", "volCcy24h": "2500000"}
    h.tick("BTC-USDT", "99.2", T0 + MIN, **day)
    h.tick("BTC-USDT", "98", T0 + 2 * MIN, **day)  # 2 % down, but the range is 8 %
    assert h.buys == []
    found = rows(tracker, running=True)
    [row] = [r for r in found if r["strategy"] == "stable_buy_ws"]
    assert row["bucket"] == "20261129"
    assert (row["reference"], row["closest"]) == (Decimal("100"), Decimal("98"))
    assert "24h range 8.0 % (max_range 6.0 %)" in row["detail"]
    assert "24h volume 2,500,000 (min_volume_usdt 1,000,000)" in row["detail"]


def test_coverage_records_when_each_instrument_was_heard_and_the_longest_silence() -> None:
    h, _ = tracked(only("hourly_limit_ws"), rules(), rules("ETH-USDT"))
    sampler = CoverageSampler("run1")
    for minute in (0, 5, 10, 40, 50, 62):
        h.tick("BTC-USDT", "100", T0 + minute * MIN + 1)
        sampler.sample(h.engine.states)  # the housekeeping thread, once a second
    [done] = sampler.drain(NOW, running=False)  # the hour that ended; ETH was never heard
    assert (done["inst_id"], done["hour_start"]) == ("BTC-USDT", at(T0))
    assert (done["first_tick_at"], done["last_tick_at"]) == (at(T0 + 1), at(T0 + 50 * MIN + 1))
    assert (done["gap_start"], done["gap_end"]) == (at(T0 + 10 * MIN + 1), at(T0 + 40 * MIN + 1))
    [running] = sampler.drain(NOW, running=True)
    assert running["hour_start"] == at(T0 + HOUR) and running["gap_start"] is None


def test_every_enabled_strategy_gets_its_rows() -> None:
    config = parse_strategy_config({})
    h, tracker = tracked(config)
    assert set(ALL) == {"hourly_limit_ws", "original_gap", "stable_buy_ws", "batch_buy_ws"}
    h.engine.seed_hour_open("BTC-USDT", T0, Decimal("100"))
    h.tick("BTC-USDT", "99", T0 + MIN, sodUtc0="100")
    found = rows(tracker, running=True)
    assert sorted(r["strategy"] for r in found) == sorted(ALL)


def test_the_queue_of_finished_buckets_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(approach, "MAX_QUEUED", 3)
    h, tracker = tracked(only("original_gap"))
    for n in range(10):
        h.tick("BTC-USDT", "100", T0 + n * MIN)
    assert len(tracker.finished) == 3 and tracker.dropped > 0

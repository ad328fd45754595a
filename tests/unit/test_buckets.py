"""Trigger buckets as ``why`` computes them are the feed's (the same names in signal ids)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from feed.strategies.base import day_bucket, hour_bucket, window_bucket
from worker.domain.buckets import bucket_at
from worker.strategy_config import parse_strategy_config

AT = datetime(2026, 11, 24, 8, 27, 13, tzinfo=UTC)
MS = int(AT.timestamp() * 1000)


@pytest.mark.parametrize(
    ("strategy", "name", "start", "end"),
    [
        ("hourly_limit_ws", hour_bucket(MS // 3_600_000), "08:00:00", "09:00:00"),
        ("batch_buy_ws", hour_bucket(MS // 3_600_000), "08:00:00", "09:00:00"),
        ("original_gap", window_bucket(MS // 60_000 * 60_000, 60), "08:27:00", "08:28:00"),
        ("stable_buy_ws", day_bucket(MS // 86_400_000), "00:00:00", "00:00:00"),
    ],
)
def test_the_bucket_containing_a_time_is_named_as_the_feed_names_it(
    strategy: str, name: str, start: str, end: str
) -> None:
    bucket = bucket_at(strategy, AT, parse_strategy_config({}))
    assert bucket.name == name
    assert (f"{bucket.start:%H:%M:%S}", f"{bucket.end:%H:%M:%S}") == (start, end)
    assert bucket.start <= AT < bucket.end
    assert bucket.signal_id("BTC-USDT") == f"{strategy}:BTC-USDT:{name}"


def test_a_configured_gap_window_moves_the_bucket() -> None:
    config = parse_strategy_config({"original_gap": {"gap_window_seconds": 300}})
    bucket = bucket_at("original_gap", AT, config)
    assert bucket.name == window_bucket(MS // 300_000 * 300_000, 300) == "20261124T082500w300"
    assert bucket.describe() == "the 300 s window 08:25:00-08:30:00 UTC of 2026-11-24"

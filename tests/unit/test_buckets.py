"""Trigger buckets as ``why`` computes them are the feed's (the same names in signal ids)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from feed.strategies.base import day_bucket, hour_bucket, window_bucket
from worker.domain.buckets import bucket_at
from worker.domain.errors import ConfigError
from worker.strategy_config import parse_strategy_config

AT = datetime(2026, 11, 24, 8, 27, 13, tzinfo=UTC)
MS = int(AT.timestamp() * 1000)
MINUTE_WINDOW = window_bucket(MS // 60_000 * 60_000, 60)


@pytest.mark.parametrize(
    ("strategy", "name", "start", "end", "kind"),
    [
        ("hourly_limit_ws", hour_bucket(MS // 3_600_000), "08:00:00", "09:00:00", "hour"),
        ("batch_buy_ws", hour_bucket(MS // 3_600_000), "08:00:00", "09:00:00", "hour"),
        (
            "original_gap",
            window_bucket(MS // 60_000 * 60_000, 60),
            "08:27:00",
            "08:28:00",
            "window",
        ),
        ("stable_buy_ws", day_bucket(MS // 86_400_000), "00:00:00", "00:00:00", "day"),
    ],
)
def test_the_bucket_containing_a_time_is_named_as_the_feed_names_it(
    strategy: str, name: str, start: str, end: str, kind: str
) -> None:
    bucket = bucket_at(strategy, AT, parse_strategy_config({}).original_gap.gap_window_seconds)
    assert bucket.name == name
    assert bucket.kind == kind
    assert (f"{bucket.start:%H:%M:%S}", f"{bucket.end:%H:%M:%S}") == (start, end)
    assert bucket.start <= AT < bucket.end
    assert bucket.signal_id("BTC-USDT") == f"{strategy}:BTC-USDT:{name}"


def test_a_configured_gap_window_moves_the_bucket() -> None:
    config = parse_strategy_config({"original_gap": {"gap_window_seconds": 300}})
    bucket = bucket_at("original_gap", AT, config.original_gap.gap_window_seconds)
    assert bucket.name == window_bucket(MS // 300_000 * 300_000, 300) == "20261124T082500w300"
    assert bucket.describe() == "the 300 s window 08:25:00-08:30:00 UTC of 2026-11-24"


def test_hour_and_day_buckets_describe_themselves() -> None:
    config = parse_strategy_config({})
    hour = bucket_at("hourly_limit_ws", AT, config.original_gap.gap_window_seconds)
    assert hour.describe() == "the hour 08:00-09:00 UTC of 2026-11-24"
    day = bucket_at("stable_buy_ws", AT, config.original_gap.gap_window_seconds)
    assert day.describe() == "the UTC day 2026-11-24"
    assert day.end - day.start == timedelta(days=1)


def test_a_strategy_this_build_does_not_know_has_no_bucket() -> None:
    with pytest.raises(ConfigError, match="unknown strategy 'nope'"):
        bucket_at("nope", AT, 60)

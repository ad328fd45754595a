"""The bucket names that make buy signal ids deterministic: UTC hour, day and window."""

from datetime import UTC, datetime, timedelta

import pytest

from feed.strategies.base import day_bucket, hour_bucket, window_bucket

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize("day", [0, 1, 20_786, 100_000])
def test_day_bucket_is_the_utc_date_of_any_day_number(day: int) -> None:
    assert day_bucket(day) == (EPOCH + timedelta(days=day)).strftime("%Y%m%d")


@pytest.mark.parametrize("hour", [0, 23, 498_872, 2_400_000])
def test_hour_bucket_is_the_utc_hour_of_any_hour_number(hour: int) -> None:
    assert hour_bucket(hour) == (EPOCH + timedelta(hours=hour)).strftime("%Y%m%d%H")


def test_window_bucket_names_the_start_second_and_the_length() -> None:
    assert window_bucket(1_795_939_260_000, 60) == "20261129T080100w60"
    assert window_bucket(1_795_939_260_999, 10) == "20261129T080100w10"

"""The pure parts of the operator commands: times given on the command line, silences in the
feed's coverage, the warnings ``enqueue`` gives."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

import pytest

from worker.__main__ import parse_time
from worker.readmodels import Heard
from worker.signals import time_warnings
from worker.why import _silences

T = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


def test_a_time_of_day_is_today_in_utc() -> None:
    at = parse_time("08:27")
    today = datetime.now(UTC)
    assert (at.date(), at.hour, at.minute, at.second, at.tzinfo) == (today.date(), 8, 27, 0, UTC)
    assert parse_time("8:27:30").second == 30


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-24T08:27", datetime(2026, 11, 24, 8, 27, tzinfo=UTC)),
        ("2026-11-24 08:27:13", datetime(2026, 11, 24, 8, 27, 13, tzinfo=UTC)),
        ("2026-11-24T10:27+02:00", datetime(2026, 11, 24, 8, 27, tzinfo=UTC)),
        ("2026-11-24T08:27Z", datetime(2026, 11, 24, 8, 27, tzinfo=UTC)),
    ],
)
def test_a_full_time_is_utc_unless_it_says_otherwise(text: str, expected: datetime) -> None:
    assert parse_time(text) == expected


def test_a_span_counts_back_from_now() -> None:
    assert abs(datetime.now(UTC) - timedelta(hours=24) - parse_time("24h")) < timedelta(seconds=5)
    assert abs(datetime.now(UTC) - timedelta(days=7) - parse_time("7d")) < timedelta(seconds=5)


@pytest.mark.parametrize("text", ["25:00", "08:61", "yesterday", "8h27"])
def test_a_bad_time_is_refused_with_the_forms_it_takes(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_time(text)


def heard(first: int, last: int, gap: tuple[int, int] | None = None) -> Heard:
    m = lambda n: T + timedelta(minutes=n)  # noqa: E731
    return Heard("r", m(first), m(last), (m(gap[0]), m(gap[1])) if gap else None, m(last))


def test_silences_are_the_spans_no_run_heard() -> None:
    minute = timedelta(minutes=1)
    found = [heard(0, 10), heard(40, 59, gap=(45, 50))]
    assert _silences(found, T, T + 60 * minute, minute) == [
        (T + 10 * minute, T + 40 * minute),
        (T + 45 * minute, T + 50 * minute),
    ]
    # Two runs that overlap leave no silence; short silences are ordinary.
    assert _silences([heard(0, 35), heard(30, 59)], T, T + 60 * minute, minute) == []
    assert _silences([heard(1, 59)], T, T + 60 * minute, 2 * minute) == []


def test_enqueue_warns_about_times_in_seconds_and_expired_buys() -> None:
    now_ms = 1_795_939_300_000
    fresh = {"kind": "buy", "created_at": now_ms - 1_000}
    assert time_warnings(fresh, 10, now_ms) == []
    [late] = time_warnings({"kind": "buy", "created_at": now_ms - 70_000}, 10, now_ms)
    assert late.startswith("this buy signal expired 60 s ago")
    seconds = time_warnings({"kind": "sell", "created_at": now_ms // 1000}, 10, now_ms)
    assert seconds == [
        f"created_at {now_ms // 1000} looks like seconds, not milliseconds "
        f"(in milliseconds: {now_ms // 1000 * 1000})"
    ]


def test_enqueue_warns_from_the_first_millisecond_after_expiry_and_reads_expires_at() -> None:
    now_ms = 1_795_939_300_000
    assert time_warnings({"kind": "buy", "created_at": now_ms - 20_000}, 10, now_ms) == [
        "this buy signal expired 10 s ago (at 2026-11-29 08:01:30 UTC): the workers will "
        "record it as expired and not buy"
    ]
    assert len(time_warnings({"kind": "buy", "created_at": now_ms - 10_001}, 10, now_ms)) == 1
    assert time_warnings({"kind": "buy", "created_at": now_ms - 10_000}, 10, now_ms) == []
    later = {"kind": "buy", "created_at": now_ms - 70_000, "expires_at": now_ms + 5_000}
    assert time_warnings(later, 10, now_ms) == []


def test_created_at_from_2001_09_09_on_is_milliseconds() -> None:
    now_ms = 1_795_939_300_000
    assert time_warnings({"kind": "sell", "created_at": 1_000_000_000_000}, 10, now_ms) == []
    assert len(time_warnings({"kind": "sell", "created_at": 999_999_999_999}, 10, now_ms)) == 1

"""How facts read in sentences: UTC times, ages at each unit's edge, prices, percentages."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from worker.domain.describe import age, clock, num, pct, when

TOKYO = timezone(timedelta(hours=9))


def test_times_are_written_in_utc_whatever_the_machine_zone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        at = datetime(2026, 11, 24, 8, 27, 3, tzinfo=UTC)
        assert (when(at), clock(at)) == ("2026-11-24 08:27:03 UTC", "08:27:03")
    finally:
        monkeypatch.undo()
        time.tzset()


def test_times_are_written_in_utc_whatever_their_zone() -> None:
    at = datetime(2026, 11, 24, 17, 27, 3, tzinfo=TOKYO)
    assert when(at) == "2026-11-24 08:27:03 UTC"
    assert clock(at) == "08:27:03"
    assert when(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2026-01-02 03:04:05 UTC"


@pytest.mark.parametrize(
    ("seconds", "said"),
    [
        (3.25, "3.2 s"),
        (-3.25, "3.2 s"),
        (9.94, "9.9 s"),
        (10, "10 s"),
        (10.5, "10 s"),
        (90, "90 s"),
        (119.4, "119 s"),
        (120, "2 min"),
        (120.5, "2 min"),
        (3000, "50 min"),
        (7199, "120 min"),
        (7200, "2.0 h"),
        (7200.5, "2.0 h"),
        (8821, "2.5 h"),
        (172799, "48.0 h"),
        (172800, "2 days"),
        (172800.5, "2 days"),
        (216001, "3 days"),
        (3 * 86400 + 40000, "3 days"),
        (10 * 86400, "10 days"),
    ],
)
def test_ages_read_as_a_person_says_them(seconds: float, said: str) -> None:
    assert age(seconds) == said


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("61234.5", "61,234.5"),
        ("0.00016", "0.00016"),
        ("100.000", "100"),
        ("1E+3", "1,000"),
        ("0.0000000000001234", "0"),
        ("1.0000000000004", "1"),
        ("12345678901234567", "12,345,678,901,234,567"),
    ],
)
def test_numbers_are_plain_with_thousands_separators(value: str, written: str) -> None:
    assert num(Decimal(value)) == written


def test_percentages_to_the_places_asked() -> None:
    assert pct(Decimal("0.021")) == "2.1 %"
    assert pct(Decimal("0.02149"), 2) == "2.15 %"
    assert pct(Decimal("-0.005")) == "-0.5 %"

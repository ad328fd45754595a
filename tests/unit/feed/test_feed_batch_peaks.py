"""The batch's peaks (how many instruments were deep at once), kept for this hour and the two
before it: what ``python -m worker why`` says about how close the batch came."""

from __future__ import annotations

from feed.strategies.batch import BatchState


def test_a_fresh_hour_starts_at_no_instrument_deep() -> None:
    batch = BatchState()
    assert batch.peak_of(batch.hour_idx) == 0
    batch.roll(5)
    assert batch.peak_of(5) == 0
    assert batch.peak_of(4) is None  # nothing was watched before the first hour


def test_the_peaks_of_the_two_hours_before_are_kept() -> None:
    batch = BatchState()
    for hour in range(0, 11):
        batch.roll(hour)
        batch.peak = hour + 1
    assert batch.peak_of(10) == 11
    assert [batch.peak_of(h) for h in (7, 8, 9)] == [None, 9, 10]
    assert batch.peak_of(0) is None
    fresh = BatchState()
    fresh.roll(0)
    fresh.peak = 4
    fresh.roll(1)
    assert fresh.peak_of(0) == 4

"""Request deadlines (OKX expTime) and when a missing order may be declared never placed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from worker.domain.deadlines import (
    MAX_CLOCK_SKEW,
    SEND_WINDOW_CAP,
    absence_is_final,
    placement_deadline,
    send_window,
    skew_margin,
    to_epoch_ms,
)

T0 = datetime(2026, 11, 24, 8, 27, tzinfo=UTC)


@pytest.mark.parametrize(
    ("pending_timeout", "window"),
    [
        (60, timedelta(seconds=10)),  # the default: capped at 10 s
        (400, timedelta(seconds=10)),
        (40, timedelta(seconds=10)),  # exactly a quarter of it
        (20, timedelta(seconds=5)),  # a quarter of the pending timeout
        (3, timedelta(milliseconds=750)),
        (1, timedelta(milliseconds=250)),
    ],
)
def test_the_send_window_is_a_quarter_of_the_pending_timeout_at_most_ten_seconds(
    pending_timeout: int, window: timedelta
) -> None:
    assert send_window(pending_timeout) == window
    assert placement_deadline(T0, pending_timeout) == T0 + window


def test_the_deadline_lies_well_inside_the_pending_timeout_plus_any_skew() -> None:
    for pending_timeout in (1, 2, 5, 30, 60, 300, 3600):
        deadline = placement_deadline(T0, pending_timeout)
        assert T0 < deadline <= T0 + SEND_WINDOW_CAP
        assert deadline - T0 < timedelta(seconds=pending_timeout)


@pytest.mark.parametrize(
    ("measured_ms", "margin"),
    [
        (None, timedelta(seconds=30)),  # unmeasured: OKX's own bound on skew
        (0, timedelta(seconds=1)),
        (2_500, timedelta(seconds=3.5)),
        (-2_500, timedelta(seconds=3.5)),  # our clock behind OKX's counts the same
        (29_000, timedelta(seconds=30)),  # never beyond OKX's bound
        (120_000, timedelta(seconds=30)),
    ],
)
def test_the_skew_margin_is_the_measured_skew_plus_a_second_within_okx_bound(
    measured_ms: int | None, margin: timedelta
) -> None:
    assert skew_margin(measured_ms) == margin
    assert skew_margin(measured_ms) <= MAX_CLOCK_SKEW


def test_absence_is_final_only_from_the_deadline_plus_the_margin_on() -> None:
    deadline = T0 + timedelta(seconds=10)
    margin = timedelta(seconds=3)  # measured skew 2 s, plus one
    assert not absence_is_final(deadline, deadline, 2_000)
    assert not absence_is_final(deadline + margin - timedelta(microseconds=1), deadline, 2_000)
    assert absence_is_final(deadline + margin, deadline, 2_000)
    assert absence_is_final(deadline + timedelta(hours=1), deadline, None)
    assert not absence_is_final(deadline + timedelta(seconds=29), deadline, None)


def test_epoch_ms_of_an_aware_time() -> None:
    assert to_epoch_ms(datetime(1970, 1, 1, 0, 0, 1, 500_000, tzinfo=UTC)) == 1_500
    assert to_epoch_ms(T0) == 1_795_508_820_000

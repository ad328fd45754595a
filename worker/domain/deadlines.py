"""When a placement may still land, and when its absence on the exchange is final.

Every placement carries OKX's request deadline ``expTime``: the exchange drops a request that
reaches it later. The deadline is derived from the intent's commit time, well inside the
pending timeout, so that ``purge_pending`` never gives up on a request that can still land.

Clocks differ. OKX refuses a request whose signature timestamp is more than 30 seconds off its
own clock, so any request it ever processed was signed by a clock at most that far off: a
"does not exist" is final only once the deadline plus that skew has passed (less when the skew
was measured).
"""

from __future__ import annotations

from datetime import datetime, timedelta

# The longest a request may travel: far longer than any healthy round trip, far shorter than
# the default pending timeout (60 s).
SEND_WINDOW_CAP = timedelta(seconds=10)
# OKX's own bound on clock skew (its signature timestamp window).
MAX_CLOCK_SKEW = timedelta(seconds=30)
# Added to a measured skew: the measurement itself is only as good as one round trip.
SKEW_SLACK = timedelta(seconds=1)


def send_window(pending_timeout_seconds: float) -> timedelta:
    """How long after its commit an intent may still be sent and land."""
    return min(SEND_WINDOW_CAP, timedelta(seconds=pending_timeout_seconds / 4))


def placement_deadline(committed_at: datetime, pending_timeout_seconds: float) -> datetime:
    """The ``expTime`` of an intent committed at ``committed_at``."""
    return committed_at + send_window(pending_timeout_seconds)


def skew_margin(measured_skew_ms: int | None) -> timedelta:
    """How far the exchange's clock may be from ours: measured, else OKX's own bound."""
    if measured_skew_ms is None:
        return MAX_CLOCK_SKEW
    return min(MAX_CLOCK_SKEW, timedelta(milliseconds=abs(measured_skew_ms)) + SKEW_SLACK)


def absence_is_final(now: datetime, deadline: datetime, measured_skew_ms: int | None) -> bool:
    """True once a request with this deadline can no longer land anywhere."""
    return now >= deadline + skew_margin(measured_skew_ms)


def to_epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)

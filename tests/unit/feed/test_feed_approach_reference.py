"""The closest approaches the tracker records on random tick streams, against a straightforward
reference that looks at every tick: the hot path's gates may skip only ticks that cannot come
closer (issue 8, item 1)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any

from feed_builders import HOUR, T0, Harness, only, rules
from hypothesis import given, settings
from hypothesis import strategies as st

from feed.approach import ApproachTracker
from feed.state import DAY_MS
from worker.strategy_config import parse_strategy_config

WINDOW = 1_000  # gap_window_seconds = 1: the trailing high's window is exact to the ms
INSTS = ("BTC-USDT", "ETH-USDT")
# Mostly within Gap's 2 % of each other (ticks that come closer without triggering), a few far
PRICES = [Decimal(p) for p in ("9.7", "9.75", "9.8", "9.85", "9.9", "9.95", "10", "10.1", "6", "3")]


@dataclass(frozen=True)
class Seen:
    """One tick as the tracker saw it, with the state the strategies left."""

    inst_id: str
    ts: int
    last: Decimal
    sod: Decimal
    high: Decimal  # the gap window's trailing high, this tick included
    open: Decimal | None  # the hour open known after this tick, if it is this hour's


def at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def lowest(ticks: list[Seen], depth: Any) -> Seen:
    """The first tick of the deepest ``depth``."""
    return min(ticks, key=depth)  # min keeps the first of equals


def expected(seen: list[Seen]) -> dict[tuple[str, str, int], tuple[Any, ...]]:
    """(strategy kind, inst_id, bucket key) -> (reference, closest, closest_at, first tick)."""
    buckets: dict[tuple[str, str, int], list[Seen]] = {}
    for s in seen:
        for kind, span in (("hour", HOUR), ("window", WINDOW), ("day", DAY_MS)):
            buckets.setdefault((kind, s.inst_id, s.ts // span), []).append(s)
    out = {}
    for key, ticks in buckets.items():
        kind = key[0]
        if kind == "hour":  # the lowest price, against the open known from then on
            low = lowest(ticks, lambda s: s.last)
            ref = next((s.open for s in ticks if s.ts >= low.ts and s.open is not None), None)
        elif kind == "window":  # the deepest below the trailing high at the time
            low = lowest(ticks, lambda s: Fraction(s.last) / Fraction(s.high))
            ref = low.high
        else:  # the lowest price, against that tick's sodUtc0
            low = lowest(ticks, lambda s: s.last)
            ref = low.sod
        known = ref is not None and low.last < ref
        out[key] = (
            ref,
            low.last if known else None,
            at(low.ts) if known else None,
            at(ticks[0].ts),
        )
    return out


def recorded(
    tracker: ApproachTracker, window_ms: int = WINDOW
) -> dict[tuple[str, str, int], tuple[Any, ...]]:
    kinds = {"hourly_limit_ws": "hour", "original_gap": "window", "stable_buy_ws": "day"}
    spans = {"hour": HOUR, "window": window_ms, "day": DAY_MS}
    out = {}
    for row in tracker.drain(datetime(2027, 1, 1, tzinfo=UTC), running=True):
        kind = kinds.get(row["strategy"])
        if kind is None:  # batch_buy_ws: the same hour record as hourly_limit_ws
            continue
        key = int(row["bucket_start"].timestamp() * 1000) // spans[kind]
        out[kind, row["inst_id"], key] = (
            row["reference"],
            row["closest"],
            row["closest_at"],
            row["first_tick_at"],
        )
    return out


# One step: which instrument, how far the clock moves, and what arrives: a ticker (price,
# sodUtc0), a REST seed or a candle1H open for the current hour.
steps = st.lists(
    st.tuples(
        st.sampled_from(INSTS),
        st.sampled_from([0, 1, 3, 50, 250, 250, 250, 999, 1_000, 20_000, 600_000, HOUR, DAY_MS]),
        st.sampled_from(["tick"] * 8 + ["seed", "candle"]),
        st.sampled_from(PRICES),
        st.sampled_from(PRICES[4:8]),
    ),
    min_size=1,
    max_size=80,
)


@settings(max_examples=300, deadline=None)
@given(steps=steps, start=st.integers(0, 2 * HOUR))
def test_the_tracker_records_what_a_look_at_every_tick_finds(
    steps: list[tuple[str, int, str, Decimal, Decimal]], start: int
) -> None:
    config = parse_strategy_config({"original_gap": {"gap_window_seconds": WINDOW // 1000}})
    h = Harness(config, *(rules(i) for i in INSTS))
    tracker = ApproachTracker(config, h.engine.batch_state, "run1", h.engine.states)
    h.engine.approach = tracker
    seen: list[Seen] = []
    ts = T0 + start
    for inst_id, step, what, px, sod in steps:
        ts += step
        hour_start = ts // HOUR * HOUR
        if what == "seed":
            h.engine.seed_hour_open(inst_id, hour_start, px)
        elif what == "candle":
            h.candle(inst_id, hour_start, str(px))
        else:
            day = {"sodUtc0": str(sod), "high24h": "10.5", "low24h": "10", "volCcy24h": "2000000"}
            h.tick(inst_id, str(px), ts, **day)
            state = h.engine.states[inst_id]
            assert state.gap is not None and state.gap.high is not None
            hour_open = state.open_for(ts)
            seen.append(Seen(inst_id, ts, px, sod, state.gap.high, hour_open))
    assert recorded(tracker) == expected(seen)


def test_a_gap_window_starts_afresh_above_the_last_windows_closest_price() -> None:
    config = only("original_gap")  # a 60 s window, 2 %
    h = Harness(config, rules())
    tracker = ApproachTracker(config, h.engine.batch_state, "run1", h.engine.states)
    h.engine.approach = tracker
    start = T0 + 10 * 60_000  # a window boundary
    h.tick("BTC-USDT", "100", start + 30_000)
    h.tick("BTC-USDT", "99", start + 40_000)  # 1 % below the high
    h.tick("BTC-USDT", "99.5", start + 61_000)  # the next window: 0.5 % below the same high
    found = recorded(tracker, 60_000)
    assert found["window", "BTC-USDT", (start + 61_000) // 60_000][:2] == (
        Decimal("100"),
        Decimal("99.5"),
    )

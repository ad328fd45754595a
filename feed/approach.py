"""Closest approaches: how near each strategy came to buying, per instrument and trigger bucket,
and when the feed heard each instrument (for "why didn't it buy at 08:27?" when nothing fired).

The comparisons ride on work the feed does anyway, so that a tick that comes no closer costs
one comparison and no call. The gates are the prices a tick must go below to come closer:
the hour open and ``sodUtc0`` are fixed within their bucket, so the lowest last price of the
hour is the closest approach (and a day's is the lowest of its hours'); Gap's reference moves
with every tick, so its gate is recomputed when the trailing high changes.

- ``InstrumentState.apply`` (every tick) calls ``ApproachTracker.look`` only for a tick below
  the hour's gate or past the end of a running bucket;
- ``Gap.evaluate`` compares the price with the window's ``floor`` instead of its trigger
  price: the higher of the trigger and this gate, so a tick above both costs nothing more.
  It calls ``look_gap`` for a tick at or below the floor: when the trailing high changes,
  the floor is the high until the next tick below it lets ``look_gap`` recompute the gate
  (the tick that is the new high itself cannot come closer once the window has a record);
- the engine calls ``fired`` when a strategy produces a buy.

A bucket ends when the instrument's next tick (or a buy) falls in a later one; its record is
queued. The daemon's housekeeping thread calls ``drain`` under the engine's lock and writes
the queue in one batch (with, now and then, the buckets still running), outside the lock.

The closest approach, per strategy (the reference is recorded with the price):

- ``hourly_limit_ws``: the lowest last price against the hour open, per UTC hour;
- ``batch_buy_ws``: the same, against its own ``drop_pct``, and the most instruments that
  were that far down at once during the hour (``BatchState.peak``; it needs ``min_count``);
- ``original_gap``: the lowest last price against the trailing high, per window;
- ``stable_buy_ws``: the lowest last price against ``sodUtc0``, per UTC day, with the 24h
  range and volume at that moment (its other conditions).

``CoverageSampler`` records, per instrument and UTC hour, the first and last ticker heard and
the longest silence, from the engine's states once a second: off the hot path, exact to the
sampling interval. Memory: a few records per instrument, a bounded queue of finished ones.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol

from feed.parse import BadInput, day_stats
from feed.state import DAY_MS, HOUR_MS, InstrumentState, Tick
from feed.strategies.base import Candidate, day_bucket, hour_bucket, window_bucket
from feed.strategies.batch import BatchState
from worker.domain.sizing import Unsizable
from worker.strategy_config import StrategyConfig

HOURLY, GAP, STABLE, BATCH = "hourly_limit_ws", "original_gap", "stable_buy_ws", "batch_buy_ws"
HOUR, WINDOW, DAY = "hour", "window", "day"
# Finished records waiting for the writer; beyond this (a database down for hours) the oldest
# are dropped and counted.
MAX_QUEUED = 100_000
_FAR = 1 << 62
_INF = Decimal("Infinity")
_ONE = Decimal(1)

Row = dict[str, Any]


class ApproachSink(Protocol):
    """Where the records go (``worker.ledger.approaches.ApproachStore``)."""

    def save(self, approaches: list[Row], coverage: list[Row]) -> None: ...

    def prune(self, before: datetime) -> int: ...


class _Run:
    """One running bucket of one instrument: the closest approach so far."""

    __slots__ = (
        "end",
        "fired",
        "first",
        "key",
        "kind",
        "low",
        "low_ts",
        "note",
        "ref",
        "sod",
        "start",
        "stats",
    )

    def __init__(self, kind: str, key: int, start: int, end: int, first: int) -> None:
        self.kind, self.key, self.start, self.end, self.first = kind, key, start, end, first
        # The last price at the closest approach, and its reference (hour open, trailing
        # high, sodUtc0); None while the reference is not known.
        self.low = _INF
        self.ref: Decimal | None = None
        self.low_ts = 0
        # stable (hour and day runs): sodUtc0 and the 24h high, low and volume (as sent) at
        # the lowest price; a day's closest approach is the lowest of its hours'.
        self.sod: Decimal | None = None
        self.stats: tuple[Any, Any, Any] | None = None
        self.fired: dict[str, int] = {}  # strategy -> when it produced a buy
        self.note: dict[str, str] = {}  # strategy -> why the feed did not send that buy


# A placeholder for a bucket not started yet, or of a strategy that is off.
_ENDED = _Run(HOUR, -1, 0, -_FAR, 0)
_NEVER = Decimal("-Infinity")  # the gate of a bucket nobody watches: no price is below it


class _Watch:
    """An instrument's running buckets, and the gates of the hot path: a tick needs a closer
    look only below a gate (one object per instrument is touched per tick)."""

    __slots__ = (
        "day",
        "g_gate",
        "g_seen",
        "h_gate",
        "hour",
        "look",
        "look_gap",
        "next_end",
        "state",
        "window",
    )

    def __init__(self, tracker: ApproachTracker, state: InstrumentState) -> None:
        # The tracker's slow paths, bound once (called from ``InstrumentState.apply`` and
        # ``Gap.evaluate``), and the state whose gap window holds Gap's floor.
        self.look = tracker.look
        self.look_gap = tracker.look_gap
        self.state = state
        self.hour = self.window = self.day = _ENDED
        self.next_end = -_FAR  # the earliest end of the running buckets: rolled at once
        # hour: the lowest price so far (infinite while the hour's open is not known); window:
        # the trailing high x (closest low / its high), recomputed when the high changes
        # (``g_seen``). A day needs no gate: its lowest price is the lowest of its hours'.
        self.h_gate = self.g_gate = _NEVER
        self.g_seen: Decimal | None = None


@dataclass(frozen=True, slots=True)
class _Finished:
    run: _Run
    inst_id: str
    complete: bool
    peak: int | None  # batch: the most instruments deep at once in the hour


class ApproachTracker:
    """Track closest approaches for one feed run (``run_id``)."""

    __slots__ = (
        "batch",
        "config",
        "dropped",
        "finished",
        "gap_ms",
        "hour_rows",
        "run_id",
        "watches",
        "with_gap",
        "with_hour",
        "with_stable",
    )

    def __init__(
        self,
        config: StrategyConfig,
        batch: BatchState,
        run_id: str,
        states: Mapping[str, InstrumentState],
    ) -> None:
        self.config = config
        self.batch = batch
        self.run_id = run_id
        self.hour_rows = config.hourly_limit_ws.enabled or config.batch_buy_ws.enabled
        self.with_hour = self.hour_rows or config.stable_buy_ws.enabled
        self.gap_ms = config.original_gap.gap_window_seconds * 1000
        self.with_gap = config.original_gap.enabled
        self.with_stable = config.stable_buy_ws.enabled
        # One per instrument the engine knows, kept on its state too (no lookup per tick).
        self.watches: dict[str, _Watch] = {}
        for inst_id, state in states.items():
            state.approach = self.watches[inst_id] = _Watch(self, state)
        self.finished: deque[_Finished] = deque()
        self.dropped = 0

    # The hot path ---------------------------------------------------------------------------

    def look(self, state: InstrumentState, tick: Tick) -> None:
        """A tick below the hour's gate or past a bucket's end (from ``InstrumentState.apply``,
        before the strategies: a buy they produce lands in the bucket of its tick)."""
        watch: _Watch = state.approach
        ts, last = tick.ts, tick.last
        if ts >= watch.next_end:
            self._roll(watch, tick.inst_id, ts)
        if not last < watch.h_gate:
            return
        # A new lowest price this hour, or a tick while the hour's open is not known yet.
        run = watch.hour
        if last < run.low:
            run.low, run.low_ts = last, ts
            if self.with_stable and tick.raw is not None:
                raw = tick.raw  # kept as sent: parsed only if this stays the day's lowest
                run.sod = tick.sod_utc0
                run.stats = (raw.get("high24h"), raw.get("low24h"), raw.get("volCcy24h"))
        if state.hour_idx == run.key:  # the open is known: measure from it from now on
            run.ref, watch.h_gate = state.hour_open, run.low

    def look_gap(self, state: InstrumentState, tick: Tick) -> None:
        """A tick at or below the gap window's floor (from ``Gap.evaluate``, which has just
        pushed it); set the floor for the ticks after it."""
        window = state.gap
        assert window is not None  # the gap strategy has just pushed the tick
        if not self.with_gap:
            window.floor = window.limit
            return
        watch: _Watch = state.approach
        last, high = tick.last, window.high
        assert high is not None
        if high is not watch.g_seen and last < high:
            # (a tick that is the new high itself cannot come closer: no need to look)
            _new_high(watch, high)
        if last < watch.g_gate:
            run = watch.window
            run.low, run.ref, run.low_ts = last, high, tick.ts
            watch.g_gate = last
        # Until the gate is recomputed for this high (by the next tick below it), every tick
        # must be looked at: the floor is then the high, which no tick is above.
        gate, bound = watch.g_gate, window.limit if high is watch.g_seen else high
        window.floor = gate if gate > bound else bound

    def fired(self, cand: Candidate, ts: int, sized: object) -> None:
        """A strategy produced a buy (``sized`` is ``Unsizable`` when it was not sent)."""
        watch = self.watches[cand.inst_id]
        if ts >= watch.next_end:
            self._roll(watch, cand.inst_id, ts)
        strategy = cand.strategy
        run = watch.window if strategy == GAP else watch.day if strategy == STABLE else watch.hour
        if run.key < 0:
            return
        run.fired.setdefault(strategy, ts)
        if isinstance(sized, Unsizable):
            run.note[strategy] = f"the feed did not send it: {sized.reason}: {sized.detail}"

    # Bucket ends ----------------------------------------------------------------------------

    def _roll(self, watch: _Watch, inst_id: str, ts: int) -> None:
        """End the buckets that ``ts`` is past, and start the ones it is in."""
        ends = []
        if self.with_hour:
            if ts >= watch.hour.end:
                old = watch.hour
                if self.with_stable:
                    _fold(watch.day, old)
                if self.hour_rows:
                    self._finish(old, inst_id)
                key = ts // HOUR_MS
                watch.hour = _Run(HOUR, key, key * HOUR_MS, (key + 1) * HOUR_MS, ts)
                watch.h_gate = _INF
            ends.append(watch.hour.end)
        if self.with_stable:
            if ts >= watch.day.end:
                self._finish(watch.day, inst_id)
                key = ts // DAY_MS
                watch.day = _Run(DAY, key, key * DAY_MS, (key + 1) * DAY_MS, ts)
            ends.append(watch.day.end)
        if self.with_gap:
            if ts >= watch.window.end:
                self._finish(watch.window, inst_id)
                key, span = ts // self.gap_ms, self.gap_ms
                watch.window = _Run(WINDOW, key, key * span, (key + 1) * span, ts)
                watch.g_gate, watch.g_seen = _INF, None
                if watch.state.gap is not None:
                    watch.state.gap.floor = _INF  # the window's first tick comes closest
            ends.append(watch.window.end)
        watch.next_end = min(ends, default=_FAR)

    def _finish(self, run: _Run, inst_id: str) -> None:
        if run.key < 0:
            return
        if len(self.finished) >= MAX_QUEUED:
            self.finished.popleft()
            self.dropped += 1
        peak = self.batch.peak_of(run.key) if run.kind == HOUR else None
        self.finished.append(_Finished(run, inst_id, True, peak))

    # The writer's side ------------------------------------------------------------------------

    def drain(self, now: datetime, running: bool) -> list[Row]:
        """The rows of the buckets that ended (and, with ``running``, of those still
        running). Call it under the engine's lock."""
        finished = list(self.finished)
        self.finished.clear()
        if running:
            for inst_id, watch in self.watches.items():
                runs = [watch.window]
                if self.hour_rows:
                    runs.append(watch.hour)
                if watch.day.key >= 0:
                    runs.append(_fold(_copy(watch.day), watch.hour))
                for run in runs:
                    if run.key >= 0:
                        peak = self.batch.peak_of(run.key) if run.kind == HOUR else None
                        finished.append(_Finished(run, inst_id, False, peak))
        rows: list[Row] = []
        for item in finished:
            rows.extend(self._rows(item, now))
        return rows

    def _rows(self, item: _Finished, now: datetime) -> list[Row]:
        run, config = item.run, self.config
        if run.kind == HOUR:
            named = hour_bucket(run.key)
            triggers = {}
            if config.hourly_limit_ws.enabled:
                triggers[HOURLY] = config.hourly_limit_ws.drop_pct
            if config.batch_buy_ws.enabled:
                triggers[BATCH] = config.batch_buy_ws.drop_pct
        elif run.kind == DAY:
            named = day_bucket(run.key)
            triggers = {STABLE: config.stable_buy_ws.drop_pct}
        else:
            named = window_bucket(run.start, self.gap_ms // 1000)
            triggers = {GAP: config.original_gap.gap_pct}
        # No reference (the hour open was never known) or no price below it: no approach.
        known = run.ref is not None and run.low.is_finite() and run.low < run.ref
        low = run.low if known else None
        out = []
        for strategy, trigger in triggers.items():
            note = run.note.get(strategy, "")
            if strategy == STABLE and run.stats is not None:
                note = note or self._day_conditions(run.stats)
            fired = run.fired.get(strategy)
            out.append(
                {
                    "strategy": strategy,
                    "inst_id": item.inst_id,
                    "bucket_start": _dt(run.start),
                    "run_id": self.run_id,
                    "bucket": named,
                    "bucket_end": _dt(run.end),
                    "reference": run.ref,
                    "closest": low,
                    "closest_at": _dt(run.low_ts) if low is not None else None,
                    "trigger": trigger,
                    "fired_at": _dt(fired) if fired is not None else None,
                    "peak_count": item.peak if strategy == BATCH else None,
                    "detail": note[:300],
                    "first_tick_at": _dt(run.first),
                    "complete": item.complete,
                    "updated_at": now,
                }
            )
        return out

    def _day_conditions(self, sent: tuple[Any, Any, Any]) -> str:
        """Stable's other conditions at the closest approach: 24h range and volume."""
        params = self.config.stable_buy_ws
        raw = dict(zip(("high24h", "low24h", "volCcy24h"), sent, strict=True))
        try:
            stats = day_stats(Tick("", _ONE, 0, raw=raw))
        except BadInput:
            stats = None
        if stats is None:
            return "at the closest approach the ticker had no 24h statistics"
        high, low, vol = stats
        return (
            f"at the closest approach: 24h range {_pct((high - low) / low)} (max_range "
            f"{_pct(params.max_range)}), 24h volume {vol:,f} (min_volume_usdt "
            f"{params.min_volume_usdt:,f})"
        )


def _fold(day: _Run, hour: _Run) -> _Run:
    """Take an hour's lowest price into its day (stable measures it from sodUtc0)."""
    if hour.key >= 0 and hour.sod is not None and hour.low < day.low:
        day.low, day.low_ts, day.ref, day.stats = hour.low, hour.low_ts, hour.sod, hour.stats
    return day


def _copy(run: _Run) -> _Run:
    out = _Run(run.kind, run.key, run.start, run.end, run.first)
    out.low, out.low_ts, out.ref, out.stats = run.low, run.low_ts, run.ref, run.stats
    out.fired, out.note = dict(run.fired), dict(run.note)
    return out


def _new_high(watch: _Watch, high: Decimal) -> None:
    """Gap's trailing high changed: a tick comes closer below high x (low / its high)."""
    watch.g_seen = high
    run = watch.window
    watch.g_gate = high if run.ref is None else high * run.low / run.ref


class _Heard:
    """One instrument's coverage in one hour."""

    __slots__ = ("first", "gap", "gap_end", "hour", "last")

    def __init__(self, hour: int, ts: int) -> None:
        self.hour, self.first, self.last, self.gap, self.gap_end = hour, ts, ts, 0, 0


class CoverageSampler:
    """When the feed heard each instrument: sampled from ``InstrumentState.last_ts``."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.heard: dict[str, _Heard] = {}
        self.finished: deque[tuple[str, _Heard]] = deque(maxlen=MAX_QUEUED)

    def sample(self, states: Mapping[str, InstrumentState]) -> None:
        """Look at every instrument's last tick (reading ints: no lock needed)."""
        for inst_id, state in states.items():
            ts = state.last_ts
            if not ts:
                continue
            heard = self.heard.get(inst_id)
            hour = ts // HOUR_MS
            if heard is None or hour > heard.hour:
                if heard is not None:
                    self.finished.append((inst_id, heard))
                self.heard[inst_id] = _Heard(hour, ts)
            elif ts > heard.last:
                if ts - heard.last > heard.gap:
                    heard.gap, heard.gap_end = ts - heard.last, ts
                heard.last = ts

    def drain(self, now: datetime, running: bool) -> list[Row]:
        items = list(self.finished)
        self.finished.clear()
        if running:
            items.extend(self.heard.items())
        return [
            {
                "inst_id": inst_id,
                "hour_start": _dt(h.hour * HOUR_MS),
                "run_id": self.run_id,
                "first_tick_at": _dt(h.first),
                "last_tick_at": _dt(h.last),
                "gap_start": _dt(h.gap_end - h.gap) if h.gap else None,
                "gap_end": _dt(h.gap_end) if h.gap else None,
                "updated_at": now,
            }
            for inst_id, h in items
        ]


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _pct(fraction: Decimal) -> str:
    return f"{(fraction * 100).quantize(Decimal('0.1')):f} %"

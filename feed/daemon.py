"""The feed daemon: instruments from REST, websocket connections, engine, housekeeping.

Threads: one per websocket connection (tickers on the public endpoint, candle1H on the
business endpoint, each sharded by ``max_args_per_connection``), one that seeds hour opens
from REST candles at start, and one housekeeping thread that refreshes the view of open
positions, checks time exits, writes the closest approaches (``feed.approach``) in batches,
flushes the recording and logs counters.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from feed.approach import ApproachSink, ApproachTracker, CoverageSampler
from feed.connection import Connection, OnReconnectLoop, Timing
from feed.engine import Engine, Publish
from feed.logs import log_event
from feed.record import Recorder
from feed.rest import PublicRest, RestError, select_instruments
from feed.strategies.exits import Position
from feed.subscriptions import CONNECTS_PER_SECOND, RateLimiter, candle_args, ticker_args
from worker.domain.money import InstrumentRules
from worker.settings import Settings

PositionsSource = Callable[[], Iterable[Position]]
# Every this many saves of ended buckets, the running ones are written too (a minute apart by
# default): "why" can answer about the current hour before it ends.
RUNNING_EVERY = 6


class FeedError(Exception):
    """The feed cannot start (e.g. none of the configured instruments exists)."""


class Feed:
    """Wire REST, websocket connections and the engine together; ``run()`` blocks."""

    def __init__(
        self,
        settings: Settings,
        publish: Publish,
        positions: PositionsSource | None = None,
        rest: PublicRest | None = None,
        record_path: str | None = None,
        timing: Timing | None = None,
        positions_every: float = 5.0,
        stats_every: float = 60.0,
        max_args_per_connection: int = 1000,
        on_reconnect_loop: OnReconnectLoop | None = None,
        approaches: ApproachSink | None = None,
        approaches_every: float = 10.0,
    ) -> None:
        self.settings = settings
        self.publish = publish
        self.positions = positions
        self._owns_rest = rest is None
        self.rest = rest or PublicRest(settings.OKX_REST_URL)
        self.recorder = Recorder(record_path) if record_path else None
        self.timing = timing or Timing()
        self.positions_every = positions_every
        self.stats_every = stats_every
        self.max_args = max_args_per_connection
        self.on_reconnect_loop = on_reconnect_loop
        self.approaches = approaches
        self.approaches_every = approaches_every
        self.run_id = uuid.uuid4().hex[:16]
        self.coverage = CoverageSampler(self.run_id)
        self.stop_event = threading.Event()
        self.ready = threading.Event()
        self.engine: Engine | None = None
        self.connections: list[Connection] = []
        self._threads: list[threading.Thread] = []
        self._subscribed: set[str] = set()
        self._lock = threading.Lock()

    # Start-up ------------------------------------------------------------------------------

    def load_instruments(self) -> list[InstrumentRules]:
        """The configured instruments with their rules; retry REST until it answers."""
        attempt = 0
        while not self.stop_event.is_set():
            try:
                return select_instruments(self.rest.instruments(), self.settings.instrument_list)
            except RestError as exc:
                delay = min(30.0, 2.0**attempt)
                attempt += 1
                log_event("feed.rest_failed", logging.WARNING, error=str(exc), retry_in_s=delay)
                self.stop_event.wait(delay)
        return []

    def start(self) -> None:
        rules = self.load_instruments()
        if self.stop_event.is_set():
            return
        if not rules:
            raise FeedError(f"no live instruments among INSTRUMENTS={self.settings.INSTRUMENTS}")
        self.engine = Engine(
            rules,
            self.settings.strategies,
            self.publish,
            self.settings.SIGNAL_TTL_SECONDS,
            fee_rate_bound=self.settings.FEE_RATE_BOUND,
            max_order_usdt=self.settings.MAX_ORDER_USDT,
        )
        if self.approaches is not None:
            self.engine.approach = ApproachTracker(
                self.settings.strategies, self.engine.batch_state, self.run_id, self.engine.states
            )
        inst_ids = [r.inst_id for r in rules]
        limiter = RateLimiter(CONNECTS_PER_SECOND, 1.0)
        for n, start in enumerate(range(0, len(inst_ids), self.max_args)):
            shard = inst_ids[start : start + self.max_args]
            for name, url, args in (
                (f"public-{n}", self.settings.OKX_WS_PUBLIC_URL, ticker_args(shard)),
                (f"business-{n}", self.settings.OKX_WS_BUSINESS_URL, candle_args(shard)),
            ):
                self.connections.append(
                    Connection(
                        name,
                        url,
                        args,
                        self._on_text,
                        self._on_subscribed,
                        limiter,
                        self.stop_event,
                        self.timing,
                        self.on_reconnect_loop,
                    )
                )
        for conn in self.connections:
            self._spawn(conn.run, f"feed-{conn.name}")
        self._spawn(lambda: self._seed_hour_opens(inst_ids), "feed-seed")
        self._spawn(self._housekeeping, "feed-housekeeping")
        log_event("feed.started", instruments=len(inst_ids), connections=len(self.connections))

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def run(self) -> None:
        """Start and block until ``stop()``."""
        self.start()
        self.stop_event.wait()
        self.join()

    def stop(self) -> None:
        self.stop_event.set()

    def join(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if self.engine is not None:
            if self.engine.approach is not None:
                self.coverage.sample(self.engine.states)
            self._save_approaches(self.engine, running=True)  # what the running buckets saw
        if self.recorder is not None:
            self.recorder.close()
        if self._owns_rest:
            self.rest.close()

    # Callbacks from the connections --------------------------------------------------------

    def _on_text(self, data: bytes, recv_ms: int) -> dict[str, Any] | None:
        engine = self.engine
        assert engine is not None
        if self.recorder is None:
            return engine.handle_raw(data, recv_ms)
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:
            self.recorder.write(recv_ms, data.decode("utf-8", "replace"))
            return engine.handle_raw(data, recv_ms)
        self.recorder.write(recv_ms, obj)
        return engine.handle(obj, recv_ms)

    def _on_subscribed(self, name: str, acked: int, expected: int) -> None:
        with self._lock:
            self._subscribed.add(name)
            first_time = not self.ready.is_set()
            all_up = len(self._subscribed) == len(self.connections)
        if acked < expected:
            log_event(
                "feed.subscribe_incomplete", logging.WARNING, conn=name, acked=acked, of=expected
            )
        if first_time and all_up:
            engine = self.engine
            log_event(
                "feed.ready",
                instruments=len(engine.states) if engine else 0,
                connections=len(self.connections),
                strategies=",".join(self.settings.strategies.enabled()),
            )
            self.ready.set()
        elif not first_time:
            log_event("feed.resubscribed", conn=name, acked=acked, of=expected)

    # Background work -----------------------------------------------------------------------

    def _seed_hour_opens(self, inst_ids: list[str]) -> None:
        engine = self.engine
        assert engine is not None
        limiter = RateLimiter(30, 2.0)  # OKX allows 40 candle requests per 2 s per IP
        seeded = failed = 0
        for inst_id in inst_ids:
            if not limiter.acquire(self.stop_event):
                return
            try:
                candle = self.rest.hour_candle(inst_id)
            except RestError as exc:
                failed += 1
                if failed <= 3:
                    log_event("feed.seed_failed", logging.WARNING, inst_id=inst_id, error=str(exc))
                continue
            if candle is not None:
                engine.seed_hour_open(inst_id, candle[0], candle[1])
                seeded += 1
        log_event("feed.hour_opens_seeded", seeded=seeded, failed=failed)

    def _refresh_positions(self, engine: Engine) -> None:
        if self.positions is None:
            return
        try:
            held = list(self.positions())
        except Exception as exc:  # database drivers share no root; the view is only a hint
            log_event("feed.positions_failed", logging.WARNING, error=repr(exc))
            return
        engine.set_positions(held)
        engine.check_time_exits(int(time.time() * 1000))

    def _save_approaches(self, engine: Engine, running: bool) -> None:
        """Write the closest approaches of the buckets that ended (and, with ``running``, of
        those still running): one batch, taken under the engine's lock, written outside it."""
        tracker = engine.approach
        if tracker is None or self.approaches is None:
            return
        now = datetime.now(UTC)
        with engine.lock:
            approaches = tracker.drain(now, running)
        coverage = self.coverage.drain(now, running)
        try:
            self.approaches.save(approaches, coverage)
        except Exception as exc:  # database drivers share no root; "why" loses this batch only
            log_event(
                "feed.approaches_failed", logging.WARNING, rows=len(approaches), error=repr(exc)
            )

    def _prune_approaches(self) -> None:
        if self.approaches is None:
            return
        days = self.settings.APPROACH_RETENTION_DAYS
        try:
            self.approaches.prune(datetime.now(UTC) - timedelta(days=days))
        except Exception as exc:  # database drivers share no root; the next run retries
            log_event("feed.approaches_prune_failed", logging.WARNING, error=repr(exc))

    def _housekeeping(self) -> None:
        engine = self.engine
        assert engine is not None
        now = time.monotonic()
        next_positions, next_stats = now, now + self.stats_every
        next_save, saves = now + self.approaches_every, 0
        # The running buckets are written every RUNNING_EVERY saves, old rows pruned hourly.
        next_prune = now
        while True:
            now = time.monotonic()
            if now >= next_positions:
                next_positions = now + self.positions_every
                self._refresh_positions(engine)
            if engine.approach is not None:
                self.coverage.sample(engine.states)
            if now >= next_save:
                next_save, saves = now + self.approaches_every, saves + 1
                self._save_approaches(engine, running=saves % RUNNING_EVERY == 0)
            if now >= next_prune:
                next_prune = now + 3600.0
                self._prune_approaches()
            if now >= next_stats:
                next_stats = now + self.stats_every
                log_event("feed.stats", **engine.stats())
            if self.recorder is not None:
                self.recorder.flush()
            if self.stop_event.wait(min(1.0, self.positions_every)):
                return

"""The 08:27 story end to end (issue 8): the real feed engine watches three instruments fall,
Batch buys them, Original's signal on BTC-USDT is skipped, and ``python -m worker why`` names
the cause; the same morning when Original never fired names its closest approach; a feed that
was down and an instrument it never heard are told apart. Both databases."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from feed.approach import ApproachTracker, CoverageSampler
from feed.engine import Engine as FeedEngine
from tests import builders
from tests.integration.core.conftest import Engine, build_engine, with_settings
from tests.processes import ROOT
from tests.venues import MemoryVenue
from worker.exchange.memory import InMemoryExchange
from worker.ledger.approaches import ApproachStore
from worker.ledger.models import Order, Signal
from worker.services.buy import process_buy
from worker.signals import BuySignal, SellSignal, to_message

# Yesterday, 08:00 UTC: "why" is asked about a morning that is over.
DAY = (datetime.now(UTC) - timedelta(days=1)).replace(hour=8, minute=0, second=0, microsecond=0)
T0 = int(DAY.timestamp() * 1000)
MIN = 60_000
OPENS = {"BTC-USDT": "60000", "ETH-USDT": "3000", "SOL-USDT": "150"}


def config(tmp_path: Path, original_drop: str) -> str:
    path = tmp_path / "strategies.toml"
    path.write_text(
        f"[hourly_limit_ws]\ndrop_pct = {original_drop}\n"
        "[batch_buy_ws]\nmin_count = 3\n"
        "[original_gap]\nenabled = false\n"
        "[stable_buy_ws]\nenabled = false\n"
    )
    return str(path)


@dataclass
class Morning:
    """The feed engine, wired to the workers' buy path and to the database, as in production
    (the daemon's threads aside: ``flush`` does what its housekeeping thread does)."""

    engine: Engine
    feed: FeedEngine
    tracker: ApproachTracker
    coverage: CoverageSampler
    store: ApproachStore

    last: dict[str, str] = field(default_factory=lambda: dict(OPENS))
    now_ms: int = T0

    def tick(self, inst_id: str, last: str, at_ms: int) -> None:
        self.quiet_until(at_ms)
        self._tick(inst_id, last, at_ms)

    def quiet_until(self, at_ms: int) -> None:
        """Nothing moves until ``at_ms``: every instrument ticks at its price every 20 s."""
        while self.now_ms + 20_000 < at_ms:
            self.now_ms += 20_000
            for n, (inst_id, px) in enumerate(self.last.items()):
                self._tick(inst_id, px, self.now_ms + n)

    def _tick(self, inst_id: str, last: str, at_ms: int) -> None:
        self.engine.clock.now = datetime.fromtimestamp(at_ms / 1000, UTC)
        item = {"instId": inst_id, "last": last, "bidPx": last, "ts": str(at_ms)}
        self.feed.handle({"arg": {"channel": "tickers"}, "data": [item]})
        self.coverage.sample(self.feed.states)
        self.last[inst_id], self.now_ms = last, max(self.now_ms, at_ms)

    def restart(self, run_id: str) -> None:
        """A new feed process: fresh state, a new run id."""
        self.feed, self.tracker, self.coverage = start_feed(self.engine, run_id)

    def fill(self, inst_id: str, px: str) -> None:
        self.engine.settle_price(inst_id, px)

    def flush(self, running: bool = True) -> None:
        now = datetime.now(UTC)
        self.store.save(self.tracker.drain(now, running), self.coverage.drain(now, running))


@pytest.fixture
def engine(db_url: str, clock: builders.ManualClock, tmp_path: Path) -> Iterator[Engine]:
    """The engine on the in-memory venue, whose clock is the test's: the morning is replayed
    at its own times (a request deadline is checked against that clock too)."""
    clock.now = DAY
    venue = InMemoryExchange(clock_ms=lambda: int(clock().timestamp() * 1000))
    for rules in builders.INSTRUMENTS:
        venue.add_instrument(rules)
        px = builders.PRICES[rules.inst_id]
        venue.set_price(rules.inst_id, px * 2, px * 2, px * 2)  # buys rest until it falls
    eng = build_engine(db_url, MemoryVenue(venue), clock, tmp_path)
    yield eng
    eng.rt.ledger.dispose()


def start_feed(engine: Engine, run_id: str) -> tuple[FeedEngine, ApproachTracker, CoverageSampler]:
    """The feed engine of one run, publishing to the workers' buy path."""

    def publish(signal: BuySignal | SellSignal) -> None:
        process_buy(engine.rt, to_message(signal))

    rules = [r for r in builders.INSTRUMENTS if r.inst_id in OPENS]
    feed = FeedEngine(rules, engine.rt.settings.strategies, publish, 10)
    for inst_id, px in OPENS.items():
        feed.seed_hour_open(inst_id, T0, Decimal(px))
    feed.approach = ApproachTracker(feed.config, feed.batch_state, run_id, feed.states)
    return feed, feed.approach, CoverageSampler(run_id)


@pytest.fixture
def morning(engine: Engine, tmp_path: Path) -> Iterator[Any]:
    def start(original_drop: str, **settings: Any) -> Morning:
        with_settings(engine, STRATEGY_CONFIG=config(tmp_path, original_drop), **settings)
        feed, tracker, coverage = start_feed(engine, "run1")
        return Morning(engine, feed, tracker, coverage, ApproachStore(engine.rt.ledger))

    yield start


def why(engine: Engine, *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "CELERY_"))}
    done = subprocess.run(
        [sys.executable, "-m", "worker", "why", *args],
        cwd=ROOT,
        env={
            **clean,
            "DATABASE_URL": engine.rt.settings.database_url,
            "STRATEGY_CONFIG": engine.rt.settings.STRATEGY_CONFIG,
            "INSTRUMENTS": "BTC-USDT,ETH-USDT,SOL-USDT",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done


AT_0827 = (DAY + timedelta(minutes=27)).isoformat()


def batch_buys_all_three(m: Morning) -> None:
    """08:20: BTC, ETH and SOL are 3.4 % below their open at once: Batch buys all three."""
    m.tick("BTC-USDT", "57960", T0 + 20 * MIN)
    m.tick("ETH-USDT", "2898", T0 + 20 * MIN + 100)
    m.tick("SOL-USDT", "144.9", T0 + 20 * MIN + 200)
    for inst_id, px in (("BTC-USDT", "57960"), ("ETH-USDT", "2898"), ("SOL-USDT", "144.9")):
        m.fill(inst_id, px)


def test_batch_bought_original_was_skipped_and_why_names_the_cause(morning: Any) -> None:
    m: Morning = morning("0.035", MAX_OPEN_POSITIONS=3)
    m.tick("BTC-USDT", "59500", T0 + 1_000)
    batch_buys_all_three(m)
    m.tick("BTC-USDT", "57840", T0 + 27 * MIN)  # 3.6 % down: Original fires at 08:27
    m.flush()
    with m.engine.rt.ledger.begin() as s:
        skipped = s.get(Signal, f"hourly_limit_ws:BTC-USDT:{DAY:%Y%m%d%H}")
        assert skipped is not None and skipped.reason == "risk_limit"
        btc_buy = s.scalars(
            select(Order).where(
                Order.strategy == "batch_buy_ws", Order.inst_id == "BTC-USDT", Order.side == "buy"
            )
        ).one()

    text = why(m.engine, "BTC-USDT", "--at", AT_0827).stdout
    original = text.split("hourly_limit_ws (Original)")[1].split("\n\n")[0]
    assert ": skipped" in original.splitlines()[0]
    assert "was skipped (risk_limit): a risk limit was reached: MAX_OPEN_POSITIONS=3 " in original
    assert "BTC-USDT/batch_buy_ws lot" in original and "3 held (3 unsold lots" in original
    batch = text.split("batch_buy_ws (Batch)")[1]
    assert ": bought" in batch.splitlines()[0]
    assert f"buy order {btc_buy.cl_ord_id}" in batch
    assert "it bought 0.00017253 at 57,960 on average in 1 fill(s)" in batch
    assert "holds 0.00017235 (take-profit at 58,539.6" in batch

    doc = orjson.loads(
        why(m.engine, "BTC-USDT", "hourly_limit_ws", "--at", AT_0827, "--json").stdout
    )
    [answer] = doc["strategies"]
    assert (answer["verdict"], answer["bucket"]["name"]) == ("skipped", f"{DAY:%Y%m%d%H}")
    [signal] = answer["signals"]
    assert signal["reason"] == "risk_limit" and signal["detail"] == skipped.detail


def test_when_original_never_fired_why_names_its_closest_approach(morning: Any) -> None:
    m: Morning = morning("0.04")
    m.tick("BTC-USDT", "59500", T0 + 1_000)
    batch_buys_all_three(m)
    m.tick("BTC-USDT", "58100", T0 + 27 * MIN)
    for inst_id, px in OPENS.items():
        m.tick(inst_id, px, T0 + 60 * MIN + 500)  # the hour ends
    m.flush(running=False)
    text = why(m.engine, "BTC-USDT", "hourly_limit_ws", "--at", AT_0827).stdout
    assert "hourly_limit_ws (Original)" in text and ": no_signal" in text
    assert (
        "deepest drop this hour 3.4 % below the open 60,000 (57,960 at 08:20:00); "
        "trigger 4.0 %, 0.6 % short" in text
    )
    doc = orjson.loads(why(m.engine, "BTC-USDT", "--at", AT_0827, "--json").stdout)
    answers = {a["strategy"]: a for a in doc["strategies"]}
    closest = answers["hourly_limit_ws"]["closest_approach"]
    assert (closest["reference"], closest["closest"], closest["trigger"]) == (
        "60000",
        "57960",
        "0.04",
    )
    assert closest["complete"] is True and Decimal(closest["depth"]) == Decimal("0.034")
    assert answers["batch_buy_ws"]["verdict"] == "bought"
    assert answers["original_gap"]["verdict"] == "disabled"


def test_why_tells_a_feed_that_was_down_from_an_instrument_it_never_heard(morning: Any) -> None:
    m: Morning = morning("0.035")
    m.last = {"BTC-USDT": "59900", "ETH-USDT": "2999"}  # SOL-USDT is not subscribed
    m.quiet_until(T0 + 10 * MIN)
    m.flush()  # the feed dies at 08:10 (its running hour as last written) ...
    m.restart("run2")  # ... and a new one starts at 08:40
    m.now_ms = T0 + 40 * MIN
    m.quiet_until(T0 + 60 * MIN)
    m.flush()
    text = why(m.engine, "BTC-USDT", "hourly_limit_ws", "--at", AT_0827).stdout
    assert ": feed_down" in text
    assert "the feed was down or disconnected 08:09:40-08:40:20 (31 min)" in text
    assert "deepest drop this hour 0.2 % below the open 60,000" in text
    never = why(m.engine, "SOL-USDT", "hourly_limit_ws", "--at", AT_0827).stdout
    assert ": not_subscribed" in never
    assert "the feed heard other instruments in the hour" in never
    assert "but never SOL-USDT: the running feed does not subscribe it" in never
    elsewhere = (DAY - timedelta(days=3)).isoformat()
    gone = why(m.engine, "BTC-USDT", "hourly_limit_ws", "--at", elsewhere).stdout
    assert "the feed recorded nothing for BTC-USDT in the hour" in gone
    assert "it was down or not watching from before its oldest record to" in gone

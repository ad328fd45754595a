"""An in-process engine on a real database and an in-memory venue."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests import builders
from worker.exchange.memory import InMemoryExchange
from worker.exchange.port import OrderSnapshot
from worker.ledger.db import Ledger
from worker.runtime import Runtime
from worker.services.updates import apply_snapshot_and_follow_up


def make_venue() -> InMemoryExchange:
    venue = InMemoryExchange()
    for rules in builders.INSTRUMENTS:
        venue.add_instrument(rules)
        px = builders.PRICES[rules.inst_id]
        # Asks a little above the signal price: buys rest until the market comes down.
        venue.set_price(rules.inst_id, px * 2, px * 2, px * 2)
    return venue


@dataclass
class Engine:
    rt: Runtime
    venue: InMemoryExchange
    scheduler: builders.RecordingScheduler
    clock: builders.ManualClock

    def pump(self) -> list[str]:
        """Deliver the venue's order pushes, as the private websocket stream would."""
        return [self.apply(snap) for snap in self.venue.drain_updates()]

    def apply(self, snap: OrderSnapshot) -> str:
        return apply_snapshot_and_follow_up(self.rt, snap)

    def settle_price(self, inst_id: str, px: Any) -> list[str]:
        from decimal import Decimal

        self.venue.set_price(inst_id, Decimal(px))
        return self.pump()


@pytest.fixture
def engine(db_url: str, clock: builders.ManualClock, tmp_path: Any) -> Iterator[Engine]:
    settings = builders.make_settings(DATABASE_URL=db_url, LIMITFLOW_HOME=tmp_path)
    venue = make_venue()
    scheduler = builders.RecordingScheduler()
    ledger = Ledger.from_url(db_url)
    rt = Runtime(settings=settings, ledger=ledger, exchange=venue, schedule=scheduler, clock=clock)
    yield Engine(rt, venue, scheduler, clock)
    ledger.engine.dispose()


def with_settings(engine: Engine, **values: Any) -> None:
    """Replace the runtime's settings (keeping its database)."""
    base = {"DATABASE_URL": engine.rt.settings.DATABASE_URL}
    base.update(values)
    engine.rt.settings = builders.make_settings(**base)

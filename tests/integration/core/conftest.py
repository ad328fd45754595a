"""An in-process engine on a real database and a venue: in memory, or OKX over the simulator."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest

from tests import builders
from tests.venues import Venue
from worker.exchange.port import OrderSnapshot
from worker.ledger.db import Ledger
from worker.runtime import Runtime
from worker.services.updates import apply_snapshot_and_follow_up


@dataclass
class Engine:
    rt: Runtime
    venue: Venue
    scheduler: builders.RecordingScheduler
    clock: builders.ManualClock

    def pump(self) -> list[str]:
        """Deliver the venue's order pushes, as the private websocket stream would."""
        return [self.apply(snap) for snap in self.venue.drain_updates()]

    def apply(self, snap: OrderSnapshot) -> str:
        return apply_snapshot_and_follow_up(self.rt, snap)

    def settle_price(self, inst_id: str, px: Any) -> list[str]:
        self.venue.set_price(inst_id, Decimal(px))
        return self.pump()


def build_engine(db_url: str, venue: Venue, clock: builders.ManualClock, home: Any) -> Engine:
    settings = builders.make_settings(DATABASE_URL=db_url, LIMITFLOW_HOME=home)
    scheduler = builders.RecordingScheduler()
    ledger = Ledger.from_url(db_url)
    rt = Runtime(
        settings=settings, ledger=ledger, exchange=venue.exchange, schedule=scheduler, clock=clock
    )
    return Engine(rt, venue, scheduler, clock)


@pytest.fixture
def engine(
    db_url: str, venue: Venue, clock: builders.ManualClock, tmp_path: Any
) -> Iterator[Engine]:
    """The engine on each database and each venue (see ``tests.venues``)."""
    eng = build_engine(db_url, venue, clock, tmp_path)
    yield eng
    eng.rt.ledger.dispose()


def with_settings(engine: Engine, **values: Any) -> None:
    """Replace the runtime's settings (keeping its database)."""
    base = {"DATABASE_URL": engine.rt.settings.DATABASE_URL}
    base.update(values)
    engine.rt.settings = builders.make_settings(**base)

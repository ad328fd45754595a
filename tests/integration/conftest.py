"""Venues for the integration suites: the in-memory double and OKX over the local simulator."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from simulator.server import SimulatorHandle
from tests.venues import VENUES, Venue, open_venue, start_test_simulator


@pytest.fixture(scope="session")
def okx_sim() -> Iterator[SimulatorHandle]:
    """One simulator for the session; every venue built on it resets it first."""
    handle = start_test_simulator()
    yield handle
    handle.stop()


@pytest.fixture(params=VENUES)
def venue(request: pytest.FixtureRequest) -> Iterator[Venue]:
    """Run a test on the in-memory venue and on OKX (the adapter over the simulator)."""
    handle = request.getfixturevalue("okx_sim") if request.param == "okx-sim" else None
    with open_venue(request.param, handle) as v:
        yield v

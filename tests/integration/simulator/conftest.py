"""Fixtures for socket-level simulator tests: a running simulator, a signed REST client."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sim_socket_helpers import SignedClient

from simulator import SimulatorHandle, start_simulator
from simulator.control import SimControl


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorHandle]:
    handle = start_simulator(
        port=0,
        paused=True,
        instruments="BTC-USDT,ETH-USDT,DOGE-USDT",
        warmup_hours=2,
        ws_idle_timeout=30.0,
    )
    yield handle
    handle.stop()


@pytest.fixture
def ctl(sim: SimulatorHandle) -> Iterator[SimControl]:
    control = SimControl(sim.rest_url)
    control.reset()
    yield control
    control.reset()
    control.close()


@pytest.fixture
def okx(sim: SimulatorHandle) -> Iterator[SignedClient]:
    client = SignedClient(sim.rest_url)
    yield client
    client.close()

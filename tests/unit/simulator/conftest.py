"""Fixtures for the simulator's unit tests: an engine with one instrument and a set quote."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sim_unit_helpers import Clock, Recorder, set_quote

from simulator.accounts import Accounts
from simulator.instruments import make_instrument
from simulator.matching import Engine, Ids


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def engine(clock: Clock, recorder: Recorder) -> Engine:
    insts = {"BTC-USDT": make_instrument("BTC-USDT")}  # tick 0.1, lot 1e-8, min 1e-5
    accounts = Accounts({"USDT": Decimal(10000), "BTC": Decimal(1)})
    engine = Engine(insts, accounts, Ids(clock.ms), clock, Decimal("0.001"), 7200 * 1000)
    engine.listeners.append(recorder)
    set_quote(engine, bid="100", ask="100.1", size="1")
    return engine

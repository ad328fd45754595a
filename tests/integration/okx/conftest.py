"""Fixtures: a scripted local OKX server and an ``OkxExchange`` pointed at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from okx_testserver import CREDENTIALS, FakeOkx

from worker.exchange.okx.adapter import OkxExchange
from worker.exchange.okx.ratelimit import OkxRequestPacer
from worker.exchange.okx.rest import OkxRestClient


@pytest.fixture
def fake() -> Iterator[FakeOkx]:
    server = FakeOkx().start()
    yield server
    server.stop()


@pytest.fixture
def exchange(fake: FakeOkx) -> Iterator[OkxExchange]:
    rest = OkxRestClient(fake.rest_url, CREDENTIALS, timeout=0.5, pacer=OkxRequestPacer())
    ex = OkxExchange(rest)
    yield ex
    ex.close()

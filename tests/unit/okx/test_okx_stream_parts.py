"""The orders stream's bounded de-duplication set and the reconnect backoff (both clients)."""

from __future__ import annotations

import pytest

from worker.exchange.okx.keepalive import backoff
from worker.exchange.okx.private_stream import SeenTrades


def test_seen_trades_forgets_the_oldest_beyond_its_size() -> None:
    seen = SeenTrades(size=3)
    for i in range(5):
        seen.add(("BTC-USDT", str(i)))
    assert len(seen) == 3
    assert ("BTC-USDT", "0") not in seen and ("BTC-USDT", "1") not in seen
    assert ("BTC-USDT", "4") in seen


def test_seen_trades_refreshes_a_repeated_key() -> None:
    seen = SeenTrades(size=2)
    seen.add(("A", "1"))
    seen.add(("A", "2"))
    seen.add(("A", "1"))  # used again: now the newest
    seen.add(("A", "3"))
    assert ("A", "1") in seen and ("A", "2") not in seen


def test_trade_ids_are_per_instrument() -> None:
    seen = SeenTrades()
    seen.add(("BTC-USDT", "7"))
    assert ("ETH-USDT", "7") not in seen


def test_backoff_doubles_with_jitter_and_caps() -> None:
    assert [backoff(a, 1.0, 8.0, lambda: 1.0) for a in range(6)] == [1, 2, 4, 8, 8, 8]
    assert backoff(2, 1.0, 8.0, lambda: 0.0) == pytest.approx(2.0)  # half of 4: jitter floor
    assert backoff(10_000, 1.0, 8.0, lambda: 0.5) == pytest.approx(6.0)

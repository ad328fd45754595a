"""The feed daemon against the project's OKX simulator (skipped when it is not there)."""

from __future__ import annotations

import threading
from decimal import Decimal
from pathlib import Path

import pytest
from fake_okx import wait_for
from feed_harness import FAST, only

from feed.daemon import Feed
from worker.settings import load_settings
from worker.signals import BuySignal, SellSignal

simulator = pytest.importorskip("simulator")
control = pytest.importorskip("simulator.control")

pytestmark = pytest.mark.timeout(90)


def test_feed_buys_once_on_a_simulated_drop_and_survives_a_drop(tmp_path: Path) -> None:
    with simulator.start_simulator(port=0, paused=True, instruments="BTC-USDT,ETH-USDT") as sim:
        signals: list[BuySignal | SellSignal] = []
        settings = load_settings(
            {
                "OKX_REST_URL": sim.rest_url,
                "OKX_WS_PUBLIC_URL": f"{sim.ws_url}/public",
                "OKX_WS_BUSINESS_URL": f"{sim.ws_url}/business",
                "INSTRUMENTS": "BTC-USDT,ETH-USDT",
                "STRATEGY_CONFIG": only(tmp_path, "hourly_limit_ws"),
                "LIMITFLOW_HOME": str(tmp_path),
            }
        )
        feed = Feed(settings, signals.append, timing=FAST)
        thread = threading.Thread(target=feed.run, daemon=True)
        thread.start()
        ctl = control.SimControl(sim.rest_url)
        try:
            wait_for(feed.ready.is_set, what="feed.ready")
            assert feed.engine is not None
            states = feed.engine.states
            wait_for(lambda: all(s.hour_open is not None for s in states.values()), what="seed")
            btc_open = states["BTC-USDT"].hour_open
            assert btc_open is not None
            ctl.price("BTC-USDT", str((btc_open * Decimal("0.96")).quantize(Decimal("0.1"))))
            wait_for(lambda: len(signals) == 1, what="a buy signal")
            ctl.price("BTC-USDT", str((btc_open * Decimal("0.95")).quantize(Decimal("0.1"))))
            ctl.ws("drop", "public")
            wait_for(lambda: feed.connections[0].connects >= 2, what="reconnect")
            wait_for(lambda: len(feed._subscribed) == 2)
            eth_open = states["ETH-USDT"].hour_open
            assert eth_open is not None
            for _ in range(50):  # until the new connection is subscribed and gets the push
                ctl.price("ETH-USDT", str((eth_open * Decimal("0.95")).quantize(Decimal("0.01"))))
                if len(signals) >= 2:
                    break
                threading.Event().wait(0.1)
            assert [s.inst_id for s in signals] == ["BTC-USDT", "ETH-USDT"]
            assert all(s.strategy == "hourly_limit_ws" for s in signals)
        finally:
            ctl.close()
            feed.stop()
            thread.join(10)

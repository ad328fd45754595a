"""No needless reconnects: the simulator closes a connection that sent nothing for its idle
timeout (OKX: 30 s), however much it received. The feed's connections (which only listen
once subscribed) and the orders stream must stay up, with the timings scaled down: an idle
timeout of 2 s and pings after 1.3 s of silence (OKX: 30 s and 20 s), for 12 idle periods.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from fake_okx import wait_for
from feed_harness import only

from feed.connection import Timing
from feed.daemon import Feed
from simulator import start_simulator
from tests.venues import sim_credentials
from worker.exchange.okx.private_stream import OrdersStream
from worker.exchange.okx.private_stream import Timing as StreamTiming
from worker.settings import load_settings
from worker.signals import BuySignal, SellSignal

pytestmark = pytest.mark.timeout(120)

IDLE_TIMEOUT = 2.0
RUN_SECONDS = 12 * IDLE_TIMEOUT
FEED_TIMING = Timing(ping_after=1.3, pong_timeout=1.0, poll=0.1, subscribe_timeout=5.0)
STREAM_TIMING = StreamTiming(ping_after=1.3, pong_timeout=1.0, poll=0.1)


def test_the_feed_and_the_orders_stream_stay_connected_while_only_listening(
    tmp_path: Path,
) -> None:
    with start_simulator(
        port=0, instruments="BTC-USDT,ETH-USDT", speed=1.0, warmup_hours=0, step_seconds=0.2,
        ws_idle_timeout=IDLE_TIMEOUT,
    ) as sim:  # fmt: skip
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
        signals: list[BuySignal | SellSignal] = []
        feed = Feed(settings, signals.append, timing=FEED_TIMING)
        stream = OrdersStream(
            f"{sim.ws_url}/private", sim_credentials(), lambda task, args: None,
            timing=STREAM_TIMING,
        )  # fmt: skip
        threads = [
            threading.Thread(target=feed.run, daemon=True),
            threading.Thread(target=stream.run, daemon=True),
        ]
        for thread in threads:
            thread.start()
        try:
            wait_for(feed.ready.is_set, what="feed.ready")
            wait_for(stream.ready.is_set, what="orders_stream.ready")
            public = feed.connections[0]
            frames_before = public.frames
            time.sleep(RUN_SECONDS)
            assert public.frames - frames_before > RUN_SECONDS * 4, "tickers kept coming"
            for conn in feed.connections:
                assert (conn.connects, conn.reconnect_reasons) == (1, {}), conn.name
            assert stream.connections == 1 and not stream.reconnect_reasons
        finally:
            feed.stop()
            stream.stop()
            for thread in threads:
                thread.join(10)

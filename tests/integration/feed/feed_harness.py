"""Run the real feed daemon against ``FakeOkx`` with short timings; capture its signals."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from fake_okx import FakeOkx, wait_for

from feed.connection import Timing
from feed.daemon import Feed
from feed.engine import Engine
from worker.settings import Settings, load_settings
from worker.signals import BuySignal, SellSignal

T0 = 1795939200000  # 2026-11-29T08:00:00Z
HOUR = 3_600_000
FAST = Timing(
    ping_after=0.4,
    pong_timeout=0.4,
    poll=0.05,
    subscribe_timeout=2.0,
    backoff_base=0.05,
    backoff_max=0.2,
    healthy_after=5.0,
)
INSTRUMENTS = [
    {
        "instId": i,
        "instType": "SPOT",
        "baseCcy": i.split("-")[0],
        "quoteCcy": "USDT",
        "tickSz": "0.01",
        "lotSz": "0.0001",
        "minSz": "0.0001",
        "state": "live",
    }
    for i in ("BTC-USDT", "ETH-USDT", "SOL-USDT")
]


def only(tmp: Path, strategy: str) -> str:
    names = ("hourly_limit_ws", "original_gap", "stable_buy_ws", "batch_buy_ws")
    text = "\n".join(f"[{n}]\nenabled = false\n" for n in names if n != strategy)
    path = tmp / "strategies.toml"
    path.write_text(text)
    return str(path)


def ticker(inst_id: str, last: str, ts: int) -> dict[str, Any]:
    item = {"instType": "SPOT", "instId": inst_id, "last": last, "bidPx": last, "ts": str(ts)}
    return {"arg": {"channel": "tickers", "instId": inst_id}, "data": [item]}


def candle(inst_id: str, ts: int, open_px: str) -> dict[str, Any]:
    row = [str(ts), open_px, open_px, open_px, open_px, "1", "1", "1", "0"]
    return {"arg": {"channel": "candle1H", "instId": inst_id}, "data": [row]}


class Running:
    """A fake exchange and a feed daemon in threads."""

    def __init__(
        self, tmp: Path, strategy: str, record: str | None = None, **feed_options: Any
    ) -> None:
        self.server = FakeOkx(INSTRUMENTS, candle_open="100").start()
        self.server.candle_ts = str(T0)
        self.signals: list[BuySignal | SellSignal] = []
        self.settings: Settings = load_settings(
            {
                **self.server.urls,
                "INSTRUMENTS": "BTC-USDT,ETH-USDT,SOL-USDT",
                "STRATEGY_CONFIG": only(tmp, strategy),
                "LIMITFLOW_HOME": str(tmp),
            }
        )
        self.feed = Feed(
            self.settings,
            self.signals.append,
            record_path=record,
            timing=FAST,
            positions_every=0.2,
            **feed_options,
        )
        self._thread = threading.Thread(target=self.feed.run, daemon=True)
        self._thread.start()
        wait_for(self.feed.ready.is_set, what="feed.ready")

    @property
    def engine(self) -> Engine:
        assert self.feed.engine is not None
        return self.feed.engine

    def wait_ticks(self, n: int) -> None:
        wait_for(lambda: self.engine.ticks >= n, what=f"{n} ticks")

    def wait_resubscribed(self, path: str, connects: int) -> None:
        args = len(INSTRUMENTS)
        wait_for(
            lambda: (
                self.server.connects[path] >= connects
                and self.server.subscribed[path] >= connects * args
            ),
            what=f"{path} connection {connects} subscribed",
        )

    def close(self) -> None:
        self.feed.stop()
        self._thread.join(10)
        self.server.stop()

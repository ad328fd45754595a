"""Shared builders for the feed's unit tests."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson

from feed.engine import Engine
from worker.domain.money import InstrumentRules
from worker.domain.strategies import STRATEGIES
from worker.signals import BuySignal, SellSignal
from worker.strategy_config import StrategyConfig, parse_strategy_config

T0 = 1795939200000  # 2026-11-29T08:00:00Z, the start of a UTC hour
HOUR = 3_600_000
ALL = STRATEGIES


def rules(
    inst_id: str = "BTC-USDT", tick: str = "0.1", lot: str = "0.00000001", min_sz: str = "0.00001"
) -> InstrumentRules:
    base, quote = inst_id.split("-")
    return InstrumentRules(inst_id, Decimal(tick), Decimal(lot), Decimal(min_sz), base, quote)


def only(strategy: str, **params: Any) -> StrategyConfig:
    """A config with just ``strategy`` enabled, with ``params`` overriding its defaults."""
    data: dict[str, Any] = {s: {"enabled": False} for s in ALL if s != strategy}
    data[strategy] = {k: Decimal(v) if isinstance(v, str) else v for k, v in params.items()}
    return parse_strategy_config(data)


def ticker(inst_id: str, last: str, ts: int, **fields: str) -> bytes:
    item = {"instType": "SPOT", "instId": inst_id, "last": last, "ts": str(ts), **fields}
    return orjson.dumps({"arg": {"channel": "tickers", "instId": inst_id}, "data": [item]})


def candle(inst_id: str, open_ts: int, open_px: str) -> bytes:
    row = [str(open_ts), open_px, open_px, open_px, open_px, "1", "1", "1", "0"]
    return orjson.dumps({"arg": {"channel": "candle1H", "instId": inst_id}, "data": [row]})


class Harness:
    def __init__(
        self, config: StrategyConfig, *inst_rules: InstrumentRules, **engine_options: Any
    ) -> None:
        self.signals: list[BuySignal | SellSignal] = []
        self.engine = Engine(
            inst_rules or (rules(),), config, self.signals.append, **engine_options
        )

    def tick(self, inst_id: str, last: str, ts: int, **fields: str) -> list[BuySignal | SellSignal]:
        before = len(self.signals)
        assert self.engine.handle_raw(ticker(inst_id, last, ts, **fields)) is None
        return self.signals[before:]

    def candle(self, inst_id: str, open_ts: int, open_px: str) -> None:
        self.engine.handle_raw(candle(inst_id, open_ts, open_px))

    @property
    def buys(self) -> list[BuySignal]:
        return [s for s in self.signals if isinstance(s, BuySignal)]

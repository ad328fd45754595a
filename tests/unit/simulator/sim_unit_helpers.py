"""Builders shared by the simulator's unit tests."""

from __future__ import annotations

from decimal import Decimal

from simulator.matching import Engine, Quote
from simulator.orders import Fill, Order


class Recorder:
    """Collects every order update the engine emits."""

    def __init__(self) -> None:
        self.updates: list[tuple[str, str, Fill | None]] = []

    def __call__(self, order: Order, fill: Fill | None) -> None:
        self.updates.append((order.ord_id, order.state, fill))

    def states(self) -> list[str]:
        return [state for _, state, _ in self.updates]


class Clock:
    def __init__(self) -> None:
        self.ms = 1_700_000_000_000

    def __call__(self) -> int:
        return self.ms


def set_quote(engine: Engine, bid: str, ask: str, size: str = "1") -> None:
    engine.on_quote(
        "BTC-USDT", Quote(Decimal(bid), Decimal(bid), Decimal(ask), Decimal(size), Decimal(size))
    )


def order(**fields: str) -> dict[str, str]:
    body = {"instId": "BTC-USDT", "tdMode": "cash", "side": "buy", "ordType": "limit"}
    body.update({"px": "99", "sz": "0.5"})
    body.update(fields)
    return body

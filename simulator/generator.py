"""A seeded market generator: correlated random walks with sharp drops and recoveries.

Each instrument follows ``price = start * exp(walk + shock)``: ``walk`` is a random walk
(a market-wide factor plus the instrument's own noise); ``shock`` is zero most of the time,
and during an event falls quickly to ``log(1 - depth)`` (depth 3-8 %), holds, then recovers.
Events hit one instrument at a time, or (a dump) most instruments together.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from decimal import Decimal

from simulator.decimals import ZERO, round_down
from simulator.instruments import Instrument

DAILY_VOL = 0.03
MARKET_SHARE = 0.6  # fraction of variance from the common factor


@dataclass(frozen=True)
class Tick:
    inst_id: str
    last: Decimal
    bid: Decimal
    ask: Decimal
    bid_sz: Decimal
    ask_sz: Decimal
    trade_sz: Decimal
    side: str


@dataclass
class _Shock:
    depth: float  # log offset at the bottom (negative)
    fall: float
    hold: float
    recover: float
    age: float = 0.0

    def offset(self) -> float:
        if self.age < self.fall:
            return self.depth * self.age / self.fall
        if self.age < self.fall + self.hold:
            return self.depth
        left = 1.0 - (self.age - self.fall - self.hold) / self.recover
        return self.depth * max(left, 0.0)

    @property
    def done(self) -> bool:
        return self.age >= self.fall + self.hold + self.recover


class Generator:
    def __init__(
        self,
        instruments: list[Instrument],
        seed: int,
        liquidity_usdt: Decimal,
        shock_rate_per_hour: float,
        dump_rate_per_hour: float,
        event_time_scale: float = 1.0,
    ):
        self.instruments = instruments
        self.rng = random.Random(seed)
        self.liquidity_usdt = liquidity_usdt
        self.shock_rate = shock_rate_per_hour / 3600.0
        self.dump_rate = dump_rate_per_hour / 3600.0
        # Multiplies how long an event falls, holds and recovers (< 1: faster events).
        self.event_time_scale = event_time_scale
        self.walk = {i.inst_id: 0.0 for i in instruments}
        self.shocks: dict[str, _Shock] = {}
        self.last_side = {i.inst_id: "buy" for i in instruments}

    def _new_shock(self, depth_pct: float) -> _Shock:
        rng = self.rng
        scale = self.event_time_scale
        return _Shock(
            depth=math.log(1.0 - depth_pct),
            fall=rng.uniform(15, 120) * scale,
            hold=rng.uniform(60, 900) * scale,
            recover=rng.uniform(600, 3600) * scale,
        )

    def step(self, dt: float) -> list[Tick]:
        """Move every instrument by ``dt`` simulated seconds."""
        rng = self.rng
        sigma = DAILY_VOL * math.sqrt(dt / 86400.0)
        market = rng.gauss(0.0, sigma * math.sqrt(MARKET_SHARE))
        own_sigma = sigma * math.sqrt(1.0 - MARKET_SHARE)
        if rng.random() < self.dump_rate * dt:
            base = rng.uniform(0.03, 0.08)
            for inst in self.instruments:
                if rng.random() < 0.8:
                    depth = min(max(base + rng.uniform(-0.01, 0.01), 0.03), 0.08)
                    self.shocks[inst.inst_id] = self._new_shock(depth)
        ticks = []
        for inst in self.instruments:
            key = inst.inst_id
            move = market + rng.gauss(0.0, own_sigma)
            self.walk[key] += move
            shock = self.shocks.get(key)
            if shock is None and rng.random() < self.shock_rate * dt:
                shock = self.shocks[key] = self._new_shock(rng.uniform(0.03, 0.08))
            offset = 0.0
            if shock is not None:
                shock.age += dt
                offset = shock.offset()
                if shock.done:
                    del self.shocks[key]
            ticks.append(self._tick(inst, self.walk[key] + offset, move, dt))
        return ticks

    def _tick(self, inst: Instrument, log_move: float, move: float, dt: float) -> Tick:
        rng = self.rng
        mid = inst.start_px * Decimal(repr(math.exp(log_move)))
        bid = max(round_down(mid, inst.tick_sz), inst.tick_sz)
        ask = bid + inst.tick_sz
        depth = round_down(self.liquidity_usdt / ask, inst.lot_sz)
        side = "buy" if move > 0 else "sell" if move < 0 else self.last_side[inst.inst_id]
        self.last_side[inst.inst_id] = side
        trade_sz = ZERO
        if dt > 0 and rng.random() < 0.7:
            mean_quote = float(inst.daily_volume_quote) * dt / 86400.0 / 0.7
            quote = Decimal(repr(rng.expovariate(1.0 / mean_quote)))
            trade_sz = max(round_down(quote / ask, inst.lot_sz), inst.lot_sz)
        last = ask if side == "buy" else bid
        return Tick(inst.inst_id, last, bid, ask, depth, depth, trade_sz, side)

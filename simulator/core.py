"""The simulator's state and its market driver, all on one event loop.

``Simulator`` wires the market (generated or replayed), the matching engine and the
websocket hub: every price step updates the market, fills the orders it reaches and pushes
tickers, trades, candles and order updates to subscribers.
"""

from __future__ import annotations

import asyncio
import logging
import math
from decimal import Decimal
from typing import Any

from simulator.accounts import Accounts
from simulator.candles import Candle
from simulator.clock import SimClock
from simulator.config import SimConfig, parse_rules
from simulator.decimals import ZERO, fmt, parse_decimal, round_down
from simulator.faults import PUSH_OP, Faults
from simulator.generator import Generator, Tick
from simulator.hub import Hub
from simulator.instruments import Instrument, make_instrument
from simulator.market import InstrumentMarket
from simulator.matching import Engine, Ids
from simulator.orders import Fill, Order
from simulator.placements import PlacementLog
from simulator.replay import ReplayEvent, first_prices, load_replay
from simulator.timeline import TickerPush, Timeline

log = logging.getLogger("simulator")
UID = "614488474791936"
CANDLE_PUSH_MS = 1000


class Simulator:
    def __init__(self, config: SimConfig):
        self.config = config
        self.events: list[ReplayEvent] = []
        self.generator: Generator | None = None
        prices: dict[str, Decimal] = {}
        start_ms = config.start_ms
        if config.replay is not None:
            self.events = load_replay(config.replay)
            prices = first_prices(self.events)
            start_ms = self.events[0].ts - 1  # nothing is due until the clock moves
            names = sorted({e.inst_id for e in self.events})
        else:
            names = list(config.instruments)
        overrides = parse_rules(config.instrument_rules)
        self.instruments: dict[str, Instrument] = {
            n: make_instrument(n, prices.get(n), overrides.get(n)) for n in names
        }
        self.clock = SimClock(start_ms, config.speed, config.paused)
        self.markets = {n: InstrumentMarket(i) for n, i in self.instruments.items()}
        self.accounts = Accounts({"USDT": config.start_usdt})  # and nothing of any base
        self.engine = Engine(
            self.instruments,
            self.accounts,
            Ids(self.clock.now_ms()),
            self.clock.now_ms,
            config.fee_rate,
            int(config.history_retention_seconds * 1000),
        )
        self.engine.listeners.append(self._on_order)
        self.hub = Hub()
        self.faults = Faults()
        self.placement_log = PlacementLog()
        # A frozen market keeps its last quotes while the clock runs (generated market only).
        self.market_frozen = False
        self.stopping = asyncio.Event()
        self.missing_demo_header = 0
        self.expired_requests = 0  # placements dropped because they arrived after expTime
        self.timeline = Timeline()
        self._step_ms = max(1, int(config.step_seconds * 1000))
        self._next_step = self.clock.now_ms()
        self._replay_at = 0
        self._ticker_pushed: dict[str, int] = {}
        self._candle_pushed: dict[tuple[str, str], int] = {}
        self._recorded_candles = {
            (e.channel, e.inst_id) for e in self.events if e.channel != "tickers"
        }
        if self.events:
            for name, market in self.markets.items():
                market.ts = start_ms or 0
                self.engine.on_quote(name, market.quote())
        else:
            self.generator = Generator(
                list(self.instruments.values()),
                config.seed,
                config.step_liquidity_usdt,
                config.shock_rate_per_hour,
                config.dump_rate_per_hour,
                config.event_time_scale,
            )
            self._warm_up()

    @property
    def mode(self) -> str:
        return "replay" if self.events else "generator"

    # Driving the market ----------------------------------------------------------------

    def _warm_up(self) -> None:
        """Generate the past ``warmup_hours`` in one-minute steps (candles, 24h stats)."""
        assert self.generator is not None
        steps = self.config.warmup_hours * 60
        start = self._next_step - steps * 60_000
        for index in range(steps):
            for tick in self.generator.step(60.0):
                self._apply_tick(tick, start + index * 60_000, publish=False)
        for tick in self.generator.step(0.0):
            self._apply_tick(tick, self._next_step, publish=False)
        self._next_step += self._step_ms

    def catch_up(self, budget: int) -> bool:
        """Run the market up to the clock, at most ``budget`` steps; True if more remain."""
        if self.events:
            return self._replay_due(budget)
        assert self.generator is not None
        now = self.clock.now_ms()
        done = 0
        while self._next_step <= now and done < budget:
            if not self.market_frozen:
                for tick in self.generator.step(self._step_ms / 1000):
                    self._apply_tick(tick, self._next_step, publish=True)
            self._next_step += self._step_ms
            done += 1
        return self._next_step <= now

    def _replay_due(self, budget: int) -> bool:
        free_run = self.clock.speed <= 0 and not self.clock.paused
        now = self.clock.now_ms()
        done = 0
        while self._replay_at < len(self.events) and done < budget:
            event = self.events[self._replay_at]
            if not free_run and event.ts > now:
                return False
            if free_run:
                self.clock.set(event.ts)
            self._replay_at += 1
            self._apply_event(event)
            done += 1
        return self._replay_at < len(self.events) and (
            free_run or self.events[self._replay_at].ts <= now
        )

    async def run(self) -> None:
        """Follow the clock until stopped."""
        while not self.stopping.is_set():
            more = self.catch_up(budget=500)
            await asyncio.sleep(0 if more else 0.02)

    def advance(self, seconds: float) -> None:
        """Move the clock forward and run the market through that time at once."""
        self.clock.advance(seconds * 1000)
        while self.catch_up(budget=10_000):
            pass

    async def advance_async(self, seconds: float) -> None:
        """Like ``advance``, but let websocket writers drain between small batches of steps,
        so that subscribers see every step of a long jump without overflowing."""
        self.clock.advance(seconds * 1000)
        while self.catch_up(budget=20):
            await asyncio.sleep(0)

    # Applying a step -------------------------------------------------------------------

    def _apply_tick(self, tick: Tick, ts: int, publish: bool) -> None:
        market = self.markets[tick.inst_id]
        closed = market.tick(
            ts, tick.last, tick.bid, tick.ask, tick.bid_sz, tick.ask_sz, tick.trade_sz
        )
        if not publish:
            return
        self.engine.on_quote(tick.inst_id, market.quote())
        self._push_ticker(market, force=False)
        if tick.trade_sz > 0 and self.hub.wants("public", "trades", tick.inst_id):
            trade = {
                "instId": tick.inst_id,
                "tradeId": self.engine.ids.trade_id(),
                "px": fmt(tick.last),
                "sz": fmt(tick.trade_sz),
                "side": tick.side,
                "ts": str(ts),
                "count": "1",
                "source": "0",
                "seqId": ts // 1000,
            }
            arg = {"channel": "trades", "instId": tick.inst_id}
            self.hub.publish("public", "trades", tick.inst_id, {"arg": arg, "data": [trade]})
        self._push_candles(market, closed)

    def _apply_event(self, event: ReplayEvent) -> None:
        market = self.markets[event.inst_id]
        data = event.msg["data"]
        if event.channel == "tickers":
            closed: dict[str, Candle] = {}
            for item in data:
                closed.update(market.apply_ticker(item))
            self.engine.on_quote(event.inst_id, market.quote())
            if (
                event.ts - self._ticker_pushed.get(event.inst_id, -(10**15))
                >= self.config.ticker_interval_ms
            ):
                self._ticker_pushed[event.inst_id] = event.ts
                self.hub.publish("public", "tickers", event.inst_id, event.msg)
            self._push_candles(market, closed)
        elif event.channel == "trades":
            for item in data:
                px, sz = parse_decimal(item.get("px")), parse_decimal(item.get("sz"))
                if px is not None and sz is not None:
                    market.tick(
                        event.ts, px, market.bid, market.ask, market.bid_sz, market.ask_sz, sz
                    )
            self.hub.publish("public", "trades", event.inst_id, event.msg)
        else:
            series = market.candles(event.channel.removeprefix("candle"))
            for row in data:
                candle = Candle(int(row[0]), Decimal(row[1]))
                candle.h, candle.l, candle.c = Decimal(row[2]), Decimal(row[3]), Decimal(row[4])
                candle.vol, candle.vol_ccy = Decimal(row[5]), Decimal(row[6])
                series.put(candle)
            self.hub.publish("business", event.channel, event.inst_id, event.msg)

    def _push_ticker(self, market: InstrumentMarket, force: bool) -> TickerPush | None:
        """Push the instrument's ticker (stamped in the timeline as the first subscriber's
        writer sends it); None if nobody subscribes or it is not yet due."""
        inst_id = market.inst.inst_id
        if not self.hub.wants("public", "tickers", inst_id):
            return None
        last = self._ticker_pushed.get(inst_id, -(10**15))
        if not force and market.ts - last < self.config.ticker_interval_ms:
            return None
        self._ticker_pushed[inst_id] = market.ts
        arg = {"channel": "tickers", "instId": inst_id}
        push = TickerPush(self.timeline, inst_id)
        payload = {"arg": arg, "data": [market.ticker()]}
        self.hub.publish("public", "tickers", inst_id, payload, on_write=push.written)
        return push

    def _push_candles(self, market: InstrumentMarket, closed: dict[str, Candle]) -> None:
        inst_id = market.inst.inst_id
        for channel, sub_inst in self.hub.subscribed_candles():
            if sub_inst != inst_id or (channel, inst_id) in self._recorded_candles:
                continue
            bar = channel.removeprefix("candle")
            series = market.candles(bar)
            arg = {"channel": channel, "instId": inst_id}
            done = closed.get(bar)
            if done is not None:
                self.hub.publish(
                    "business", channel, inst_id, {"arg": arg, "data": [done.row(True)]}
                )
            key = (channel, inst_id)
            if (
                done is None
                and market.ts - self._candle_pushed.get(key, -(10**15)) < CANDLE_PUSH_MS
            ):
                continue
            self._candle_pushed[key] = market.ts
            rows = series.rows(1)
            if rows:
                self.hub.publish("business", channel, inst_id, {"arg": arg, "data": rows})

    def _on_order(self, order: Order, fill: Fill | None) -> None:
        fault = self.faults.take(PUSH_OP)
        if fault is not None and fault.mode == "drop":
            self.faults.pushes_dropped += 1
            return
        market = self.markets[order.inst.inst_id]
        push = order.to_push(fill, market.last)
        self.hub.publish_order(order.inst.inst_id, push, UID)
        if fault is not None and fault.mode == "duplicate":
            self.faults.pushes_duplicated += 1
            self.hub.publish_order(order.inst.inst_id, push, UID)

    # Control ---------------------------------------------------------------------------

    def set_price(
        self, inst_id: str, fields: dict[str, Any]
    ) -> tuple[dict[str, Any], TickerPush | None]:
        """Set last/bid/ask (bid and ask default to last), match, and push the ticker.

        Return the new ticker and its push (``TickerPush.sent``: when it went out; None if
        nobody subscribes).
        """
        market = self.markets[inst_id]
        last = parse_decimal(fields.get("last")) if fields.get("last") is not None else None
        bid = parse_decimal(fields["bid"]) if fields.get("bid") is not None else None
        ask = parse_decimal(fields["ask"]) if fields.get("ask") is not None else None
        last = last or bid or ask or market.last
        bid, ask = bid or last, ask or last
        if min(last, bid, ask) <= 0:
            raise ValueError("prices must be positive")
        depth = round_down(self.config.step_liquidity_usdt / ask, market.inst.lot_sz)
        bid_sz = parse_decimal(fields.get("bidSz")) if fields.get("bidSz") is not None else depth
        ask_sz = parse_decimal(fields.get("askSz")) if fields.get("askSz") is not None else depth
        if bid_sz is None or ask_sz is None:
            raise ValueError("bidSz/askSz must be numbers")
        closed = market.tick(self.clock.now_ms(), last, bid, ask, bid_sz, ask_sz, ZERO)
        market.recorded = None
        if self.generator is not None:
            inst = market.inst
            self.generator.walk[inst_id] = math.log(float(last / inst.start_px))
            self.generator.shocks.pop(inst_id, None)
        self.engine.on_quote(inst_id, market.quote())
        sent = self._push_ticker(market, force=True)
        self._push_candles(market, closed)
        return market.ticker(), sent

    def set_instrument_state(self, inst_id: str, state: str) -> dict[str, Any]:
        """``suspend``: listed as such, new orders refused (51022), nothing trades;
        ``live``: back to normal."""
        if state not in ("live", "suspend"):
            raise ValueError("state must be 'live' or 'suspend'")
        inst = self.engine.set_instrument_state(inst_id, state)
        log.info("simulator.instrument inst_id=%s state=%s", inst_id, state)
        return inst.to_okx()

    def status(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "now": str(self.clock.now_ms()),
            "speed": self.clock.speed,
            "paused": self.clock.paused,
            "instruments": list(self.instruments),
            "connections": len(self.hub.connections),
            "replayed": self._replay_at,
            "replayTotal": len(self.events),
            "missingDemoHeader": self.missing_demo_header,
            "expiredRequests": self.expired_requests,
            "requests": dict(self.timeline.requests),
            "suspended": [i for i, inst in self.instruments.items() if inst.state != "live"],
            "marketFrozen": self.market_frozen,
            "pushesDropped": self.faults.pushes_dropped,
            "pushesDuplicated": self.faults.pushes_duplicated,
            "placementRequests": len(self.placement_log.requests),
        }

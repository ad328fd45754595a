"""The feed's engine: parsed pushes in, signals out, through an injected ``publish`` callable.

``Engine.handle_raw`` is the hot path: one ``orjson.loads``, a few decimal comparisons per
enabled strategy, and a signal only when a strategy fires in a bucket it has not fired in.
Bad input is counted per reason and logged at most every few seconds per reason; it never
raises. The engine reads no clock for its decisions (timestamps come from the messages), so
replaying a recording gives the same signals.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any, TypeVar

import orjson
import pydantic

from feed import parse
from feed.approach import ApproachTracker
from feed.logs import RateLimitedLog, log_event
from feed.parse import BadInput
from feed.state import HOUR_MS, RANK_CANDLE, RANK_REST, InstrumentState
from feed.strategies.base import Candidate, size_order
from feed.strategies.batch import BatchState
from feed.strategies.exits import Exit, ExitTracker, Position
from feed.strategies.wiring import enabled_evaluators, needs_day_fields
from worker.domain.errors import ConfigError
from worker.domain.ids import signal_id_for
from worker.domain.money import InstrumentRules
from worker.domain.sizing import DEFAULT_FEE_RATE_BOUND, Unsizable
from worker.signals import BuySignal, SellSignal
from worker.strategy_config import StrategyConfig

Publish = Callable[[BuySignal | SellSignal], None]
S = TypeVar("S", BuySignal, SellSignal)
Event = dict[str, Any]


class Engine:
    """Evaluate the strategies on every tick for a fixed set of instruments."""

    def __init__(
        self,
        rules: Iterable[InstrumentRules],
        strategies: StrategyConfig,
        publish: Publish,
        signal_ttl_seconds: int = 10,
        *,
        fee_rate_bound: Decimal = DEFAULT_FEE_RATE_BOUND,
        max_order_usdt: Decimal | None = None,
    ) -> None:
        self.states: dict[str, InstrumentState] = {r.inst_id: InstrumentState(r) for r in rules}
        self.config = strategies
        self.publish = publish
        self.ttl_ms = signal_ttl_seconds * 1000
        # The workers' sizing settings: a buy they would skip as below_min_size is not sent.
        self.fee_rate_bound = Decimal(fee_rate_bound)
        self.max_order_usdt = max_order_usdt
        # The enabled strategies, each prepared once from its parameters.
        self.batch_state = BatchState()
        self.evaluators = enabled_evaluators(strategies, self.batch_state)
        self.day_fields = needs_day_fields(strategies)
        self.exits = ExitTracker()
        self.positions: dict[str, tuple[Position, ...]] = {}
        self.bad: dict[str, int] = dict.fromkeys(parse.REASONS, 0)
        self.skipped: dict[str, int] = {"below_min_size": 0}
        self.ticks = 0
        self.buys = 0
        self.sells = 0
        self.lock = threading.Lock()
        self._warn = RateLimitedLog(interval=10.0)
        self.approach: ApproachTracker | None = None  # set by the daemon (feed.approach)

    # Input ---------------------------------------------------------------------------------

    def handle_raw(self, raw: str | bytes, recv_ms: int = 0) -> Event | None:
        """Parse and handle one websocket text frame; return it if it is an ``event``."""
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            self.reject("malformed_json", repr(raw[:80]))
            return None
        return self.handle(obj, recv_ms)

    def handle(self, obj: Any, recv_ms: int = 0) -> Event | None:
        """Handle one decoded message; return it if it is an ``event`` for the connection."""
        if type(obj) is not dict:
            self.reject("not_object", type(obj).__name__)
            return None
        if "event" in obj:
            return obj
        arg = obj.get("arg")
        data = obj.get("data")
        if type(arg) is not dict or type(data) is not list:
            self.reject("unknown_message", "no arg/data")
            return None
        channel = arg.get("channel")
        with self.lock:
            if channel == "tickers":
                for item in data:
                    self._on_ticker(item)
            elif channel == "candle1H":
                self._on_candles(arg.get("instId"), data)
            else:
                self.reject("unknown_message", f"channel={channel}")
        return None

    def _on_ticker(self, item: Any) -> None:
        # The state (when the instrument is ours) lends parse_ticker its memo of sodUtc0;
        # a message that is bad AND for an unknown instrument is still refused as bad.
        inst_id = item.get("instId") if type(item) is dict else None
        state = self.states.get(inst_id) if type(inst_id) is str else None
        try:
            tick = parse.parse_ticker(item, self.day_fields, state)
        except BadInput as exc:
            self.reject(exc.reason, exc.detail)
            return
        if state is None:
            self.reject("unknown_instrument", tick.inst_id)
            return
        if tick.ts < state.last_ts:
            self.reject("ts_backwards", tick.inst_id)
            return
        self.ticks += 1
        state.apply(tick)
        for evaluator in self.evaluators:
            try:
                found = evaluator.evaluate(state, tick)
            except BadInput as exc:  # a 24h field, parsed only when the price triggered
                self.reject(exc.reason, exc.detail)
                continue
            if not found:
                continue
            order_usdt = evaluator.params.order_usdt
            if isinstance(found, Candidate):
                self._buy(found, state, order_usdt, tick.ts)
            else:  # a batch: each candidate is its own instrument
                for cand in found:
                    self._buy(cand, self.states[cand.inst_id], order_usdt, tick.ts)
        held = self.positions.get(tick.inst_id)
        if held:
            for position in held:
                self._check_exit(position, state, tick.ts)

    def _on_candles(self, inst_id: Any, rows: list[Any]) -> None:
        state = self.states.get(inst_id) if type(inst_id) is str else None
        if state is None:
            self.reject("unknown_instrument", str(inst_id))
            return
        for row in rows:
            try:
                ts, open_px = parse.parse_candle(row)
            except BadInput as exc:
                self.reject(exc.reason, exc.detail)
                continue
            state.set_hour_open(ts // HOUR_MS, open_px, RANK_CANDLE)

    def seed_hour_open(self, inst_id: str, candle_ts: int, open_px: Decimal) -> None:
        """Take a REST 1H candle's open (the channel's open, when it came first, wins)."""
        with self.lock:
            state = self.states.get(inst_id)
            if state is not None:
                state.set_hour_open(candle_ts // HOUR_MS, open_px, RANK_REST)

    def reject(self, reason: str, detail: str = "") -> None:
        """Count bad input under ``reason`` and log it (rate-limited per reason)."""
        self.bad[reason] = self.bad.get(reason, 0) + 1
        self._warn(reason, "feed.bad_input", time.monotonic(), reason=reason, detail=detail)

    # Output --------------------------------------------------------------------------------

    def _buy(self, cand: Candidate, state: InstrumentState, order_usdt: Decimal, ts: int) -> None:
        state.fired[cand.strategy] = cand.bucket_key
        sized = size_order(
            state.rules,
            cand.px,
            order_usdt,
            fee_rate=self.fee_rate_bound,
            max_order_usdt=self.max_order_usdt,
        )
        signal_id = signal_id_for(cand.strategy, cand.inst_id, cand.bucket)
        if self.approach is not None:
            self.approach.fired(cand, ts, sized)
        if isinstance(sized, Unsizable):
            self.skipped[sized.reason] = self.skipped.get(sized.reason, 0) + 1
            log_event(
                "feed.buy_skipped",
                reason=sized.reason,
                signal_id=signal_id,
                px=cand.px,
                quote_sz=order_usdt,
                detail=sized.detail,
            )
            return
        signal = self._validated(
            lambda: BuySignal(
                v=1,
                kind="buy",
                signal_id=signal_id,
                strategy=cand.strategy,
                inst_id=cand.inst_id,
                px=sized.px,
                quote_sz=sized.quote_sz,
                created_at=ts,
                expires_at=ts + self.ttl_ms,
            )
        )
        if signal is None:
            return
        self.buys += 1
        log_event("feed.buy_signal", signal_id=signal_id, px=sized.px, quote_sz=sized.quote_sz)
        self.publish(signal)

    def _check_exit(self, position: Position, state: InstrumentState, now_ms: int) -> None:
        try:
            stop_loss_pct = self.config.params(position.strategy).stop_loss_pct
        except ConfigError:  # a strategy this build does not know: not ours to sell
            return
        found = self.exits.check(position, stop_loss_pct, state.last, state.bid, now_ms)
        if found is not None:
            self._sell(found, now_ms)

    def _sell(self, found: Exit, now_ms: int) -> None:
        stamp = time.strftime("%Y%m%d%H%M", time.gmtime(found.minute * 60))
        signal_id = signal_id_for(
            found.strategy, found.inst_id, f"lot{found.lot_id}-{found.reason}-{stamp}"
        )
        signal = self._validated(
            lambda: SellSignal(
                v=1,
                kind="sell",
                signal_id=signal_id,
                strategy=found.strategy,
                inst_id=found.inst_id,
                reason=found.reason,  # type: ignore[arg-type]
                created_at=now_ms,
                px=found.px,
            )
        )
        if signal is None:
            return
        self.sells += 1
        log_event("feed.sell_signal", signal_id=signal_id, reason=found.reason, px=found.px)
        self.publish(signal)

    def _validated(self, build: Callable[[], S]) -> S | None:
        """Build a signal; one the workers would refuse is counted as bad input, not sent."""
        try:
            return build()
        except pydantic.ValidationError as exc:
            self.reject("invalid_signal", str(exc.errors(include_url=False)[:1]))
            return None

    # Positions -----------------------------------------------------------------------------

    def set_positions(self, positions: Iterable[Position]) -> None:
        """Replace the view of open positions (a hint from the database)."""
        by_inst: dict[str, list[Position]] = {}
        for position in positions:
            by_inst.setdefault(position.inst_id, []).append(position)
        with self.lock:
            self.positions = {k: tuple(v) for k, v in by_inst.items()}
            self.exits.keep_only(p.lot_id for held in self.positions.values() for p in held)

    def check_time_exits(self, now_ms: int) -> None:
        """Check every held lot against ``now_ms`` (for instruments without recent ticks)."""
        with self.lock:
            for inst_id, held in self.positions.items():
                state = self.states.get(inst_id)
                if state is None:
                    continue
                for position in held:
                    self._check_exit(position, state, now_ms)

    def stats(self) -> Mapping[str, Any]:
        return {
            "ticks": self.ticks,
            "buys": self.buys,
            "sells": self.sells,
            "bad": {k: v for k, v in self.bad.items() if v},
            "skipped": dict(self.skipped),
        }

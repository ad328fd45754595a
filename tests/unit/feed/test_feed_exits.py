from dataclasses import dataclass
from decimal import Decimal

from feed_builders import T0, Harness, only

from worker.signals import SellSignal, parse_sell, to_message


@dataclass(frozen=True)
class Pos:
    inst_id: str
    strategy: str
    lot_id: int
    avg_px: Decimal
    size: Decimal
    opened_ms: int
    exit_after_ms: int


def pos(lot_id: int = 1, avg: str = "100", exit_after: int = T0 + 3_600_000) -> Pos:
    return Pos("BTC-USDT", "hourly_limit_ws", lot_id, Decimal(avg), Decimal("0.1"), T0, exit_after)


def harness() -> Harness:
    h = Harness(only("hourly_limit_ws", enabled=False))  # exits run for disabled strategies
    h.engine.set_positions([pos()])
    return h


def test_stop_loss_edge_and_px_is_best_bid() -> None:
    h = harness()
    assert h.tick("BTC-USDT", "95.01", T0 + 1, bidPx="95") == []
    [sig] = h.tick("BTC-USDT", "95", T0 + 2, bidPx="94.9")
    assert isinstance(sig, SellSignal)
    assert sig.reason == "stop_loss" and sig.px == Decimal("94.9")
    assert sig.signal_id == "hourly_limit_ws:BTC-USDT:lot1-stop_loss-202611290800"
    assert sig.created_at == T0 + 2
    assert parse_sell(to_message(sig)) == sig


def test_deduplicated_per_lot_per_minute() -> None:
    h = harness()
    assert len(h.tick("BTC-USDT", "90", T0 + 1)) == 1
    assert h.tick("BTC-USDT", "89", T0 + 59_999) == []
    [again] = h.tick("BTC-USDT", "89", T0 + 60_000)
    assert again.signal_id != h.signals[0].signal_id


def test_time_exit_from_ticks_and_from_the_clock() -> None:
    h = harness()
    assert h.tick("BTC-USDT", "100", T0 + 3_599_999) == []
    [sig] = h.tick("BTC-USDT", "100", T0 + 3_600_000)
    assert isinstance(sig, SellSignal) and sig.reason == "time_exit"
    h2 = harness()
    h2.engine.check_time_exits(T0 + 3_600_000)
    [sig2] = h2.signals
    assert isinstance(sig2, SellSignal) and sig2.reason == "time_exit" and sig2.px is None


def test_dedup_table_only_holds_open_lots() -> None:
    h = harness()
    h.engine.set_positions([pos(lot_id=i, avg="200") for i in range(100)])
    h.tick("BTC-USDT", "100", T0 + 1)
    assert len(h.signals) == 100 and len(h.engine.exits) == 100
    h.engine.set_positions([pos(lot_id=7, avg="200")])
    assert len(h.engine.exits) == 1
    h.engine.set_positions([])
    assert len(h.engine.exits) == 0 and h.engine.positions == {}

"""Market data: candle alignment, consistent 24h stats, seeded moves with drops, replay."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from simulator.candles import HOUR, bucket_start, is_bar
from simulator.config import SimConfig
from simulator.core import Simulator
from simulator.generator import Generator
from simulator.hub import Connection
from simulator.instruments import make_instrument
from simulator.replay import ReplayError, load_replay

T0 = 1_700_000_000_000  # 2023-11-14 22:13:20 UTC


def test_bucket_alignment() -> None:
    assert bucket_start("1H", T0) == T0 - T0 % HOUR
    minute = bucket_start("1m", T0 + 59_999)
    assert minute % 60_000 == 0 and minute <= T0 + 59_999 < minute + 60_000
    day_utc = bucket_start("1Dutc", T0)
    assert day_utc % (24 * HOUR) == 0
    assert bucket_start("1D", T0) == day_utc + 16 * HOUR  # 00:00 UTC+8 = 16:00 UTC
    assert is_bar("1H") and is_bar("6Hutc") and not is_bar("1h") and not is_bar("1Hutc")


def quiet_sim(**opts: Any) -> Simulator:
    base: dict[str, Any] = {
        "paused": True,
        "instruments": ("BTC-USDT", "ETH-USDT"),
        "warmup_hours": 3,
        "start_ms": T0,
    }
    base.update(opts)
    return Simulator(SimConfig.from_options(**base))


def test_24h_stats_stay_consistent_over_hours() -> None:
    sim = quiet_sim(step_seconds=10.0)
    for _ in range(12):
        sim.advance(600)
        t = sim.markets["BTC-USDT"].ticker()
        low, last, high = Decimal(t["low24h"]), Decimal(t["last"]), Decimal(t["high24h"])
        assert low <= last <= high
        assert low <= Decimal(t["open24h"]) <= high
        assert Decimal(t["bidPx"]) <= Decimal(t["askPx"])
        assert Decimal(t["volCcy24h"]) > 0 and Decimal(t["vol24h"]) > 0
        assert int(t["ts"]) == sim.clock.now_ms() - sim.clock.now_ms() % 10_000


def test_candles_are_built_from_ticks() -> None:
    sim = quiet_sim(step_seconds=10.0)
    sim.advance(2 * 3600)
    rows = sim.markets["BTC-USDT"].candles("1H").rows(100)
    assert len(rows) >= 5
    for row in rows:
        o, h, low, c = (Decimal(v) for v in row[1:5])
        assert low <= min(o, c) <= max(o, c) <= h
    starts = [int(r[0]) for r in rows]
    assert starts == sorted(starts, reverse=True)
    assert all(s % HOUR == 0 for s in starts)
    fives = sim.markets["BTC-USDT"].candles("5m").rows(3)
    assert len(fives) == 3 and int(fives[0][0]) - int(fives[1][0]) == 300_000


def test_same_seed_same_market() -> None:
    a, b = quiet_sim(seed=7), quiet_sim(seed=7)
    a.advance(300)
    b.advance(300)
    assert a.markets["ETH-USDT"].ticker() == b.markets["ETH-USDT"].ticker()
    c = quiet_sim(seed=8)
    c.advance(300)
    assert c.markets["ETH-USDT"].ticker()["last"] != a.markets["ETH-USDT"].ticker()["last"]


def test_generator_makes_single_drops_and_market_dumps() -> None:
    insts = [make_instrument(n) for n in ("BTC-USDT", "ETH-USDT", "SOL-USDT", "XRP-USDT")]
    gen = Generator(insts, 3, Decimal(5000), shock_rate_per_hour=0, dump_rate_per_hour=3600)
    gen.step(1.0)  # a dump is certain at this rate
    assert len(gen.shocks) >= 2
    for shock in gen.shocks.values():
        assert -0.0834 <= shock.depth <= -0.0304  # log(1 - 8 %) .. log(1 - 3 %)
    lone = Generator(insts[:1], 3, Decimal(5000), shock_rate_per_hour=3600, dump_rate_per_hour=0)
    start = lone.step(0.0)[0].last
    bottom = min(lone.step(1.0)[0].last for _ in range(300))
    assert bottom <= start * Decimal("0.975")
    for _ in range(6000):
        lone.shock_rate = 0
        tick = lone.step(1.0)[0]
    assert abs(tick.last / start - 1) < Decimal("0.03")  # recovered


def write_replay(path: Path) -> Path:
    lines = []
    for i in range(20):
        ts = T0 + i * 250
        ticker = {
            "instType": "SPOT", "instId": "BTC-USDT", "last": f"{30000 + i}.5", "lastSz": "0.1",
            "askPx": f"{30000 + i}.5", "askSz": "1", "bidPx": f"{30000 + i}.4", "bidSz": "1",
            "open24h": "29000", "high24h": "31000", "low24h": "28000", "volCcy24h": "1000000",
            "vol24h": "33", "ts": str(ts), "sodUtc0": "29500", "sodUtc8": "29600",
        }  # fmt: skip
        msg = {"arg": {"channel": "tickers", "instId": "BTC-USDT"}, "data": [ticker]}
        raw = json.dumps(msg, separators=(",", ":"))
        lines.append(json.dumps({"recv_ms": ts + 3, "msg": msg}) if i % 2 else raw)
    lines.insert(0, json.dumps({"event": "subscribe", "arg": {"channel": "tickers"}}))
    candle = ["1700000000000", "30000", "30010", "29990", "30005", "1", "30005", "30005", "0"]
    business = {"arg": {"channel": "candle1H", "instId": "BTC-USDT"}, "data": [candle]}
    lines.append(json.dumps({"recv_ms": T0 + 6000, "msg": business}))
    path.write_text("\n".join(lines) + "\n")
    return path


def replay_pushes(path: Path) -> list[str]:
    sim = Simulator(SimConfig.from_options(replay=path, speed=0))
    conn = Connection(path="public", conn_id="test")
    conn.subs[("tickers", "BTC-USDT", "")] = {"channel": "tickers", "instId": "BTC-USDT"}
    sim.hub.connections.add(conn)
    while sim.catch_up(budget=7):
        pass
    pushes = []
    while not conn.outbox.empty():
        item = conn.outbox.get_nowait()
        assert isinstance(item, str)
        pushes.append(item)
    return pushes


def test_replay_reads_raw_and_wrapped_lines(tmp_path: Path) -> None:
    events = load_replay(write_replay(tmp_path / "rec.jsonl"))
    assert [e.channel for e in events].count("tickers") == 20
    assert events[-1].channel == "candle1H" and events[-1].ts == T0 + 6000
    assert [e.ts for e in events] == sorted(e.ts for e in events)


def test_replay_is_deterministic_and_uses_recorded_time(tmp_path: Path) -> None:
    path = write_replay(tmp_path / "rec.jsonl")
    first, second = replay_pushes(path), replay_pushes(path)
    assert first == second and len(first) == 20
    assert json.loads(first[3])["data"][0]["last"] == "30003.5"
    sim = Simulator(SimConfig.from_options(replay=path, speed=0))
    while sim.catch_up(budget=100):
        pass
    assert sim.clock.now_ms() == T0 + 6000
    assert sim.markets["BTC-USDT"].ticker()["high24h"] == "31000"  # recorded stats
    assert sim.markets["BTC-USDT"].candles("1H").rows(1)[0][4] == "30005"
    assert sim.instruments["BTC-USDT"].tick_sz == Decimal("0.1")


def test_replay_at_real_speed_waits_for_the_clock(tmp_path: Path) -> None:
    sim = Simulator(SimConfig.from_options(replay=write_replay(tmp_path / "r.jsonl"), paused=True))
    sim.catch_up(budget=100)
    assert sim.status()["replayed"] == 0  # nothing is due before the clock moves
    assert sim.markets["BTC-USDT"].last == Decimal("30000.5")  # the first recorded price
    sim.advance(1.0)  # ticks at +0, +250, +500, +750 ms
    assert sim.markets["BTC-USDT"].last == Decimal("30003.5")


def test_bad_replay_file_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n")
    with pytest.raises(ReplayError, match=r"bad\.jsonl:1"):
        load_replay(bad)

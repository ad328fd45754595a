"""The feed daemon against a real websocket server on 127.0.0.1."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from fake_okx import wait_for
from feed_harness import HOUR, INSTRUMENTS, T0, Running, candle, ticker

from feed.engine import Engine
from feed.record import read_recording, replay
from worker.domain.money import InstrumentRules
from worker.signals import BuySignal, SellSignal, to_message

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def hourly(tmp_path: Path) -> Iterator[Running]:
    run = Running(tmp_path, "hourly_limit_ws", record=str(tmp_path / "rec.jsonl"))
    wait_for(lambda: run.engine.states["BTC-USDT"].hour_open is not None, what="REST seed")
    yield run
    run.close()


def ids(signals: list[BuySignal | SellSignal]) -> list[str]:
    return [s.signal_id for s in signals]


def test_ready_is_logged_once_subscribed(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="limitflow.feed"):
        run = Running(tmp_path, "hourly_limit_ws")
        try:
            assert run.server.subscribed == {"public": 3, "business": 3}
        finally:
            run.close()
    ready = [r for r in caplog.records if r.getMessage() == "feed.ready"]
    assert len(ready) == 1
    assert ready[0].lf_fields["instruments"] == 3  # type: ignore[attr-defined]


def test_a_drop_buys_once_per_bucket_and_a_small_one_does_not(hourly: Running) -> None:
    s = hourly.server
    s.push("public", ticker("BTC-USDT", "97.01", T0 + 1), ticker("ETH-USDT", "98", T0 + 1))
    s.push("public", ticker("BTC-USDT", "97", T0 + 2), ticker("BTC-USDT", "96", T0 + 3))
    s.push("public", ticker("BTC-USDT", "97", T0 + 1), ticker("BTC-USDT", "95", T0 + 4))
    hourly.wait_ticks(5)  # the sixth went backwards in time
    assert ids(hourly.signals) == ["hourly_limit_ws:BTC-USDT:2026112908"]
    [sig] = hourly.signals
    assert to_message(sig)["px"] == "97" and to_message(sig)["created_at"] == T0 + 2
    # The next hour's candle arrives on the business connection: a new bucket.
    s.push("business", candle("BTC-USDT", T0 + HOUR, "100"))
    wait_for(lambda: hourly.engine.states["BTC-USDT"].hour_idx == (T0 + HOUR) // HOUR)
    s.push("public", ticker("BTC-USDT", "96.5", T0 + HOUR + 1))
    wait_for(lambda: len(hourly.signals) == 2)
    assert ids(hourly.signals)[1] == "hourly_limit_ws:BTC-USDT:2026112909"
    assert hourly.engine.bad["ts_backwards"] == 1


@pytest.mark.parametrize("failure", ["drop", "notice", "silence"])
def test_reconnects_resubscribes_and_loses_or_repeats_nothing(
    hourly: Running, failure: str
) -> None:
    s = hourly.server
    s.push("public", ticker("BTC-USDT", "96", T0 + 10))
    wait_for(lambda: len(hourly.signals) == 1)
    if failure == "drop":
        s.drop("public")
    elif failure == "notice":
        s.push("public", {"event": "notice", "code": "64008", "msg": "upgrade", "connId": "a"})
    else:
        s.answer_pings = False
    hourly.wait_resubscribed("public", 2)
    s.answer_pings = True
    conn = next(c for c in hourly.feed.connections if c.name == "public-0")
    expected = {"drop": "closed", "notice": "notice", "silence": "pong_timeout"}[failure]
    assert conn.reconnect_reasons == {expected: 1}
    if failure == "silence":
        assert s.pings >= 1
    wait_for(lambda: s.open_connections("public") == 1, what="old connection gone")
    # Same bucket again: no duplicate. Another instrument: not lost.
    s.push("public", ticker("BTC-USDT", "95", T0 + 20), ticker("ETH-USDT", "96", T0 + 21))
    wait_for(lambda: len(hourly.signals) >= 2)
    hourly.wait_ticks(3)
    assert ids(hourly.signals) == [
        "hourly_limit_ws:BTC-USDT:2026112908",
        "hourly_limit_ws:ETH-USDT:2026112908",
    ]


def test_business_connection_reconnects_too(hourly: Running) -> None:
    hourly.server.drop("business")
    hourly.wait_resubscribed("business", 2)
    hourly.server.push("business", candle("SOL-USDT", T0, "200"))
    wait_for(lambda: hourly.engine.states["SOL-USDT"].hour_open == 200)


def test_replaying_a_recording_gives_the_same_signals_twice(hourly: Running) -> None:
    s = hourly.server
    s.push("public", "not json {", ticker("BTC-USDT", "96", T0 + 1))
    s.push("business", candle("ETH-USDT", T0, "50"))
    wait_for(lambda: hourly.engine.states["ETH-USDT"].hour_open == 50)
    s.push("public", ticker("ETH-USDT", "48", T0 + 2), ticker("SOL-USDT", "90", T0 + 3))
    wait_for(lambda: len(hourly.signals) == 3)
    live = ids(hourly.signals)
    assert hourly.feed.recorder is not None
    hourly.feed.recorder.flush()
    path = Path(hourly.feed.recorder._file.name)
    lines = list(read_recording(path))
    assert any(msg == "not json {" for _, msg in lines)
    assert all(isinstance(recv_ms, int) for recv_ms, _ in lines)

    def once() -> list[str]:
        out: list[BuySignal | SellSignal] = []
        rules = [
            InstrumentRules(
                i["instId"],
                Decimal(i["tickSz"]),
                Decimal(i["lotSz"]),
                Decimal(i["minSz"]),
                i["baseCcy"],
                "USDT",
            )
            for i in INSTRUMENTS
        ]
        engine = Engine(rules, hourly.settings.strategies, out.append)
        # The REST seed is not in the recording; give the replay the same start-up state.
        for r in rules:
            engine.seed_hour_open(r.inst_id, T0, Decimal("100"))
        replay(path, engine)
        return ids(out)

    assert once() == once() == live


def test_ten_thousand_malformed_frames_do_not_stop_good_ones(tmp_path: Path) -> None:
    run = Running(tmp_path, "original_gap")
    try:
        bad = [
            "garbage",
            '{"arg": {"channel": "tickers"}, "data": [{"instId": "BTC-USDT", "last": "x"}]}',
            '{"arg": {"channel": "tickers"}, "data": [{"instId": "NOPE-USDT", "last": "1",'
            ' "ts": "1"}]}',
            '{"arg": {"channel": "tickers"}, "data": [{"instId": "BTC-USDT", "last": "-1",'
            ' "ts": "1"}]}',
            "[]",
        ]
        windows = 50
        for w in range(windows):
            base = T0 + w * 60_000
            frames: list[object] = [bad[(w * 200 + k) % 5] for k in range(100)]
            frames.append(ticker("BTC-USDT", "100", base + 1))
            frames += [bad[(w * 200 + 100 + k) % 5] for k in range(100)]
            frames.append(ticker("BTC-USDT", "97", base + 2))
            run.server.push("public", *frames)
        run.wait_ticks(2 * windows)
        assert len(run.signals) == windows
        assert len(set(ids(run.signals))) == windows
        assert sum(run.engine.bad.values()) == 10_000
        assert run.server.connects["public"] == 1  # never dropped
    finally:
        run.close()

import logging

import orjson
import pytest
from feed_builders import T0, Harness, candle, ticker

from worker.strategy_config import parse_strategy_config


def harness() -> Harness:
    # Stable on too, so the 24h fields are read (they are skipped when nothing needs them).
    config = parse_strategy_config(
        {"original_gap": {"enabled": False}, "batch_buy_ws": {"enabled": False}}
    )
    h = Harness(config)
    h.candle("BTC-USDT", T0, "100")
    return h


def item(**fields: object) -> bytes:
    base: dict[str, object] = {"instId": "BTC-USDT", "last": "90", "ts": str(T0 + 1)}
    base.update(fields)
    data = {k: v for k, v in base.items() if v is not None}
    return orjson.dumps({"arg": {"channel": "tickers"}, "data": [data]})


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{not json", "malformed_json"),
        (b"", "malformed_json"),
        (b"\xff\xfe", "malformed_json"),
        (b"[1, 2]", "not_object"),
        (b'{"arg": {"channel": "tickers"}}', "unknown_message"),
        (b'{"arg": {"channel": "books"}, "data": []}', "unknown_message"),
        (b'{"arg": {"channel": "tickers"}, "data": [7]}', "not_object"),
        (item(last=None), "missing_field"),
        (item(instId=None), "missing_field"),
        (item(ts=None), "missing_field"),
        (item(last="abc"), "bad_number"),
        (item(last="NaN"), "bad_number"),
        (item(last="Infinity"), "bad_number"),
        (item(last=True), "bad_number"),
        (item(last=[90]), "bad_number"),
        (item(last="0"), "non_positive"),
        (item(last="-1"), "non_positive"),
        (item(bidPx="-1"), "non_positive"),
        (item(ts="soon"), "bad_ts"),
        (item(ts="-5"), "bad_ts"),
        (item(instId="NOPE-USDT"), "unknown_instrument"),
        (candle("NOPE-USDT", T0, "1"), "unknown_instrument"),
        (
            orjson.dumps({"arg": {"channel": "candle1H", "instId": "BTC-USDT"}, "data": [[1]]}),
            "missing_field",
        ),
    ],
)
def test_bad_input_is_counted_without_signal(raw: bytes, reason: str) -> None:
    h = harness()
    assert h.engine.handle_raw(raw) is None
    assert h.engine.bad[reason] == 1
    assert sum(h.engine.bad.values()) == 1
    assert h.signals == []


def test_a_bad_24h_field_is_counted_when_stable_needs_it_and_spoils_nothing_else() -> None:
    # The 24h statistics are parsed only once Stable's price trigger is reached.
    day = {"sodUtc0": "100", "high24h": "101", "low24h": "99"}
    h = harness()
    signals = h.engine.handle_raw(item(last="97", volCcy24h="x", **day))
    assert signals is None
    assert h.engine.bad["bad_number"] == 1
    # Hourly (3 % under its 100 open) still bought on the same, otherwise good, tick.
    assert [s.strategy for s in h.signals] == ["hourly_limit_ws"]
    h2 = harness()
    h2.engine.handle_raw(item(last="99.9", volCcy24h="x", **day))  # Stable not triggered
    assert sum(h2.engine.bad.values()) == 0 and h2.signals == []


def test_timestamps_going_backwards_are_refused() -> None:
    h = harness()
    h.tick("BTC-USDT", "99", T0 + 1000)
    assert h.tick("BTC-USDT", "90", T0 + 999) == []
    assert h.engine.bad["ts_backwards"] == 1
    assert len(h.tick("BTC-USDT", "90", T0 + 1000)) == 1  # equal timestamps are fine


def test_events_are_handed_back_to_the_connection() -> None:
    h = harness()
    event = {"event": "error", "code": "60012", "msg": "bad"}
    assert h.engine.handle_raw(orjson.dumps(event)) == event
    assert sum(h.engine.bad.values()) == 0


def test_bad_input_logs_are_rate_limited(caplog: pytest.LogCaptureFixture) -> None:
    h = harness()
    with caplog.at_level(logging.WARNING, logger="limitflow.feed"):
        for _ in range(1000):
            h.engine.handle_raw(b"{oops")
    assert h.engine.bad["malformed_json"] == 1000
    assert len([r for r in caplog.records if r.getMessage() == "feed.bad_input"]) == 1


def test_good_ticks_still_work_between_bad_ones() -> None:
    h = harness()
    for i in range(500):
        h.engine.handle_raw(b"garbage")
        h.engine.handle_raw(ticker("BTC-USDT", "abc", T0 + i))
    assert len(h.tick("BTC-USDT", "96", T0 + 600)) == 1
    assert h.engine.bad["malformed_json"] == 500 and h.engine.bad["bad_number"] == 500

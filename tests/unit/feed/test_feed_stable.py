from feed_builders import HOUR, T0, Harness, only

CALM = {"sodUtc0": "100", "high24h": "103", "low24h": "100", "volCcy24h": "2000000"}


def harness() -> Harness:
    return Harness(only("stable_buy_ws"))  # range 0.06, volume 1e6, drop 0.015


def test_dip_below_day_open_in_calm_market_buys_at_the_limit() -> None:
    h = harness()
    assert h.tick("BTC-USDT", "98.6", T0, **CALM) == []  # just above 98.5
    [sig] = h.tick("BTC-USDT", "98.5", T0 + 1, **CALM)
    assert str(sig.px) == "98.5"
    assert sig.signal_id == "stable_buy_ws:BTC-USDT:20261129"


def test_range_edge() -> None:
    h = harness()
    at_edge = {**CALM, "high24h": "106"}  # exactly 0.06
    assert len(h.tick("BTC-USDT", "98", T0, **at_edge)) == 1
    h2 = harness()
    wide = {**CALM, "high24h": "106.01"}
    assert h2.tick("BTC-USDT", "98", T0, **wide) == []


def test_volume_edge() -> None:
    h = harness()
    assert len(h.tick("BTC-USDT", "98", T0, **{**CALM, "volCcy24h": "1000000"})) == 1
    h2 = harness()
    assert h2.tick("BTC-USDT", "98", T0, **{**CALM, "volCcy24h": "999999.99"}) == []


def test_missing_day_fields_never_buy() -> None:
    h = harness()
    assert h.tick("BTC-USDT", "50", T0) == []


def test_one_buy_per_utc_day() -> None:
    h = harness()
    assert len(h.tick("BTC-USDT", "98", T0, **CALM)) == 1
    end_of_day = T0 + 16 * HOUR - 1  # T0 is 08:00 UTC
    assert h.tick("BTC-USDT", "97", end_of_day, **CALM) == []
    [sig] = h.tick("BTC-USDT", "97", end_of_day + 1, **CALM)
    assert sig.signal_id.endswith(":20261130")


def test_a_new_day_open_is_taken_at_once() -> None:
    """The parsed sodUtc0 is remembered per instrument only while its text is unchanged."""
    h = harness()
    assert h.tick("BTC-USDT", "98.6", T0, **CALM) == []
    moved = {**CALM, "sodUtc0": "101", "high24h": "104", "low24h": "101"}  # limit 99.485
    [sig] = h.tick("BTC-USDT", "99.4", T0 + 1, **moved)  # below 99.485, not below 98.5
    assert str(sig.px) == "99.4"  # 99.485 rounded down to the 0.1 tick
    h2 = harness()
    assert h2.tick("BTC-USDT", "98.6", T0, **CALM) == []
    assert h2.tick("BTC-USDT", "98.6", T0 + 1, **{**CALM, "sodUtc0": "not a number"}) == []
    assert h2.engine.bad["bad_number"] == 1  # refused, not mistaken for the remembered one

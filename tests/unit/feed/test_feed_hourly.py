from decimal import Decimal

from feed_builders import HOUR, T0, Harness, only, rules

from worker.signals import BuySignal, parse_buy, to_message


def harness(**params: object) -> Harness:
    return Harness(only("hourly_limit_ws", **params))


def test_bucket_time_is_the_utc_hour() -> None:
    h = harness()
    h.candle("BTC-USDT", T0, "100")
    [sig] = h.tick("BTC-USDT", "97", T0 + 5)
    assert sig.signal_id == "hourly_limit_ws:BTC-USDT:2026112908"


def test_just_above_the_threshold_does_not_buy_and_at_it_does() -> None:
    h = harness()
    h.candle("BTC-USDT", T0, "100")
    assert h.tick("BTC-USDT", "97.1", T0 + 1) == []
    assert h.tick("BTC-USDT", "97.00000001", T0 + 2) == []
    [sig] = h.tick("BTC-USDT", "97", T0 + 3)
    assert isinstance(sig.px, Decimal) and sig.px == Decimal("97")


def test_limit_price_is_the_threshold_rounded_down_to_tick_size() -> None:
    h = Harness(only("hourly_limit_ws"), rules(tick="0.1"))
    h.candle("BTC-USDT", T0, "100.05")  # threshold 97.0485 -> 97.0
    [sig] = h.tick("BTC-USDT", "90", T0 + 1)
    assert sig.px == Decimal("97")
    assert sig.quote_sz == Decimal("10")  # type: ignore[union-attr]


def test_signal_message_is_valid_and_expires_after_the_ttl() -> None:
    h = harness()
    h.candle("BTC-USDT", T0, "100")
    [sig] = h.tick("BTC-USDT", "96", T0 + 7)
    msg = to_message(sig)
    assert msg["created_at"] == T0 + 7 and msg["expires_at"] == T0 + 7 + 10_000
    assert msg["quote_sz"] == "10" and msg["px"] == "97"
    assert parse_buy(msg) == sig


def test_one_buy_per_hour_and_again_next_hour() -> None:
    h = harness()
    h.candle("BTC-USDT", T0, "100")
    assert len(h.tick("BTC-USDT", "96", T0 + 1)) == 1
    assert h.tick("BTC-USDT", "95", T0 + 2) == []
    assert h.tick("BTC-USDT", "96", T0 + 2) == []  # a repeated tick
    assert h.tick("BTC-USDT", "96", T0 + HOUR - 1) == []
    # Next hour: no candle yet, the first tick (96) becomes the open.
    assert h.tick("BTC-USDT", "96", T0 + HOUR) == []
    [sig] = h.tick("BTC-USDT", "93.12", T0 + HOUR + 1)
    assert sig.signal_id.endswith(":2026112909")
    assert sig.px == Decimal("93.1")  # 96 * 0.97 = 93.12 -> tick 0.1


def test_candle_channel_wins_over_rest_and_first_tick() -> None:
    h = harness()
    h.engine.seed_hour_open("BTC-USDT", T0, Decimal("100"))
    h.candle("BTC-USDT", T0, "110")
    h.engine.seed_hour_open("BTC-USDT", T0, Decimal("100"))  # REST late: candle still wins
    [sig] = h.tick("BTC-USDT", "106.7", T0 + 1)  # 110 * 0.97 = 106.7
    assert sig.px == Decimal("106.7")


def test_rest_open_replaces_the_first_tick_fallback() -> None:
    h = harness()
    assert h.tick("BTC-USDT", "90", T0 + 1) == []  # fallback open = 90
    h.engine.seed_hour_open("BTC-USDT", T0, Decimal("100"))
    [sig] = h.tick("BTC-USDT", "90", T0 + 2)
    assert sig.px == Decimal("97")


def test_candle_of_a_past_hour_is_ignored() -> None:
    h = harness()
    h.candle("BTC-USDT", T0, "100")
    h.candle("BTC-USDT", T0 - HOUR, "200")
    assert h.tick("BTC-USDT", "98", T0 + 1) == []


def test_order_below_min_size_is_skipped_and_counted() -> None:
    h = Harness(only("hourly_limit_ws", order_usdt="10"), rules(lot="1", min_sz="1"))
    h.candle("BTC-USDT", T0, "100")
    assert h.tick("BTC-USDT", "90", T0 + 1) == []  # 10 / 97 = 0.10 -> 0 lots < minSz 1
    assert h.engine.skipped["below_min_size"] == 1
    assert h.tick("BTC-USDT", "89", T0 + 2) == []
    assert h.engine.skipped["below_min_size"] == 1  # once per bucket


def test_a_buy_that_would_net_less_than_min_size_is_skipped() -> None:
    # 10 USDT at 97 -> 0.10309 -> lotSz 0.1 -> 0.1 == minSz, but the fee is taken in the base
    # currency: it would net 0.0999, no lot at all.
    h = Harness(only("hourly_limit_ws"), rules(lot="0.1", min_sz="0.1"))
    h.candle("BTC-USDT", T0, "100")
    assert h.tick("BTC-USDT", "90", T0 + 1) == []
    assert h.engine.skipped["below_min_size"] == 1
    # 20 USDT buys 0.2, which nets 0.1998: one sellable lot of 0.1.
    h2 = Harness(only("hourly_limit_ws", order_usdt="20"), rules(lot="0.1", min_sz="0.1"))
    h2.candle("BTC-USDT", T0, "100")
    [sig] = h2.tick("BTC-USDT", "90", T0 + 1)
    assert isinstance(sig, BuySignal) and (sig.px, sig.quote_sz) == (Decimal("97"), 20)


def test_the_feed_sizes_with_the_workers_fee_bound_and_order_cap() -> None:
    no_fee = Harness(only("hourly_limit_ws"), rules(lot="0.1", min_sz="0.1"), fee_rate_bound=0)
    no_fee.candle("BTC-USDT", T0, "100")
    assert len(no_fee.tick("BTC-USDT", "90", T0 + 1)) == 1  # 0.1 nets 0.1
    # The smallest sellable buy (0.2 at 97 = 19.4 USDT) is over MAX_ORDER_USDT: skipped.
    capped = Harness(
        only("hourly_limit_ws", order_usdt="20"),
        rules(lot="0.1", min_sz="0.1"),
        max_order_usdt=Decimal("15"),
    )
    capped.candle("BTC-USDT", T0, "100")
    assert capped.tick("BTC-USDT", "90", T0 + 1) == []
    assert capped.engine.skipped["below_min_size"] == 1
    # A sellable order that is merely too big is the workers' to refuse (and record).
    big = Harness(only("hourly_limit_ws", order_usdt="200"), max_order_usdt=Decimal("100"))
    big.candle("BTC-USDT", T0, "100")
    assert len(big.tick("BTC-USDT", "90", T0 + 1)) == 1


def test_disabled_strategy_never_fires() -> None:
    h = Harness(only("original_gap", enabled=False))
    h.candle("BTC-USDT", T0, "100")
    assert h.tick("BTC-USDT", "50", T0 + 1) == []


def test_first_tick_after_start_up_is_not_taken_as_the_hour_open() -> None:
    h = harness()
    h.tick("BTC-USDT", "100", T0 + 1_800_000)  # started mid-hour: the open is unknown
    assert h.tick("BTC-USDT", "90", T0 + 1_800_001) == []
    assert h.engine.states["BTC-USDT"].hour_open is None

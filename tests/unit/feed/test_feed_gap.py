from decimal import Decimal

from feed_builders import T0, Harness, only

from feed.strategies.gap import SLOTS, GapWindow


def harness(**params: object) -> Harness:
    return Harness(only("original_gap", **params))


def test_drop_from_trailing_high_buys_at_last() -> None:
    h = harness()  # 60 s, 2 %
    assert h.tick("BTC-USDT", "100", T0 + 1_000) == []
    assert h.tick("BTC-USDT", "98.01", T0 + 2_000) == []  # just above 98
    [sig] = h.tick("BTC-USDT", "98", T0 + 3_000)
    assert sig.px == Decimal("98")
    assert sig.signal_id == "original_gap:BTC-USDT:20261129T080000w60"


def test_high_older_than_the_window_does_not_count() -> None:
    h = harness()
    h.tick("BTC-USDT", "100", T0 + 1_000)
    h.tick("BTC-USDT", "99.5", T0 + 2_000)
    # 100 left the trailing 60 s; 99.5 * 0.98 = 97.51 is the new bar.
    assert h.tick("BTC-USDT", "97.6", T0 + 61_500) == []
    [sig] = h.tick("BTC-USDT", "97.5", T0 + 61_600)
    assert sig.signal_id.endswith("T080100w60")


def test_one_buy_per_epoch_aligned_window() -> None:
    h = harness()
    h.tick("BTC-USDT", "100", T0 + 10_000)
    assert len(h.tick("BTC-USDT", "97", T0 + 20_000)) == 1
    assert h.tick("BTC-USDT", "96", T0 + 59_999) == []  # same window 08:00:00-08:01:00
    h.tick("BTC-USDT", "100", T0 + 60_000)
    assert len(h.tick("BTC-USDT", "97", T0 + 60_001)) == 1  # next window


def test_window_length_from_config() -> None:
    h = harness(gap_window_seconds=10, gap_pct="0.05")
    h.tick("BTC-USDT", "100", T0 + 1_000)
    assert h.tick("BTC-USDT", "94", T0 + 12_000) == []  # high left the 10 s window
    h.tick("BTC-USDT", "100", T0 + 13_000)
    [sig] = h.tick("BTC-USDT", "95", T0 + 14_000)
    assert sig.signal_id.endswith("T080010w10")


def test_window_maximum_is_exact_and_bounded() -> None:
    window = GapWindow(60_000)
    assert window.push(0, Decimal(5)) == Decimal(5)
    assert window.push(10, Decimal(7)) == Decimal(7)
    assert window.push(20, Decimal(6)) == Decimal(7)
    assert window.push(30_000, Decimal(2)) == Decimal(7)
    assert window.push(60_200, Decimal(1)) == Decimal(2)  # 7 and 6 left the window
    # A long fall is the worst case for a monotonic deque: it stays bounded by the slots.
    big = GapWindow(60_000)
    for i in range(200_000):
        big.push(i * 5, Decimal(1_000_000 - i))
    assert len(big) <= SLOTS + 2


def test_window_maximum_matches_brute_force() -> None:
    import random

    rng = random.Random(7)
    window = GapWindow(1_000)
    history: list[tuple[int, Decimal]] = []
    ts = 0
    for _ in range(5_000):
        ts += rng.randint(0, 40)
        px = Decimal(rng.randint(1, 1000))
        history.append((ts, px))
        got = window.push(ts, px)
        exact = max(p for t, p in history if t > ts - 1_000)
        loose = max(p for t, p in history if t > ts - 1_000 - window.slot_ms)
        assert exact <= got <= loose


def test_a_price_leaves_the_window_after_exactly_the_window() -> None:
    window = GapWindow(512_000)  # 512 slots of one second
    window.push(0, Decimal(7))
    assert window.push(511_999, Decimal(1)) == Decimal(7)  # still inside
    assert window.push(512_000, Decimal(1)) == Decimal(1)  # 7 is one window old: gone


def test_a_high_is_forgotten_within_one_slot_after_the_window() -> None:
    h = harness()  # 60 s: slots of 117 ms
    start = T0 - T0 % 117  # the start of a slot
    h.tick("BTC-USDT", "100", start)
    # One window and one slot later 100 is gone: 97 is measured against itself.
    assert h.tick("BTC-USDT", "97", start + 60_000 + 117) == []


def test_a_flat_market_keeps_one_entry() -> None:
    window = GapWindow(60_000)
    for i in range(1_000):
        assert window.push(i * 50, Decimal(3)) == Decimal(3)
    assert len(window) == 1

"""The keepalive both websocket clients share: ping on silence either way, give up on no pong."""

from __future__ import annotations

from worker.exchange.okx.keepalive import PING, Keepalive, ReconnectWatch


def test_a_connection_that_only_listens_still_pings_every_20_seconds() -> None:
    """The feed receives all the time and sends nothing: OKX would close it after 30 s."""
    ka = Keepalive(20.0, 10.0, now=0.0)
    pings = []
    t = 0.0
    while t < 65.0:
        ka.received(t)  # a ticker every 100 ms
        if ka.check(t) == PING:
            pings.append(t)
            ka.sent(t)
        t = round(t + 0.1, 1)
    assert pings == [20.0, 40.0, 60.0]


def test_a_silent_connection_pings_then_gives_up_without_an_answer() -> None:
    ka = Keepalive(20.0, 10.0, now=0.0)
    assert ka.check(19.9) is None
    assert ka.check(20.0) == PING
    ka.sent(20.0)
    assert ka.check(29.9) is None
    assert ka.check(30.0) == "dead"


def test_any_frame_answers_a_ping() -> None:
    ka = Keepalive(20.0, 10.0, now=0.0)
    assert ka.check(20.0) == PING
    ka.sent(20.0)
    ka.received(21.0)  # "pong", or a push
    assert ka.check(35.0) is None
    assert ka.check(40.0) == PING  # 20 s after the ping was sent


def test_sending_something_postpones_the_ping_only_while_frames_also_arrive() -> None:
    ka = Keepalive(20.0, 10.0, now=0.0)
    ka.sent(15.0)  # a subscribe request; nothing received since 0
    assert ka.check(20.0) == PING  # received nothing for 20 s: ping anyway


def test_reconnects_in_a_loop_are_reported_once_per_window() -> None:
    watch = ReconnectWatch(threshold=3, window=60.0)
    notes = [watch.note(t) for t in (0.0, 10.0, 20.0, 30.0, 75.0, 81.0)]
    # The third within 60 s is a loop; the next report comes 60 s after the first.
    assert notes == [False, False, True, False, False, True]
    assert watch.recent(81.0) == 3
    sparse = ReconnectWatch(threshold=3, window=60.0)
    assert not any(sparse.note(t) for t in (0.0, 100.0, 200.0, 300.0))

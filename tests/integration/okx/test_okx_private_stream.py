"""The private ``orders`` consumer against a local websocket server."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from okx_fixtures_path import LIVE_PUSH_ITEM, ORDERS_PUSH
from okx_testserver import CREDENTIALS, KEY, FakeOkx

from worker.app import APPLY_ORDER_UPDATE, SYNC_ACTIVE_ORDERS
from worker.exchange.okx.parse import parse_order
from worker.exchange.okx.private_stream import OrdersStream, Timing
from worker.exchange.okx.signing import ws_login_signature
from worker.exchange.port import snapshot_to_message

FAST = Timing(
    ping_after=0.2,
    pong_timeout=0.2,
    poll=0.02,
    connect_timeout=2.0,
    reply_timeout=2.0,
    backoff_base=0.05,
    backoff_max=0.2,
)
WALL = 1_700_000_000.0


class Recorder:
    """A ``publish`` callable that remembers what it was given."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[object]]] = []
        self.fail_next = 0
        self._cond = threading.Condition()

    def __call__(self, name: str, args: list[object]) -> None:
        with self._cond:
            if self.fail_next:
                self.fail_next -= 1
                raise ConnectionError("broker down")
            self.calls.append((name, args))
            self._cond.notify_all()

    def named(self, name: str) -> list[list[object]]:
        with self._cond:
            return [args for n, args in self.calls if n == name]


def wait_for(predicate: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


def start(
    fake: FakeOkx, recorder: Recorder, timing: Timing = FAST
) -> tuple[OrdersStream, threading.Thread]:
    stream = OrdersStream(
        fake.ws_url,
        CREDENTIALS,
        recorder,
        timing=timing,
        wall_clock=lambda: WALL,
        rng=lambda: 0.0,
    )
    thread = threading.Thread(target=stream.run, daemon=True)
    thread.start()
    return stream, thread


@pytest.fixture
def running(fake: FakeOkx, recorder: Recorder) -> Iterator[OrdersStream]:
    stream, thread = start(fake, recorder)
    assert stream.ready.wait(3)
    yield stream
    stream.stop()
    thread.join(3)
    assert not thread.is_alive()


def test_logs_in_subscribes_and_reports_ready(
    fake: FakeOkx, recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="limitflow.orders_stream"):
        stream, thread = start(fake, recorder)
        assert stream.ready.wait(3)
        stream.stop()
        thread.join(3)
    (login,) = fake.ws.logins
    assert login["apiKey"] == KEY
    assert login["timestamp"] == "1700000000"  # epoch seconds, not the REST format
    assert login["sign"] == ws_login_signature("test-secret-456", "1700000000")
    assert fake.ws.subscribes == [{"channel": "orders", "instType": "SPOT"}]
    ready = [r for r in caplog.records if r.getMessage() == "orders_stream.ready"]
    assert len(ready) == 1
    # Pushes sent before we connected are lost too: even the first connection asks for one.
    assert recorder.calls == [(SYNC_ACTIVE_ORDERS, [])]
    assert "test-secret-456" not in caplog.text and "test-pass-789" not in caplog.text


def test_the_first_connection_asks_for_a_reconciliation_too(
    fake: FakeOkx, recorder: Recorder, running: OrdersStream
) -> None:
    """Orders that changed while no stream listened (a restart, a first start after an outage)
    were never pushed: reconciliation must catch up on the first connection as well."""
    assert recorder.named(SYNC_ACTIVE_ORDERS) == [[]]  # sent before ``ready``
    assert fake.ws.connections == 1


def test_push_becomes_one_apply_order_update(
    fake: FakeOkx, recorder: Recorder, running: OrdersStream
) -> None:
    fake.push(ORDERS_PUSH)
    fake.push(ORDERS_PUSH)  # a repeated push: the fill must be enqueued once
    fake.push({"arg": ORDERS_PUSH["arg"], "data": [LIVE_PUSH_ITEM]})
    wait_for(lambda: len(recorder.named(APPLY_ORDER_UPDATE)) >= 2)
    time.sleep(0.1)
    updates = recorder.named(APPLY_ORDER_UPDATE)
    assert updates == [
        [snapshot_to_message(parse_order(ORDERS_PUSH["data"][0]))],
        [snapshot_to_message(parse_order(LIVE_PUSH_ITEM))],
    ]
    message = updates[0][0]
    assert isinstance(message, dict)
    assert message["state"] == "filled" and message["fee"] == "0.02522168"
    assert message["fill"] == {
        "trade_id": "242589207",
        "px": "31527.1",
        "sz": "0.001",
        "fee": "0.02522168",
        "fee_ccy": "USDT",
        "ts_ms": 1654084353263,
    }


def test_bad_order_item_is_skipped_not_fatal(
    fake: FakeOkx, recorder: Recorder, running: OrdersStream
) -> None:
    bad = {**LIVE_PUSH_ITEM, "state": "exploded"}
    fake.push({"arg": ORDERS_PUSH["arg"], "data": [bad, LIVE_PUSH_ITEM]})
    wait_for(lambda: len(recorder.named(APPLY_ORDER_UPDATE)) == 1)
    assert fake.ws.connections == 1


def test_a_frame_that_is_not_json_is_skipped_not_fatal(
    fake: FakeOkx, recorder: Recorder, running: OrdersStream, caplog: pytest.LogCaptureFixture
) -> None:
    """Frames are read as bytes and left to the JSON parser, which refuses bytes that are not
    UTF-8: such a frame is logged and skipped like any other bad frame, on the same link."""
    caplog.set_level(logging.WARNING, logger="limitflow.orders_stream")
    fake.push_raw(b'{"arg": {"channel": "orders"}, "data": ["\xff\xfe"]}')  # not UTF-8
    fake.push_raw(b"\xc3\x28 not even json")
    fake.push_raw(b"[1, 2, 3]", binary=True)
    fake.push({"arg": ORDERS_PUSH["arg"], "data": [LIVE_PUSH_ITEM]})
    wait_for(lambda: len(recorder.named(APPLY_ORDER_UPDATE)) == 1)
    assert recorder.named(APPLY_ORDER_UPDATE) == [
        [snapshot_to_message(parse_order(LIVE_PUSH_ITEM))]
    ]
    assert fake.ws.connections == 1
    bad = [r for r in caplog.records if "orders_stream.bad_frame" in r.getMessage()]
    assert len(bad) == 2, [r.getMessage() for r in caplog.records]


def test_pings_after_silence_and_stays_connected_on_pong(
    fake: FakeOkx, recorder: Recorder, running: OrdersStream
) -> None:
    wait_for(lambda: fake.ws.pings >= 2)
    assert fake.ws.connections == 1
    assert recorder.named(SYNC_ACTIVE_ORDERS) == [[]]  # the first connection's only


def test_missing_pong_reconnects_and_requests_a_sync(
    fake: FakeOkx, recorder: Recorder, running: OrdersStream
) -> None:
    fake.ws.pong = False
    wait_for(lambda: fake.ws.connections >= 2)
    wait_for(lambda: len(recorder.named(SYNC_ACTIVE_ORDERS)) >= 2)
    assert recorder.named(SYNC_ACTIVE_ORDERS)[1] == []
    assert len(fake.ws.logins) >= 2


def test_server_close_reconnects_resubscribes_and_syncs(
    fake: FakeOkx, recorder: Recorder, running: OrdersStream
) -> None:
    fake.close_sockets()
    wait_for(lambda: len(recorder.named(SYNC_ACTIVE_ORDERS)) == 2)  # first connection, then this
    assert fake.ws.connections == 2
    assert len(fake.ws.subscribes) == 2
    wait_for(lambda: fake.open_sockets == 1)
    fake.push(ORDERS_PUSH)  # the new connection forwards pushes
    wait_for(lambda: len(recorder.named(APPLY_ORDER_UPDATE)) == 1)


def test_notice_64008_reconnects_at_once(fake: FakeOkx, recorder: Recorder) -> None:
    stream = OrdersStream(
        fake.ws_url,
        CREDENTIALS,
        recorder,
        timing=Timing(ping_after=5, pong_timeout=5, poll=0.02, backoff_base=10, backoff_max=10),
        wall_clock=lambda: WALL,
    )
    thread = threading.Thread(target=stream.run, daemon=True)
    thread.start()
    try:
        assert stream.ready.wait(3)
        fake.push(
            {
                "event": "notice",
                "code": "64008",
                "connId": "c1",
                "msg": "The connection will soon be closed for a service upgrade.",
            }
        )
        # A 10 s backoff would fail this wait: the notice path must not back off.
        wait_for(lambda: len(recorder.named(SYNC_ACTIVE_ORDERS)) == 2, timeout=2.0)
        assert fake.ws.connections == 2
    finally:
        stream.stop()
        thread.join(3)


def test_refused_login_backs_off_and_retries(
    fake: FakeOkx, recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    fake.ws.refuse_login = True
    stream, thread = start(fake, recorder)
    try:
        wait_for(lambda: len(fake.ws.logins) >= 2)
        assert not stream.ready.is_set()
        fake.ws.refuse_login = False
        assert stream.ready.wait(3)
    finally:
        stream.stop()
        thread.join(3)
    assert any(
        "AuthenticationError" in r.getMessage() or "orders_stream.failed" in r.getMessage()
        for r in caplog.records
    )


def test_broker_failure_reconnects_and_resyncs(
    fake: FakeOkx, recorder: Recorder, running: OrdersStream
) -> None:
    recorder.fail_next = 1
    fake.push(ORDERS_PUSH)
    wait_for(lambda: len(recorder.named(SYNC_ACTIVE_ORDERS)) == 2)  # first connection, then this
    assert fake.ws.connections == 2
    fake.push(ORDERS_PUSH)  # not remembered as seen: the failed send is retried
    wait_for(lambda: len(recorder.named(APPLY_ORDER_UPDATE)) == 1)


def test_unreachable_server_retries_with_backoff(recorder: Recorder) -> None:
    sleeps: list[float] = []
    stream = OrdersStream(
        "ws://127.0.0.1:9/ws/v5/private", CREDENTIALS, recorder, timing=FAST, rng=lambda: 1.0
    )
    original_wait = stream._stop.wait

    def fake_wait(timeout: float | None = None) -> bool:
        sleeps.append(timeout or 0.0)
        if len(sleeps) >= 4:
            stream.stop()
        return original_wait(0)

    stream._stop.wait = fake_wait  # type: ignore[method-assign]
    stream.run()
    assert sleeps == pytest.approx([0.1, 0.2, 0.2, 0.2])  # doubles from 0.05, capped at 0.2
    assert recorder.calls == []  # never subscribed: no sync request either


def test_stream_repr_hides_credentials() -> None:
    stream = OrdersStream("ws://127.0.0.1:1/x", CREDENTIALS, lambda n, a: None)
    assert "test-secret" not in repr(stream) and "test-secret" not in repr(CREDENTIALS)

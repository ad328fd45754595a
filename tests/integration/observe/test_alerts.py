"""Alerts through Apprise to a local webhook receiver (``json://127.0.0.1:PORT/...``), from
real processes: pause and resume (the command), a fill (a worker, after the orders stream's
push), a reconcile run that could not reach the exchange."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from observe_engine import Engine

from simulator.control import SimControl
from tests import builders
from tests.processes import ROOT, wait_for
from worker.app import PROCESS_BUY_SIGNAL, SYNC_ACTIVE_ORDERS, make_app

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


class Receiver:
    """A webhook endpoint on loopback that keeps what it is sent."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                outer.received.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.server.server_address[1]}/hook"

    def titles(self) -> list[str]:
        return [str(doc.get("title", "")) for doc in self.received]

    def wait_for(self, words: str, timeout: float = 30) -> dict[str, Any]:
        wait_for(lambda: any(words in t for t in self.titles()), timeout, f"alert {words!r}")
        return next(d for d in self.received if words in str(d.get("title")))

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


def command(engine: Engine, *args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "worker", *args],
        cwd=ROOT, env=engine.env_for_subprocess(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_pause_resume_a_fill_and_a_blind_reconcile_reach_the_webhook(
    engine: Engine, receiver: Receiver
) -> None:
    engine.env["NOTIFY_URLS"] = receiver.url
    worker = engine.worker("w1", concurrency=1)
    stream = engine.start("orders-stream", ["-m", "worker.orders_stream"])
    worker.wait_for("worker.ready")
    stream.wait_for("orders_stream.ready")
    assert 'alerts="1 url(s)"' in worker.text()

    command(engine, "pause")
    paused = receiver.wait_for("buys paused")
    assert paused["title"] == "Limitflow: buys paused (sells continue)"
    command(engine, "resume")
    receiver.wait_for("buys resumed")

    app = make_app(builders.make_settings(**engine.env))
    with SimControl(engine.sim.rest_url) as ctl:
        ctl.price("BTC-USDT", "60000", bid="59999", ask="60000")
        app.send_task(PROCESS_BUY_SIGNAL, args=[builders.buy_message(px="60000")])
        bought = receiver.wait_for("bought")
        assert "BTC-USDT at 60000" in bought["title"] and "hourly_limit_ws" in bought["title"]

        # A resting buy, then an exchange that answers nothing but errors: the run is blind.
        resting = builders.buy_message("hourly_limit_ws", "ETH-USDT", px="100")
        app.send_task(PROCESS_BUY_SIGNAL, args=[resting])
        wait_for(lambda: len(ctl.orders()["orders"]) == 3, 30, "the resting buy")  # + tp
        for op in ("orders_pending", "get_order", "orders_history"):
            ctl.fault(op, "http_500", times=50)
        app.send_task(SYNC_ACTIVE_ORDERS)
        blind = receiver.wait_for("sync_active_orders:")
        ctl.clear_faults()
    assert "unknown" in blind["title"], blind
    assert not any("Traceback" in p.text() for p in (worker, stream))
    assert receiver.url not in worker.text()  # the URL holds tokens: never logged

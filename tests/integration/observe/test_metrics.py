"""Prometheus metrics from real processes: a prefork worker (two pool processes, one port),
the feed and the orders stream, scraped before and after a drop on the simulator makes the
feed send a buy that fills."""

from __future__ import annotations

import time
from decimal import ROUND_FLOOR, Decimal

import httpx
import pytest
from observe_engine import Engine, free_port
from prometheus_client.parser import text_string_to_metric_families

from simulator.control import SimControl
from tests.processes import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

INST = "BTC-USDT"
TICK = Decimal("0.1")
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(port: int) -> Samples:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def total(samples: Samples, name: str) -> float:
    return sum(v for (n, _), v in samples.items() if n == name)


def hour_open(rest_url: str) -> Decimal:
    params = {"instId": INST, "bar": "1H", "limit": "1"}
    rows = httpx.get(f"{rest_url}/api/v5/market/candles", params=params).json()["data"]
    return Decimal(rows[0][1])


def test_the_numbers_move_when_a_drop_makes_the_feed_buy(engine: Engine) -> None:
    ports = {"worker": free_port(), "feed": free_port(), "stream": free_port()}
    worker = engine.worker("w1", concurrency=2, METRICS_PORT=str(ports["worker"]))
    stream = engine.start(
        "orders-stream", ["-m", "worker.orders_stream"], METRICS_PORT=str(ports["stream"])
    )
    worker.wait_for("worker.ready")
    stream.wait_for("orders_stream.ready")
    feed = engine.start("feed", ["-m", "feed"], METRICS_PORT=str(ports["feed"]))
    feed.wait_for("feed.hour_opens_seeded")
    for proc in (worker, stream, feed):
        assert "metrics.serving" in proc.text(), proc.text()

    # The worker reconciles once at start: its report is there, read from a pool process.
    wait_for(
        lambda: value(scrape(ports["worker"]), "limitflow_reconcile_last_run_timestamp_seconds",
                      run="sync_active_orders") > 0,
        30, "the start-up reconcile report",
    )  # fmt: skip
    before = scrape(ports["worker"])
    assert value(before, "limitflow_open_positions") == 0
    assert ("limitflow_broker_queue_depth", (("queue", "limitflow"),)) in before
    assert value(before, "limitflow_reconcile_last", run="sync_active_orders", field="unknown") == 0
    assert total(before, "limitflow_signals_total") == 0
    feed_before = scrape(ports["feed"])

    open_px = hour_open(engine.sim.rest_url)
    limit = (open_px * Decimal("0.97")).quantize(TICK, ROUND_FLOOR)
    with SimControl(engine.sim.rest_url) as ctl:
        # The 3 % drop: the feed signals, the worker places a buy that rests; then it fills.
        ctl.price(INST, str(limit), bid=str(limit - 1), ask=str(limit + 1))
        wait_for(lambda: len(ctl.orders()["orders"]) == 1, 30, "the buy on the simulator")
        ctl.price(INST, str(limit), bid=str(limit - 1), ask=str(limit))
        wait_for(lambda: len(ctl.orders()["orders"]) == 2, 30, "the take-profit")
    time.sleep(1)

    after = scrape(ports["worker"])
    accepted = value(
        after, "limitflow_signals_total", strategy="hourly_limit_ws", outcome="accepted", reason=""
    )
    assert accepted == 1, {k: v for k, v in after.items() if "signals" in k[0]}
    assert value(after, "limitflow_orders_total", side="buy", state="pending_submit") == 1
    assert value(after, "limitflow_orders_total", side="buy", state="live") == 1
    assert value(after, "limitflow_orders_total", side="buy", state="filled") == 1
    assert value(after, "limitflow_orders_total", side="sell", state="live") == 1
    assert value(after, "limitflow_fills_total", side="buy") == 1
    assert value(after, "limitflow_fill_notional_total", side="buy") == pytest.approx(10, rel=0.05)
    assert value(after, "limitflow_tick_to_order_seconds_count") == 1
    assert 0 < value(after, "limitflow_tick_to_order_seconds_sum") < 5
    assert value(after, "limitflow_task_duration_seconds_count", task="process_buy_signal") == 1
    assert value(after, "limitflow_open_positions") == 1  # the lot, until its take-profit fills

    feed_after = scrape(ports["feed"])
    assert value(feed_after, "limitflow_feed_signals_total", kind="buy") == 1
    assert value(feed_after, "limitflow_feed_messages_total", conn="public-0") > value(
        feed_before, "limitflow_feed_messages_total", conn="public-0"
    )
    assert total(feed_after, "limitflow_ws_reconnects_total") == 0
    assert "process_resident_memory_bytes" in {n for n, _ in feed_after}
    stream_after = scrape(ports["stream"])
    assert value(stream_after, "limitflow_orders_stream_updates_total") >= 3  # live, filled, tp

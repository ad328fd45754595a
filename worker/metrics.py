"""Prometheus metrics: every name in one place, and the one-line calls the code makes.

Off unless ``METRICS_PORT`` is set: then each call below is a no-op (one check of a module
global), and ``prometheus_client`` is not even imported. With it set, each process serves
``/metrics`` on that port:

Serving and the scrape-time collectors live in ``worker.metrics_server`` (they read the
ledger and the broker; this module is a leaf that any layer may call):

- a worker (``serve_worker``, at ``worker_init``) in prometheus_client's multiprocess mode:
  the worker makes its own ``PROMETHEUS_MULTIPROC_DIR`` (a fresh temporary folder, removed at
  exit) before any metric exists, every pool process writes its counters there, and the main
  process serves them all from one port, plus gauges read from the database and the broker
  at scrape time (open positions, lots that need attention, queue depths);
- the feed and the orders stream (``serve_process``): their counters are read at scrape time
  from the objects that already count them (no cost on the hot path).

Names (all ``limitflow_``): counters ``signals_total{strategy,outcome,reason}``,
``orders_total{side,state}`` (an order entering a state), ``fills_total{side}``,
``fill_notional_total{side}`` (quote currency), ``ws_reconnects_total{process,conn,reason}``,
``feed_messages_total{conn}``, ``feed_malformed_total{reason}``, ``feed_signals_total{kind}``,
``feed_publish_failures_total{kind}``, ``orders_stream_messages_total``,
``orders_stream_updates_total``, ``alerts_total{kind,outcome}``; histograms
``tick_to_order_seconds`` (from the ticker's exchange timestamp, which the feed puts in a buy
signal's ``created_at``, to the placement's acknowledgement) and
``task_duration_seconds{task}``; gauges ``open_positions``, ``needs_attention_lots``,
``broker_queue_depth{queue}``, ``reconcile_last{run,field}``,
``reconcile_last_run_timestamp_seconds{run}``, ``clock_skew_seconds`` (ours minus OKX's).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

TICK_TO_ORDER_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
TASK_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0)


class _Metrics:
    """The metric objects of one process (in a worker: written to the multiprocess folder)."""

    def __init__(self) -> None:
        # Here, not at the top: without METRICS_PORT prometheus_client is never loaded, and a
        # worker sets PROMETHEUS_MULTIPROC_DIR before its first import.
        from prometheus_client import Counter, Gauge, Histogram

        self.signals = Counter(
            "limitflow_signals_total",
            "Signals the workers handled, by outcome and reason",
            ["strategy", "outcome", "reason"],
        )
        self.orders = Counter(
            "limitflow_orders_total", "Orders entering a state (transitions)", ["side", "state"]
        )
        self.fills = Counter("limitflow_fills_total", "Fills, one per exchange tradeId", ["side"])
        self.notional = Counter(
            "limitflow_fill_notional_total", "Filled value in the quote currency", ["side"]
        )
        self.tick_to_order = Histogram(
            "limitflow_tick_to_order_seconds",
            "From the ticker's exchange timestamp to the buy placement's acknowledgement",
            buckets=TICK_TO_ORDER_BUCKETS,
        )
        self.task_duration = Histogram(
            "limitflow_task_duration_seconds", "Task run time", ["task"], buckets=TASK_BUCKETS
        )
        self.reconcile = Gauge(
            "limitflow_reconcile_last",
            "The last reconcile report, by run and field",
            ["run", "field"],
            multiprocess_mode="mostrecent",
        )
        self.reconcile_at = Gauge(
            "limitflow_reconcile_last_run_timestamp_seconds",
            "When the last reconcile run ended",
            ["run"],
            multiprocess_mode="mostrecent",
        )
        self.clock_skew = Gauge(
            "limitflow_clock_skew_seconds",
            "Our clock minus OKX's, as last measured",
            multiprocess_mode="mostrecent",
        )
        self.alerts = Counter(
            "limitflow_alerts_total", "Alerts, by kind and what became of them", ["kind", "outcome"]
        )


_m: _Metrics | None = None


def enable() -> None:
    """Create this process's metric objects (once); every call below then records."""
    global _m
    if _m is None:
        _m = _Metrics()


def enabled() -> bool:
    return _m is not None


# The calls the code makes --------------------------------------------------------------------


def _label(text: str) -> str:
    """A bounded label value: free text (an error message) becomes ``other``."""
    if not text or (text.replace("_", "").isalnum() and len(text) <= 40):
        return text
    return "other"


def signal(slot: str, outcome: str, reason: str) -> None:
    """A signal's outcome; ``slot`` is ``INST/STRATEGY`` (``-`` when unreadable)."""
    if _m is not None:
        strategy = slot.rpartition("/")[2] if "/" in slot else "unknown"
        reason = "invalid_message" if outcome == "invalid" else _label(reason)
        _m.signals.labels(_label(strategy), outcome, reason).inc()


def order_state(side: str, state: str) -> None:
    """An order entered ``state``."""
    if _m is not None:
        _m.orders.labels(side, state).inc()


def fill(side: str, px: Decimal, sz: Decimal) -> None:
    if _m is not None:
        _m.fills.labels(side).inc()
        _m.notional.labels(side).inc(float(px * sz))


def tick_to_order(created_at_ms: int) -> None:
    """A buy was acknowledged; its signal was made from a ticker stamped ``created_at_ms``."""
    if _m is not None:
        _m.tick_to_order.observe(max(0.0, time.time() - created_at_ms / 1000))


def task_done(task: str, seconds: float) -> None:
    if _m is not None:
        _m.task_duration.labels(task).observe(seconds)


def reconcile_report(run: str, report: Mapping[str, Any]) -> None:
    """The numbers of a reconcile run (``errors`` as their total)."""
    if _m is None or "skipped" in report:
        return
    for key, value in report.items():
        if key == "errors" and isinstance(value, Mapping):
            value = sum(value.values())
        if isinstance(value, int | float) and not isinstance(value, bool):
            _m.reconcile.labels(run, key).set(value)
    _m.reconcile_at.labels(run).set(time.time())


def clock_skew(skew_ms: int) -> None:
    if _m is not None:
        _m.clock_skew.set(skew_ms / 1000)


def alert(kind: str, outcome: str) -> None:
    if _m is not None:
        _m.alerts.labels(kind, outcome).inc()

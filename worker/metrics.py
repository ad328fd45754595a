"""Prometheus metrics: every name in one place, and the one-line calls the code makes.

Off unless ``METRICS_PORT`` is set: then each call below is a no-op (one check of a module
global), and ``prometheus_client`` is not even imported. With it set, each process serves
``/metrics`` on that port:

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

import atexit
import contextlib
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from typing import Any

from worker.logs import log_event
from worker.settings import Settings

log = logging.getLogger("limitflow.metrics")

TICK_TO_ORDER_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
TASK_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0)


class _Metrics:
    """The metric objects of one process (in a worker: written to the multiprocess folder)."""

    def __init__(self) -> None:
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


# Serving -------------------------------------------------------------------------------------


def _start_server(port: int, registry: Any, process: str) -> bool:
    from prometheus_client import start_http_server

    try:
        start_http_server(port, registry=registry)
    except OSError as exc:
        # Metrics must never stop trading: say so and run on without them.
        log_event(
            log, "metrics.unavailable", logging.ERROR, port=port, process=process, error=str(exc)
        )
        return False
    log_event(log, "metrics.serving", port=port, process=process, path="/metrics")
    return True


def serve_process(settings: Settings, process: str, collector: Any) -> None:
    """Serve ``/metrics`` for a single-process program (the feed, the orders stream)."""
    if settings.METRICS_PORT is None:
        return
    from prometheus_client import REGISTRY

    enable()
    REGISTRY.register(collector)
    _start_server(settings.METRICS_PORT, REGISTRY, process)


_folder_owner: int | None = None


def serve_worker(settings: Settings) -> None:
    """In a worker's main process, before the pool starts: the multiprocess folder and the
    one server for every pool process."""
    global _folder_owner
    if settings.METRICS_PORT is None or _folder_owner is not None:
        return
    folder = tempfile.mkdtemp(prefix="limitflow-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder  # read by prometheus_client at import
    _folder_owner = os.getpid()
    atexit.register(_remove_folder, folder)
    from prometheus_client import CollectorRegistry, multiprocess, values

    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]  # imported earlier?
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=folder)  # type: ignore[no-untyped-call]
    registry.register(WorkerCollector(settings))
    enable()
    _start_server(settings.METRICS_PORT, registry, "worker")


def _remove_folder(folder: str) -> None:
    if os.getpid() == _folder_owner:
        shutil.rmtree(folder, ignore_errors=True)


def pool_process_exited(pid: int) -> None:
    """A worker's pool process ends: its live gauges go (its counters stay counted)."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if _m is not None and folder:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid, folder)  # type: ignore[no-untyped-call]


# Collectors: values read when Prometheus scrapes ---------------------------------------------


def _counter(name: str, doc: str, labels: list[str], rows: Mapping[tuple[str, ...], float]) -> Any:
    from prometheus_client.core import CounterMetricFamily

    family = CounterMetricFamily(name, doc, labels=labels)
    for values, value in rows.items():
        family.add_metric(list(values), value)
    return family


def _gauge(name: str, doc: str, labels: list[str], rows: Mapping[tuple[str, ...], float]) -> Any:
    from prometheus_client.core import GaugeMetricFamily

    family = GaugeMetricFamily(name, doc, labels=labels)
    for values, value in rows.items():
        family.add_metric(list(values), value)
    return family


def _reconnects(process: str, by_conn: Mapping[str, Mapping[str, int]]) -> Any:
    rows: dict[tuple[str, ...], float] = {
        (process, conn, reason): float(n)
        for conn, reasons in by_conn.items()
        for reason, n in reasons.items()
    }
    return _counter(
        "limitflow_ws_reconnects",
        "Websocket reconnects, by process, connection and reason",
        ["process", "conn", "reason"],
        rows,
    )


class FeedCollector:
    """The feed's counts, read from its connections, engine and publisher at scrape time."""

    def __init__(self, feed: Any, publisher: Any = None) -> None:
        self.feed = feed
        self.publisher = publisher

    def collect(self) -> Iterator[Any]:
        conns = list(self.feed.connections)
        yield _reconnects("feed", {c.name: dict(c.reconnect_reasons) for c in conns})
        yield _counter(
            "limitflow_feed_messages",
            "Websocket frames the feed received",
            ["conn"],
            {(c.name,): float(c.frames) for c in conns},
        )
        engine = self.feed.engine
        if engine is not None:
            yield _counter(
                "limitflow_feed_malformed",
                "Frames and pushes the feed refused, by reason",
                ["reason"],
                {(reason,): float(n) for reason, n in dict(engine.bad).items()},
            )
            yield _counter(
                "limitflow_feed_signals",
                "Signals the feed emitted",
                ["kind"],
                {("buy",): float(engine.buys), ("sell",): float(engine.sells)},
            )
        if self.publisher is not None:
            yield _counter(
                "limitflow_feed_publish_failures",
                "Signals the feed could not hand to the broker",
                ["kind"],
                {
                    ("dropped",): float(self.publisher.dropped),
                    ("failed",): float(self.publisher.failed),
                },
            )


class OrdersStreamCollector:
    """The orders stream's counts, read at scrape time."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def collect(self) -> Iterator[Any]:
        s = self.stream
        yield _reconnects("orders_stream", {"private": dict(s.reconnect_reasons)})
        yield _counter(
            "limitflow_orders_stream_messages", "Frames received", [], {(): float(s.frames)}
        )
        yield _counter(
            "limitflow_orders_stream_updates",
            "Order pushes forwarded to the workers",
            [],
            {(): float(s.updates)},
        )


class WorkerCollector:
    """Gauges of the whole engine, read from the database and the broker at scrape time."""

    def __init__(self, settings: Settings, queues: tuple[str, ...] | None = None) -> None:
        self.settings = settings
        self.queues = queues
        self._ledger: Any = None
        self._failing: set[str] = set()

    def collect(self) -> Iterator[Any]:
        ledger_rows = self._guard("database", self._ledger_counts)
        if ledger_rows is not None:
            open_positions, attention = ledger_rows
            yield _gauge(
                "limitflow_open_positions",
                "Open buys plus unsold lots (what MAX_OPEN_POSITIONS limits)",
                [],
                {(): float(open_positions)},
            )
            yield _gauge(
                "limitflow_needs_attention_lots",
                "Lots whose exits the exchange keeps refusing: an operator must settle them",
                [],
                {(): float(attention)},
            )
        depths = self._guard("broker", self._queue_depths)
        if depths is not None:
            yield _gauge(
                "limitflow_broker_queue_depth",
                "Messages waiting in a broker queue",
                ["queue"],
                {(q,): float(n) for q, n in depths.items()},
            )

    def _guard(self, part: str, read: Callable[[], Any]) -> Any:
        """Read one part; a store that is down costs its gauges, never the scrape."""
        try:
            value = read()
        except Exception as exc:  # any driver's or transport's error: the gauge is absent
            if part not in self._failing:
                self._failing.add(part)
                log_event(log, "metrics.read_failed", logging.WARNING, part=part, error=str(exc))
            return None
        self._failing.discard(part)
        return value

    def _ledger_counts(self) -> tuple[int, int]:
        from sqlalchemy import func, select

        from worker.domain.lots import LotState
        from worker.ledger.admission import open_positions_count
        from worker.ledger.db import Ledger
        from worker.ledger.models import Lot

        if self._ledger is None:
            self._ledger = Ledger.from_url(self.settings.database_url)
        ledger = self._ledger
        try:
            with ledger.begin() as s:
                positions = open_positions_count(s)
                attention = s.scalar(
                    select(func.count()).where(Lot.state == LotState.NEEDS_ATTENTION.value)
                )
        finally:
            # No connection stays open in the worker's main process: its pool processes are
            # forked from it, and must not share a database socket with it.
            ledger.engine.dispose()
        return positions, int(attention or 0)

    def _queue_depths(self) -> dict[str, int]:
        from worker.app import NOTIFY_QUEUE, QUEUE, app

        depths = {}
        with app.connection_for_read() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
            for queue in self.queues or (QUEUE, NOTIFY_QUEUE):
                channel = conn.channel()
                try:
                    _, count, _ = channel.queue_declare(queue=queue, passive=True)
                except Exception:  # a queue nobody declared yet holds nothing
                    count = 0
                finally:
                    # The broker may have closed it already (AMQP, after a passive miss).
                    with contextlib.suppress(Exception):
                        channel.close()
                depths[queue] = int(count)
        return depths

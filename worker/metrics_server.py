"""Serving Prometheus metrics (``worker.metrics`` holds the instruments), and the collectors
that read values at scrape time from the objects that already count them, the ledger and the
broker. Only the processes' entry points import this module.

``prometheus_client`` is imported inside the functions, on purpose: it reads
``PROMETHEUS_MULTIPROC_DIR`` when it is first imported, which ``serve_worker`` sets first, and
a process without ``METRICS_PORT`` never loads it.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from sqlalchemy import func, select

from worker import metrics
from worker.domain.lots import LotState
from worker.ledger.admission import open_positions_count
from worker.ledger.db import Ledger
from worker.ledger.models import Lot
from worker.logs import log_event
from worker.settings import Settings

log = logging.getLogger("limitflow.metrics")

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

    metrics.enable()
    REGISTRY.register(collector)
    _start_server(settings.METRICS_PORT, REGISTRY, process)


_folder_owner: int | None = None


def serve_worker(settings: Settings, app: Any, queues: tuple[str, ...]) -> None:
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
    registry.register(WorkerCollector(settings, app, queues))
    metrics.enable()
    _start_server(settings.METRICS_PORT, registry, "worker")


def _remove_folder(folder: str) -> None:
    if os.getpid() == _folder_owner:
        shutil.rmtree(folder, ignore_errors=True)


def pool_process_exited(pid: int) -> None:
    """A worker's pool process ends: its live gauges go (its counters stay counted)."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if metrics.enabled() and folder:
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

    def __init__(self, settings: Settings, app: Any, queues: tuple[str, ...]) -> None:
        self.settings = settings
        self.app = app  # the Celery app, for its broker connection
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
            ledger.dispose()
        return positions, int(attention or 0)

    def _queue_depths(self) -> dict[str, int]:
        depths = {}
        with self.app.connection_for_read() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
            for queue in self.queues:
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

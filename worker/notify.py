"""Alerts for the operator, through Apprise URLs (``NOTIFY_URLS``), sent off the trading path.

``alert(kind, title, body)`` may be called from anywhere (a task, the feed, the orders stream,
a command). It returns at once and never raises: the alert goes on a small in-process queue,
and a background thread hands it to the broker as a ``limitflow.notify`` task on the
``notify`` queue (which workers consume besides their own, unless started with ``-Q``). A
worker delivers it with Apprise (``deliver``): rate-limited, retried a few times, dropped
after an hour. A full queue or a broker that is down drops the alert (logged and counted),
never the trade. Without ``NOTIFY_URLS`` nothing is queued at all.

Kinds: ``fill`` (an order ended with something filled), ``stop_loss`` and ``time_exit``
(an exit was placed), ``needs_attention``, ``reconcile`` (a run with unknowns or errors),
``reconnect_loop`` (the feed or the orders stream), ``paused`` and ``resumed``.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Mapping
from typing import Any

from worker import metrics
from worker.logs import log_event
from worker.settings import Settings, get_settings

log = logging.getLogger("limitflow.notify")

KINDS = (
    "fill",
    "stop_loss",
    "time_exit",
    "needs_attention",
    "reconcile",
    "reconnect_loop",
    "paused",
    "resumed",
)
QUEUE_SIZE = 1000
EXPIRES_SECONDS = 3600  # an alert older than this is not worth sending any more
FLUSH_SECONDS = 5.0  # how long a process that exits waits for its alerts to reach the broker

Alert = tuple[str, str, str]


class DeliveryFailed(Exception):
    """Apprise could not deliver to at least one URL (retried a few times)."""


class _Sender:
    """The process's queue and the thread that empties it into the broker."""

    def __init__(self) -> None:
        self.queue: queue.Queue[Alert | None] = queue.Queue(QUEUE_SIZE)
        self.thread = threading.Thread(target=self._run, name="limitflow-alerts", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        # Here, not at the top: importing worker.app builds the Celery app (and its folders).
        from worker.app import NOTIFY, app

        while True:
            item = self.queue.get()
            if item is None:
                return
            kind = item[0]
            try:
                app.send_task(
                    NOTIFY,
                    args=list(item),
                    expires=EXPIRES_SECONDS,
                    retry=True,
                    retry_policy={"max_retries": 2, "interval_start": 0.5, "interval_step": 1.0},
                )
            except Exception as exc:  # kombu, redis and socket errors share no root
                metrics.alert(kind, "dropped")
                log_event(log, "alert.dropped", logging.WARNING, kind=kind, error=repr(exc))
            else:
                metrics.alert(kind, "queued")

    def flush(self, timeout: float) -> None:
        try:
            self.queue.put(None, timeout=timeout)
        except queue.Full:
            return
        self.thread.join(timeout)


_sender: _Sender | None = None
_sender_pid: int | None = None
_lock = threading.Lock()


def alert(kind: str, title: str, body: str = "", settings: Settings | None = None) -> None:
    """Queue an alert; return at once (nothing is done without ``NOTIFY_URLS``)."""
    global _sender, _sender_pid
    if not (settings or get_settings()).notify_urls:
        return
    with _lock:
        if _sender is None or _sender_pid != os.getpid():  # a forked pool process: its own
            _sender, _sender_pid = _Sender(), os.getpid()
        sender = _sender
    try:
        sender.queue.put_nowait((kind, title[:200], body[:2000]))
    except queue.Full:
        metrics.alert(kind, "dropped")
        log_event(log, "alert.dropped", logging.WARNING, kind=kind, error="queue full")


def flush(timeout: float = FLUSH_SECONDS) -> None:
    """Wait (at most ``timeout``) until the queued alerts reach the broker; a command calls it
    before it returns (at interpreter exit the broker client can no longer be used)."""
    global _sender
    with _lock:
        sender, _sender = (_sender if _sender_pid == os.getpid() else None), None
    if sender is not None:
        sender.flush(timeout)


def deliver(settings: Settings, kind: str, title: str, body: str) -> int:
    """Send one alert to every URL in ``NOTIFY_URLS``; return how many URLs took it.

    Raise ``DeliveryFailed`` when one did not (the task retries). The URLs hold tokens:
    they never appear in a log line or an error, only their position in the list.
    """
    import apprise  # here, not at the top: heavy, and only a worker that sends alerts needs it

    urls = settings.notify_urls
    targets = apprise.Apprise()
    bad = [n for n, url in enumerate(urls, 1) if not targets.add(url)]
    if bad:
        log_event(log, "alert.bad_url", logging.ERROR, positions=bad, of=len(urls))
    if len(targets) == 0:
        return 0
    notify_type = apprise.NotifyType.WARNING if kind in ATTENTION else apprise.NotifyType.INFO
    ok = targets.notify(title=f"Limitflow: {title}", body=body or title, notify_type=notify_type)
    if not ok:
        raise DeliveryFailed(f"{kind} alert not delivered to every URL in NOTIFY_URLS")
    return len(targets)


ATTENTION = frozenset({"stop_loss", "needs_attention", "reconcile", "reconnect_loop", "paused"})


def reconcile_alert(run: str, report: Mapping[str, Any]) -> None:
    """Alert about a reconcile run that left orders unknown or hit errors."""
    unknown = int(report.get("unknown", 0) or 0)
    errors = report.get("errors") or {}
    if not unknown and not errors:
        return
    parts = [f"{unknown} unknown"] if unknown else []
    parts += [f"{n} {reason}" for reason, n in sorted(errors.items())]
    alert(
        "reconcile",
        f"{run}: {', '.join(parts)}",
        "The exchange did not answer for some orders, or some could not be settled; "
        "the next run tries again. Check the worker's reconcile.* log lines.",
    )

"""Publishers: where the engine's signals go.

``CeleryPublisher`` sends them as ``limitflow.process_buy_signal`` / ``process_sell_signal``
tasks from one background thread, so a slow broker never stalls the websocket threads; its
queue is bounded (a full queue drops the signal and counts it: buy signals are perishable and
sell signals are produced again the next minute).

The first signal is no slower than the others: the thread connects to the broker before it
takes anything from the queue (Celery imports the transport, connects and declares the queue
lazily, on the first ``send_task``: about 200 ms). Signals are sent without a result: nobody
waits for one, and asking for it would subscribe to the task's result channel on every send.
"""

from __future__ import annotations

import logging
import queue
import sys
import threading
from typing import Any, TextIO

import orjson

from feed.logs import log_event
from worker.signals import BuySignal, SellSignal, to_message
from worker.task_names import PROCESS_BUY_SIGNAL, PROCESS_SELL_SIGNAL

BUY_TASK = PROCESS_BUY_SIGNAL
SELL_TASK = PROCESS_SELL_SIGNAL


def task_for(signal: BuySignal | SellSignal) -> str:
    return BUY_TASK if isinstance(signal, BuySignal) else SELL_TASK


class CeleryPublisher:
    """Send signals with ``app.send_task`` from a single background thread."""

    def __init__(self, app: Any, maxsize: int = 10_000) -> None:
        self.app = app
        self.queue: queue.Queue[BuySignal | SellSignal | None] = queue.Queue(maxsize)
        self.sent = 0
        self.dropped = 0
        self.failed = 0
        self._thread = threading.Thread(target=self._run, name="feed-publish", daemon=True)
        self._thread.start()

    def __call__(self, signal: BuySignal | SellSignal) -> None:
        try:
            self.queue.put_nowait(signal)
        except queue.Full:
            self.dropped += 1
            log_event("feed.publish_dropped", logging.ERROR, signal_id=signal.signal_id)

    def _run(self) -> None:
        self._connect()
        while True:
            signal = self.queue.get()
            if signal is None:
                return
            try:
                self.app.send_task(task_for(signal), args=[to_message(signal)], ignore_result=True)
                self.sent += 1
            except Exception as exc:  # kombu, redis and socket errors share no root
                self.failed += 1
                log_event(
                    "feed.publish_failed",
                    logging.ERROR,
                    signal_id=signal.signal_id,
                    error=repr(exc),
                )

    def _connect(self) -> None:
        """Do now what the first ``send_task`` would do lazily (see the module docstring)."""
        app = self.app
        try:
            with app.producer_or_acquire() as producer:
                producer.connection.ensure_connection(max_retries=1)
                queue = app.amqp.queues[app.conf.task_default_queue]
                producer.maybe_declare(queue)
            # Lazily built on the first send_task too: the message sender, the reply-to id
            # and the result backend behind the AsyncResult it returns (tens of ms).
            app.amqp.send_task_message  # noqa: B018
            app.thread_oid  # noqa: B018
            app.backend  # noqa: B018
        except Exception as exc:  # kombu, redis and socket errors share no root
            # Not fatal: send_task connects (and reports) again on the first signal.
            log_event("feed.broker_connect_failed", logging.WARNING, error=repr(exc))
            return
        log_event("feed.broker_connected")

    def close(self, timeout: float = 5.0) -> None:
        """Send what is queued, then stop the thread."""
        self.queue.put(None)
        self._thread.join(timeout)


class PrintPublisher:
    """Write each signal's task message as a JSON line (``--dry-run`` and ``--replay``)."""

    def __init__(self, out: TextIO = sys.stdout) -> None:
        self.out = out
        self.lock = threading.Lock()

    def __call__(self, signal: BuySignal | SellSignal) -> None:
        line = orjson.dumps({"task": task_for(signal), "signal": to_message(signal)}).decode()
        with self.lock:
            self.out.write(line + "\n")
            self.out.flush()

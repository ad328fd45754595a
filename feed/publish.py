"""Publishers: where the engine's signals go.

``CeleryPublisher`` sends them as ``limitflow.process_buy_signal`` / ``process_sell_signal``
tasks from one background thread, so a slow broker never stalls the websocket threads; its
queue is bounded (a full queue drops the signal and counts it: buy signals are perishable and
sell signals are produced again the next minute).
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
        while True:
            signal = self.queue.get()
            if signal is None:
                return
            try:
                self.app.send_task(task_for(signal), args=[to_message(signal)])
                self.sent += 1
            except Exception as exc:  # kombu, redis and socket errors share no root
                self.failed += 1
                log_event(
                    "feed.publish_failed",
                    logging.ERROR,
                    signal_id=signal.signal_id,
                    error=repr(exc),
                )

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

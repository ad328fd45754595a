"""Publishers: where the engine's signals go.

``CeleryPublisher`` sends them as ``limitflow.process_buy_signal`` / ``process_sell_signal``
tasks from one background thread, so a slow broker never stalls the websocket threads; its
queue is bounded (a full queue drops the signal and counts it: buy signals are perishable and
sell signals are produced again the next minute).

The first signal is no slower than the others: the thread connects to the broker before it
takes anything from the queue (Celery imports the transport, connects and declares the queue
lazily, on the first publish: about 200 ms). Signals are sent without a result: nobody waits
for one, and asking for it would subscribe to the task's result channel on every send.

Each send is what ``app.send_task`` does, minus the work that is the same for every signal
(about 40 % of a send's CPU on Redis): the message is built by ``app.amqp.create_task_message``
and published by ``app.amqp.send_task_message`` with the task's route and Celery's publish
retry policy, so the workers get the same message and a broker outage is retried, then
counted, as before. The thread holds one producer for its life instead of taking one from the
pool (and reviving it) per send; the queue is declared through a copy bound to that producer's
channel, so kombu's declaration cache is checked without copying the queue each time; the
``argsrepr`` header (shown by monitoring) is the built-in ``repr`` of the arguments rather than
Celery's ``saferepr``, a walk over them in Python. After a failed send the producer goes back
to the pool and the next send takes another, as ``send_task`` would.
"""

from __future__ import annotations

import logging
import queue
import sys
import threading
from typing import Any, TextIO

import orjson
from kombu.entity import Queue
from kombu.utils.uuid import uuid

from feed.logs import log_event
from worker.signals import BuySignal, SellSignal, to_message
from worker.task_names import PROCESS_BUY_SIGNAL, PROCESS_SELL_SIGNAL

_Queue: Any = Queue  # kombu is untyped
BUY_TASK = PROCESS_BUY_SIGNAL
SELL_TASK = PROCESS_SELL_SIGNAL


def task_for(signal: BuySignal | SellSignal) -> str:
    return BUY_TASK if isinstance(signal, BuySignal) else SELL_TASK


class CeleryPublisher:
    """Send signals as Celery tasks from a single background thread."""

    def __init__(self, app: Any, maxsize: int = 10_000) -> None:
        self.app = app
        self.queue: queue.Queue[BuySignal | SellSignal | None] = queue.Queue(maxsize)
        self.sent = 0
        self.dropped = 0
        self.failed = 0
        # Owned by the publish thread: its producer, and each queue bound to its channel.
        self._producer: Any = None
        self._bound: dict[Any, Any] = {}
        self._reply_to = ""
        self._thread = threading.Thread(target=self._run, name="feed-publish", daemon=True)
        self._thread.start()

    def __call__(self, signal: BuySignal | SellSignal) -> None:
        try:
            self.queue.put_nowait(signal)
        except queue.Full:
            self.dropped += 1
            log_event("feed.publish_dropped", logging.ERROR, signal_id=signal.signal_id)

    def _run(self) -> None:
        self._reply_to = self.app.thread_oid  # Celery's reply-to for this thread, as send_task
        self._connect()
        try:
            while True:
                signal = self.queue.get()
                if signal is None:
                    return
                try:
                    self._send(task_for(signal), to_message(signal))
                    self.sent += 1
                except Exception as exc:  # kombu, redis and socket errors share no root
                    self.failed += 1
                    self._release()
                    log_event(
                        "feed.publish_failed",
                        logging.ERROR,
                        signal_id=signal.signal_id,
                        error=repr(exc),
                    )
        finally:
            self._release()

    def _send(self, task: str, message: dict[str, Any]) -> str:
        """Publish one task message with ``message`` as its argument; return the task id."""
        app = self.app
        amqp = app.amqp
        producer = self._producer
        if producer is None:
            producer = self._producer = app.producer_pool.acquire(block=True)
        args = [message]
        task_id: str = uuid()
        argsrepr = repr(args)
        body = amqp.create_task_message(
            task_id,
            task,
            args,
            None,
            reply_to=self._reply_to,
            create_sent_event=app.conf.task_send_sent_event,
            ignore_result=True,
            # Signals are far shorter than the limit; past it, Celery's saferepr truncates.
            argsrepr=argsrepr if len(argsrepr) <= amqp.argsrepr_maxsize else None,
            kwargsrepr="{}",
        )
        options = amqp.router.route({}, task, args, None, None)  # as send_task routes it
        target = options.get("queue")
        bound = self._bound.get(target) if isinstance(target, _Queue) else None
        if bound is not None:
            options["queue"] = bound
        amqp.send_task_message(producer, task, body, **options)
        if bound is None and isinstance(target, _Queue):
            # The channel is connected now. If kombu reconnects later, it re-declares this
            # copy on the new channel itself (kombu.common._imaybe_declare).
            self._bound[target] = target.bind(producer.channel)
        return task_id

    def _release(self) -> None:
        """Give the producer back to the pool (the next send takes one again)."""
        producer, self._producer = self._producer, None
        self._bound.clear()
        if producer is not None:
            producer.release()

    def _connect(self) -> None:
        """Do now what the first send would do lazily (see the module docstring)."""
        app = self.app
        try:
            producer = self._producer = app.producer_pool.acquire(block=True)
            producer.connection.ensure_connection(max_retries=1)
            queue = app.amqp.queues[app.conf.task_default_queue]
            producer.maybe_declare(queue)
            self._bound[queue] = queue.bind(producer.channel)
            # Built lazily on first use too: the message's builder, sender and router.
            app.amqp.create_task_message  # noqa: B018
            app.amqp.send_task_message  # noqa: B018
            app.amqp.router  # noqa: B018
        except Exception as exc:  # kombu, redis and socket errors share no root
            # Not fatal: the first signal connects (and reports) again.
            self._release()
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

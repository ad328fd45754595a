"""``python -m worker.orders_stream``: forward the private OKX ``orders`` channel to the workers.

Run one per account. Configuration comes from the environment (see ``worker.settings``):
``OKX_WS_PRIVATE_URL``, ``OKX_API_KEY``, ``OKX_API_SECRET``, ``OKX_API_PASSPHRASE``,
``CELERY_BROKER_URL``, ``LOG_FORMAT``, ``LOG_LEVEL``, and ``DATABASE_URL``: on PostgreSQL
the stream reads the ledger to keep back pushes it already holds (``unless_acknowledged``).
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType

from sqlalchemy.exc import SQLAlchemyError

from worker import metrics_server, notify, preflight
from worker.banner import log_banner
from worker.exchange.okx.private_stream import OrdersStream, Publish
from worker.exchange.okx.rest import Credentials
from worker.exchange.port import OrderSnapshot, snapshot_from_message
from worker.ledger.db import Ledger, make_engine
from worker.ledger.orders import Acknowledgement, acknowledgements, looks_like_acknowledgement
from worker.logs import configure_logging, log_event
from worker.settings import Settings, get_settings
from worker.task_names import APPLY_ORDER_UPDATE

# A broker that comes up a moment after the process (compose) is waited for this many seconds.
STARTUP_RETRIES = 2

log = logging.getLogger("limitflow.orders_stream")


# The stream must never wait on the database for long: fills queue behind it. Its reads give
# up after these (a dead server is noticed by TCP keepalives within about 9 s), and after a
# failure it forwards everything without asking for this long.
LEDGER_CONNECT_ARGS = {
    "connect_timeout": 2,
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 2,
    "options": "-c statement_timeout=1000",
}
PAUSE_AFTER_FAILURE_SECONDS = 30.0


# An acknowledgement that overtook its placement's answer is asked about again after these
# many seconds, doubling, and forwarded once it has waited HOLD_AT_MOST_SECONDS.
RECHECK_AFTER_SECONDS = 0.005
HOLD_AT_MOST_SECONDS = 0.2
# A held push the broker refused is tried again after this long.
RETRY_SEND_SECONDS = 1.0


def unless_acknowledged(
    send: Publish, ledger: Ledger | None, clock: Callable[[], float] = time.monotonic
) -> Publish:
    """``send``, except for news the ledger already holds (``AcknowledgementFilter``); just
    ``send`` without a ledger (the embedded default)."""
    if ledger is None:
        return send
    return AcknowledgementFilter(send, ledger, clock)


@dataclass(eq=False)
class _Held:
    """An acknowledgement waiting for its placement's answer to be recorded."""

    message: dict[str, object]
    snap: OrderSnapshot
    since: float
    due: float  # when to ask the ledger again
    wait: float  # since the last time it asked


class AcknowledgementFilter:
    """Forward the stream's pushes, except news the ledger already holds: a push that only
    acknowledges a placement (``worker.ledger.orders.acknowledgement``: our order live under
    that ordId, nothing filled) costs a read here instead of a task through the broker and a
    worker.

    Only a positive answer from the ledger keeps a push back: with the database unreachable,
    or for a message it cannot read, the push goes to the workers as always, and they
    decide. After a failed read it does not ask again for ``PAUSE_AFTER_FAILURE_SECONDS``, so
    an unreachable database costs one timeout, not one per push.

    The exchange pushes the acknowledgement about when it answers the placement, often
    before the placing worker has recorded the answer (``IN_FLIGHT``: the intent is still
    ``pending_submit``, without an ordId). So a push that looks like an acknowledgement is
    held first and asked about ``RECHECK_AFTER_SECONDS`` later, then again, doubling, by a
    thread of its own, which asks about every push due at once in one read: kept back once
    the ledger holds it, forwarded once the ledger calls it news or it has waited
    ``HOLD_AT_MOST_SECONDS`` (the worker may have died before recording the answer; then the
    push is the news). Any other push of the same order forwards the held one first, so the
    workers get an order's pushes in the stream's order; ``close`` forwards whatever is
    still held. Other pushes go at once, unasked.
    """

    def __init__(
        self,
        send: Publish,
        ledger: Ledger,
        clock: Callable[[], float] = time.monotonic,
        recheck_after: float = RECHECK_AFTER_SECONDS,
        hold_at_most: float = HOLD_AT_MOST_SECONDS,
        retry_send_after: float = RETRY_SEND_SECONDS,
    ) -> None:
        self._send = send
        self._ledger = ledger
        self._clock = clock
        self._recheck_after = recheck_after
        self._hold_at_most = hold_at_most
        self._retry_send_after = retry_send_after
        self._paused_until = 0.0
        # One push at a time, from the stream's thread or the holding thread: an order's
        # pushes leave in the order they came.
        self._serial = threading.Lock()
        self._wake = threading.Condition()
        self._held: dict[str, _Held] = {}  # by clOrdId, under _wake
        self._closed = False
        self._thread: threading.Thread | None = None
        self.kept_back = 0
        self.held_then_forwarded = 0

    def __call__(self, name: str, args: list[object]) -> None:
        message = args[0] if name == APPLY_ORDER_UPDATE and args else None
        with self._serial:
            if not isinstance(message, dict):
                self._send(name, args)
                return
            cl_ord_id = str(message.get("cl_ord_id") or "")
            earlier = self._unhold(cl_ord_id)
            if earlier is not None:
                self.held_then_forwarded += 1
                self._send(APPLY_ORDER_UPDATE, [earlier])
            snap = self._acknowledgement(message)
            if snap is None or not self._hold(cl_ord_id, message, snap):
                self._send(name, args)

    @property
    def holding(self) -> int:
        """How many pushes are held now."""
        with self._wake:
            return len(self._held)

    def close(self) -> None:
        """Stop holding: forward every push still held."""
        with self._wake:
            self._closed = True
            self._wake.notify()
        if self._thread is not None:
            self._thread.join(5.0)
        with self._serial, self._wake:
            held, self._held = self._held, {}
        for entry in held.values():
            try:
                self._send(APPLY_ORDER_UPDATE, [entry.message])
            except Exception as exc:  # stopping anyway: the next start reconciles
                log_event(log, "orders_stream.publish_failed", logging.WARNING, error=repr(exc))
                continue
            self.held_then_forwarded += 1
        log_event(
            log,
            "orders_stream.acknowledgements",
            kept_back=self.kept_back,
            held_then_forwarded=self.held_then_forwarded,
        )

    # Holding ----------------------------------------------------------------------------

    def _hold(self, cl_ord_id: str, message: dict[str, object], snap: OrderSnapshot) -> bool:
        now = self._clock()
        with self._wake:
            if self._closed:
                return False
            wait = self._recheck_after
            self._held[cl_ord_id] = _Held(message, snap, since=now, due=now + wait, wait=wait)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._recheck_loop, name="orders-stream-held", daemon=True
                )
                self._thread.start()
            self._wake.notify()
        return True

    def _unhold(self, cl_ord_id: str) -> dict[str, object] | None:
        with self._wake:
            entry = self._held.pop(cl_ord_id, None)
        return None if entry is None else entry.message

    def _recheck_loop(self) -> None:
        while True:
            with self._wake:
                while not self._closed:
                    now = self._clock()
                    due = min((e.due for e in self._held.values()), default=None)
                    if due is not None and due <= now:
                        break
                    self._wake.wait(None if due is None else due - now)
                if self._closed:
                    return
            try:
                self._recheck_due()
            except Exception as exc:  # the thread outlives a bad round; what it held stays
                log_event(log, "orders_stream.recheck_failed", logging.ERROR, error=repr(exc))
                time.sleep(self._retry_send_after)

    def _recheck_due(self) -> None:
        with self._serial:
            now = self._clock()
            with self._wake:
                due = [(c, e) for c, e in self._held.items() if e.due <= now]
            verdicts = self._verdicts([entry.snap for _, entry in due])
            for (cl_ord_id, entry), verdict in zip(due, verdicts, strict=True):
                with self._wake:
                    if self._held.get(cl_ord_id) is not entry:
                        continue  # forwarded meanwhile (close)
                    if (
                        verdict is Acknowledgement.IN_FLIGHT
                        and now - entry.since < self._hold_at_most
                    ):
                        entry.wait *= 2
                        entry.due = now + entry.wait
                        continue
                    del self._held[cl_ord_id]
                if verdict is Acknowledgement.HELD:
                    self._kept(entry.message)
                    continue
                try:
                    self._send(APPLY_ORDER_UPDATE, [entry.message])
                except Exception as exc:  # the broker client's errors share no base
                    # Held again and tried later (the stream's own sends fail meanwhile,
                    # and make it reconnect and ask for a reconciliation).
                    log_event(log, "orders_stream.publish_failed", logging.WARNING, error=repr(exc))
                    with self._wake:
                        if cl_ord_id not in self._held and not self._closed:
                            entry.due = self._clock() + self._retry_send_after
                            self._held[cl_ord_id] = entry
                    continue
                self.held_then_forwarded += 1

    # The ledger's word --------------------------------------------------------------------

    def _acknowledgement(self, message: dict[str, object]) -> OrderSnapshot | None:
        """The push, if it looks like an acknowledgement that the ledger may hold (and the
        ledger is being asked at all)."""
        if self._clock() < self._paused_until:
            return None
        try:
            snap = snapshot_from_message(message)
        except (KeyError, ValueError, TypeError):
            return None  # the workers record it as invalid
        return snap if looks_like_acknowledgement(snap) else None

    def _verdicts(self, snaps: list[OrderSnapshot]) -> list[Acknowledgement]:
        if not snaps or self._clock() < self._paused_until:
            return [Acknowledgement.NEWS] * len(snaps)
        try:
            return acknowledgements(self._ledger, snaps)
        except SQLAlchemyError as exc:
            self._paused_until = self._clock() + PAUSE_AFTER_FAILURE_SECONDS
            log_event(
                log,
                "orders_stream.ledger_unavailable",
                logging.WARNING,
                error=type(exc).__name__,
                forward_all_for_seconds=PAUSE_AFTER_FAILURE_SECONDS,
            )
            return [Acknowledgement.NEWS] * len(snaps)

    def _kept(self, message: dict[str, object]) -> None:
        self.kept_back += 1
        ids = {"cl_ord_id": message.get("cl_ord_id"), "ord_id": message.get("ord_id")}
        log_event(log, "orders_stream.acknowledged", logging.DEBUG, **ids)


def build_stream(settings: Settings) -> tuple[OrdersStream, Callable[[], None]]:
    """Wire the stream to the Celery app of this process, and to the ledger on PostgreSQL
    (``unless_acknowledged``; the embedded default's SQLite file is the workers' alone);
    with what to call once it has stopped (forward the pushes still held)."""
    # Here, not at the top (--help): importing worker.app builds the Celery app.
    from worker.app import app

    def send(name: str, args: list[object]) -> None:
        app.send_task(name, args=args)

    url = settings.database_url
    pg = url.startswith("postgresql")
    ledger = Ledger(make_engine(url, connect_args=LEDGER_CONNECT_ARGS)) if pg else None
    publish = unless_acknowledged(send, ledger)

    credentials = Credentials(
        settings.OKX_API_KEY, settings.OKX_API_SECRET, settings.OKX_API_PASSPHRASE
    )

    def reconnect_loop(reconnects: int, reason: str) -> None:
        notify.alert(
            "reconnect_loop",
            f"orders stream reconnected {reconnects} times in 10 minutes",
            f"Last reason: {reason}. Fills arrive late meanwhile (reconciliation catches up).",
        )

    stream = OrdersStream(
        settings.OKX_WS_PRIVATE_URL, credentials, publish, on_reconnect_loop=reconnect_loop
    )
    if isinstance(publish, AcknowledgementFilter):
        return stream, publish.close
    return stream, lambda: None


def main(argv: list[str] | None = None) -> int:
    """Run until SIGINT or SIGTERM."""
    parser = argparse.ArgumentParser(
        prog="python -m worker.orders_stream",
        description=(__doc__ or "").split("\n\n", 1)[0].replace("``", ""),
        epilog="Configuration comes from the environment: OKX_WS_PRIVATE_URL, OKX_API_KEY, "
        "OKX_API_SECRET, OKX_API_PASSPHRASE, OKX_DEMO, CELERY_BROKER_URL, DATABASE_URL, "
        "LOG_FORMAT, LOG_LEVEL "
        "(see the README). Run one per account; stop it with SIGINT or SIGTERM.",
    )
    parser.parse_args(argv)
    settings = get_settings()
    configure_logging(settings.LOG_FORMAT, settings.LOG_LEVEL)
    log_banner(settings, "orders_stream")
    # Here, not at the top (--help): importing worker.app builds the Celery app.
    from worker.app import app

    try:
        preflight.check_broker(app, settings.broker_url, retries=STARTUP_RETRIES)
    except preflight.StoreUnreachable as exc:
        preflight.exit_unreachable(exc, "orders stream")
    stream, after_stop = build_stream(settings)
    metrics_server.serve_process(
        settings, "orders_stream", metrics_server.OrdersStreamCollector(stream)
    )

    def _stop(signum: int, frame: FrameType | None) -> None:
        stream.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        stream.run()
    finally:
        after_stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

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
import time
from collections.abc import Callable
from types import FrameType

from sqlalchemy.exc import SQLAlchemyError

from worker import metrics_server, notify, preflight
from worker.banner import log_banner
from worker.exchange.okx.private_stream import OrdersStream, Publish
from worker.exchange.okx.rest import Credentials
from worker.exchange.port import snapshot_from_message
from worker.ledger.db import Ledger, make_engine
from worker.ledger.orders import only_acknowledges
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


def unless_acknowledged(
    send: Publish, ledger: Ledger | None, clock: Callable[[], float] = time.monotonic
) -> Publish:
    """``send``, except for news the ledger already holds: a push that only acknowledges a
    placement (``worker.ledger.orders.only_acknowledges``: our order live under that ordId,
    nothing filled) costs a read here instead of a task through the broker and a worker.

    Only a positive answer from the ledger keeps a push back: without a ledger (the embedded
    default), with the database unreachable, or for a message it cannot read, the push goes
    to the workers as always, and they decide. After a failed read it does not ask again for
    ``PAUSE_AFTER_FAILURE_SECONDS``, so an unreachable database costs one timeout, not one
    per push.
    """
    if ledger is None:
        return send
    paused_until = [0.0]

    def kept_back(message: object) -> bool:
        if not isinstance(message, dict) or clock() < paused_until[0]:
            return False
        if not _known(ledger, message, paused_until, clock):
            return False
        ids = {"cl_ord_id": message.get("cl_ord_id"), "ord_id": message.get("ord_id")}
        log_event(log, "orders_stream.acknowledged", logging.DEBUG, **ids)
        return True

    def publish(name: str, args: list[object]) -> None:
        if not (name == APPLY_ORDER_UPDATE and args and kept_back(args[0])):
            send(name, args)

    return publish


def _known(
    ledger: Ledger,
    message: dict[str, object],
    paused_until: list[float],
    clock: Callable[[], float],
) -> bool:
    try:
        snap = snapshot_from_message(message)
    except (KeyError, ValueError, TypeError):
        return False  # the workers record it as invalid
    try:
        return only_acknowledges(ledger, snap)
    except SQLAlchemyError as exc:
        paused_until[0] = clock() + PAUSE_AFTER_FAILURE_SECONDS
        log_event(
            log,
            "orders_stream.ledger_unavailable",
            logging.WARNING,
            error=type(exc).__name__,
            forward_all_for_seconds=PAUSE_AFTER_FAILURE_SECONDS,
        )
        return False


def build_stream(settings: Settings) -> OrdersStream:
    """Wire the stream to the Celery app of this process, and to the ledger on PostgreSQL
    (``unless_acknowledged``; the embedded default's SQLite file is the workers' alone)."""
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

    return OrdersStream(
        settings.OKX_WS_PRIVATE_URL, credentials, publish, on_reconnect_loop=reconnect_loop
    )


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
    stream = build_stream(settings)
    metrics_server.serve_process(
        settings, "orders_stream", metrics_server.OrdersStreamCollector(stream)
    )

    def _stop(signum: int, frame: FrameType | None) -> None:
        stream.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    stream.run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

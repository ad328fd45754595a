"""``python -m worker.orders_stream``: forward the private OKX ``orders`` channel to the workers.

Run one per account. Configuration comes from the environment (see ``worker.settings``):
``OKX_WS_PRIVATE_URL``, ``OKX_API_KEY``, ``OKX_API_SECRET``, ``OKX_API_PASSPHRASE``,
``CELERY_BROKER_URL``, ``LOG_FORMAT``, ``LOG_LEVEL``.
"""

from __future__ import annotations

import argparse
import signal
from types import FrameType

from worker import metrics_server, notify, preflight
from worker.banner import log_banner
from worker.exchange.okx.private_stream import OrdersStream
from worker.exchange.okx.rest import Credentials
from worker.logs import configure_logging
from worker.settings import Settings, get_settings

# A broker that comes up a moment after the process (compose) is waited for this many seconds.
STARTUP_RETRIES = 2


def build_stream(settings: Settings) -> OrdersStream:
    """Wire the stream to the Celery app of this process."""
    # Here, not at the top (--help): importing worker.app builds the Celery app.
    from worker.app import app

    def publish(name: str, args: list[object]) -> None:
        app.send_task(name, args=args)

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
        "OKX_API_SECRET, OKX_API_PASSPHRASE, OKX_DEMO, CELERY_BROKER_URL, LOG_FORMAT, LOG_LEVEL "
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

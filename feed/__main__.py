"""``python -m feed``: watch OKX and send buy and sell signals to the workers.

    python -m feed                    run the daemon (signals go to Celery)
    python -m feed --record FILE      also append every received message to FILE (JSONL)
    python -m feed --dry-run          print signals as JSON lines instead of sending them
    python -m feed --replay FILE      run a recording through the strategies, print signals

Configuration comes from the environment (see ``worker.settings``): ``INSTRUMENTS``,
``OKX_REST_URL``, ``OKX_WS_PUBLIC_URL``, ``OKX_WS_BUSINESS_URL``, ``STRATEGY_CONFIG``,
``SIGNAL_TTL_SECONDS``, ``LOG_FORMAT``, ``LOG_LEVEL``.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Iterable
from types import FrameType

from feed.approach import ApproachSink
from feed.daemon import Feed, FeedError
from feed.engine import Engine, Publish
from feed.logs import configure_logging, log_event
from feed.publish import CeleryPublisher, PrintPublisher
from feed.record import replay
from feed.rest import PublicRest, RestError, select_instruments
from feed.strategies.exits import Position
from worker import metrics_server, notify, preflight
from worker.banner import log_banner
from worker.ledger.approaches import ApproachStore
from worker.positions import open_positions
from worker.settings import Settings, get_settings


def _replay(settings: Settings, path: str) -> int:
    rest = PublicRest(settings.OKX_REST_URL)
    try:
        rules = select_instruments(rest.instruments(), settings.instrument_list)
    except RestError as exc:
        print(
            f"feed: cannot read instrument rules from {settings.OKX_REST_URL}: {exc}",
            file=sys.stderr,
        )
        return 1
    engine = Engine(
        rules,
        settings.strategies,
        PrintPublisher(),
        settings.SIGNAL_TTL_SECONDS,
        fee_rate_bound=settings.FEE_RATE_BOUND,
        max_order_usdt=settings.MAX_ORDER_USDT,
    )
    count = replay(path, engine)
    log_event("feed.replayed", messages=count, **engine.stats())
    return 0


def _positions_source(settings: Settings) -> Iterable[Position]:
    return open_positions(settings)


def _alert_reconnect_loop(conn: str, reconnects: int, reason: str) -> None:
    notify.alert(
        "reconnect_loop",
        f"feed connection {conn} reconnected {reconnects} times in 10 minutes",
        f"Last reason: {reason}. Signals from its instruments may be missed meanwhile.",
    )


def _approach_store(settings: Settings) -> ApproachSink:
    return ApproachStore.from_url(settings.database_url)


def _check_stores(settings: Settings, app: object) -> None:
    """The broker carries the signals; the database holds positions and closest approaches."""

    try:
        preflight.check_broker(app, settings.broker_url, retries=2)
        preflight.check_database(settings.database_url)
    except preflight.StoreUnreachable as exc:
        preflight.exit_unreachable(exc, "feed")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m feed", description=__doc__.splitlines()[0])
    parser.add_argument("--record", metavar="FILE", help="append every received message (JSONL)")
    parser.add_argument("--replay", metavar="FILE", help="replay a recording and print signals")
    parser.add_argument("--dry-run", action="store_true", help="print signals, do not send")
    args = parser.parse_args(argv)

    settings = get_settings()
    configure_logging(settings.LOG_FORMAT, settings.LOG_LEVEL)
    log_banner(settings, "feed")
    if args.replay:
        return _replay(settings, args.replay)

    publisher: CeleryPublisher | None = None
    publish: Publish
    if args.dry_run:
        publish = PrintPublisher()
    else:
        from worker.app import app  # only when publishing: --dry-run and --help build no app

        _check_stores(settings, app)
        publish = publisher = CeleryPublisher(app)
    feed = Feed(
        settings,
        publish,
        positions=lambda: _positions_source(settings),
        record_path=args.record,
        on_reconnect_loop=_alert_reconnect_loop,
        approaches=None if args.dry_run else _approach_store(settings),
    )
    metrics_server.serve_process(settings, "feed", metrics_server.FeedCollector(feed, publisher))

    def _stop(signum: int, frame: FrameType | None) -> None:
        log_event("feed.stopping", signal=signal.Signals(signum).name)
        feed.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        feed.run()
    except FeedError as exc:
        log_event("feed.failed", error=str(exc))
        return 1
    finally:
        if publisher is not None:
            publisher.close()
    log_event("feed.stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())

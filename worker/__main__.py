"""Operator commands: ``python -m worker {migrate,pause,resume,status,enqueue,settle-lot}``."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import exc as sa_exc
from sqlalchemy import func, select

from worker import preflight
from worker.domain.errors import CommandRefused, ConfigError, InvalidSignal
from worker.domain.ids import STRATEGIES
from worker.logs import mask_passwords
from worker.settings import Settings, get_settings


def _ledger(settings: Settings) -> Any:
    """The ledger, once the database is known to be reachable and current."""
    from worker.ledger.db import Ledger
    from worker.ledger.migrate import NotMigrated, check_migrated

    url = settings.database_url
    preflight.check_database_exists(url)
    ledger = Ledger.from_url(url)
    preflight.connect_check(ledger.engine, url)
    try:
        check_migrated(ledger.engine)
    except NotMigrated as exc:
        raise SystemExit(f"limitflow: {exc}") from None
    return ledger


def cmd_migrate(settings: Settings, _: argparse.Namespace) -> None:
    from worker.ledger.migrate import NotMigrated, upgrade

    url = settings.database_url
    if not url.startswith("sqlite"):
        preflight.check_database(url)
    try:
        done = upgrade(url)
    except NotMigrated as exc:
        raise SystemExit(f"limitflow: {exc}") from None
    except OSError as exc:  # SQLite: the database's folder cannot be created
        raise preflight.database_unreachable(url, exc) from None
    print(f"limitflow: {done.describe(mask_passwords(url))}")


def _set_paused(settings: Settings, args: argparse.Namespace, paused: bool) -> None:
    from worker.ledger.db import utcnow
    from worker.ledger.switches import Pause, pauses, set_paused

    strategy: str | None = args.strategy
    ledger = _ledger(settings)
    now = utcnow()
    changed = set_paused(ledger, strategy, paused, now)
    with ledger.begin() as s:
        still = pauses(s)
    ledger.engine.dispose()
    who = "every buy" if strategy is None else f"the buys of {strategy}"
    if paused:
        since = next((p.since for p in still if p.strategy == strategy), now)
        already = "" if changed else " (it already was)"
        print(f"limitflow: {who} paused since {_when(since)}{already}; sells continue")
    else:
        print(f"limitflow: {who} resumed" + ("" if changed else " (it was not paused)"))
    others: list[Pause] = [p for p in still if p.strategy != strategy]
    for other in others:
        print(f"limitflow: still on: {other.describe()}")


def cmd_pause(settings: Settings, args: argparse.Namespace) -> None:
    _set_paused(settings, args, True)


def cmd_resume(settings: Settings, args: argparse.Namespace) -> None:
    _set_paused(settings, args, False)


def _when(dt: datetime) -> str:
    from worker.domain.describe import when

    return when(dt)


def cmd_status(settings: Settings, _: argparse.Namespace) -> None:
    from worker.ledger.models import Lot, Order, Signal
    from worker.ledger.switches import pauses
    from worker.services.lots import needs_attention

    ledger = _ledger(settings)
    with ledger.begin() as s:
        orders = dict(s.execute(select(Order.state, func.count()).group_by(Order.state)).all())
        skips = dict(
            s.execute(
                select(Signal.reason, func.count())
                .where(Signal.outcome == "skipped")
                .group_by(Signal.reason)
            ).all()
        )
        lots = dict(s.execute(select(Lot.state, func.count()).group_by(Lot.state)).all())
        paused = [p.describe() for p in pauses(s)]
        attention = needs_attention(s)
    doc = {
        "paused": paused,
        "orders": orders,
        "lots": lots,
        "skips": skips,
        "needs_attention": attention,
    }
    print(orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode())


def cmd_enqueue(settings: Settings, args: argparse.Namespace) -> None:
    from worker.app import app
    from worker.signals import parse_buy, parse_sell
    from worker.task_names import PROCESS_BUY_SIGNAL, PROCESS_SELL_SIGNAL

    try:
        raw = sys.stdin.read() if args.file == "-" else Path(args.file).read_text("utf-8")
    except OSError as exc:
        raise SystemExit(f"limitflow: cannot read {args.file}: {exc.strerror}") from None
    try:
        message = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise SystemExit(f"limitflow: {args.file} is not JSON: {exc}") from None
    kind = message.get("kind") if isinstance(message, dict) else None
    try:
        if kind == "sell":
            parse_sell(message)
        else:
            parse_buy(message)
    except InvalidSignal as exc:
        raise SystemExit(f"limitflow: invalid signal: {exc}") from None
    for warning in signal_warnings(message, settings.SIGNAL_TTL_SECONDS, time.time()):
        print(f"limitflow: warning: {warning}", file=sys.stderr)
    task = PROCESS_SELL_SIGNAL if kind == "sell" else PROCESS_BUY_SIGNAL
    preflight.check_broker(app, settings.broker_url)
    # No result is kept for these tasks: without ignore_result a Redis result store would be
    # subscribed to (and, when unreachable, retried for twenty silent seconds).
    result = app.send_task(task, args=[message], ignore_result=True)
    print(f"limitflow: enqueued {task} task_id={result.id} signal_id={message['signal_id']}")


# Epoch milliseconds of 2001-09-09: a "created_at" below it is in seconds, not milliseconds.
_MILLIS_FLOOR = 1_000_000_000_000


def signal_warnings(message: dict[str, Any], ttl_seconds: int, now: float) -> list[str]:
    """What looks wrong with a valid signal's times (it is enqueued all the same)."""
    out = []
    created = message.get("created_at")
    if isinstance(created, int) and created < _MILLIS_FLOOR:
        out.append(
            f"created_at {created} looks like seconds, not milliseconds "
            f"(milliseconds would be {created * 1000})"
        )
    if message.get("kind") == "buy" and isinstance(created, int):
        expires = message.get("expires_at") or created + ttl_seconds * 1000
        late_s = now - expires / 1000
        if late_s > 0:
            out.append(
                f"this buy signal expired {_ago(late_s)} ago (expires_at "
                f"{datetime.fromtimestamp(expires / 1000, UTC):%Y-%m-%d %H:%M:%S} UTC): "
                "the workers will record it as expired and not buy"
            )
    return out


def _ago(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.0f} days"


def cmd_settle_lot(settings: Settings, args: argparse.Namespace) -> None:
    from worker.domain.lots import Settlement
    from worker.services.lots import settle_lot
    from worker.slot_events import SlotEvents

    if args.sold_elsewhere is not None:
        action, px = Settlement.SOLD_ELSEWHERE.value, _price(args.sold_elsewhere)
    else:
        action, px = (Settlement.WRITTEN_OFF.value if args.write_off else "retry"), None
    ledger = _ledger(settings)
    try:
        done = settle_lot(ledger, args.lot_id, action, datetime.now(UTC), px)
    except CommandRefused as exc:
        raise SystemExit(f"limitflow: lot not settled: {exc}") from None
    finally:
        ledger.engine.dispose()
    slot = f"{done.inst_id}/{done.strategy}"
    if action == "retry":
        print(f"limitflow: lot {done.lot_id} ({slot}) is open again; reconciliation sells it")
        return
    SlotEvents(settings.redis_url).publish(done.inst_id, done.strategy)
    what = f"sold elsewhere at {px}" if px is not None else "written off"
    print(
        f"limitflow: lot {done.lot_id} ({slot}) closed: {done.size} {what}, "
        f"pnl {done.pnl}; the slot may buy again"
    )


def _price(text: str) -> Decimal:
    try:
        px = Decimal(text)
    except InvalidOperation:
        raise SystemExit(f"limitflow: --sold-elsewhere needs a price, got {text!r}") from None
    if not px.is_finite() or px <= 0:
        raise SystemExit(f"limitflow: --sold-elsewhere needs a positive price, got {text!r}")
    return px


COMMANDS = {
    "migrate": (cmd_migrate, "create or migrate the database to the newest schema"),
    "pause": (cmd_pause, "refuse new buys (reason 'paused'); sells continue"),
    "resume": (cmd_resume, "accept buys again"),
    "status": (cmd_status, "print orders, lots and skip reasons as JSON"),
    "enqueue": (cmd_enqueue, "validate a signal JSON file (or - for stdin) and enqueue it"),
    "settle-lot": (
        cmd_settle_lot,
        "settle a lot in needs_attention: sold elsewhere at PX, written off, or retried",
    ),
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m worker", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (_, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text)
        if name in ("pause", "resume"):
            p.add_argument(
                "strategy",
                nargs="?",
                choices=STRATEGIES,
                help="only this strategy's buys (default: every buy)",
            )
        if name == "enqueue":
            p.add_argument("file", help="signal JSON file, or - for standard input")
        if name == "settle-lot":
            p.add_argument("lot_id", type=int, help="the lot's id (see `status`)")
            how = p.add_mutually_exclusive_group(required=True)
            how.add_argument(
                "--sold-elsewhere",
                metavar="PX",
                help="what remained was sold outside the engine at PX (quote per coin, net)",
            )
            how.add_argument(
                "--write-off", action="store_true", help="what remained is lost: book no proceeds"
            )
            how.add_argument(
                "--retry",
                action="store_true",
                help="the cause is fixed: make the lot open again so the engine sells it",
            )
    args = parser.parse_args(argv)
    try:
        settings = get_settings()
        settings.strategies  # noqa: B018
    except ConfigError as exc:
        raise SystemExit(f"limitflow: {exc}") from None
    try:
        COMMANDS[args.command][0](settings, args)
    except preflight.StoreUnreachable as exc:
        preflight.exit_unreachable(exc)
    except (sa_exc.OperationalError, sa_exc.InterfaceError) as exc:
        # The connection was lost (or refused) after the first check.
        preflight.exit_unreachable(preflight.database_unreachable(settings.database_url, exc))


if __name__ == "__main__":
    main()

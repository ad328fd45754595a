"""Operator commands: ``python -m worker COMMAND`` (``python -m worker --help`` lists them).

Argument parsing and printing only: the queries live in ``worker.readmodels`` (and
``worker.why``), the actions in the ledger and services modules, the output in
``worker.render``. A store that cannot be reached is one sentence and exit status 3.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TypeVar

import orjson
from sqlalchemy import exc as sa_exc

from worker import notify, preflight, render
from worker.domain.describe import when
from worker.domain.errors import CommandRefused, ConfigError, InvalidSignal
from worker.domain.ids import is_inst_id
from worker.domain.lots import Settlement
from worker.domain.strategies import STRATEGIES
from worker.exchange.factory import build_exchange
from worker.ledger.db import Ledger
from worker.ledger.migrate import NotMigrated, check_migrated, upgrade
from worker.ledger.switches import pauses, set_paused
from worker.logs import configure_logging, mask_passwords
from worker.readmodels import open_lots, orders, realised_pnl, status_doc, value_positions
from worker.runtime import Runtime
from worker.services.emergency import cancel_buys, flatten
from worker.services.lots import settle_lot
from worker.settings import Settings, get_settings
from worker.signals import parse_buy, parse_sell, time_warnings
from worker.slot_events import SlotEvents
from worker.task_names import PROCESS_BUY_SIGNAL, PROCESS_SELL_SIGNAL
from worker.why import why

Command = Callable[[Settings, argparse.Namespace], None]
T = TypeVar("T")


def _ledger(settings: Settings) -> Any:
    """The ledger, once the database is known to be reachable and current."""

    url = settings.database_url
    preflight.check_database_exists(url)
    ledger = Ledger.from_url(url)
    preflight.connect_check(ledger.engine, url)
    try:
        check_migrated(ledger.engine)
    except NotMigrated as exc:
        raise SystemExit(f"limitflow: {exc}") from None
    return ledger


@contextmanager
def _session(settings: Settings) -> Iterator[Any]:
    ledger = _ledger(settings)
    try:
        with ledger.begin() as s:
            yield s
    finally:
        ledger.dispose()


def _now() -> datetime:
    return datetime.now(UTC)


# -- the database ---------------------------------------------------------------------------------


def cmd_migrate(settings: Settings, _: argparse.Namespace) -> None:
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


# -- switches -----------------------------------------------------------------------------------


def _set_paused(settings: Settings, args: argparse.Namespace, paused: bool) -> None:
    strategy: str | None = args.strategy
    ledger = _ledger(settings)
    now = _now()
    changed = set_paused(ledger, strategy, paused, now)
    with ledger.begin() as s:
        still = pauses(s)
    ledger.dispose()
    who = "every buy" if strategy is None else f"the buys of {strategy}"
    if paused:
        since = next((p.since for p in still if p.strategy == strategy), now)
        already = "" if changed else " (it already was)"
        print(f"limitflow: {who} paused since {_when(since)}{already}; sells continue")
    else:
        print(f"limitflow: {who} resumed" + ("" if changed else " (it was not paused)"))
    buys = "buys" if strategy is None else f"buys of {strategy}"
    notify.alert(
        "paused" if paused else "resumed",
        f"{buys} paused (sells continue)" if paused else f"{buys} resumed",
        settings=settings,
    )
    notify.flush()
    for other in still:
        if other.strategy != strategy:
            print(f"limitflow: still on: {other.describe()}")


def cmd_pause(settings: Settings, args: argparse.Namespace) -> None:
    _set_paused(settings, args, True)


def cmd_resume(settings: Settings, args: argparse.Namespace) -> None:
    _set_paused(settings, args, False)


# -- read models ----------------------------------------------------------------------------------


def cmd_status(settings: Settings, args: argparse.Namespace) -> None:
    now = _now()
    since = args.since or now - timedelta(hours=24)
    with _session(settings) as s:
        doc = status_doc(s, since, now, settings.MEMORY_SYNC_INTERVAL_SECONDS)
    print(render.as_json(doc) if args.json else render.status_text(doc))


def cmd_why(settings: Settings, args: argparse.Namespace) -> None:
    now = _now()
    at = args.at or now
    if at > now + timedelta(seconds=1):
        raise SystemExit(
            f"limitflow: --at {_when(at)} is in the future (it is {_when(now)}); give a full "
            "ISO time (2026-11-24T08:27) for another day"
        )
    strategies = [args.strategy] if args.strategy else list(STRATEGIES)
    with _session(settings) as s:
        answers = why(s, settings, args.inst_id, strategies, at, now)
    printer = render.why_json if args.json else render.why_text
    print(printer(args.inst_id, at, answers))


def cmd_positions(settings: Settings, args: argparse.Namespace) -> None:
    with _session(settings) as s:
        lots = open_lots(s, args.inst)
    exchange = build_exchange(settings)
    try:
        positions = value_positions(lots, lambda inst: exchange.ticker(inst).last)
    finally:
        close = getattr(exchange, "close", None)
        if close is not None:
            close()
    print(
        render.positions_json(positions) if args.json else render.positions_text(positions, _now())
    )


def cmd_pnl(settings: Settings, args: argparse.Namespace) -> None:
    with _session(settings) as s:
        lines = realised_pnl(s, args.since)
    print(render.pnl_json(lines, args.since) if args.json else render.pnl_text(lines, args.since))


def cmd_orders(settings: Settings, args: argparse.Namespace) -> None:
    with _session(settings) as s:
        found = orders(s, args.state or (), args.inst, args.strategy, args.limit)
    print(render.orders_json(found) if args.json else render.orders_text(found))


# -- actions ------------------------------------------------------------------------------------


def _runtime(settings: Settings) -> Runtime:
    """A runtime for a command: the exchange, the ledger; follow-up lookups are left to
    reconciliation (a command does not wait for them)."""

    configure_logging(settings.LOG_FORMAT, "WARNING")
    return Runtime(
        settings=settings,
        ledger=_ledger(settings),
        exchange=build_exchange(settings),
        schedule=lambda task, args, countdown=None: None,
        events=SlotEvents(settings.redis_url),
    )


def _act(settings: Settings, action: Callable[[Runtime], T]) -> T:
    """Run an emergency action with a command's runtime, and close its database pool."""
    rt = _runtime(settings)
    try:
        return action(rt)
    finally:
        rt.ledger.dispose()


def _buys_still_run(settings: Settings) -> None:
    with _session(settings) as s:
        on = [p for p in pauses(s) if p.strategy is None]
    if not on:
        print(
            "limitflow: buys are not paused: new signals may still buy "
            "(`python -m worker pause` stops them)"
        )


def cmd_cancel_buys(settings: Settings, args: argparse.Namespace) -> None:
    done = _act(settings, lambda rt: cancel_buys(rt, args.inst))
    for c in done:
        note = f": {c.note}" if c.note else ""
        print(f"limitflow: {c.cl_ord_id} ({c.inst_id}/{c.strategy}) {c.before} -> {c.after}{note}")
    still = [c for c in done if c.after in ("live", "partially_filled", "pending_submit")]
    print(
        f"limitflow: {len(done)} open buy(s), {len(done) - len(still)} no longer open"
        + (f", {len(still)} still open: run cancel-buys again" if still else "")
    )
    _buys_still_run(settings)


def cmd_flatten(settings: Settings, args: argparse.Namespace) -> None:
    done = _act(settings, lambda rt: flatten(rt, args.inst_id))
    for f in done:
        lots = ", ".join(str(n) for n in f.lots)
        print(f"limitflow: {f.inst_id}/{f.strategy} lot(s) {lots}: {f.outcome}: {f.detail}")
    failed = [f for f in done if f.outcome != "done"]
    print(
        f"limitflow: {len(done)} slot(s) with unsold lots"
        + (f", {len(failed)} not done: see above" if failed else ", every exit placed")
    )
    _buys_still_run(settings)


def cmd_enqueue(settings: Settings, args: argparse.Namespace) -> None:
    from worker.app import app  # only enqueue needs the Celery app (it creates its folders)

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
    now_ms = int(time.time() * 1000)
    for warning in time_warnings(message, settings.SIGNAL_TTL_SECONDS, now_ms):
        print(f"limitflow: warning: {warning}", file=sys.stderr)
    task = PROCESS_SELL_SIGNAL if kind == "sell" else PROCESS_BUY_SIGNAL
    preflight.check_broker(app, settings.broker_url)
    # No result is kept for these tasks: without ignore_result a Redis result store would be
    # subscribed to (and, when unreachable, retried for twenty silent seconds).
    result = app.send_task(task, args=[message], ignore_result=True)
    print(f"limitflow: enqueued {task} task_id={result.id} signal_id={message['signal_id']}")


def cmd_settle_lot(settings: Settings, args: argparse.Namespace) -> None:
    if args.sold_elsewhere is not None:
        action, px = Settlement.SOLD_ELSEWHERE.value, _price(args.sold_elsewhere)
    else:
        action, px = (Settlement.WRITTEN_OFF.value if args.write_off else "retry"), None
    ledger = _ledger(settings)
    try:
        done = settle_lot(ledger, args.lot_id, action, _now(), px)
    except CommandRefused as exc:
        raise SystemExit(f"limitflow: lot not settled: {exc}") from None
    finally:
        ledger.dispose()
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


# -- arguments ------------------------------------------------------------------------------------


def _price(text: str) -> Decimal:
    try:
        px = Decimal(text)
    except InvalidOperation:
        raise SystemExit(f"limitflow: --sold-elsewhere needs a price, got {text!r}") from None
    if not px.is_finite() or px <= 0:
        raise SystemExit(f"limitflow: --sold-elsewhere needs a positive price, got {text!r}")
    return px


_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$")
_SPAN = re.compile(r"^(\d+)\s*([mhd])$")


def parse_time(text: str) -> datetime:
    """``08:27`` (today, UTC), ``2026-11-24T08:27`` (UTC unless an offset is given), or a span
    back from now: ``90m``, ``24h``, ``7d``."""
    now = _now()
    text = text.strip()
    if m := _CLOCK.match(text):
        hour, minute, second = int(m[1]), int(m[2]), int(m[3] or 0)
        if hour > 23 or minute > 59 or second > 59:
            raise argparse.ArgumentTypeError(f"{text!r} is not a time of day")
        return now.replace(hour=hour, minute=minute, second=second, microsecond=0)
    if m := _SPAN.match(text):
        unit = {"m": "minutes", "h": "hours", "d": "days"}[m[2]]
        return now - timedelta(**{unit: int(m[1])})
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a time: use 08:27 (today, UTC), 2026-11-24T08:27, or 24h"
        ) from None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _instrument(text: str) -> str:
    inst = text.strip().upper()
    if not is_inst_id(inst):
        raise argparse.ArgumentTypeError(f"{text!r} is not an instrument id like BTC-USDT")
    return inst


def _json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print JSON instead of text")


def _when(dt: datetime) -> str:
    return when(dt)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m worker",
        description="Limitflow's operator commands. Configuration comes from the environment "
        "(DATABASE_URL, CELERY_BROKER_URL, ...; see the README).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, run: Command, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(run=run)
        return p

    command("migrate", cmd_migrate, "create or migrate the database to the newest schema")
    for name, run, text in (
        ("pause", cmd_pause, "refuse new buys (reason 'paused'); sells continue"),
        ("resume", cmd_resume, "accept buys again"),
    ):
        p = command(name, run, text)
        p.add_argument(
            "strategy", nargs="?", choices=STRATEGIES, help="only this strategy (default: all)"
        )
    p = command(
        "status",
        cmd_status,
        "pause switches, reconciliation, counts, lots that need attention, last reconcile runs",
    )
    p.add_argument("--since", type=parse_time, help="count from this time (default: 24h)")
    _json(p)
    p = command("why", cmd_why, "why a strategy did or did not buy an instrument at a time")
    p.add_argument("inst_id", type=_instrument, metavar="INST", help="e.g. BTC-USDT")
    p.add_argument("strategy", nargs="?", choices=STRATEGIES, help="default: every strategy")
    p.add_argument(
        "--at", type=parse_time, help="08:27 (today, UTC) or 2026-11-24T08:27 (default: now)"
    )
    _json(p)
    p = command("positions", cmd_positions, "open lots with unrealised P&L at the last price")
    p.add_argument("--inst", type=_instrument, help="only this instrument")
    _json(p)
    p = command("pnl", cmd_pnl, "realised P&L per strategy and instrument, fees included")
    p.add_argument("--since", type=parse_time, help="lots closed since (24h, 2026-11-24, ...)")
    _json(p)
    p = command("orders", cmd_orders, "orders, newest first")
    p.add_argument(
        "--state",
        action="append",
        help="only this state (repeatable; 'open' means every non-terminal state)",
    )
    p.add_argument("--inst", type=_instrument, help="only this instrument")
    p.add_argument("--strategy", choices=STRATEGIES, help="only this strategy")
    p.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    _json(p)
    p = command("cancel-buys", cmd_cancel_buys, "cancel every open buy, then look each one up")
    p.add_argument("--inst", type=_instrument, help="only this instrument")
    p = command(
        "flatten", cmd_flatten, "sell every unsold lot at the best bid (the normal sell path)"
    )
    p.add_argument("inst_id", nargs="?", type=_instrument, metavar="INST", help="only this one")
    p = command(
        "enqueue", cmd_enqueue, "validate a signal JSON file (or - for stdin) and enqueue it"
    )
    p.add_argument("file", help="signal JSON file, or - for standard input")
    p = command(
        "settle-lot",
        cmd_settle_lot,
        "settle a lot in needs_attention: sold elsewhere at PX, written off, or retried",
    )
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
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        settings = get_settings()
        settings.strategies  # noqa: B018
    except ConfigError as exc:
        raise SystemExit(f"limitflow: {exc}") from None
    try:
        args.run(settings, args)
    except preflight.StoreUnreachable as exc:
        preflight.exit_unreachable(exc)
    except (sa_exc.OperationalError, sa_exc.InterfaceError) as exc:
        # The connection was lost (or refused) after the first check.
        preflight.exit_unreachable(preflight.database_unreachable(settings.database_url, exc))


if __name__ == "__main__":
    main()

"""The Celery tasks: thin like web views. Decode, call a service function, log one line.

Every task is idempotent: the ledger (row locks, unique clOrdIds and signal ids) decides what
a run may do, so a redelivered or retried message does no harm.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from celery import Task
from celery.exceptions import CPendingDeprecationWarning, Retry
from celery.signals import (
    beat_init,
    celeryd_after_setup,
    worker_init,
    worker_process_init,
    worker_process_shutdown,
    worker_ready,
    worker_shutting_down,
)
from celery.utils.time import get_exponential_backoff_interval
from sqlalchemy.exc import OperationalError

from worker import metrics, metrics_server, preflight
from worker.app import (
    APPLY_ORDER_UPDATE,
    NOOP,
    NOTIFY,
    NOTIFY_QUEUE,
    PROCESS_BUY_SIGNAL,
    PROCESS_SELL_SIGNAL,
    PURGE_PENDING,
    QUEUE,
    SYNC_ACTIVE_ORDERS,
    VERIFY_ORDER,
    app,
)
from worker.banner import log_banner
from worker.domain.errors import ExchangeError, Retryable
from worker.domain.orders import OrderState
from worker.domain.results import Verdict
from worker.exchange.factory import build_okx_exchange
from worker.ledger.db import make_engine
from worker.ledger.migrate import NotMigrated, check_migrated
from worker.logs import configure_logging, log_event
from worker.notify import DeliveryFailed, deliver, reconcile_alert
from worker.runtime import Runtime, get_runtime, warm_up
from worker.services import reconcile
from worker.services.buy import BuyResult, process_buy, record_unexecuted
from worker.services.lookup import lookup
from worker.services.placement import VERIFY_DELAYS
from worker.services.sell import SellResult, process_sell, record_sell_failed
from worker.services.updates import apply_update_message
from worker.settings import get_settings

log = logging.getLogger("limitflow.tasks")
# What a lookup may answer while the exchange has not settled the order yet: look again.
UNSETTLED = (Verdict.MISSING, Verdict.UNKNOWN, OrderState.PENDING_SUBMIT)
TRANSIENT = (Retryable, OperationalError)
R = TypeVar("R", BuyResult, SellResult)


@contextlib.contextmanager
def task_line(task: str, **fields: Any) -> Iterator[dict[str, Any]]:
    """Log exactly one summary line per task run, with its duration and outcome."""
    started = time.perf_counter()
    line: dict[str, Any] = dict(fields)
    try:
        yield line
    except (*TRANSIENT, Retry) as exc:
        line.setdefault("outcome", "retry")
        line["error"] = f"{type(exc).__name__}: {exc}"[:300]
        raise
    except Exception as exc:
        line.setdefault("outcome", "error")
        line["error"] = f"{type(exc).__name__}: {exc}"[:300]
        raise
    finally:
        elapsed = time.perf_counter() - started
        line["duration_ms"] = round(elapsed * 1000, 2)
        metrics.task_done(task, elapsed)
        level = logging.ERROR if line.get("outcome") == "error" else logging.INFO
        log_event(log, "task.done", level=level, task=task, **line)


def _field(message: Any, key: str) -> Any:
    """A message's field for the log line, before the message is validated (``-`` if none)."""
    return message.get(key, "-") if isinstance(message, dict) else "-"


def _doubling(retries: int) -> int:
    return int(2**retries)


def _jittered(retries: int) -> int:
    # 2, 4, 8 ... seconds, at most a minute, with full jitter.
    return int(get_exponential_backoff_interval(2, retries, 60, full_jitter=True))


def _run_signal(
    task: Task,
    message: Any,
    process: Callable[[Runtime, Any], R],
    record_failed: Callable[[Runtime, Any, str], R],
    backoff: Callable[[int], int],
) -> R:
    """Process a signal; retry a transient failure after ``backoff``, then record it."""
    rt = get_runtime()
    try:
        return process(rt, message)
    except TRANSIENT as exc:
        if task.request.retries < task.max_retries:
            raise task.retry(exc=exc, countdown=backoff(task.request.retries)) from exc
        return record_failed(rt, message, f"{type(exc).__name__}: {exc}")


def _report(line: dict[str, Any], result: BuyResult | SellResult, **more: Any) -> None:
    """Put a signal's recorded outcome on the task's line and in the metrics."""
    line.update(
        signal_id=result.signal_id,
        slot=result.slot,
        outcome=result.outcome,
        reason=result.reason,
        **more,
    )
    metrics.signal(result.slot, result.outcome, result.reason)


@app.task(name=PROCESS_BUY_SIGNAL, bind=True, max_retries=3)
def process_buy_signal(self: Task, message: Any) -> None:
    """Execute one buy signal at most once (expired ones are dropped with a reason)."""
    with task_line("process_buy_signal", signal_id=_field(message, "signal_id")) as line:
        # Out of retries (2, 4, 8 s apart), the signal is recorded as not executed.
        result = _run_signal(self, message, process_buy, record_unexecuted, _doubling)
        _report(line, result, order_state=result.order_state)


@app.task(name=PROCESS_SELL_SIGNAL, bind=True, max_retries=30)
def process_sell_signal(self: Task, message: Any) -> None:
    """Exit the unsold lots of a slot; retried until done (then reconciliation takes over)."""
    with task_line("process_sell_signal", signal_id=_field(message, "signal_id")) as line:
        # Out of retries, the signal says so; reconciliation keeps selling its lots.
        result = _run_signal(self, message, process_sell, record_sell_failed, _jittered)
        _report(line, result, lots=result.lots)


@app.task(
    name=APPLY_ORDER_UPDATE, bind=True, autoretry_for=TRANSIENT, retry_backoff=1, max_retries=10
)
def apply_order_update(self: Task, message: Any) -> None:
    """Apply one order update pushed by the exchange (fills counted once per tradeId)."""
    with task_line("apply_order_update", cl_ord_id=_field(message, "cl_ord_id")) as line:
        line["outcome"] = apply_update_message(get_runtime(), message)


@app.task(name=VERIFY_ORDER, bind=True, autoretry_for=(OperationalError,), max_retries=3)
def verify_order(self: Task, order_id: int, attempt: int = 0) -> None:
    """Look up an ambiguously placed order by clOrdId (after 2, 5 and 10 seconds)."""
    with task_line("verify_order", order_id=order_id, attempt=attempt) as line:
        rt = get_runtime()
        result = lookup(rt, order_id)
        line["outcome"] = result
        if result in UNSETTLED and attempt + 1 < len(VERIFY_DELAYS):
            rt.schedule(VERIFY_ORDER, [order_id, attempt + 1], VERIFY_DELAYS[attempt + 1])


@app.task(name=SYNC_ACTIVE_ORDERS, ignore_result=False)
def sync_active_orders() -> dict[str, Any]:
    """Reconcile every open order and unsold lot with the exchange; return the report."""
    return _reconcile("sync_active_orders", reconcile.sync_active_orders)


@app.task(name=PURGE_PENDING, ignore_result=False)
def purge_pending() -> dict[str, Any]:
    """Settle intents older than the pending timeout; return the report."""
    return _reconcile("purge_pending", reconcile.purge_pending)


def _reconcile(task: str, run: Callable[[Runtime], dict[str, Any]]) -> dict[str, Any]:
    """Run one reconciliation pass: its line, its metrics, and an alert if it found trouble."""
    with task_line(task) as line:
        report = run(get_runtime())
        metrics.reconcile_report(task, report)
        reconcile_alert(task, report)
        line.update(outcome="skipped" if "skipped" in report else "done", **report)
        return report


@app.task(
    name=NOTIFY,
    autoretry_for=(DeliveryFailed,),
    retry_backoff=5,
    max_retries=3,
    rate_limit="20/m",
    soft_time_limit=20,
    time_limit=30,
)
def notify(kind: str, title: str, body: str = "") -> None:
    """Deliver one alert through Apprise (on the ``notify`` queue: never in a signal's way)."""
    with task_line("notify", kind=kind) as line:
        line["outcome"] = "sent" if deliver(get_settings(), kind, title, body) else "no_url"


@app.task(name=NOOP, ignore_result=False)
def noop() -> str:
    """Do nothing: the baseline of the benchmarks, and a cheap end-to-end health check."""
    return "ok"


@worker_init.connect
def _check_database(sender: Any = None, **_: Any) -> None:
    """Refuse to start on a database that is not migrated, or on a store that cannot be
    reached, saying which one and what to do."""

    settings = get_settings()
    configure_logging(settings.LOG_FORMAT, settings.LOG_LEVEL, others=None)
    log_banner(
        settings,
        "worker",
        hostname=getattr(sender, "hostname", "?"),
        concurrency=getattr(sender, "concurrency", "?"),
    )
    try:
        preflight.check_database(settings.database_url)
        preflight.check_broker(app, settings.broker_url, retries=STARTUP_RETRIES)
    except preflight.StoreUnreachable as exc:
        _refuse_start("worker", exc)
    # Before the pool starts: one port for all its processes.
    metrics_server.serve_worker(settings, app, (QUEUE, NOTIFY_QUEUE))
    engine = make_engine(settings.database_url)
    try:
        check_migrated(engine)
    except NotMigrated as exc:
        print(f"limitflow: worker not started: {exc}", file=sys.stderr, flush=True)
        os._exit(3)  # celery swallows exceptions raised by signal handlers
    except OperationalError as exc:
        _refuse_start("worker", preflight.database_unreachable(settings.database_url, exc))
    finally:
        engine.dispose()


# A store that comes up a moment after the process (compose) is waited for this many seconds.
STARTUP_RETRIES = 2


def _refuse_start(process: str, exc: preflight.StoreUnreachable) -> None:
    print(f"limitflow: {process} not started: {exc}", file=sys.stderr, flush=True)
    os._exit(preflight.EXIT_UNREACHABLE)  # celery swallows exceptions raised by signal handlers


@worker_process_init.connect
def _child_logging(**_: Any) -> None:
    settings = get_settings()
    configure_logging(settings.LOG_FORMAT, settings.LOG_LEVEL, others=None)


# Warm start: the first order after a start must be no slower than the others. Each process
# that runs tasks prepares its runtime (instrument table, HTTP and database connections) before
# it takes its first task: prefork and solo pool processes when they start; a threads pool's
# one process when the worker is ready (its pool sends no worker_process_init).
@worker_process_init.connect
def _warm_up_pool_process(**_: Any) -> None:
    warm_up()


@worker_ready.connect
def _warm_up_threads_pool(sender: Any = None, **_: Any) -> None:
    if type(getattr(sender, "pool", None)).__module__ == "celery.concurrency.thread":
        warm_up()


@worker_process_shutdown.connect
def _child_exits(pid: int | None = None, **_: Any) -> None:
    metrics_server.pool_process_exited(pid or os.getpid())


@worker_ready.connect
def _reconcile_at_start(sender: Any = None, **_: Any) -> None:
    """Reconcile once when a worker starts: orders may have changed while it was away."""
    log_event(log, "worker.ready", hostname=getattr(sender, "hostname", "?"))
    _warn_if_periodic_off("worker")
    _check_clock()
    app.send_task(PURGE_PENDING)
    app.send_task(SYNC_ACTIVE_ORDERS)


@celeryd_after_setup.connect
def _consume_alerts(sender: Any = None, instance: Any = None, **_: Any) -> None:
    """Consume the alerts' queue too, unless ``-Q`` chose the queues (a dedicated notifier)."""
    queues = instance.app.amqp.queues
    if getattr(queues, "_consume_from", None) is None:  # no -Q was given (Celery 5.x)
        # queues[name] declares it as a producer routing there does (same exchange).
        queues.select_add(queues[NOTIFY_QUEUE])


@celeryd_after_setup.connect
def _no_warning_for_running_tasks(**_: Any) -> None:
    """Celery warns at every lost broker connection that terminating the running tasks will
    be its default in 6.0; Limitflow chose to let them finish (``worker.app``'s docstring).
    Installed after Celery's logging setup, which shows every such warning ('always')."""
    warnings.filterwarnings(
        "ignore", message=r"\s*In Celery 5\.1 we introduced", category=CPendingDeprecationWarning
    )


@worker_shutting_down.connect
def _stopping(sig: Any = None, how: Any = None, **_: Any) -> None:
    log_event(log, "worker.stopping", signal=sig, how=how)


def _check_clock() -> None:
    """Warn at start when our clock is off OKX's (it refuses requests 30 s off)."""
    settings = get_settings()
    if settings.LIMITFLOW_EXCHANGE != "okx":
        return

    exchange = build_okx_exchange(settings)
    try:
        exchange.server_time()  # logs okx.clock_skew when the clocks disagree
    except ExchangeError as exc:
        log_event(log, "okx.clock_check_failed", level=logging.WARNING, error=str(exc))
    finally:
        exchange.close()


@beat_init.connect
def _beat_ready(**_: Any) -> None:
    settings = get_settings()
    configure_logging(settings.LOG_FORMAT, settings.LOG_LEVEL, others=None)
    log_banner(settings, "beat")
    try:
        preflight.check_broker(app, settings.broker_url, retries=STARTUP_RETRIES)
    except preflight.StoreUnreachable as exc:
        _refuse_start("beat", exc)
    interval = settings.MEMORY_SYNC_INTERVAL_SECONDS
    log_event(log, "beat.ready", interval_seconds=interval, periodic_tasks=interval > 0)
    _warn_if_periodic_off("beat")


def _warn_if_periodic_off(process: str) -> None:
    """Say at start that nothing reconciles periodically: an operator may not have meant it."""
    if get_settings().MEMORY_SYNC_INTERVAL_SECONDS > 0:
        return
    log_event(
        log,
        "reconcile.periodic_off",
        level=logging.WARNING,
        process=process,
        setting="MEMORY_SYNC_INTERVAL_SECONDS=0",
        note="no periodic sync_active_orders or purge_pending: the ledger is reconciled only "
        "when a worker starts and when the orders stream connects",
    )

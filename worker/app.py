"""The Celery application (``celery -A worker worker`` finds it as ``worker.app``).

Delivery settings, and why:
- ``task_acks_late`` + ``task_reject_on_worker_lost``: a message is acknowledged only after
  its task ran, so a worker killed mid-task leaves it to be redelivered. Every task is
  idempotent (the ledger decides), so a redelivery does no harm.
- ``worker_prefetch_multiplier=1``: a worker reserves one message at a time; signals are
  perishable and should not wait behind a busy worker.
- Redis ``visibility_timeout`` 600 s: longer than any task can run (the longest are
  reconciliations, a few seconds; sell retries wait at most 60 s), so a slow task is never
  delivered twice while it runs; after a crash the message comes back within ~12 minutes, by
  which time a buy signal has expired (it is then recorded as such) and reconciliation has
  already settled any order it left.
- RabbitMQ (``amqp://``): quorum queues, publisher confirms and no visibility timeout at all;
  a dead worker's message comes back as soon as its connection drops. See
  ``worker.amqp_broker`` for why.
- ``worker_cancel_long_running_tasks_on_connection_loss=False``: when the broker connection
  drops (a Redis restart), a running task finishes. Its acknowledgement reaches Redis once it
  is back (kombu acknowledges through a new connection). Where it cannot (Redis still down;
  RabbitMQ, whose acknowledgements belong to the lost channel) the message is delivered again
  (Redis: after the visibility timeout; RabbitMQ: at once, maybe while the first run
  finishes), and the second run finds its work recorded. Terminating the task instead would
  cut a buy between the exchange's answer and the ledger's record of it: the order is then
  unknown until a lookup or ``purge_pending``.
"""

from __future__ import annotations

from typing import Any

from celery import Celery

from beat_schedule import beat_schedule
from worker.amqp_broker import amqp_config, is_amqp, server_queue_type
from worker.celery_logs import LimitflowCelery
from worker.fs_broker import TRANSPORT as FS_TRANSPORT
from worker.settings import Settings, get_settings

# Task names are part of the public contract (``worker.task_names``), re-exported here.
from worker.task_names import (
    APPLY_ORDER_UPDATE,
    NOOP,
    NOTIFY,
    PROCESS_BUY_SIGNAL,
    PROCESS_SELL_SIGNAL,
    PURGE_PENDING,
    SYNC_ACTIVE_ORDERS,
    VERIFY_ORDER,
)

__all__ = [
    "APPLY_ORDER_UPDATE",
    "NOOP",
    "NOTIFY",
    "PROCESS_BUY_SIGNAL",
    "PROCESS_SELL_SIGNAL",
    "PURGE_PENDING",
    "SYNC_ACTIVE_ORDERS",
    "VERIFY_ORDER",
    "app",
    "make_app",
]

VISIBILITY_TIMEOUT_SECONDS = 600
QUEUE = "limitflow"
# Alerts go through their own queue: a slow notification service never delays a signal.
NOTIFY_QUEUE = "notify"


def celery_config(settings: Settings) -> dict[str, Any]:
    transport: dict[str, Any] = {"visibility_timeout": VISIBILITY_TIMEOUT_SECONDS}
    config_extra: dict[str, Any] = {}
    if settings.broker_url.startswith("filesystem://"):
        # The folders are created on the first connection (``worker.fs_broker``).
        folder = settings.broker_folder
        transport = {
            "data_folder_in": str(folder / "queue"),
            "data_folder_out": str(folder / "queue"),
            "processed_folder": str(folder / "processed"),
            "control_folder": str(folder / "control"),
            "store_processed": False,
            "polling_interval": 0.05,
        }
        config_extra["broker_transport"] = FS_TRANSPORT  # atomic writes: see worker.fs_broker
    elif is_amqp(settings.broker_url):
        # Visibility timeouts are a Redis transport notion: RabbitMQ redelivers on disconnect.
        transport, config_extra = amqp_config(server_queue_type(settings.broker_url))
    if settings.result_backend.startswith("db+sqlite"):
        settings.home.mkdir(parents=True, exist_ok=True)
    return {
        "broker_url": settings.broker_url,
        "result_backend": settings.result_backend,
        "broker_transport_options": transport,
        "result_backend_transport_options": {"visibility_timeout": VISIBILITY_TIMEOUT_SECONDS},
        "visibility_timeout": VISIBILITY_TIMEOUT_SECONDS,
        "broker_connection_retry_on_startup": True,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "worker_cancel_long_running_tasks_on_connection_loss": False,
        "worker_hijack_root_logger": False,
        "task_default_queue": QUEUE,
        "task_routes": {NOTIFY: {"queue": NOTIFY_QUEUE}},
        "task_ignore_result": True,
        "result_expires": 3600,
        "timezone": "UTC",
        "enable_utc": True,
        "beat_schedule": beat_schedule(settings.MEMORY_SYNC_INTERVAL_SECONDS),
        # Task events cost three broker writes per task; Flower switches them on while it
        # watches (its enable_events option), so they are off by default.
        "worker_send_task_events": False,
        "worker_redirect_stdouts": False,
        **config_extra,
    }


def make_app(settings: Settings) -> Celery:
    app: Celery = LimitflowCelery("limitflow", include=["worker.tasks"])
    app.conf.update(celery_config(settings))
    return app


app = make_app(get_settings())

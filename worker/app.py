"""The Celery application (``celery -A worker worker`` finds it as ``worker.app``)."""

from __future__ import annotations

from celery import Celery

from worker.settings import Settings, get_settings

# Task names are part of the public contract: producers call ``app.send_task(NAME, ...)``
# without importing the worker's internals.
PROCESS_BUY_SIGNAL = "limitflow.process_buy_signal"
PROCESS_SELL_SIGNAL = "limitflow.process_sell_signal"
APPLY_ORDER_UPDATE = "limitflow.apply_order_update"
SYNC_ACTIVE_ORDERS = "limitflow.sync_active_orders"
PURGE_PENDING = "limitflow.purge_pending"


def make_app(settings: Settings) -> Celery:
    app = Celery("limitflow")
    app.conf.update(broker_url=settings.broker_url, result_backend=settings.result_backend)
    return app


app = make_app(get_settings())

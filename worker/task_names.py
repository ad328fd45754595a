"""Task names: the public contract between producers and the workers.

Producers call ``app.send_task(NAME, ...)`` without importing the worker's internals, and
importing this module builds no Celery app (``--help`` creates no folders).
"""

from __future__ import annotations

PROCESS_BUY_SIGNAL = "limitflow.process_buy_signal"
PROCESS_SELL_SIGNAL = "limitflow.process_sell_signal"
APPLY_ORDER_UPDATE = "limitflow.apply_order_update"
VERIFY_ORDER = "limitflow.verify_order"
NOOP = "limitflow.noop"
NOTIFY = "limitflow.notify"
SYNC_ACTIVE_ORDERS = "limitflow.sync_active_orders"
PURGE_PENDING = "limitflow.purge_pending"

__all__ = [
    "APPLY_ORDER_UPDATE",
    "NOOP",
    "NOTIFY",
    "PROCESS_BUY_SIGNAL",
    "PROCESS_SELL_SIGNAL",
    "PURGE_PENDING",
    "SYNC_ACTIVE_ORDERS",
    "VERIFY_ORDER",
]

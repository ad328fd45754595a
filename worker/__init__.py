"""Limitflow workers: decide and execute orders with the database as the only truth."""

from __future__ import annotations

from typing import Any

__all__ = ["app"]


def __getattr__(name: str) -> Any:
    """``celery -A worker`` finds the Celery app as ``worker.app``. It is built on first use,
    so that importing any ``worker`` module (``python -m worker --help``, the feed's imports)
    neither reads the broker settings nor creates the embedded broker's folders."""
    if name == "app":
        from worker.app import app  # the point of this function: built on first use

        globals()["app"] = app  # the instance, not the ``worker.app`` submodule
        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

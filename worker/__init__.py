"""Limitflow workers: decide and execute orders with the database as the only truth."""

from worker.app import app

__all__ = ["app"]

"""Celery's own output in Limitflow's log format.

Celery configures logging itself unless a receiver of its ``setup_logging`` signal does it:
ours installs Limitflow's handler on the root logger, so Celery's and kombu's records (and
httpx's, and Python warnings) come out as ``LOG_FORMAT`` says: text, or one JSON object per
line. Celery also *prints* a few things that are not log records: the worker's and beat's
start-up banners and the worker's "Warm shutdown" notice. With ``LOG_FORMAT=json`` the
application classes below turn those off (what they said is in Limitflow's own start-up
line, ``limitflow.start``, and in ``worker.stopping``), so that every line is JSON.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from celery import Celery
from celery.apps import worker as celery_worker
from celery.apps.beat import Beat as CeleryBeat
from celery.signals import setup_logging

from worker.logs import configure_logging
from worker.settings import get_settings


def json_logs() -> bool:
    return get_settings().LOG_FORMAT == "json"


def _setup_logging(loglevel: int | None = None, **_: Any) -> None:
    """Replace Celery's logging set-up (worker and beat) by Limitflow's."""
    settings = get_settings()
    configure_logging(settings.LOG_FORMAT, settings.LOG_LEVEL, others=loglevel or "WARNING")


setup_logging.connect(_setup_logging, weak=False)


class QuietWorker(celery_worker.Worker):  # type: ignore[misc]
    """``celery worker`` without its printed banner and shutdown notices when logs are JSON."""

    def on_before_init(self, quiet: bool = False, **kwargs: Any) -> None:
        # Early, so that the warnings Celery gives before it sets up logging are lines too.
        settings = get_settings()
        configure_logging(settings.LOG_FORMAT, settings.LOG_LEVEL, others=None)
        super().on_before_init(quiet=quiet or json_logs(), **kwargs)

    def install_platform_tweaks(self, worker: Any) -> None:
        super().install_platform_tweaks(worker)
        if json_logs():
            # The same handlers, minus the line each prints to stdout before shutting down.
            celery_worker._shutdown_handler(worker, sig="SIGTERM", how="Warm", verbose=False)
            celery_worker._shutdown_handler(
                worker,
                sig="SIGQUIT",
                how="Cold",
                callback=celery_worker.on_cold_shutdown,
                exitcode=celery_worker.EX_FAILURE,
                verbose=False,
            )


class QuietBeat(CeleryBeat):  # type: ignore[misc]
    """``celery beat`` without its printed banner when logs are JSON."""

    def __init__(self, *args: Any, quiet: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, quiet=quiet or json_logs(), **kwargs)


class LimitflowCelery(Celery):  # type: ignore[misc]
    """The Celery application class, with the quiet worker and beat above."""

    @cached_property
    def Worker(self) -> Any:
        return self.subclass_with_self(QuietWorker)

    @cached_property
    def Beat(self) -> Any:
        return self.subclass_with_self(QuietBeat)

"""The start-up line every process logs: what it talks to, and whether money is real.

One ``limitflow.start`` event: ``mode`` DEMO or LIVE, the OKX URLs, the database, the broker
and the result store (passwords masked), the strategies enabled, and what the process adds
(its name, a worker's hostname). LIVE is logged at WARNING so that it stands out.
"""

from __future__ import annotations

import logging
from typing import Any

from worker.logs import log_event, mask_passwords
from worker.settings import Settings

log = logging.getLogger("limitflow.start")


def banner_fields(settings: Settings, process: str) -> dict[str, Any]:
    return {
        "process": process,
        "mode": "DEMO" if settings.OKX_DEMO else "LIVE",
        "exchange": settings.LIMITFLOW_EXCHANGE,
        "okx_rest": mask_passwords(settings.OKX_REST_URL),
        "okx_ws_public": mask_passwords(settings.OKX_WS_PUBLIC_URL),
        "okx_ws_private": mask_passwords(settings.OKX_WS_PRIVATE_URL),
        "okx_ws_business": mask_passwords(settings.OKX_WS_BUSINESS_URL),
        "database": mask_passwords(settings.database_url),
        "broker": mask_passwords(settings.broker_url),
        "result_backend": mask_passwords(settings.result_backend),
        "strategies": ",".join(settings.strategies.enabled()) or "none",
        "instruments": settings.INSTRUMENTS,
        "metrics_port": settings.METRICS_PORT or "off",
        "alerts": f"{len(settings.notify_urls)} url(s)" if settings.notify_urls else "off",
    }


def log_banner(settings: Settings, process: str, **extra: Any) -> None:
    """Log the process's one start-up line."""
    fields = banner_fields(settings, process)
    fields.update(extra)
    level = logging.INFO if settings.OKX_DEMO else logging.WARNING
    log_event(log, "limitflow.start", level=level, **fields)

"""Build the configured exchange adapter."""

from __future__ import annotations

from worker import metrics
from worker.exchange.memory import connect_memory_exchange
from worker.exchange.okx.adapter import OkxExchange
from worker.exchange.okx.rest import Credentials, OkxRestClient
from worker.exchange.port import Exchange
from worker.settings import Settings


def build_exchange(settings: Settings) -> Exchange:
    """``okx`` -> the OKX REST adapter; ``memory://HOST:PORT`` -> a shared in-memory venue."""
    if settings.LIMITFLOW_EXCHANGE.startswith("memory://"):
        return connect_memory_exchange(settings.LIMITFLOW_EXCHANGE)
    return build_okx_exchange(settings)


def build_okx_exchange(settings: Settings) -> OkxExchange:
    """The OKX adapter for ``OKX_REST_URL``, with the process-wide request pacer, reporting
    its clock-skew measurements to the process's metrics."""

    credentials = Credentials(
        settings.OKX_API_KEY, settings.OKX_API_SECRET, settings.OKX_API_PASSPHRASE
    )
    rest = OkxRestClient(settings.OKX_REST_URL, credentials, demo=settings.OKX_DEMO)
    return OkxExchange(rest, on_clock_skew=metrics.clock_skew)

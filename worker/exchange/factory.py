"""Build the configured exchange adapter."""

from __future__ import annotations

from worker.exchange.port import Exchange
from worker.settings import Settings


def build_exchange(settings: Settings) -> Exchange:
    """``okx`` -> the OKX REST adapter; ``memory://HOST:PORT`` -> a shared in-memory venue."""
    if settings.LIMITFLOW_EXCHANGE.startswith("memory://"):
        from worker.exchange.memory import connect_memory_exchange

        return connect_memory_exchange(settings.LIMITFLOW_EXCHANGE)
    from worker.exchange.okx.adapter import OkxExchange

    return OkxExchange.from_settings(settings)

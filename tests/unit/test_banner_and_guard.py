"""The start-up line and the live-money guard, from settings alone."""

from __future__ import annotations

import logging

import pytest

from tests.builders import make_settings
from worker.banner import banner_fields, log_banner
from worker.domain.errors import ConfigError
from worker.settings import is_loopback_url

OKX = {
    "OKX_REST_URL": "https://www.okx.com",
    "OKX_WS_PUBLIC_URL": "wss://ws.okx.com:8443/ws/v5/public",
    "OKX_WS_PRIVATE_URL": "wss://ws.okx.com:8443/ws/v5/private",
    "OKX_WS_BUSINESS_URL": "wss://ws.okx.com:8443/ws/v5/business",
}


@pytest.mark.parametrize(
    ("url", "local"),
    [
        ("http://127.0.0.1:18080", True),
        ("ws://127.0.0.2:1/ws/v5/public", True),
        ("ws://localhost:18080/ws", True),
        ("http://[::1]:8080", True),
        ("http://0.0.0.0:8080", True),
        ("https://www.okx.com", False),
        ("wss://ws.okx.com:8443/ws/v5/private", False),
        ("http://10.0.0.5:8080", False),
    ],
)
def test_loopback_urls(url: str, local: bool) -> None:
    assert is_loopback_url(url) is local


def test_live_money_is_refused_while_any_okx_url_is_local() -> None:
    with pytest.raises(ConfigError) as refused:
        make_settings(OKX_DEMO="false", **{**OKX, "OKX_WS_PRIVATE_URL": "ws://127.0.0.1:1/p"})
    assert str(refused.value).startswith("OKX_DEMO=false (real money) is refused while ")
    assert "OKX_WS_PRIVATE_URL points at this machine" in str(refused.value)
    assert make_settings(OKX_DEMO="false", **OKX).OKX_DEMO is False
    assert make_settings(OKX_DEMO="true").OKX_DEMO is True  # the simulator, in demo mode
    allowed = make_settings(OKX_DEMO="false", LIMITFLOW_ALLOW_LOCAL_LIVE="1")
    assert banner_fields(allowed, "feed")["mode"] == "LIVE"


def test_the_banner_names_stores_masked_and_the_strategies(
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = make_settings(
        DATABASE_URL="postgresql://trader:hunter2@db:5432/limitflow",
        CELERY_BROKER_URL="redis://:hunter2@cache:6379/0",
        NOTIFY_URLS="json://127.0.0.1:9/hook tgram://123:abc/456",
        METRICS_PORT="9101",
    )
    with caplog.at_level(logging.INFO, logger="limitflow.start"):
        log_banner(settings, "worker", hostname="w1@host")
    [record] = caplog.records
    fields = record.lf_fields  # type: ignore[attr-defined]
    assert fields["mode"] == "DEMO" and fields["process"] == "worker"
    assert fields["database"] == "postgresql://trader:***@db:5432/limitflow"
    assert fields["broker"] == "redis://:***@cache:6379/0"
    assert fields["strategies"] == "hourly_limit_ws,original_gap,stable_buy_ws,batch_buy_ws"
    assert fields["alerts"] == "2 url(s)" and fields["metrics_port"] == 9101
    assert "hunter2" not in repr(fields) and "abc" not in repr(fields)

"""The metric calls: bounded labels, and nothing at all while metrics are off."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
from prometheus_client import REGISTRY

from worker import metrics


@pytest.fixture
def on() -> Iterator[None]:
    metrics.enable()
    yield
    assert metrics._m is not None
    for collector in vars(metrics._m).values():
        REGISTRY.unregister(collector)
    metrics._m = None


def sample(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def test_calls_do_nothing_while_metrics_are_off() -> None:
    assert not metrics.enabled()
    metrics.signal("BTC-USDT/hourly_limit_ws", "accepted", "")
    metrics.fill("buy", Decimal("60000"), Decimal("0.001"))
    assert sample("limitflow_signals_total", strategy="hourly_limit_ws", outcome="accepted",
                  reason="") is None  # fmt: skip


def test_free_text_never_becomes_a_label(on: None) -> None:
    metrics.signal("-", "invalid", "px: Input should be a valid decimal, got 'abc'")
    metrics.signal("BTC-USDT/hourly_limit_ws", "skipped", "slot_busy")
    metrics.signal("BTC-USDT/hourly_limit_ws", "failed", "RuntimeError: boom")
    assert (
        sample(
            "limitflow_signals_total",
            strategy="unknown",
            outcome="invalid",
            reason="invalid_message",
        )
        == 1
    )
    assert (
        sample(
            "limitflow_signals_total",
            strategy="hourly_limit_ws",
            outcome="skipped",
            reason="slot_busy",
        )
        == 1
    )
    assert (
        sample(
            "limitflow_signals_total", strategy="hourly_limit_ws", outcome="failed", reason="other"
        )
        == 1
    )


def test_fills_reconcile_reports_and_skew(on: None) -> None:
    metrics.fill("buy", Decimal("60000"), Decimal("0.0002"))
    assert sample("limitflow_fill_notional_total", side="buy") == pytest.approx(12.0)
    metrics.reconcile_report("sync_active_orders", {"unknown": 2, "errors": {"a": 1, "b": 2}})
    assert sample("limitflow_reconcile_last", run="sync_active_orders", field="unknown") == 2
    assert sample("limitflow_reconcile_last", run="sync_active_orders", field="errors") == 3
    metrics.reconcile_report("purge_pending", {"skipped": "another run holds the lock"})
    assert sample("limitflow_reconcile_last_run_timestamp_seconds", run="purge_pending") is None
    metrics.clock_skew(-1500)
    assert sample("limitflow_clock_skew_seconds") == -1.5

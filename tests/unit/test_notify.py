"""Alerts: which reconcile runs are worth one, and nothing queued without NOTIFY_URLS."""

from __future__ import annotations

import pytest

from tests.builders import make_settings
from worker import notify


def test_a_run_with_unknowns_or_errors_alerts_and_a_clean_one_does_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sent: list[tuple[str, str]] = []
    monkeypatch.setattr(
        notify, "alert", lambda kind, title, body="", settings=None: sent.append((kind, title))
    )
    notify.reconcile_alert("sync_active_orders", {"unknown": 0, "errors": {}, "restored": 3})
    assert sent == []
    notify.reconcile_alert(
        "sync_active_orders", {"unknown": 2, "errors": {"internal_key_error": 1}}
    )
    assert sent == [("reconcile", "sync_active_orders: 2 unknown, 1 internal_key_error")]


def test_without_notify_urls_nothing_is_queued() -> None:
    notify.alert("paused", "buys paused", settings=make_settings())
    assert notify._sender is None or notify._sender_pid is None


def test_urls_are_split_on_commas_and_spaces() -> None:
    settings = make_settings(NOTIFY_URLS="json://a/b, tgram://t/c\nmailto://u:p@h")
    assert settings.notify_urls == ["json://a/b", "tgram://t/c", "mailto://u:p@h"]
    assert "tgram" not in repr(settings)

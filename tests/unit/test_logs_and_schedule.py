from __future__ import annotations

import io
import logging
from datetime import timedelta

import orjson

from beat_schedule import PURGE_PENDING, SYNC_ACTIVE_ORDERS, beat_schedule
from worker.logs import JsonFormatter, TextFormatter, log_event


def capture(formatter: logging.Formatter) -> tuple[logging.Logger, io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    logger = logging.getLogger(f"limitflow.test.{id(out)}")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger, out


def test_text_lines_are_event_and_key_values() -> None:
    logger, out = capture(TextFormatter())
    log_event(logger, "order.placed", inst_id="BTC-USDT", cl_ord_id="lfhlb1", note="two words")
    line = out.getvalue().strip()
    assert " info order.placed inst_id=BTC-USDT cl_ord_id=lfhlb1 " in line
    assert line.endswith('note="two words"')


def test_json_lines_and_secrets_are_masked() -> None:
    logger, out = capture(JsonFormatter())
    log_event(
        logger,
        "okx.login",
        api_key="k-123",
        OKX_API_SECRET="s-456",
        passphrase="p-789",
        sign="abc=",
        signal_id="hourly_limit_ws:BTC-USDT:1",
    )
    doc = orjson.loads(out.getvalue())
    assert doc["event"] == "okx.login"
    assert doc["signal_id"] == "hourly_limit_ws:BTC-USDT:1"
    for secret in ("k-123", "s-456", "p-789", "abc="):
        assert secret not in out.getvalue()


def test_beat_runs_both_tasks_every_interval_and_zero_disables() -> None:
    schedule = beat_schedule(300)
    assert {e["task"] for e in schedule.values()} == {SYNC_ACTIVE_ORDERS, PURGE_PENDING}
    assert all(e["schedule"] == timedelta(seconds=300) for e in schedule.values())
    assert all(e["options"]["expires"] == 300 for e in schedule.values())
    assert beat_schedule(0) == {}

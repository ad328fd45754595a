"""REST signature and websocket login checks (PROTOCOL.md §3.1, §4)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from simulator.auth import AuthError, Credentials, check_rest, check_ws_login
from worker.exchange.okx.signing import rest_signature, rest_timestamp, ws_login_signature

CREDS = Credentials("key", "secret", "pass")
PATH = "/api/v5/trade/order?instId=BTC-USDT&ordId=1"


def headers(ts: str | None = None, **overrides: str) -> dict[str, str]:
    ts = ts or rest_timestamp()
    base = {
        "OK-ACCESS-KEY": "key",
        "OK-ACCESS-PASSPHRASE": "pass",
        "OK-ACCESS-TIMESTAMP": ts,
        "OK-ACCESS-SIGN": rest_signature("secret", ts, "GET", PATH, ""),
    }
    base.update(overrides)
    return base


def check(hdrs: dict[str, str], path: str = PATH, body: str = "", method: str = "GET") -> None:
    check_rest(CREDS, hdrs, method, path, body, int(time.time() * 1000), 30.0)


def code_of(hdrs: dict[str, str], **kwargs: str) -> str:
    with pytest.raises(AuthError) as info:
        check(hdrs, **kwargs)
    return info.value.code


def test_good_signature_passes() -> None:
    check(headers())


def test_post_signs_the_raw_body_bytes() -> None:
    body = '{"instId": "BTC-USDT",  "sz": "1"}'  # python-okx style spacing
    ts = rest_timestamp()
    sig = rest_signature("secret", ts, "POST", "/api/v5/trade/order", body)
    check(headers(ts, **{"OK-ACCESS-SIGN": sig}), "/api/v5/trade/order", body, "POST")
    compact = '{"instId":"BTC-USDT","sz":"1"}'
    assert code_of(headers(ts, **{"OK-ACCESS-SIGN": sig}), path="/api/v5/trade/order",
                   body=compact, method="POST") == "50113"  # fmt: skip


@pytest.mark.parametrize(
    ("override", "code"),
    [
        ({"OK-ACCESS-KEY": "other"}, "50111"),
        ({"OK-ACCESS-PASSPHRASE": "wrong"}, "50105"),
        ({"OK-ACCESS-SIGN": "AAAA"}, "50113"),
        ({"OK-ACCESS-TIMESTAMP": "yesterday"}, "50112"),
        ({"OK-ACCESS-KEY": ""}, "50103"),
        ({"x-simulated-trading": "0"}, "50101"),
    ],
)
def test_bad_headers_are_refused(override: dict[str, str], code: str) -> None:
    assert code_of(headers(**override)) == code


def test_the_query_is_part_of_the_signed_path() -> None:
    assert code_of(headers(), path="/api/v5/trade/order?instId=ETH-USDT&ordId=1") == "50113"


def test_stale_timestamp_is_50102() -> None:
    old = rest_timestamp(datetime.now(UTC) - timedelta(seconds=31))
    assert code_of(headers(old)) == "50102"
    check(headers(rest_timestamp(datetime.now(UTC) - timedelta(seconds=25))))


def login(ts: str, **overrides: str) -> list[dict[str, str]]:
    arg = {"apiKey": "key", "passphrase": "pass", "timestamp": ts}
    arg["sign"] = ws_login_signature("secret", ts)
    arg.update(overrides)
    return [arg]


def test_ws_login_uses_epoch_seconds() -> None:
    now = str(int(time.time()))
    check_ws_login(CREDS, login(now), 0, 30.0)
    with pytest.raises(AuthError) as info:
        check_ws_login(CREDS, login(str(int(time.time()) - 40)), 0, 30.0)
    assert info.value.code == "60006"


@pytest.mark.parametrize(
    ("override", "code"),
    [({"apiKey": "x"}, "60005"), ({"passphrase": "x"}, "60024"), ({"sign": "x"}, "60007")],
)
def test_ws_login_refusals(override: dict[str, str], code: str) -> None:
    with pytest.raises(AuthError) as info:
        check_ws_login(CREDS, login(str(int(time.time())), **override), 0, 30.0)
    assert info.value.code == code

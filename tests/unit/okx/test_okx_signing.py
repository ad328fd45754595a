"""REST and websocket signatures match OKX's documented recipe."""

from __future__ import annotations

from datetime import UTC, datetime

from worker.exchange.okx.signing import (
    RestSigner,
    rest_signature,
    rest_timestamp,
    ws_login_signature,
)

# Expected values computed independently with
# printf '%s' PREHASH | openssl dgst -sha256 -hmac SecretKey -binary | base64
DOCS_TS = "2020-12-08T09:08:57.715Z"


def test_get_signs_the_path_with_its_query() -> None:
    sig = rest_signature("SecretKey", DOCS_TS, "GET", "/api/v5/account/balance?ccy=BTC", "")
    assert sig == "3BLjvySbB8YZPuaZ35ZInEFK/vmyc6D067IW1sMlgpU="


def test_post_signs_the_exact_body() -> None:
    body = '{"instId":"BTC-USDT","lever":"5","mgnMode":"isolated"}'
    sig = rest_signature("SecretKey", DOCS_TS, "post", "/api/v5/account/set-leverage", body)
    assert sig == "5/+oDDV1NnbvOm86drT8L0jJeRyJyaDXT7D/rrFMIzg="
    spaced = body.replace(",", ", ")
    assert (
        rest_signature("SecretKey", DOCS_TS, "POST", "/api/v5/account/set-leverage", spaced) != sig
    )


def test_the_prepared_signer_signs_like_the_recipe_every_time() -> None:
    signer = RestSigner("SecretKey")
    body = '{"instId":"BTC-USDT","lever":"5","mgnMode":"isolated"}'
    for _ in range(2):  # each request signs a copy: nothing of the previous one remains
        assert signer.sign(DOCS_TS, "post", "/api/v5/account/set-leverage", body) == (
            "5/+oDDV1NnbvOm86drT8L0jJeRyJyaDXT7D/rrFMIzg="
        )
        assert signer.sign(DOCS_TS, "GET", "/api/v5/account/balance?ccy=BTC", "") == (
            "3BLjvySbB8YZPuaZ35ZInEFK/vmyc6D067IW1sMlgpU="
        )


def test_websocket_login_signs_epoch_seconds_and_the_verify_path() -> None:
    assert ws_login_signature("SecretKey", "1538054050") == (
        "ykSnzsbi1HITF3n3MuhnKNVAiHoMbPT7z6odcX8gyWs="
    )


def test_rest_timestamp_is_iso_utc_with_milliseconds() -> None:
    now = datetime(2020, 12, 8, 9, 8, 57, 715_999, tzinfo=UTC)
    assert rest_timestamp(now) == DOCS_TS

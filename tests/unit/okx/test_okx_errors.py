"""Every OKX answer maps to the right branch of the error tree."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from worker.domain.errors import (
    AuthenticationError,
    CancelRejected,
    DuplicateClientOrderId,
    ExchangeError,
    ExchangeUnavailable,
    Fatal,
    InsufficientFunds,
    InvalidInstrument,
    OrderNotFound,
    OrderRejected,
    RateLimited,
    RequestExpired,
    Retryable,
    StateUnknown,
)
from worker.exchange.okx.errors import (
    ANSWERS,
    REFUSALS,
    MalformedResponse,
    envelope_error,
    error_class,
    http_error,
    item_error,
    scrub,
)

CASES: list[tuple[str, type[ExchangeError]]] = [
    ("51016", DuplicateClientOrderId),
    ("51603", OrderNotFound),
    ("51400", CancelRejected),
    ("51401", CancelRejected),
    ("51402", CancelRejected),
    ("51410", CancelRejected),
    ("50011", RateLimited),
    ("60014", RateLimited),
    ("50001", ExchangeUnavailable),
    ("50013", ExchangeUnavailable),
    ("51008", InsufficientFunds),
    ("51008_1000", InsufficientFunds),
    ("51119", InsufficientFunds),
    ("51131", InsufficientFunds),
    ("51000", OrderRejected),
    ("51006", OrderRejected),
    ("51020", OrderRejected),
    ("51121", OrderRejected),
    ("51204", OrderRejected),
    ("51024", OrderRejected),
    ("51001", InvalidInstrument),
    ("51022", InvalidInstrument),
    ("50101", AuthenticationError),
    ("50102", AuthenticationError),
    ("50111", AuthenticationError),
    ("50113", AuthenticationError),
    ("50114", AuthenticationError),
    ("50007", OrderRejected),
    ("50014", OrderRejected),
    ("50036", RequestExpired),  # the request arrived after its expTime: not processed
    ("50037", RequestExpired),
    ("50119", AuthenticationError),
    ("51127", InsufficientFunds),
    # The venue says it does not know what became of the request.
    ("50004", StateUnknown),
    ("50026", StateUnknown),
    ("51054", StateUnknown),
    ("51149", StateUnknown),
]


@pytest.mark.parametrize(("code", "cls"), CASES)
def test_code_maps_to_its_class(code: str, cls: type[ExchangeError]) -> None:
    assert error_class(code) is cls


def test_only_51603_means_not_found() -> None:
    found = [c for c, _ in CASES if issubclass(error_class(c), OrderNotFound)]
    assert found == ["51603"]
    assert error_class("51400") is not OrderNotFound


def test_envelope_code_zero_is_success() -> None:
    assert envelope_error({"code": "0", "msg": "", "data": []}, where="x") is None


def test_envelope_error_names_code_and_endpoint() -> None:
    err = envelope_error({"code": "50013", "msg": "Systems are busy", "data": []}, where="GET /p")
    assert isinstance(err, ExchangeUnavailable)
    assert err.code == "50013"
    assert "GET /p" in str(err) and "Systems are busy" in str(err)


def test_per_order_scode_wins_over_envelope_code_1() -> None:
    # PROTOCOL.md 5.1: the failure comes as data[].sCode with envelope code "1".
    body: dict[str, Any] = {
        "code": "1",
        "data": [
            {
                "clOrdId": "",
                "ordId": "",
                "sCode": "51119",
                "sMsg": "Order placement failed due to insufficient balance. ",
                "tag": "",
            }
        ],
        "msg": "",
    }
    err = envelope_error(body, where="POST /api/v5/trade/order")
    assert isinstance(err, InsufficientFunds)
    assert err.code == "51119"


def test_duplicate_clordid_in_data() -> None:
    body = {
        "code": "1",
        "msg": "Operation failed.",
        "data": [{"clOrdId": "x", "ordId": "", "sCode": "51016", "sMsg": "dup"}],
    }
    assert isinstance(envelope_error(body, where="w"), DuplicateClientOrderId)


def test_partial_batch_reads_the_failed_item() -> None:
    body = {
        "code": "2",
        "msg": "",
        "data": [
            {"ordId": "1", "clOrdId": "a", "sCode": "0", "sMsg": ""},
            {"ordId": "", "clOrdId": "b", "sCode": "51121", "sMsg": "lot size"},
        ],
    }
    assert isinstance(envelope_error(body, where="w"), OrderRejected)
    assert item_error(body["data"][0], where="w") is None


def test_insufficient_funds_sub_code() -> None:
    item = {"sCode": "51008", "subCode": "1000", "sMsg": "Insufficient USDT balance"}
    err = item_error(item, where="w")
    assert isinstance(err, InsufficientFunds)
    assert err.code == "51008_1000"


def test_envelope_code_1_without_items_is_not_a_refusal() -> None:
    # "Operation failed." without the per-order sCode says nothing about the order.
    err = envelope_error({"code": "1", "data": [], "msg": "Operation failed."}, where="w")
    assert isinstance(err, StateUnknown)


def test_missing_code_is_malformed() -> None:
    assert isinstance(envelope_error({"data": []}, where="w"), MalformedResponse)


def test_http_429_is_rate_limited_even_with_50011() -> None:
    err = http_error(429, {"msg": "Too Many Requests", "code": "50011"}, where="w")
    assert isinstance(err, RateLimited)


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_http_5xx_without_json_is_state_unknown(status: int) -> None:
    err = http_error(status, None, where="w")
    assert isinstance(err, StateUnknown)
    assert f"HTTP {status}" in str(err)


def test_http_5xx_with_a_json_body_is_retryable_whatever_its_code() -> None:
    busy = http_error(503, {"code": "50001", "msg": "Service temporarily unavailable"}, where="w")
    assert isinstance(busy, ExchangeUnavailable)
    timed_out = http_error(500, {"code": "51149", "msg": "Order timed out."}, where="w")
    assert isinstance(timed_out, StateUnknown)
    # A 5xx is never a refusal, even if its body carries a refusal's code.
    odd = http_error(500, {"code": "51000", "msg": "Parameter sz error"}, where="w")
    assert isinstance(odd, Retryable) and not isinstance(odd, Fatal)


@pytest.mark.parametrize("status", [408, 425, 499])
@pytest.mark.parametrize(
    "payload", [None, {"code": "51000", "msg": "x", "data": []}, {"msg": "Request Timeout"}]
)
def test_timeout_statuses_are_state_unknown(status: int, payload: dict[str, Any] | None) -> None:
    err = http_error(status, payload, where="w")
    assert isinstance(err, StateUnknown)
    assert f"HTTP {status}" in str(err)


@pytest.mark.parametrize("status", [400, 404, 409, 410])
def test_unreadable_4xx_is_not_a_refusal(status: int) -> None:
    # A proxy's HTML page: the request may or may not have reached OKX.
    assert isinstance(http_error(status, None, where="w"), StateUnknown)


def test_unreadable_success_body_is_state_unknown() -> None:
    err = http_error(200, None, where="w")
    assert isinstance(err, StateUnknown) and isinstance(err, Retryable)


def test_unreadable_401_is_authentication() -> None:
    assert isinstance(http_error(401, None, where="w"), AuthenticationError)


def test_readable_4xx_defers_to_the_body() -> None:
    assert http_error(401, {"code": "50113", "msg": "Invalid Sign"}, where="w") is None


@pytest.mark.parametrize("code", ["51011", "51999", "58001", "59999", "70001", "12345", "-1", "x"])
def test_a_code_the_adapter_does_not_know_is_state_unknown(code: str) -> None:
    assert error_class(code) is StateUnknown
    err = envelope_error({"code": "1", "data": [{"sCode": code, "sMsg": "?"}]}, where="w")
    assert isinstance(err, StateUnknown) and err.code == code


@given(st.from_regex(r"\A[0-9]{1,6}(_[0-9]{1,4})?\Z"))
def test_only_listed_codes_are_refusals(code: str) -> None:
    """No prefix rule turns an unknown code into a refusal: a refusal is a listed code."""
    cls = error_class(code)
    if issubclass(cls, Fatal):
        assert code in REFUSALS or code.startswith("51008_"), code
    else:
        assert issubclass(cls, Retryable) or code in ANSWERS, (code, cls)


def test_refusal_table_names_only_fatal_classes() -> None:
    assert REFUSALS and all(issubclass(cls, Fatal) for cls in REFUSALS.values())


def test_scrub_removes_secrets_and_signed_headers() -> None:
    text = "headers {'OK-ACCESS-KEY': 'k-123', 'OK-ACCESS-SIGN': 'abc=', 'x': 'y'} secret s3cr3t"
    out = scrub(text, ["s3cr3t"])
    assert "k-123" not in out and "abc=" not in out and "s3cr3t" not in out
    assert "'x': 'y'" in out


def test_the_memory_venue_faults_mean_what_okx_codes_mean() -> None:
    from worker.exchange.memory import _FAULTS

    for mode, (cls, code) in _FAULTS.items():
        if code is not None:
            assert error_class(code) is cls, mode

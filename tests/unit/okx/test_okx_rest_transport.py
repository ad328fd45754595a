"""The REST client over an injected httpx transport: what it sends, and how every failure of
the transport or the body maps onto the error tree (``StateUnknown``: the outcome is unknown)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import httpx
import orjson
import pytest
from pydantic import SecretStr

from worker.domain.errors import InsufficientFunds, StateUnknown
from worker.exchange.okx.errors import MalformedResponse
from worker.exchange.okx.ratelimit import OkxRequestPacer
from worker.exchange.okx.rest import Credentials, OkxRestClient
from worker.exchange.okx.signing import rest_signature

SECRET = "s3cr3t-signing-key"
CREDS = Credentials(SecretStr("the-api-key"), SecretStr(SECRET), SecretStr("pass-phrase"))
NOW = datetime(2026, 1, 2, 3, 4, 5, 678_000, tzinfo=UTC)
ORDER = {"instId": "BTC-USDT", "clOrdId": "lfhlb1", "px": "1.5", "sz": "2"}
OK = {"code": "0", "msg": "", "data": [{"ordId": "7", "clOrdId": "lfhlb1", "sCode": "0"}]}


def client(
    handler: Callable[[httpx.Request], httpx.Response], **kw: object
) -> tuple[OkxRestClient, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    rest = OkxRestClient(
        "http://okx.test/",
        CREDS,
        pacer=OkxRequestPacer(),
        transport=httpx.MockTransport(record),
        now=lambda: NOW,
        **kw,  # type: ignore[arg-type]
    )
    return rest, seen


def answer(body: object, status: int = 200) -> Callable[[httpx.Request], httpx.Response]:
    return lambda request: httpx.Response(status, content=orjson.dumps(body))


def test_a_post_is_signed_over_the_exact_bytes_sent_with_the_request_headers() -> None:
    rest, seen = client(answer(OK))
    assert (
        rest.post("/api/v5/trade/order", ORDER, key="BTC-USDT", headers={"expTime": "9"})
        == (OK["data"])
    )
    [req] = seen
    assert (req.method, str(req.url)) == ("POST", "http://okx.test/api/v5/trade/order")
    body = req.content.decode()
    assert orjson.loads(body) == ORDER and " " not in body
    ts = "2026-01-02T03:04:05.678Z"
    h = req.headers
    assert h["OK-ACCESS-TIMESTAMP"] == ts
    assert h["OK-ACCESS-SIGN"] == rest_signature(SECRET, ts, "POST", "/api/v5/trade/order", body)
    assert (h["OK-ACCESS-KEY"], h["OK-ACCESS-PASSPHRASE"]) == ("the-api-key", "pass-phrase")
    assert h["x-simulated-trading"] == "1" and h["expTime"] == "9"
    assert h["Content-Type"] == "application/json" and h["Connection"] == "keep-alive"
    assert h["Content-Length"] == str(len(req.content))


def test_requests_do_not_share_signatures_or_extra_headers() -> None:
    rest, seen = client(answer(OK))
    rest.post("/api/v5/trade/order", ORDER, headers={"expTime": "9"})
    rest.get("/api/v5/trade/order", {"instId": "BTC-USDT", "clOrdId": "lfhlb1"})
    rest.get("/api/v5/public/time", signed=False)
    _, get, public = seen
    path = "/api/v5/trade/order?instId=BTC-USDT&clOrdId=lfhlb1"
    assert str(get.url) == "http://okx.test" + path and "expTime" not in get.headers
    assert get.headers["OK-ACCESS-SIGN"] == rest_signature(
        SECRET, get.headers["OK-ACCESS-TIMESTAMP"], "GET", path, ""
    )
    assert not [k for k in public.headers if k.lower().startswith("ok-access")]
    assert "expTime" not in public.headers and public.headers["x-simulated-trading"] == "1"


def test_live_mode_sends_no_demo_header() -> None:
    rest, seen = client(answer(OK), demo=False)
    rest.post("/api/v5/trade/order", ORDER)
    assert "x-simulated-trading" not in seen[0].headers


@pytest.mark.parametrize(
    ("timeout", "expected"),
    [
        (None, {"connect": 3.0, "read": 5.0, "write": 5.0, "pool": 2.0}),
        (0.5, {"connect": 0.5, "read": 0.5, "write": 0.5, "pool": 0.5}),
    ],
)
def test_every_request_carries_the_timeouts(
    timeout: float | None, expected: dict[str, float]
) -> None:
    kw = {} if timeout is None else {"timeout": timeout}
    rest, seen = client(answer(OK), **kw)
    rest.post("/api/v5/trade/order", ORDER)
    assert seen[0].extensions["timeout"] == expected


@pytest.mark.parametrize(
    "exc", [httpx.ConnectTimeout, httpx.ReadTimeout, httpx.WriteTimeout, httpx.PoolTimeout]
)
def test_a_timeout_is_state_unknown(exc: type[httpx.TimeoutException]) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise exc("timed out", request=request)

    rest, _ = client(fail)
    with pytest.raises(StateUnknown, match=f"timeout \\({exc.__name__}\\)"):
        rest.post("/api/v5/trade/order", ORDER)


def test_a_transport_error_is_state_unknown_without_secrets() -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise httpx.RemoteProtocolError(f"peer closed; sent {SECRET} pass-phrase", request=request)

    rest, _ = client(fail)
    with pytest.raises(StateUnknown, match="connection error") as caught:
        rest.post("/api/v5/trade/order", ORDER)
    assert SECRET not in str(caught.value) and "pass-phrase" not in str(caught.value)


class _BodyThatTimesOut(httpx.SyncByteStream):
    def __iter__(self) -> Iterator[bytes]:
        yield b'{"code":"0",'
        raise httpx.ReadTimeout("body stalled")


def test_a_timeout_while_reading_the_body_is_state_unknown() -> None:
    rest, _ = client(lambda request: httpx.Response(200, stream=_BodyThatTimesOut()))
    with pytest.raises(StateUnknown, match="ReadTimeout"):
        rest.post("/api/v5/trade/order", ORDER)


def test_an_unreadable_body_is_malformed() -> None:
    rest, _ = client(lambda request: httpx.Response(200, content=b"<html>gateway</html>"))
    with pytest.raises(MalformedResponse):
        rest.post("/api/v5/trade/order", ORDER)


def test_json_that_only_the_standard_library_reads_is_still_an_answer() -> None:
    body = b'{"code":"0","msg":"","data":[{"ordId":"7","x":NaN,"n":123456789012345678901234}]}'
    rest, _ = client(lambda request: httpx.Response(200, content=body))
    [item] = rest.get("/api/v5/trade/order", {"instId": "BTC-USDT"})
    assert item["ordId"] == "7" and item["n"] == 123456789012345678901234


def test_a_refusal_and_a_server_error_keep_their_meaning() -> None:
    refused = {"code": "1", "msg": "", "data": [{"sCode": "51008", "sMsg": "no money"}]}
    rest, _ = client(answer(refused))
    with pytest.raises(InsufficientFunds):
        rest.post("/api/v5/trade/order", ORDER)
    rest, _ = client(lambda request: httpx.Response(502, content=b"bad gateway"))
    with pytest.raises(StateUnknown, match="HTTP 502"):
        rest.post("/api/v5/trade/order", ORDER)


def test_closing_the_client_closes_its_transport() -> None:
    closed: list[bool] = []

    class Transport(httpx.MockTransport):
        def close(self) -> None:
            closed.append(True)

    with OkxRestClient("http://okx.test", CREDS, transport=Transport(answer(OK))):
        pass
    assert closed == [True]

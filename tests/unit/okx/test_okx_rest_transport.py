"""The REST client over an injected connection pool: what it sends, and how every failure of
the connection or the body maps onto the error tree (``StateUnknown``: the outcome is
unknown). ``tests/integration/okx`` runs it against a real server on loopback."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
import urllib3
from pydantic import SecretStr
from urllib3.exceptions import (
    ConnectTimeoutError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)

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


@dataclass
class Sent:
    method: str
    url: str
    body: bytes | None
    headers: dict[str, str]
    options: dict[str, Any]


Handler = Callable[[Sent], urllib3.HTTPResponse]


class FakePool:
    """Stands for a ``urllib3.HTTPConnectionPool``: records each request, answers with
    ``handler``."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.seen: list[Sent] = []
        self.closed = False

    def urlopen(self, method: str, url: str, **kw: Any) -> urllib3.HTTPResponse:
        body, headers = kw.pop("body"), kw.pop("headers")
        sent = Sent(method, url, body, headers, kw)
        self.seen.append(sent)
        return self.handler(sent)

    def close(self) -> None:
        self.closed = True


def client(handler: Handler, **kw: object) -> tuple[OkxRestClient, list[Sent]]:
    pool = FakePool(handler)
    rest = OkxRestClient(
        "http://okx.test/",
        CREDS,
        pacer=OkxRequestPacer(),
        pool=pool,
        now=lambda: NOW,
        **kw,  # type: ignore[arg-type]
    )
    return rest, pool.seen


def response(body: bytes, status: int = 200) -> urllib3.HTTPResponse:
    return urllib3.HTTPResponse(body=body, status=status, preload_content=True)


def answer(body: object, status: int = 200) -> Handler:
    return lambda sent: response(orjson.dumps(body), status)


def test_a_post_is_signed_over_the_exact_bytes_sent_with_the_request_headers() -> None:
    rest, seen = client(answer(OK))
    assert (
        rest.post("/api/v5/trade/order", ORDER, key="BTC-USDT", headers={"expTime": "9"})
        == (OK["data"])
    )
    [req] = seen
    assert (req.method, req.url) == ("POST", "/api/v5/trade/order")
    assert req.body is not None
    body = req.body.decode()
    assert orjson.loads(body) == ORDER and " " not in body
    ts = "2026-01-02T03:04:05.678Z"
    h = req.headers
    assert h["OK-ACCESS-TIMESTAMP"] == ts
    assert h["OK-ACCESS-SIGN"] == rest_signature(SECRET, ts, "POST", "/api/v5/trade/order", body)
    assert (h["OK-ACCESS-KEY"], h["OK-ACCESS-PASSPHRASE"]) == ("the-api-key", "pass-phrase")
    assert h["x-simulated-trading"] == "1" and h["expTime"] == "9"
    assert h["Content-Type"] == "application/json" and h["Connection"] == "keep-alive"
    # urllib3 must neither retry (an order sent twice) nor follow redirects.
    assert (req.options["retries"], req.options["redirect"]) == (False, False)


def test_requests_do_not_share_signatures_or_extra_headers() -> None:
    rest, seen = client(answer(OK))
    rest.post("/api/v5/trade/order", ORDER, headers={"expTime": "9"})
    rest.get("/api/v5/trade/order", {"instId": "BTC-USDT", "clOrdId": "lfhlb1"})
    rest.get("/api/v5/public/time", signed=False)
    _, get, public = seen
    path = "/api/v5/trade/order?instId=BTC-USDT&clOrdId=lfhlb1"
    assert (get.url, get.body) == (path, None) and "expTime" not in get.headers
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
    [(None, (3.0, 5.0)), (0.5, (0.5, 0.5))],
)
def test_every_request_carries_the_timeouts(
    timeout: float | None, expected: tuple[float, float]
) -> None:
    kw = {} if timeout is None else {"timeout": timeout}
    rest, seen = client(answer(OK), **kw)
    rest.post("/api/v5/trade/order", ORDER)
    given = seen[0].options["timeout"]
    assert (given.connect_timeout, given.read_timeout) == expected


@pytest.mark.parametrize("exc", [ConnectTimeoutError, ReadTimeoutError])
def test_a_timeout_is_state_unknown(exc: type[Exception]) -> None:
    def fail(sent: Sent) -> urllib3.HTTPResponse:
        if exc is ReadTimeoutError:
            raise ReadTimeoutError(None, sent.url, "Read timed out. (read timeout=5.0)")  # type: ignore[arg-type]
        raise exc("timed out")

    rest, _ = client(fail)
    with pytest.raises(StateUnknown, match=f"timeout \\({exc.__name__}\\)"):
        rest.post("/api/v5/trade/order", ORDER)


@pytest.mark.parametrize(
    "exc",
    [
        ProtocolError("Connection aborted.", ConnectionResetError(104, "{secrets}")),
        NewConnectionError(None, "Failed to establish a new connection: {secrets}"),  # type: ignore[arg-type]
        ConnectionResetError(104, "{secrets}"),
    ],
)
def test_a_transport_error_is_state_unknown_without_secrets(exc: Exception) -> None:
    """Refused and reset connections are connection errors (urllib3 makes a refused one a
    subclass of its timeout), and the message never shows the credentials."""
    secrets = f"sent {SECRET} pass-phrase"
    exc.args = tuple(a.replace("{secrets}", secrets) if isinstance(a, str) else a for a in exc.args)

    def fail(sent: Sent) -> urllib3.HTTPResponse:
        raise exc

    rest, _ = client(fail)
    with pytest.raises(StateUnknown, match="connection error") as caught:
        rest.post("/api/v5/trade/order", ORDER)
    assert SECRET not in str(caught.value) and "pass-phrase" not in str(caught.value)


def test_an_unreadable_body_is_malformed() -> None:
    rest, _ = client(lambda sent: response(b"<html>gateway</html>"))
    with pytest.raises(MalformedResponse):
        rest.post("/api/v5/trade/order", ORDER)


def test_json_that_only_the_standard_library_reads_is_still_an_answer() -> None:
    body = b'{"code":"0","msg":"","data":[{"ordId":"7","x":NaN,"n":123456789012345678901234}]}'
    rest, _ = client(lambda sent: response(body))
    [item] = rest.get("/api/v5/trade/order", {"instId": "BTC-USDT"})
    assert item["ordId"] == "7" and item["n"] == 123456789012345678901234


def test_a_refusal_and_a_server_error_keep_their_meaning() -> None:
    refused = {"code": "1", "msg": "", "data": [{"sCode": "51008", "sMsg": "no money"}]}
    rest, _ = client(answer(refused))
    with pytest.raises(InsufficientFunds):
        rest.post("/api/v5/trade/order", ORDER)
    rest, _ = client(lambda sent: response(b"bad gateway", 502))
    with pytest.raises(StateUnknown, match="HTTP 502"):
        rest.post("/api/v5/trade/order", ORDER)


def test_closing_the_client_closes_its_pool() -> None:
    pool = FakePool(answer(OK))
    with OkxRestClient("http://okx.test", CREDS, pool=pool):
        pass
    assert pool.closed


def test_a_base_url_with_a_path_sends_under_it_and_signs_without_it() -> None:
    pool = FakePool(answer(OK))
    rest = OkxRestClient("http://gw.test/okx/", CREDS, pacer=OkxRequestPacer(), pool=pool)
    rest.post("/api/v5/trade/order", ORDER)
    [sent] = pool.seen
    assert sent.url == "/okx/api/v5/trade/order"
    assert sent.body is not None
    ts = sent.headers["OK-ACCESS-TIMESTAMP"]
    assert sent.headers["OK-ACCESS-SIGN"] == rest_signature(
        SECRET, ts, "POST", "/api/v5/trade/order", sent.body.decode()
    )

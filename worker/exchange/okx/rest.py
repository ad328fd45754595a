"""A signed OKX v5 REST client on one keep-alive httpx transport (a connection pool).

Every answer is checked here: HTTP status, per-order ``sCode`` and envelope ``code`` become
errors of ``worker.domain.errors`` (see ``errors``). Credentials never leave this module
except inside the signed headers.

The order request is on the latency path, so requests go to the transport directly: an
``httpx.Client`` would merge URLs, headers and cookies and wrap the response stream on every
call, about 0.12 ms of CPU per request on loopback (``benchmarks``, issue 10), for features
this client does not use (OKX needs no cookies, redirects or proxies). The transport keeps
what matters: pooled keep-alive connections, the connect/read/write/pool timeouts and
httpx's exceptions (``TimeoutException``, ``TransportError``), which are mapped below.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson
from pydantic import SecretStr

from worker.domain.errors import RateLimited, StateUnknown
from worker.exchange.okx.errors import MalformedResponse, envelope_error, http_error, scrub
from worker.exchange.okx.ratelimit import OkxRequestPacer, shared_pacer
from worker.exchange.okx.signing import RestSigner, rest_timestamp
from worker.logs import log_event

log = logging.getLogger("limitflow.okx.rest")

Json = dict[str, Any]
Params = Mapping[str, str | int | None]


@dataclass(frozen=True, slots=True)
class Credentials:
    """An API key triple; ``SecretStr`` keeps it out of reprs and tracebacks."""

    api_key: SecretStr
    secret: SecretStr
    passphrase: SecretStr

    def values(self) -> tuple[str, str, str]:
        return (
            self.api_key.get_secret_value(),
            self.secret.get_secret_value(),
            self.passphrase.get_secret_value(),
        )


DEFAULT_TIMEOUT = httpx.Timeout(5.0, connect=3.0, pool=2.0)
# The order request is on the latency path: keep connections warm.
LIMITS = httpx.Limits(max_keepalive_connections=20, keepalive_expiry=60.0)
# What an ``httpx.Client`` sent besides our headers (the answers are small; gzip is fine).
_CLIENT_HEADERS = {
    "Accept-Encoding": "gzip, deflate",
    "Connection": "keep-alive",
    "User-Agent": f"python-httpx/{httpx.__version__}",
}


class OkxRestClient:
    """Send signed requests and return the envelope's ``data`` list."""

    def __init__(
        self,
        base_url: str,
        credentials: Credentials,
        *,
        demo: bool = True,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        pacer: OkxRequestPacer | None = None,
        transport: httpx.BaseTransport | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._credentials = credentials
        self._pacer = pacer or shared_pacer()
        self._now = now
        self._base_url = base_url.rstrip("/")
        self._timeout = httpx.Timeout(timeout).as_dict()
        self._transport = transport or httpx.HTTPTransport(limits=LIMITS)
        api_key, secret, passphrase = credentials.values()
        self._signer = RestSigner(secret)
        # Built once; a request adds its signature, timestamp and own headers to a copy.
        self._headers = {
            **_CLIENT_HEADERS,
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        if demo:
            self._headers["x-simulated-trading"] = "1"
        self._signed_headers = {
            **self._headers,
            "OK-ACCESS-KEY": api_key,
            "OK-ACCESS-PASSPHRASE": passphrase,
        }
        # Bounded: one entry per query-less endpoint path the adapter names.
        self._urls: dict[str, httpx.URL] = {}

    def __repr__(self) -> str:
        return f"OkxRestClient(base_url={self._base_url!r})"

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> OkxRestClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Requests ------------------------------------------------------------------------

    def get(
        self, path: str, params: Params | None = None, *, signed: bool = True, key: str = ""
    ) -> list[Any]:
        """GET ``path`` with query ``params`` (``None`` and ``""`` values are left out)."""
        query = urlencode({k: v for k, v in (params or {}).items() if v not in (None, "")})
        request_path = f"{path}?{query}" if query else path
        return self._send("GET", path, request_path, "", signed=signed, key=key)

    def post(
        self,
        path: str,
        body: Json,
        *,
        key: str = "",
        headers: Mapping[str, str] | None = None,
    ) -> list[Any]:
        """POST a JSON body; ``headers`` are sent besides the signature (``expTime``)."""
        raw = orjson.dumps(body).decode()
        return self._send(
            "POST",
            path,
            path,
            raw,
            signed=True,
            key=key,
            extra_headers=headers,
        )

    def rehearse_post(
        self, path: str, body: Json, *, headers: Mapping[str, str] | None = None
    ) -> httpx.Request:
        """Build the signed request ``post`` would send, and send nothing: a worker process
        runs it as it starts (``OkxExchange.warm_up``) so that its first order runs code
        that has run before."""
        raw = orjson.dumps(body).decode()
        return self._request("POST", path, raw, signed=True, extra_headers=headers)

    def _send(
        self,
        method: str,
        path: str,
        request_path: str,
        body: str,
        *,
        signed: bool,
        key: str,
        extra_headers: Mapping[str, str] | None = None,
    ) -> list[Any]:
        endpoint = f"{method} {path}"
        self._pacer.acquire(endpoint, key)
        request = self._request(
            method, request_path, body, signed=signed, extra_headers=extra_headers
        )
        try:
            response = self._transport.handle_request(request)
            try:
                response.read()
            finally:
                response.close()
        except httpx.TimeoutException as exc:
            raise StateUnknown(f"okx {endpoint}: timeout ({type(exc).__name__})") from None
        except httpx.TransportError as exc:
            detail = scrub(str(exc), self._credentials.values())
            raise StateUnknown(f"okx {endpoint}: connection error: {detail}") from None
        if log.isEnabledFor(logging.DEBUG):
            log_event(
                log, "okx.request", logging.DEBUG, endpoint=endpoint, status=response.status_code
            )
        payload = _decode(response)
        err = http_error(response.status_code, payload, where=endpoint)
        if err is None and payload is not None:
            err = envelope_error(payload, where=endpoint)
        if err is not None:
            if isinstance(err, RateLimited):
                self._pacer.penalize(endpoint, key)
            log_event(log, "okx.request_failed", logging.DEBUG, endpoint=endpoint, code=err.code)
            raise err
        assert payload is not None
        data = payload.get("data")
        if not isinstance(data, list):
            raise MalformedResponse(f"okx {endpoint}: envelope without a data list")
        return data

    def _request(
        self,
        method: str,
        request_path: str,
        body: str,
        *,
        signed: bool,
        extra_headers: Mapping[str, str] | None,
    ) -> httpx.Request:
        headers = self._sign(method, request_path, body) if signed else dict(self._headers)
        if extra_headers:
            headers.update(extra_headers)
        return httpx.Request(
            method,
            self._url(request_path),
            content=body.encode() if body else None,
            headers=headers,
            extensions={"timeout": self._timeout},
        )

    def _sign(self, method: str, request_path: str, body: str) -> dict[str, str]:
        ts = rest_timestamp(self._now())
        headers = dict(self._signed_headers)
        headers["OK-ACCESS-SIGN"] = self._signer.sign(ts, method, request_path, body)
        headers["OK-ACCESS-TIMESTAMP"] = ts
        return headers

    def _url(self, request_path: str) -> httpx.URL:
        """The request's URL; those without a query (the order endpoints) are parsed once."""
        if "?" in request_path:
            return httpx.URL(self._base_url + request_path)
        url = self._urls.get(request_path)
        if url is None:
            url = self._urls[request_path] = httpx.URL(self._base_url + request_path)
        return url


def _decode(response: httpx.Response) -> Json | None:
    """Return the JSON envelope, or ``None`` when the body is not one."""
    try:
        payload = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        # orjson refuses what json reads (NaN, integers beyond 64 bits, a BOM...): ask json
        # before calling an answer unreadable. Not on the hot path.
        try:
            payload = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None
    return payload if isinstance(payload, dict) else None

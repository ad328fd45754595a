"""A signed OKX v5 REST client on one urllib3 connection pool (keep-alive connections).

Every answer is checked here: HTTP status, per-order ``sCode`` and envelope ``code`` become
errors of ``worker.domain.errors`` (see ``errors``). Credentials never leave this module
except inside the signed headers.

The order request is on the latency path. urllib3 sends it for about half the CPU and the
time of httpx's transport (on loopback, per request: 0.20 ms of CPU and 0.33 ms in all,
against 0.37 and 0.52; ``benchmarks``, issue 10), and has what this client needs: pooled
keep-alive connections that are checked before reuse, connect and read timeouts, and no
retries or redirects of its own (an order must not be sent twice behind our back).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from typing import Any, Protocol
from urllib.parse import urlencode

import orjson
import urllib3
from pydantic import SecretStr
from urllib3.exceptions import HTTPError, NewConnectionError
from urllib3.exceptions import TimeoutError as Timeout

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


DEFAULT_TIMEOUT = urllib3.Timeout(connect=3.0, read=5.0)
# Keep-alive connections kept per process (more are opened when busy, and closed after use).
POOL_SIZE = 20
_CLIENT_HEADERS = {
    "Accept-Encoding": "gzip, deflate",
    "Connection": "keep-alive",
    "User-Agent": f"limitflow python-urllib3/{version('urllib3')}",
}


class Pool(Protocol):
    """What the client needs of a ``urllib3.HTTPConnectionPool`` (tests pass their own)."""

    def urlopen(self, method: str, url: str, **kw: Any) -> urllib3.BaseHTTPResponse: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Prepared:
    """A request as it goes out: ``url`` is the path (and query) on the server."""

    method: str
    url: str
    body: bytes | None
    headers: dict[str, str]


class OkxRestClient:
    """Send signed requests and return the envelope's ``data`` list."""

    def __init__(
        self,
        base_url: str,
        credentials: Credentials,
        *,
        demo: bool = True,
        timeout: urllib3.Timeout | float = DEFAULT_TIMEOUT,
        pacer: OkxRequestPacer | None = None,
        pool: Pool | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._credentials = credentials
        self._pacer = pacer or shared_pacer()
        self._now = now
        self._base_url = base_url.rstrip("/")
        # A base URL may carry a path (a gateway's prefix): it is not part of what is signed.
        self._prefix = urllib3.util.parse_url(self._base_url).path or ""
        if isinstance(timeout, urllib3.Timeout):
            self._timeout = timeout
        else:
            self._timeout = urllib3.Timeout(connect=timeout, read=timeout)
        self._pool: Pool = pool or urllib3.connection_from_url(
            self._base_url, maxsize=POOL_SIZE, block=False, timeout=self._timeout, retries=False
        )
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

    def __repr__(self) -> str:
        return f"OkxRestClient(base_url={self._base_url!r})"

    def close(self) -> None:
        self._pool.close()

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
    ) -> Prepared:
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
            response = self._pool.urlopen(
                request.method,
                request.url,
                body=request.body,
                headers=request.headers,
                retries=False,
                redirect=False,
                timeout=self._timeout,
                assert_same_host=False,
            )
        except NewConnectionError as exc:  # a subclass of urllib3's timeout: refused, say
            raise self._transport_error(endpoint, exc) from None
        except Timeout as exc:
            raise StateUnknown(f"okx {endpoint}: timeout ({type(exc).__name__})") from None
        except (HTTPError, OSError) as exc:
            raise self._transport_error(endpoint, exc) from None
        if log.isEnabledFor(logging.DEBUG):
            log_event(log, "okx.request", logging.DEBUG, endpoint=endpoint, status=response.status)
        payload = _decode(response.data)
        err = http_error(response.status, payload, where=endpoint)
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

    def _transport_error(self, endpoint: str, exc: Exception) -> StateUnknown:
        detail = scrub(str(exc), self._credentials.values())
        return StateUnknown(f"okx {endpoint}: connection error: {detail}")

    def _request(
        self,
        method: str,
        request_path: str,
        body: str,
        *,
        signed: bool,
        extra_headers: Mapping[str, str] | None,
    ) -> Prepared:
        headers = self._sign(method, request_path, body) if signed else dict(self._headers)
        if extra_headers:
            headers.update(extra_headers)
        return Prepared(method, self._prefix + request_path, body.encode() or None, headers)

    def _sign(self, method: str, request_path: str, body: str) -> dict[str, str]:
        ts = rest_timestamp(self._now())
        headers = dict(self._signed_headers)
        headers["OK-ACCESS-SIGN"] = self._signer.sign(ts, method, request_path, body)
        headers["OK-ACCESS-TIMESTAMP"] = ts
        return headers


def _decode(content: bytes) -> Json | None:
    """Return the JSON envelope, or ``None`` when the body is not one."""
    try:
        payload = orjson.loads(content)
    except orjson.JSONDecodeError:
        # orjson refuses what json reads (NaN, integers beyond 64 bits, a BOM...): ask json
        # before calling an answer unreadable. Not on the hot path.
        try:
            payload = json.loads(content)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None
    return payload if isinstance(payload, dict) else None

"""OKX v5 request signing (REST headers and websocket login)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime


def rest_timestamp(now: datetime | None = None) -> str:
    """ISO 8601 UTC with milliseconds, e.g. ``2020-12-08T09:08:57.715Z``."""
    now = now or datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def sign(secret: str, prehash: str) -> str:
    """Base64(HMAC-SHA256(secret, prehash))."""
    digest = hmac.new(secret.encode(), prehash.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def rest_signature(secret: str, timestamp: str, method: str, request_path: str, body: str) -> str:
    """Sign ``timestamp + METHOD + path-with-query + body`` (body is ``""`` for GET)."""
    return sign(secret, f"{timestamp}{method.upper()}{request_path}{body}")


def ws_login_signature(secret: str, timestamp: str) -> str:
    """Sign a websocket login: ``timestamp (epoch seconds) + 'GET' + '/users/self/verify'``."""
    return sign(secret, f"{timestamp}GET/users/self/verify")


class RestSigner:
    """``rest_signature`` with the HMAC key prepared once (a request signs a copy of it)."""

    __slots__ = ("_hmac",)

    def __init__(self, secret: str) -> None:
        self._hmac = hmac.new(secret.encode(), digestmod=hashlib.sha256)

    def sign(self, timestamp: str, method: str, request_path: str, body: str) -> str:
        mac = self._hmac.copy()
        mac.update(f"{timestamp}{method.upper()}{request_path}{body}".encode())
        return base64.b64encode(mac.digest()).decode()


def ws_login_args(api_key: str, secret: str, passphrase: str, timestamp: str) -> dict[str, str]:
    """The argument of the private websocket's ``login`` op (``timestamp``: epoch seconds)."""
    return {
        "apiKey": api_key,
        "passphrase": passphrase,
        "timestamp": timestamp,
        "sign": ws_login_signature(secret, timestamp),
    }

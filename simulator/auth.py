"""OKX request authentication: REST headers (PROTOCOL.md §4) and websocket login (§3.1).

Signatures come from ``worker.exchange.okx.signing``; the simulator only checks them.
Timestamps are compared with the real clock and, so that clients that sync with
``public/time`` work after the simulated clock was advanced, with the simulated one too.
"""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from worker.exchange.okx.signing import rest_signature, ws_login_signature


@dataclass(frozen=True)
class Credentials:
    api_key: str
    api_secret: str
    passphrase: str


class AuthError(Exception):
    def __init__(self, code: str, msg: str):
        super().__init__(f"{code} {msg}")
        self.code = code
        self.msg = msg


def _parse_iso_ms(text: str) -> float | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _fresh(ts_seconds: float, sim_now_ms: int, window: float) -> bool:
    return abs(ts_seconds - time.time()) <= window or abs(ts_seconds - sim_now_ms / 1000) <= window


def check_rest(
    creds: Credentials,
    headers: Any,
    method: str,
    raw_path: str,
    body: str,
    sim_now_ms: int,
    window: float,
) -> None:
    """Raise ``AuthError`` (HTTP 401 codes 501xx) unless the request is signed correctly."""
    key = headers.get("OK-ACCESS-KEY", "")
    passphrase = headers.get("OK-ACCESS-PASSPHRASE", "")
    signature = headers.get("OK-ACCESS-SIGN", "")
    timestamp = headers.get("OK-ACCESS-TIMESTAMP", "")
    if not key:
        raise AuthError("50103", 'Request header "OK-ACCESS-KEY" cannot be empty.')
    if not passphrase:
        raise AuthError("50104", 'Request header "OK-ACCESS-PASSPHRASE" cannot be empty.')
    if not signature:
        raise AuthError("50106", 'Request header "OK-ACCESS-SIGN" cannot be empty.')
    if not timestamp:
        raise AuthError("50107", 'Request header "OK-ACCESS-TIMESTAMP" cannot be empty.')
    if not hmac.compare_digest(key, creds.api_key):
        raise AuthError("50111", "Invalid OK-ACCESS-KEY.")
    if headers.get("x-simulated-trading") == "0":
        raise AuthError("50101", "APIKey does not match current environment.")
    ts = _parse_iso_ms(timestamp)
    if ts is None:
        raise AuthError("50112", "Invalid OK-ACCESS-TIMESTAMP.")
    if not _fresh(ts, sim_now_ms, window):
        raise AuthError("50102", "Timestamp request expired.")
    if not hmac.compare_digest(passphrase, creds.passphrase):
        raise AuthError("50105", 'The "OK-ACCESS-PASSPHRASE" is incorrect.')
    bodies = (body, "") if body in ("{}", "None") else (body,)
    for candidate in bodies:
        expected = rest_signature(creds.api_secret, timestamp, method, raw_path, candidate)
        if hmac.compare_digest(expected, signature):
            return
    raise AuthError("50113", "Invalid Sign.")


def check_ws_login(creds: Credentials, args: Any, sim_now_ms: int, window: float) -> None:
    """Raise ``AuthError`` (600xx) unless ``args`` is a valid login (epoch-seconds timestamp)."""
    if not isinstance(args, list) or len(args) != 1 or not isinstance(args[0], dict):
        raise AuthError("60012", "Invalid request: login needs one args object")
    arg = args[0]
    if str(arg.get("apiKey", "")) != creds.api_key:
        raise AuthError("60005", "Invalid OK_ACCESS_KEY")
    timestamp = str(arg.get("timestamp", ""))
    try:
        seconds = float(timestamp)
    except ValueError:
        raise AuthError("60004", "Invalid timestamp") from None
    if not _fresh(seconds, sim_now_ms, window):
        raise AuthError("60006", "Timestamp request expired")
    if str(arg.get("passphrase", "")) != creds.passphrase:
        raise AuthError("60024", "Wrong passphrase")
    expected = ws_login_signature(creds.api_secret, timestamp)
    if not hmac.compare_digest(expected, str(arg.get("sign", ""))):
        raise AuthError("60007", "Invalid sign")

"""Translate OKX answers into the error tree of ``worker.domain.errors``.

OKX reports errors in three places, read in this order: the HTTP status (429, 5xx), the
per-order ``data[].sCode`` of trade endpoints (envelope ``code`` "1" or "2") and the envelope
``code``. Only the explicit 51603 means "no such order".
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

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
    StateUnknown,
)


class MalformedResponse(StateUnknown):
    """The venue's answer could not be read: what it did with the request is unknown."""


_EXACT: dict[str, type[ExchangeError]] = {
    "51016": DuplicateClientOrderId,
    # 50071 "{param} already exists": the docs do not say whether a duplicate clOrdId
    # answers 51016 or 50071, so both mean "look the order up".
    "50071": DuplicateClientOrderId,
    "51603": OrderNotFound,
    # The request reached OKX after its expTime header and was not processed.
    "50036": RequestExpired,
    "51400": CancelRejected,
    "51401": CancelRejected,
    "51402": CancelRejected,
    "51410": CancelRejected,
    "50011": RateLimited,
    "50061": RateLimited,
    "60014": RateLimited,
    "50001": ExchangeUnavailable,
    "50004": ExchangeUnavailable,
    "50013": ExchangeUnavailable,
    "51119": InsufficientFunds,
    "51131": InsufficientFunds,
    "51001": InvalidInstrument,
    # Websocket login refusals.
    "60004": AuthenticationError,
    "60005": AuthenticationError,
    "60006": AuthenticationError,
    "60007": AuthenticationError,
    "60009": AuthenticationError,
    "60024": AuthenticationError,
}


def error_class(code: str) -> type[ExchangeError]:
    """Return the error class for an OKX code (envelope ``code`` or per-order ``sCode``)."""
    if code in _EXACT:
        return _EXACT[code]
    if code.startswith("51008"):  # 51008 and its sub-codes such as 51008_1000
        return InsufficientFunds
    if code.isdigit() and 50101 <= int(code) <= 50114:
        return AuthenticationError
    if code.startswith("51"):
        return OrderRejected
    # Anything else is an explicit refusal we have no finer name for.
    return Fatal


def error_for_code(code: str, msg: str, *, where: str) -> ExchangeError:
    """Build the typed error for an OKX code; ``where`` names the endpoint."""
    cls = error_class(code)
    return cls(f"okx {where}: {code} {msg}".rstrip(), code=code)


def _item_code(item: dict[str, Any]) -> str:
    code = str(item.get("sCode", "0") or "0")
    sub = str(item.get("subCode", "") or "")
    return f"{code}_{sub}" if sub and code == "51008" else code


def item_error(item: dict[str, Any], *, where: str) -> ExchangeError | None:
    """Return the error of one per-order result (``sCode`` != "0"), else ``None``."""
    code = _item_code(item)
    if code == "0":
        return None
    return error_for_code(code, str(item.get("sMsg", "")), where=where)


def envelope_error(payload: dict[str, Any], *, where: str) -> ExchangeError | None:
    """Return the error of a parsed envelope, preferring the first failed ``sCode``."""
    code = str(payload.get("code", ""))
    if code == "0":
        return None
    data = payload.get("data")
    if isinstance(data, list):
        for item in data:
            if isinstance(item, dict):
                err = item_error(item, where=where)
                if err is not None:
                    return err
    if not code:
        return MalformedResponse(f"okx {where}: answer without a code")
    return error_for_code(code, str(payload.get("msg", "")), where=where)


def http_error(status: int, payload: dict[str, Any] | None, *, where: str) -> ExchangeError | None:
    """Return the error implied by the HTTP status, or ``None`` when the body decides."""
    code = str(payload.get("code", "")) if payload else ""
    msg = str(payload.get("msg", "")) if payload else ""
    if status == 429:
        return RateLimited(f"okx {where}: HTTP 429 {msg}".rstrip(), code=code or "429")
    if status >= 500:
        return ExchangeUnavailable(f"okx {where}: HTTP {status} {msg}".rstrip(), code=code or None)
    if payload is None:
        if status in (401, 403):
            return AuthenticationError(f"okx {where}: HTTP {status}", code=str(status))
        if status >= 400:
            return Fatal(f"okx {where}: HTTP {status}", code=str(status))
        return MalformedResponse(f"okx {where}: HTTP {status} with an unreadable body")
    return None


_HEADER_RE = re.compile(
    r"(OK-ACCESS-(?:KEY|SIGN|PASSPHRASE)['\"]?\s*[:=]\s*['\"]?)[^'\",\s}]+", re.I
)


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """Remove credentials and signed headers from text meant for a log or an exception."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return _HEADER_RE.sub(r"\1***", text)

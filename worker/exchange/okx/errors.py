"""Translate OKX answers into the error tree of ``worker.domain.errors``.

OKX reports errors in three places, read in this order: the HTTP status (429, timeouts, 5xx),
the per-order ``data[].sCode`` of trade endpoints (envelope ``code`` "1" or "2") and the
envelope ``code``. Only the explicit 51603 means "no such order".

An answer is a refusal (``Fatal``: the order is rejected and its slot freed) only when it is
one of the explicit refusals listed in ``REFUSALS``. Everything else that is not a success
leaves the request's outcome unknown (``StateUnknown``, a ``Retryable``): a timeout status
(408, 425, 499), a 5xx, a body that is not JSON, "system error" (50026), "order timed out"
(51149) and any code this adapter does not know. The order is then looked up by ``clOrdId``:
taking an order that did land for a refusal would leave it unmanaged.
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
    Retryable,
    StateUnknown,
)


class MalformedResponse(StateUnknown):
    """The venue's answer could not be read: what it did with the request is unknown."""


# Facts about the order, each with its own handling.
ANSWERS: dict[str, type[ExchangeError]] = {
    "51016": DuplicateClientOrderId,
    # 50071 "{param} already exists": the docs do not say whether a duplicate clOrdId
    # answers 51016 or 50071, so both mean "look the order up".
    "50071": DuplicateClientOrderId,
    "51603": OrderNotFound,
    # The request reached OKX after its expTime header and was not processed: 50036 "The
    # expTime can't be earlier than the current system time", 50037 "Order expired".
    "50036": RequestExpired,
    "50037": RequestExpired,
    "51400": CancelRejected,
    "51401": CancelRejected,
    "51402": CancelRejected,
    "51410": CancelRejected,
}

# Not now: back off, or look the order up.
RETRYABLE: dict[str, type[Retryable]] = {
    "50011": RateLimited,
    "50040": RateLimited,  # "Too frequent operations"
    "50061": RateLimited,
    "60014": RateLimited,
    "50001": ExchangeUnavailable,
    "50013": ExchangeUnavailable,
    # Listed for the reader: any code not listed anywhere is StateUnknown too.
    "50004": StateUnknown,  # "does not mean that the request was successful or failed"
    "50026": StateUnknown,  # "System error"
    "51054": StateUnknown,  # "Request timed out"
    "51149": StateUnknown,  # "Order timed out"
}

# Explicit refusals: OKX did not take the request and will not. Keep this list to codes
# whose documented meaning is a refusal (OKX error-code table); never add a range.
_ORDER_REFUSALS = (
    # The request itself.
    "50000 50002 50006 50014 50015 50016 50024 50025 "
    # The account may not trade this.
    "50007 50009 50012 50027 50028 50029 50032 50033 50041 50051 50052 50059 50060 "
    # Order parameters, limits and prices.
    "50122 51000 51002 51003 51005 51006 51007 51009 51010 51015 51020 51023 51024 51025 "
    "51026 51028 51029 51030 51031 51033 51037 51101 51102 51103 51104 51105 51106 51107 "
    "51109 51110 51111 51116 51117 51120 51121 51122 51124 51129 51132 51137 51138 51139 "
    "51140 51143 51150 51155 51174 51185 51201 51202 51203 51204 51205"
)
_AUTH_REFUSALS = (
    "50030 50035 50100 50101 50102 50103 50104 50105 50106 50107 50108 50109 50110 50111 "
    "50112 50113 50114 50119 50120 50121 "
    # Websocket login refusals.
    "60004 60005 60006 60007 60009 60024"
)
REFUSALS: dict[str, type[Fatal]] = {
    **dict.fromkeys(_ORDER_REFUSALS.split(), OrderRejected),
    **dict.fromkeys(_AUTH_REFUSALS.split(), AuthenticationError),
    # "Insufficient balance" (51008 also comes with sub-codes: 51008_1000).
    **dict.fromkeys(("51008", "51119", "51127", "51131"), InsufficientFunds),
    # Unknown, not yet listed, suspended, expired or delisted instrument.
    **dict.fromkeys(("51001", "51021", "51022", "51027", "51087"), InvalidInstrument),
}

# A status that says the request timed out somewhere on its way: it may have landed.
AMBIGUOUS_STATUSES = frozenset({408, 425, 499})


def error_class(code: str) -> type[ExchangeError]:
    """Return the error class for an OKX code (envelope ``code`` or per-order ``sCode``).

    A code that is neither an answer, a retryable condition nor a listed refusal leaves the
    request's outcome unknown.
    """
    cls = ANSWERS.get(code) or RETRYABLE.get(code) or REFUSALS.get(code)
    if cls is not None:
        return cls
    if code.startswith("51008_"):  # 51008 with a sub-code such as 51008_1000
        return InsufficientFunds
    return StateUnknown


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
    text = f"okx {where}: HTTP {status} {code} {msg}".rstrip()
    if status == 429:
        return RateLimited(text, code=code or "429")
    if status in AMBIGUOUS_STATUSES:
        return StateUnknown(text, code=code or str(status))
    if status >= 500:
        if payload is None:
            return StateUnknown(text, code=str(status))
        # Never a refusal: a server error decided nothing we can rely on, whatever its body.
        cls = error_class(code) if code else ExchangeUnavailable
        if not issubclass(cls, Retryable):
            cls = ExchangeUnavailable
        return cls(text, code=code or str(status))
    if payload is None:
        if status in (401, 403):
            return AuthenticationError(f"okx {where}: HTTP {status}", code=str(status))
        # A proxy's page or a cut body: the request may or may not have reached OKX.
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

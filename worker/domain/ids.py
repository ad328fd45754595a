"""Identifiers: instrument ids, and the deterministic signal ids and OKX ``clOrdId``s."""

from __future__ import annotations

import hashlib
import re

from worker.domain.errors import InvalidSignal
from worker.domain.strategies import BY_CODE, BY_ID

CL_ORD_PREFIX = "lf"
ORDER_TAG = "limitflow"
INST_ID_RE = re.compile(r"^[A-Z0-9]{1,20}-[A-Z0-9]{1,20}$")


def is_inst_id(text: str) -> bool:
    """``BTC-USDT``: two upper-case tickers of letters and digits joined by a dash."""
    return INST_ID_RE.match(text) is not None


def _hex24(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def strategy_code(strategy: str) -> str:
    try:
        return BY_ID[strategy].code
    except KeyError:
        raise InvalidSignal(f"unknown strategy {strategy!r}") from None


def buy_cl_ord_id(strategy: str, signal_id: str) -> str:
    """``lf`` + strategy code + ``b`` + 24 hex of the signal id: 29 letters and digits."""
    return f"{CL_ORD_PREFIX}{strategy_code(strategy)}b{_hex24(signal_id)}"


def sell_cl_ord_id(strategy: str, lot_id: int, attempt: int) -> str:
    """``lf`` + strategy code + ``s`` + 24 hex of the lot id and attempt number."""
    return f"{CL_ORD_PREFIX}{strategy_code(strategy)}s{_hex24(f'lot:{lot_id}:{attempt}')}"


def parse_cl_ord_id(cl_ord_id: str) -> tuple[str, str] | None:
    """Return ``(strategy, side)`` for one of our clOrdIds, else ``None``."""
    if len(cl_ord_id) != 29 or not cl_ord_id.startswith(CL_ORD_PREFIX):
        return None
    strategy = BY_CODE.get(cl_ord_id[2:4])
    side = {"b": "buy", "s": "sell"}.get(cl_ord_id[4])
    tail = cl_ord_id[5:]
    if strategy is None or side is None or any(c not in "0123456789abcdef" for c in tail):
        return None
    return strategy.id, side


def signal_id_for(strategy: str, inst_id: str, bucket: str) -> str:
    """The deterministic id of a buy signal: the same trigger bucket gives the same id."""
    return f"{strategy}:{inst_id}:{bucket}"

"""OKX public REST (no signature): instrument rules and the current 1H candle's open.

Instruments are read by the OKX adapter's parser (``worker.exchange.okx.parse``), the one
place that turns an OKX instrument into ``InstrumentRules``; the feed skips, with a log line,
an instrument it cannot read.
"""

from __future__ import annotations

import logging
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx

from feed.logs import log_event
from worker.domain.money import InstrumentRules
from worker.exchange.okx.errors import MalformedResponse
from worker.exchange.okx.parse import parse_instrument


class RestError(Exception):
    """A public REST call failed (network, HTTP status or OKX ``code``); retry later."""


class PublicRest:
    """A small client for the two public endpoints the feed needs."""

    def __init__(
        self, base_url: str, client: httpx.Client | None = None, timeout: float = 10.0
    ) -> None:
        self.client = client or httpx.Client(base_url=base_url, timeout=timeout)

    def close(self) -> None:
        self.client.close()

    def _get(self, path: str, params: dict[str, str]) -> list[Any]:
        try:
            resp = self.client.get(path, params=params)
            body = resp.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise RestError(f"GET {path}: {type(exc).__name__}: {exc}") from None
        if resp.status_code != 200 or not isinstance(body, dict) or body.get("code") != "0":
            code = body.get("code") if isinstance(body, dict) else None
            raise RestError(f"GET {path}: HTTP {resp.status_code} code={code}")
        data = body.get("data")
        if not isinstance(data, list):
            raise RestError(f"GET {path}: no data array")
        return data

    def instruments(self) -> list[InstrumentRules]:
        """Every SPOT instrument with its rules (``tickSz``, ``lotSz``, ``minSz``, state)."""
        out = []
        for item in self._get("/api/v5/public/instruments", {"instType": "SPOT"}):
            try:
                if not isinstance(item, dict):
                    raise MalformedResponse("okx: an instrument that is not an object")
                out.append(parse_instrument(item))
            except MalformedResponse as exc:
                log_event("feed.instrument_unreadable", item=str(item)[:200], error=str(exc))
        return out

    def hour_candle(self, inst_id: str) -> tuple[int, Decimal] | None:
        """``(open time ms, open)`` of the newest 1H candle, if the exchange has one."""
        rows = self._get("/api/v5/market/candles", {"instId": inst_id, "bar": "1H", "limit": "1"})
        if not rows:
            return None
        try:
            return int(rows[0][0]), Decimal(rows[0][1])
        except (IndexError, TypeError, ValueError, InvalidOperation):
            raise RestError(f"candles {inst_id}: unreadable row {rows[0]!r}") from None


def select_instruments(
    available: list[InstrumentRules], wanted: list[str] | None
) -> list[InstrumentRules]:
    """The configured instruments (``None``: every live SPOT-USDT pair), live ones only."""
    if wanted is None:
        return [r for r in available if r.live and r.quote_ccy == "USDT"]
    by_id = {r.inst_id: r for r in available}
    out = []
    for inst_id in wanted:
        rules = by_id.get(inst_id)
        if rules is None or not rules.live:
            why = "OKX does not list it" if rules is None else "it is not live (suspended)"
            log_event("feed.instrument_skipped", logging.WARNING, inst_id=inst_id, reason=why)
            continue
        out.append(rules)
    return out

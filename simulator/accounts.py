"""Spot balances: cash per currency and the part frozen by resting orders."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from simulator.decimals import ZERO, fmt


class InsufficientBalance(Exception):
    """The available balance does not cover what the order would freeze."""


class Accounts:
    def __init__(self, start: dict[str, Decimal]):
        self._start = dict(start)
        self.cash: dict[str, Decimal] = {}
        self.frozen: dict[str, Decimal] = {}
        self.reset()

    def reset(self) -> None:
        self.cash = dict(self._start)
        self.frozen = {}

    def available(self, ccy: str) -> Decimal:
        return self.cash.get(ccy, ZERO) - self.frozen.get(ccy, ZERO)

    def freeze(self, ccy: str, amount: Decimal) -> None:
        if amount > self.available(ccy):
            raise InsufficientBalance(ccy)
        self.frozen[ccy] = self.frozen.get(ccy, ZERO) + amount

    def unfreeze(self, ccy: str, amount: Decimal) -> None:
        left = self.frozen.get(ccy, ZERO) - amount
        self.frozen[ccy] = max(left, ZERO)

    def add(self, ccy: str, amount: Decimal) -> None:
        self.cash[ccy] = self.cash.get(ccy, ZERO) + amount

    def to_okx(
        self, now_ms: int, price_of: Callable[[str], Decimal], ccys: set[str] | None
    ) -> dict[str, Any]:
        """The account object of GET /api/v5/account/balance (non-zero currencies only)."""
        details = []
        total = ZERO
        for ccy in sorted(self.cash):
            cash = self.cash[ccy]
            if cash == 0 and self.frozen.get(ccy, ZERO) == 0:
                continue
            usd = cash * price_of(ccy)
            total += usd
            if ccys and ccy not in ccys:
                continue
            frozen = self.frozen.get(ccy, ZERO)
            details.append(
                {
                    "availBal": fmt(cash - frozen),
                    "availEq": fmt(cash - frozen),
                    "cashBal": fmt(cash),
                    "ccy": ccy,
                    "disEq": fmt(usd),
                    "eq": fmt(cash),
                    "eqUsd": fmt(usd),
                    "fixedBal": "0",
                    "frozenBal": fmt(frozen),
                    "ordFrozen": fmt(frozen),
                    "spotBal": fmt(cash),
                    "uTime": str(now_ms),
                    "upl": "0",
                }
            )
        return {
            "adjEq": "",
            "availEq": "",
            "borrowFroz": "",
            "delta": "",
            "deltaLever": "",
            "deltaNeutralStatus": "0",
            "details": details,
            "imr": "",
            "isoEq": "0",
            "mgnRatio": "",
            "mmr": "",
            "notionalUsd": "",
            "notionalUsdForBorrow": "",
            "notionalUsdForFutures": "",
            "notionalUsdForOption": "",
            "notionalUsdForSwap": "",
            "ordFroz": "",
            "totalEq": fmt(total),
            "uTime": str(now_ms),
            "upl": "",
        }

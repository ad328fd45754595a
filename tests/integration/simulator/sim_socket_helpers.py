"""Clients shared by the simulator's socket-level tests."""

from __future__ import annotations

import json
from typing import Any

import httpx

from okxv5.signing import rest_signature, rest_timestamp
from worker.settings import SIM_API_KEY, SIM_API_PASSPHRASE, SIM_API_SECRET


class SignedClient:
    """A minimal OKX REST client that signs like python-okx (body text as sent)."""

    def __init__(self, base_url: str, secret: str = SIM_API_SECRET, **headers: str):
        self.http = httpx.Client(base_url=base_url, timeout=10)
        self.secret = secret
        self.headers = {
            "OK-ACCESS-KEY": SIM_API_KEY,
            "OK-ACCESS-PASSPHRASE": SIM_API_PASSPHRASE,
            "x-simulated-trading": "1",
            **headers,
        }

    def send(
        self,
        method: str,
        path: str,
        params: dict[str, str] | None = None,
        body: Any = None,
        timestamp: str | None = None,
        timeout: float = 10.0,
        **extra: str,
    ) -> httpx.Response:
        query = "&".join(f"{k}={v}" for k, v in (params or {}).items())
        path_qs = f"{path}?{query}" if query else path
        text = json.dumps(body) if body is not None else ""
        ts = timestamp or rest_timestamp()
        headers = {
            **self.headers,
            "OK-ACCESS-TIMESTAMP": ts,
            "OK-ACCESS-SIGN": rest_signature(self.secret, ts, method, path_qs, text),
            "Content-Type": "application/json",
            **extra,
        }
        return self.http.request(
            method, path_qs, content=text.encode(), headers=headers, timeout=timeout
        )

    def get(self, path: str, **params: str) -> dict[str, Any]:
        result: dict[str, Any] = self.send("GET", path, params).json()
        return result

    def post(self, path: str, body: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.send("POST", path, body=body).json()
        return result

    def close(self) -> None:
        self.http.close()


def limit_order(inst_id: str = "BTC-USDT", **fields: str) -> dict[str, str]:
    order = {"instId": inst_id, "tdMode": "cash", "side": "buy", "ordType": "limit"}
    order.update({"px": "100", "sz": "0.001"})
    order.update(fields)
    return order

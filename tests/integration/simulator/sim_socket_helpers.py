"""Clients shared by the simulator's socket-level tests."""

from __future__ import annotations

import json
from typing import Any

import httpx

from worker.exchange.okx.signing import rest_signature, rest_timestamp
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


class WsClient:
    """A websocket-client connection with helpers to wait for a matching JSON message."""

    def __init__(self, url: str, timeout: float = 5.0):
        import websocket

        self.ws = websocket.create_connection(url, timeout=timeout)

    def send(self, payload: Any) -> None:
        self.ws.send(payload if isinstance(payload, str) else json.dumps(payload))

    def recv_text(self, timeout: float = 5.0) -> str:
        self.ws.settimeout(timeout)
        text = self.ws.recv()
        return text if isinstance(text, str) else text.decode()

    def wait_for(self, predicate: Any, timeout: float = 5.0) -> dict[str, Any]:
        """The first JSON message for which ``predicate(msg)`` is true (others are skipped)."""
        import time

        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no matching websocket message")
            text = self.recv_text(left)
            if text == "pong":
                continue
            msg: dict[str, Any] = json.loads(text)
            if predicate(msg):
                return msg

    def close_code(self, timeout: float = 5.0) -> int:
        """Read until the server's close frame; return its status code."""
        import websocket

        self.ws.settimeout(timeout)
        while True:
            opcode, data = self.ws.recv_data(control_frame=True)
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                return int.from_bytes(data[:2], "big")

    def close(self) -> None:
        try:
            self.ws.close(timeout=1)
        finally:
            self.ws.shutdown()  # frees the socket even when the server already cut it


def login_args(ts: str | None = None, passphrase: str = SIM_API_PASSPHRASE) -> dict[str, Any]:
    import time

    from worker.exchange.okx.signing import ws_login_signature

    stamp = ts or str(int(time.time()))
    arg = {"apiKey": SIM_API_KEY, "passphrase": passphrase, "timestamp": stamp}
    arg["sign"] = ws_login_signature(SIM_API_SECRET, stamp)
    return {"op": "login", "args": [arg]}

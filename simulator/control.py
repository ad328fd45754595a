"""``SimControl``: a small client for the simulator's ``/_sim/`` control API (tests, demos)."""

from __future__ import annotations

from typing import Any

import httpx


class SimControlError(RuntimeError):
    """The control API refused a request."""


class SimControl:
    """One method per control endpoint; ``base_url`` is the simulator's REST URL."""

    def __init__(self, base_url: str, timeout: float = 30.0):
        self._client = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> SimControl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, name: str, body: dict[str, Any] | None = None) -> Any:
        response = self._client.request(method, f"/_sim/{name}", json=body)
        payload = response.json()
        if response.status_code != 200:
            raise SimControlError(f"/_sim/{name}: {payload.get('error', response.text)}")
        return payload

    def fault(self, op: str, mode: str, times: int = 1, seconds: float = 0.0) -> dict[str, Any]:
        """Arm a REST fault: ``op`` place_order|cancel_order|get_order|orders_pending|any..."""
        body = {"op": op, "mode": mode, "times": times, "seconds": seconds}
        result: dict[str, Any] = self._call("POST", "faults", body)
        return result

    def push_fault(self, mode: str, times: int = 1) -> dict[str, Any]:
        """``drop`` or ``duplicate`` the next ``times`` pushes of the private orders channel."""
        return self.fault("orders_push", mode, times)

    def clear_faults(self) -> None:
        self._call("POST", "faults", {"clear": True})

    def ws(self, action: str, path: str = "all") -> int:
        """drop | notice_64008 | stop_pong | idle_close_4004 on public|private|business|all."""
        result = self._call("POST", "ws", {"action": action, "path": path})
        return int(result["connections"])

    def price(
        self,
        inst_id: str,
        last: str | None = None,
        bid: str | None = None,
        ask: str | None = None,
        **sizes: str,
    ) -> dict[str, Any]:
        """Set the price (bid/ask default to last) and match; returns the new ticker."""
        body: dict[str, Any] = {"instId": inst_id, "last": last, "bid": bid, "ask": ask, **sizes}
        ticker: dict[str, Any] = self._call("POST", "price", body)["ticker"]
        return ticker

    def price_with_time(
        self, inst_id: str, last: str, bid: str | None = None, ask: str | None = None
    ) -> int | None:
        """Like ``price``; return when the simulator sent the ticker (epoch us: as its
        websocket writer handed the frame to the socket; None if nobody subscribes)."""
        body = {"instId": inst_id, "last": last, "bid": bid, "ask": ask}
        sent = self._call("POST", "price", body)["sentUs"]
        return None if sent is None else int(sent)

    def prices(self, moves: list[dict[str, Any]]) -> list[int | None]:
        """Several price moves pushed back to back; return when each ticker was sent (epoch
        us, as ``price_with_time``)."""
        sent: list[int | None] = self._call("POST", "prices", {"prices": moves})["sentUs"]
        return sent

    def fill(
        self, ord_id: str | None = None, cl_ord_id: str | None = None, sz: str | None = None
    ) -> dict[str, Any]:
        body = {"ordId": ord_id, "clOrdId": cl_ord_id, "sz": sz}
        order: dict[str, Any] = self._call("POST", "fill", body)["order"]
        return order

    def forget(self, ord_id: str | None = None, cl_ord_id: str | None = None) -> None:
        self._call("POST", "forget", {"ordId": ord_id, "clOrdId": cl_ord_id})

    def orders(self) -> dict[str, Any]:
        """``{"orders": [...], "placements": {clOrdId: count}, "fills": {ordId: [...]}}``."""
        result: dict[str, Any] = self._call("GET", "orders")
        return result

    def placements(self, cl_ord_id: str) -> int:
        return int(self.orders()["placements"].get(cl_ord_id, 0))

    def placement_requests(self) -> list[dict[str, Any]]:
        """Every placement request received, refused and fault-hit ones included, in order."""
        result: list[dict[str, Any]] = self._call("GET", "placements")["requests"]
        return result

    def instrument_state(self, inst_id: str, state: str) -> dict[str, Any]:
        """``suspend`` an instrument (new orders refused with 51022, no trading) or make it
        ``live`` again; returns its ``public/instruments`` item."""
        body = {"instId": inst_id, "state": state}
        result: dict[str, Any] = self._call("POST", "instrument", body)["instrument"]
        return result

    def freeze_market(self, frozen: bool = True) -> None:
        """Stop (or restart) the generated market: quotes stay put while the clock runs."""
        self._call("POST", "market", {"frozen": frozen})

    def reset(self, *, clock_to_wall: bool = False) -> None:
        """Forget every order and fault (and move the clock to now with ``clock_to_wall``)."""
        self._call("POST", "reset", {"clockToWall": True} if clock_to_wall else {})

    def clock(
        self,
        advance_seconds: float = 0.0,
        pause: bool = False,
        resume: bool = False,
        speed: float | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"advance_seconds": advance_seconds, "pause": pause}
        body["resume"] = resume
        if speed is not None:
            body["speed"] = speed
        result: dict[str, Any] = self._call("POST", "clock", body)
        return result

    def advance(self, seconds: float) -> dict[str, Any]:
        return self.clock(advance_seconds=seconds)

    def status(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "status")
        return result

    def timeline(self) -> dict[str, Any]:
        """``{"tickers": {instId: [us]}, "orders": {clOrdId: {"instId", "us"}},
        "requests": {path: count}}``: when the simulator sent and received what."""
        result: dict[str, Any] = self._call("GET", "timeline")
        return result

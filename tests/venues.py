"""One test-side venue, two implementations: the in-memory double and OKX over the simulator.

The core and worker suites drive a venue through ``Venue``: move prices, force fills, cancel
and forget orders, inject faults, read the venue's orders and the order pushes. The engine
under test sees only ``venue.exchange`` (the port):

- ``MemoryVenue``: ``InMemoryExchange``, with pushes read from its in-process stream;
- ``SimVenue``: the real ``OkxExchange`` over HTTP to the local simulator (started with
  instruments matching ``tests.builders``), ``SimControl`` for the market and the faults, and
  the pushes taken from the simulator's private ``orders`` websocket by the real
  ``OrdersStream``, collected instead of enqueued.

A fault mode the simulator cannot produce raises ``Unsupported``; ``skip_unsupported`` turns
that into a skip with the reason.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from decimal import Decimal
from typing import Any, Protocol

import pytest
from pydantic import SecretStr

from simulator import start_simulator
from simulator.control import SimControl
from simulator.server import SimulatorHandle
from tests import builders
from worker.app import APPLY_ORDER_UPDATE
from worker.exchange.memory import InMemoryExchange
from worker.exchange.okx.adapter import OkxExchange
from worker.exchange.okx.parse import parse_order
from worker.exchange.okx.private_stream import OrdersStream, Timing
from worker.exchange.okx.rest import Credentials, OkxRestClient
from worker.exchange.port import Exchange, OrderRequest, OrderSnapshot, Placement
from worker.settings import SIM_API_KEY, SIM_API_PASSPHRASE, SIM_API_SECRET

VENUES = ("memory", "okx-sim")
# Client timeout of the in-process OKX adapter: a held request becomes "unknown" quickly.
SIM_CLIENT_TIMEOUT = 1.0  # connect and read
SIM_HOLD_SECONDS = 1.5  # how long the simulator holds a request it "times out"
PUSH_WAIT_SECONDS = 5.0


class Unsupported(Exception):
    """The venue cannot produce this fault."""


class Venue(Protocol):
    """What the tests do to a venue, whichever it is."""

    name: str
    exchange: Exchange

    def set_price(
        self, inst_id: str, last: Decimal, bid: Decimal | None = None, ask: Decimal | None = None
    ) -> None: ...

    def fill(self, order_id: str, sz: Decimal) -> None:
        """Force-fill ``sz`` of a pending order (by ordId, else clOrdId) at its own price."""
        ...

    def place_order(self, request: OrderRequest) -> Placement: ...

    def cancel_order(
        self, inst_id: str, *, ord_id: str | None = None, cl_ord_id: str | None = None
    ) -> None: ...

    def forget(self, ord_id: str) -> None:
        """Drop a finished order from the history, as if it aged out."""
        ...

    def inject(self, op: str, mode: str, times: int = 1) -> None:
        """Make the next ``times`` calls of ``op`` fail with ``mode`` (memory's names)."""
        ...

    def clear_faults(self) -> None: ...

    def suspend(self, inst_id: str, suspended: bool = True) -> None:
        """Suspend an instrument (listed, not live: no new orders) or make it live again."""
        ...

    def delay_placements(self, seconds: float, *, lands: bool) -> None:
        """Hold placement requests ``seconds``; then place (``lands``) or answer nothing."""
        ...

    def orders(self) -> list[OrderSnapshot]:
        """Every order still in the venue's history, oldest first."""
        ...

    def placements_for(self, cl_ord_id: str) -> int: ...

    def drain_updates(self) -> list[OrderSnapshot]:
        """Return and forget the order pushes so far, oldest first (waits for in-flight ones)."""
        ...

    def close(self) -> None: ...


def skip_unsupported(venue: Venue, op: str, mode: str, times: int = 1) -> None:
    """``venue.inject``, or skip the test when the venue has no such fault."""
    try:
        venue.inject(op, mode, times)
    except Unsupported as exc:
        pytest.skip(str(exc))


# -- the in-memory venue -----------------------------------------------------------------------


def make_memory_exchange() -> InMemoryExchange:
    """The in-memory venue listing ``builders.INSTRUMENTS``, asks far above the signal prices."""
    venue = InMemoryExchange()
    for rules in builders.INSTRUMENTS:
        venue.add_instrument(rules)
        px = builders.PRICES[rules.inst_id]
        # Asks a little above the signal price: buys rest until the market comes down.
        venue.set_price(rules.inst_id, px * 2, px * 2, px * 2)
    return venue


class MemoryVenue:
    name = "memory"

    def __init__(self, exchange: InMemoryExchange | None = None) -> None:
        self.memory = exchange or make_memory_exchange()
        self.exchange: Exchange = self.memory

    def set_price(
        self, inst_id: str, last: Decimal, bid: Decimal | None = None, ask: Decimal | None = None
    ) -> None:
        self.memory.set_price(inst_id, last, bid, ask)

    def fill(self, order_id: str, sz: Decimal) -> None:
        self.memory.fill(order_id, sz)

    def place_order(self, request: OrderRequest) -> Placement:
        return self.memory.place_order(request)

    def cancel_order(
        self, inst_id: str, *, ord_id: str | None = None, cl_ord_id: str | None = None
    ) -> None:
        self.memory.cancel_order(inst_id, ord_id=ord_id, cl_ord_id=cl_ord_id)

    def forget(self, ord_id: str) -> None:
        self.memory.forget(ord_id)

    def inject(self, op: str, mode: str, times: int = 1) -> None:
        self.memory.inject(op, mode, times)

    def clear_faults(self) -> None:
        self.memory.clear_faults()
        self.memory.set_latency(0.0)

    def suspend(self, inst_id: str, suspended: bool = True) -> None:
        rules = next(r for r in builders.INSTRUMENTS if r.inst_id == inst_id)
        self.memory.add_instrument(replace(rules, live=not suspended))

    def delay_placements(self, seconds: float, *, lands: bool) -> None:
        self.memory.set_latency(seconds)
        if not lands:
            self.memory.inject("place_order", "timeout")

    def orders(self) -> list[OrderSnapshot]:
        return self.memory.orders()

    def placements_for(self, cl_ord_id: str) -> int:
        return self.memory.placements_for(cl_ord_id)

    def drain_updates(self) -> list[OrderSnapshot]:
        return self.memory.drain_updates()

    def close(self) -> None:
        self.memory.set_latency(0.0)


# -- OKX over the simulator ------------------------------------------------------------------

# Memory's operation names -> the simulator's fault ops.
_SIM_OPS = {
    "place_order": "place_order",
    "cancel_order": "cancel_order",
    "get_order": "get_order",
    "list_pending": "orders_pending",
    "instrument": "public",
    "ticker": "public",
}
# Memory's fault modes -> the simulator's; None: the simulator has no such fault.
_SIM_MODES: dict[str, str | None] = {
    "timeout": "timeout",
    "accept_then_timeout": "accept_then_timeout",
    "unavailable": "http_500",
    "rate_limited": "code_50011",
    "reject": None,
    "not_found": None,
}


def start_test_simulator() -> SimulatorHandle:
    """A simulator on a free port whose instruments match ``tests.builders``, market paused."""
    rules = [
        f"{r.inst_id}:{r.tick_sz}:{r.lot_sz}:{r.min_sz}" for r in builders.INSTRUMENTS
    ]  # fmt: skip
    return start_simulator(
        port=0,
        paused=True,
        instruments=[r.inst_id for r in builders.INSTRUMENTS],
        instrument_rules=rules,
        warmup_hours=0,
        shock_rate_per_hour=0.0,
        dump_rate_per_hour=0.0,
        # The accounts hold enough that a test never runs out of quote currency.
        start_usdt=Decimal(1_000_000),
    )


def sim_env(handle: SimulatorHandle) -> dict[str, str]:
    """Environment that points a worker process's OKX adapter and stream at the simulator."""
    return {
        "LIMITFLOW_EXCHANGE": "okx",
        "OKX_REST_URL": handle.rest_url,
        "OKX_WS_PUBLIC_URL": f"{handle.ws_url}/public",
        "OKX_WS_PRIVATE_URL": f"{handle.ws_url}/private",
        "OKX_WS_BUSINESS_URL": f"{handle.ws_url}/business",
    }


def sim_credentials() -> Credentials:
    """The simulator's demo credentials (its defaults and the settings' defaults)."""
    return Credentials(
        SecretStr(SIM_API_KEY), SecretStr(SIM_API_SECRET), SecretStr(SIM_API_PASSPHRASE)
    )


class PushCollector:
    """An ``OrdersStream`` on the simulator's private websocket, publishing into a list."""

    def __init__(self, ws_private_url: str) -> None:
        self._lock = threading.Lock()
        self._pending: list[OrderSnapshot] = []
        self.latest: dict[str, OrderSnapshot] = {}
        self.stream = OrdersStream(
            ws_private_url,
            sim_credentials(),
            self._publish,
            timing=Timing(poll=0.05, backoff_base=0.05, backoff_max=0.5),
        )
        self._thread = threading.Thread(target=self.stream.run, name="orders-stream", daemon=True)
        self._thread.start()
        if not self.stream.ready.wait(10):
            self.stop()
            raise RuntimeError("the orders stream did not subscribe within 10 s")

    def _publish(self, task: str, args: list[object]) -> None:
        if task != APPLY_ORDER_UPDATE:
            return  # a resync request after a reconnect: the tests reconcile by hand
        from worker.exchange.port import snapshot_from_message

        message = args[0]
        assert isinstance(message, dict)
        snap = snapshot_from_message(message)
        with self._lock:
            self._pending.append(snap)
            self.latest[snap.ord_id] = snap

    def take(self) -> list[OrderSnapshot]:
        with self._lock:
            taken, self._pending = self._pending, []
            return taken

    def seen(self, ord_id: str) -> OrderSnapshot | None:
        with self._lock:
            return self.latest.get(ord_id)

    def stop(self) -> None:
        self.stream.stop()
        self._thread.join(5)


class SimVenue:
    name = "okx-sim"

    def __init__(self, handle: SimulatorHandle, *, collect_pushes: bool = True) -> None:
        self.handle = handle
        self.control = SimControl(handle.rest_url)
        # Each test starts at the wall clock: an earlier test may have moved the simulator's
        # clock hours ahead, and the engine's request deadlines (expTime) follow the wall.
        self.control.reset(clock_to_wall=True)
        for rules in builders.INSTRUMENTS:
            px = builders.PRICES[rules.inst_id] * 2
            self.control.price(rules.inst_id, str(px))
        rest = OkxRestClient(handle.rest_url, sim_credentials(), timeout=SIM_CLIENT_TIMEOUT)
        self.okx = OkxExchange(rest)
        self.exchange: Exchange = self.okx
        self.pushes = PushCollector(f"{handle.ws_url}/private") if collect_pushes else None

    def set_price(
        self, inst_id: str, last: Decimal, bid: Decimal | None = None, ask: Decimal | None = None
    ) -> None:
        self.control.price(
            inst_id, str(last), None if bid is None else str(bid), None if ask is None else str(ask)
        )

    def fill(self, order_id: str, sz: Decimal) -> None:
        if order_id.isdigit():
            self.control.fill(ord_id=order_id, sz=str(sz))
        else:
            self.control.fill(cl_ord_id=order_id, sz=str(sz))

    def place_order(self, request: OrderRequest) -> Placement:
        return self.okx.place_order(request)

    def cancel_order(
        self, inst_id: str, *, ord_id: str | None = None, cl_ord_id: str | None = None
    ) -> None:
        self.okx.cancel_order(inst_id, ord_id=ord_id, cl_ord_id=cl_ord_id)

    def forget(self, ord_id: str) -> None:
        self.control.forget(ord_id=ord_id)

    def inject(self, op: str, mode: str, times: int = 1) -> None:
        sim_op, sim_mode = _SIM_OPS.get(op), _SIM_MODES.get(mode)
        if sim_op is None or sim_mode is None:
            raise Unsupported(f"the OKX simulator cannot inject {mode!r} into {op!r}")
        seconds = SIM_HOLD_SECONDS if sim_mode in ("timeout", "accept_then_timeout") else 0.0
        self.control.fault(sim_op, sim_mode, times=times, seconds=seconds)

    def fault(self, op: str, mode: str, times: int = 1, seconds: float = 0.0) -> None:
        """Arm a simulator fault by its own names (``rate_limit_429``, ``code_50011``...)."""
        self.control.fault(op, mode, times=times, seconds=seconds)

    def clear_faults(self) -> None:
        self.control.clear_faults()

    def suspend(self, inst_id: str, suspended: bool = True) -> None:
        self.control.instrument_state(inst_id, "suspend" if suspended else "live")

    def delay_placements(self, seconds: float, *, lands: bool) -> None:
        self.control.fault("place_order", "latency" if lands else "timeout", seconds=seconds)
        if lands:
            # The paused simulator's clock must show the time the request spent travelling
            # (from now, on the wall clock that the engine's deadlines follow): it decides
            # against that clock whether the request missed its expTime.
            behind_ms = time.time() * 1000 - int(self.control.status()["now"])
            self.control.advance(max(0.0, behind_ms / 1000) + seconds)

    def advance_clock(self, seconds: float) -> None:
        """Move the simulator's clock (history retention, purges) and its market through it."""
        self.control.advance(seconds)

    def raw_orders(self) -> list[dict[str, Any]]:
        orders: list[dict[str, Any]] = self.control.orders()["orders"]
        return orders

    def orders(self) -> list[OrderSnapshot]:
        return [parse_order(item) for item in self.raw_orders()]

    def placements_for(self, cl_ord_id: str) -> int:
        return self.control.placements(cl_ord_id)

    def drain_updates(self) -> list[OrderSnapshot]:
        if self.pushes is None:
            raise RuntimeError("this venue does not collect pushes")
        self.wait_pushed()
        return self.pushes.take()

    def wait_pushed(self, timeout: float = PUSH_WAIT_SECONDS) -> None:
        """Wait until the websocket has pushed every order's current state."""
        assert self.pushes is not None
        deadline = time.monotonic() + timeout
        while True:
            behind = [s for s in self.orders() if not self._caught_up(s)]
            if not behind:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"no websocket push of {[s.cl_ord_id for s in behind]}")
            time.sleep(0.01)

    def _caught_up(self, current: OrderSnapshot) -> bool:
        assert self.pushes is not None
        seen = self.pushes.seen(current.ord_id)
        return (
            seen is not None
            and seen.state == current.state
            and seen.acc_fill_sz == current.acc_fill_sz
        )

    def close(self) -> None:
        if self.pushes is not None:
            self.pushes.stop()
        self.okx.close()
        self.control.clear_faults()
        self.control.close()


@contextmanager
def open_venue(kind: str, handle: SimulatorHandle | None, **opts: Any) -> Iterator[Venue]:
    """A fresh venue of ``kind`` ("memory" or "okx-sim"), closed afterwards."""
    venue: Venue
    if kind == "memory":
        venue = MemoryVenue()
    else:
        assert handle is not None
        venue = SimVenue(handle, **opts)
    try:
        yield venue
    finally:
        venue.close()

"""Share one ``InMemoryExchange`` between processes over loopback.

``serve_memory_exchange`` serves an instance from a background thread of the calling process
with the standard library's ``multiprocessing.managers`` server; ``connect_memory_exchange``
returns a client that behaves like the local object: same return values, same exception
classes and codes (they cross the socket pickled).

The client connects lazily with one connection per thread and per process: a forked
(prefork Celery) child never reuses its parent's socket. Losing the server maps onto the
port's error tree: no connection is ``ExchangeUnavailable``, a call cut short is
``StateUnknown`` (it may have landed).
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import weakref
from collections.abc import Iterator
from decimal import Decimal
from multiprocessing.connection import Client, Connection, Listener
from multiprocessing.managers import BaseManager, Server
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from worker.domain.errors import ExchangeUnavailable, StateUnknown
from worker.domain.money import InstrumentRules
from worker.exchange.port import OrderRequest, OrderSnapshot, Placement, Ticker

if TYPE_CHECKING:
    from worker.exchange.memory import InMemoryExchange

# Loopback only, so a fixed key is enough: it keeps strangers' pickles out, not attackers.
AUTHKEY = b"limitflow-memory-venue"
_TYPEID = "venue"
_PAGE_LIMIT = 100


class MemoryExchangeServer:
    """A running server: ``url`` for ``connect_memory_exchange``, ``stop()`` to end it."""

    def __init__(self, exchange: InMemoryExchange, host: str, port: int) -> None:
        class _ServedVenue(BaseManager):  # a class per server: the registry is per class
            pass

        _ServedVenue.register(_TYPEID, callable=lambda: exchange)
        self._server: Server = _ServedVenue(address=(host, port), authkey=AUTHKEY).get_server()
        self._listener: Listener = self._server.listener  # type: ignore[attr-defined]
        self._stop = threading.Event()
        # serve_client() checks this event between requests and, when it is set, answers the
        # next request with a stray None. Never set it: stop() cuts the connections instead.
        self._server.stop_event = threading.Event()  # type: ignore[attr-defined]
        self._conns: weakref.WeakSet[Connection] = weakref.WeakSet()
        address = self._listener.address
        assert isinstance(address, tuple)
        self.host: str = address[0]
        self.port: int = address[1]
        self.url = f"memory://{self.host}:{self.port}"
        self._thread = threading.Thread(target=self._accept, name="memory-venue", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn = self._listener.accept()
            except OSError:
                continue
            if self._stop.is_set():
                conn.close()
                break
            self._conns.add(conn)
            threading.Thread(
                target=self._server.handle_request,
                args=(conn,),
                name="memory-venue-client",
                daemon=True,
            ).start()

    def stop(self) -> None:
        """Stop accepting, cut every client connection, and wait for the accept thread."""
        if self._stop.is_set():
            return
        self._stop.set()
        with contextlib.suppress(OSError), socket.create_connection((self.host, self.port), 1):
            pass  # wake the accept() call
        self._thread.join(5)
        self._listener.close()
        for conn in list(self._conns):
            with (
                contextlib.suppress(OSError),
                socket.fromfd(conn.fileno(), socket.AF_INET, socket.SOCK_STREAM) as sock,
            ):
                sock.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> MemoryExchangeServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_memory_exchange(
    exchange: InMemoryExchange, host: str = "127.0.0.1", port: int = 0
) -> MemoryExchangeServer:
    """Serve ``exchange`` from a background thread; ``port=0`` picks a free port."""
    return MemoryExchangeServer(exchange, host, port)


_clients: weakref.WeakSet[MemoryExchangeClient] = weakref.WeakSet()


def _reset_after_fork() -> None:
    for client in list(_clients):
        client._reset()


os.register_at_fork(after_in_child=_reset_after_fork)


def _request(
    conn: Connection, ident: str | None, method: str, args: tuple[Any, ...], **kwargs: Any
) -> Any:
    """Send one request in the manager protocol; raise what the venue raised."""
    conn.send((ident, method, args, kwargs))
    kind, result = conn.recv()
    if kind == "#RETURN":
        return result
    if kind == "#ERROR" and isinstance(result, BaseException):
        raise result  # the venue's own exception, unpickled: same class, same code
    raise RuntimeError(f"memory venue failed to answer {method}: {result}")


class MemoryExchangeClient:
    """The ``Exchange`` port (and the venue's test controls) of a served ``InMemoryExchange``.

    Speaks the ``multiprocessing.managers`` protocol directly with one connection per thread
    of this client, so that no connection is shared between threads, clients or processes.
    """

    def __init__(self, host: str, port: int) -> None:
        self.address = (host, port)
        self.url = f"memory://{host}:{port}"
        self._reset()
        _clients.add(self)

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._ident: str | None = None  # the venue's id on the server, looked up once
        self._local = threading.local()

    def _open(self) -> Connection:
        try:
            return Client(self.address, authkey=AUTHKEY)
        except (OSError, EOFError) as exc:
            raise ExchangeUnavailable(f"memory venue {self.url} unreachable: {exc}") from exc

    def _connection(self) -> tuple[Connection, str]:
        if self._pid != os.getpid():
            self._reset()
        conn: Connection | None = getattr(self._local, "conn", None)
        try:
            with self._lock:
                if self._ident is None:
                    with self._open() as first:
                        ident_exposed = _request(first, None, "create", (_TYPEID,))
                    self._ident = str(ident_exposed[0])
                ident = self._ident
            if conn is None:
                conn = self._open()
                name = f"{os.getpid()}|{threading.current_thread().name}"
                _request(conn, None, "accept_connection", (name,))
                self._local.conn = conn
        except (OSError, EOFError) as exc:  # nothing was asked of the venue yet
            raise ExchangeUnavailable(f"memory venue {self.url} unreachable: {exc}") from exc
        return conn, ident

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        conn, ident = self._connection()
        try:
            return _request(conn, ident, method, args, **kwargs)
        except (OSError, EOFError) as exc:
            self._local.conn = None
            conn.close()
            with self._lock:
                self._ident = None
            raise StateUnknown(f"memory venue {self.url}: {method} cut short: {exc!r}") from exc

    # -- the port ----------------------------------------------------------------------------

    def instrument(self, inst_id: str, *, require_live: bool = True) -> InstrumentRules:
        result: InstrumentRules = self._call("instrument", inst_id, require_live=require_live)
        return result

    def clock_skew_ms(self) -> int | None:
        return 0  # the venue keeps the engine's wall clock

    def place_order(self, request: OrderRequest) -> Placement:
        result: Placement = self._call("place_order", request)
        return result

    def cancel_order(
        self, inst_id: str, *, ord_id: str | None = None, cl_ord_id: str | None = None
    ) -> None:
        self._call("cancel_order", inst_id, ord_id=ord_id, cl_ord_id=cl_ord_id)

    def get_order(
        self, inst_id: str, *, ord_id: str | None = None, cl_ord_id: str | None = None
    ) -> OrderSnapshot:
        result: OrderSnapshot = self._call("get_order", inst_id, ord_id=ord_id, cl_ord_id=cl_ord_id)
        return result

    def list_pending(self, inst_id: str | None = None) -> Iterator[OrderSnapshot]:
        after: str | None = None
        while True:
            page = self.pending_page(inst_id, after)
            yield from page
            if len(page) < _PAGE_LIMIT:
                return
            after = page[-1].ord_id

    def pending_page(
        self, inst_id: str | None = None, after: str | None = None
    ) -> list[OrderSnapshot]:
        result: list[OrderSnapshot] = self._call("pending_page", inst_id, after)
        return result

    def ticker(self, inst_id: str) -> Ticker:
        result: Ticker = self._call("ticker", inst_id)
        return result

    # -- the venue's controls and introspection ------------------------------------------------

    def add_instrument(self, rules: InstrumentRules) -> None:
        self._call("add_instrument", rules)

    def set_price(
        self, inst_id: str, last: Decimal, bid: Decimal | None = None, ask: Decimal | None = None
    ) -> None:
        self._call("set_price", inst_id, last, bid, ask)

    def set_liquidity(self, inst_id: str, sz: Decimal | None) -> None:
        self._call("set_liquidity", inst_id, sz)

    def set_balance(self, ccy: str, amount: Decimal) -> None:
        self._call("set_balance", ccy, amount)

    def balance(self, ccy: str) -> Decimal:
        result: Decimal = self._call("balance", ccy)
        return result

    def set_fee_rate(self, rate: Decimal) -> None:
        self._call("set_fee_rate", rate)

    def set_latency(self, seconds: float) -> None:
        self._call("set_latency", seconds)

    def fill(self, order_id: str, sz: Decimal, px: Decimal | None = None) -> OrderSnapshot:
        result: OrderSnapshot = self._call("fill", order_id, sz, px)
        return result

    def forget(self, ord_id: str) -> None:
        self._call("forget", ord_id)

    def inject(self, op: str, mode: str, times: int = 1) -> None:
        self._call("inject", op, mode, times)

    def clear_faults(self) -> None:
        self._call("clear_faults")

    def drain_updates(self) -> list[OrderSnapshot]:
        result: list[OrderSnapshot] = self._call("drain_updates")
        return result

    def orders(self) -> list[OrderSnapshot]:
        result: list[OrderSnapshot] = self._call("orders")
        return result

    def calls(self) -> dict[str, int]:
        result: dict[str, int] = self._call("calls")
        return result

    def placements_for(self, cl_ord_id: str) -> int:
        result: int = self._call("placements_for", cl_ord_id)
        return result


def connect_memory_exchange(url: str) -> MemoryExchangeClient:
    """Return a client of the venue served at ``memory://HOST:PORT`` (connects on first use)."""
    parts = urlsplit(url)
    if parts.scheme != "memory" or not parts.hostname or parts.port is None:
        raise ValueError(f"expected memory://HOST:PORT, got {url!r}")
    return MemoryExchangeClient(parts.hostname, parts.port)

"""One request to the exchange on loopback: client CPU and round trip, per way of sending.

Runs ``python -m simulator`` and sends ``--requests`` requests each way, one at a time on one
kept-alive connection, the ways taking turns over ``--rounds`` rounds, measuring the client's
CPU (``time.process_time``; the median over rounds) and the round trip (``time.perf_counter``;
the median of all) per request:

- ``OkxRestClient``: the engine's REST client (urllib3 pool, signing off: a public endpoint);
- bare ``urllib3``, ``httpx``'s transport (what the client used before) and ``http.client``;
- a websocket round trip on the private socket (``ping`` / ``pong``) with an order op's JSON
  built and the reply parsed: about what placing over the websocket ``order`` op would cost
  the client, had the simulator to do no more than answer.

The simulator's own work is the same for every HTTP way, so the differences between them are
the client's. Ratios are against ``OkxRestClient`` in the same run.

    .venv/bin/python benchmarks/bench_http.py [--requests 2000]
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import orjson  # noqa: E402
import urllib3  # noqa: E402
import websocket  # noqa: E402
from pydantic import SecretStr  # noqa: E402

from benchmarks.bench_e2e import free_port  # noqa: E402
from worker.exchange.okx.ratelimit import OkxRequestPacer  # noqa: E402
from worker.exchange.okx.rest import Credentials, OkxRestClient  # noqa: E402
from worker.exchange.okx.signing import ws_login_args  # noqa: E402
from worker.settings import SIM_API_KEY, SIM_API_PASSPHRASE, SIM_API_SECRET  # noqa: E402

PATH = "/api/v5/public/time"
HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}
ORDER_OP = {
    "id": "1",
    "op": "order",
    "args": [
        {
            "instId": "BTC-USDT",
            "tdMode": "cash",
            "side": "buy",
            "ordType": "limit",
            "px": "60000.1",
            "sz": "0.0002",
            "clOrdId": "lfhl0000000000000000000001",
        }
    ],
}


def measure(send: Callable[[], Any], n: int) -> tuple[float, list[float]]:
    """Client CPU per call, and each call's round trip, in microseconds."""
    laps: list[float] = []
    cpu0 = time.process_time()
    for _ in range(n):
        t0 = time.perf_counter()
        send()
        laps.append((time.perf_counter() - t0) * 1e6)
    return (time.process_time() - cpu0) / n * 1e6, laps


def interleaved(
    named: dict[str, Callable[[], Any]], n: int, rounds: int
) -> dict[str, tuple[float, float]]:
    """Each way ``n`` times per round, the ways in turn (the machine's drift hits all alike):
    the median over rounds of the CPU per call, and the median round trip of all calls."""
    for send in named.values():
        for _ in range(200):
            send()
    cpus: dict[str, list[float]] = {name: [] for name in named}
    laps: dict[str, list[float]] = {name: [] for name in named}
    for _ in range(rounds):
        for name, send in named.items():
            cpu, lap = measure(send, n // rounds)
            cpus[name].append(cpu)
            laps[name] += lap
    return {name: (statistics.median(cpus[name]), statistics.median(laps[name])) for name in named}


def ways(port: int) -> dict[str, Callable[[], Any]]:
    base = f"http://127.0.0.1:{port}"
    rest = OkxRestClient(base, _creds(), pacer=_NoPacing())
    pool = urllib3.HTTPConnectionPool("127.0.0.1", port, maxsize=1, retries=False)
    transport = httpx.HTTPTransport()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)

    def by_urllib3() -> Any:
        r = pool.urlopen("GET", PATH, headers=HEADERS, retries=False, redirect=False)
        return orjson.loads(r.data)["data"]

    def by_httpx_transport() -> Any:
        response = transport.handle_request(httpx.Request("GET", base + PATH, headers=HEADERS))
        response.read()
        response.close()
        return orjson.loads(response.content)["data"]

    def by_http_client() -> Any:
        conn.request("GET", PATH, headers=HEADERS)
        return orjson.loads(conn.getresponse().read())["data"]

    ws = _private_socket(port)

    def by_websocket() -> Any:
        orjson.dumps(ORDER_OP).decode()  # what the op would send
        ws.send("ping")
        _, data = ws.recv_data()
        return data

    return {
        "OkxRestClient (urllib3)": lambda: rest.get(PATH, signed=False),
        "urllib3 bare": by_urllib3,
        "httpx transport": by_httpx_transport,
        "http.client": by_http_client,
        "websocket round trip": by_websocket,
    }


class _NoPacing(OkxRequestPacer):
    """The client's rate limiter would space these public calls out: measure the sending."""

    def acquire(self, endpoint: str, key: str = "", cost: int = 1) -> float:
        return 0.0


def _creds() -> Credentials:
    secrets = (SIM_API_KEY, SIM_API_SECRET, SIM_API_PASSPHRASE)
    return Credentials(*(SecretStr(v) for v in secrets))


def _private_socket(port: int) -> websocket.WebSocket:
    ws = websocket.create_connection(
        f"ws://127.0.0.1:{port}/ws/v5/private", timeout=5, skip_utf8_validation=True
    )
    login = ws_login_args(SIM_API_KEY, SIM_API_SECRET, SIM_API_PASSPHRASE, str(int(time.time())))
    ws.send(orjson.dumps({"op": "login", "args": [login]}).decode())
    reply = orjson.loads(ws.recv_data()[1])
    assert reply.get("event") == "login" and reply.get("code") == "0", reply
    return ws


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="per way")
    parser.add_argument("--rounds", type=int, default=10, help="the ways take turns")
    args = parser.parse_args()
    port = free_port()
    log = Path(tempfile.mkdtemp(prefix="lf-bench-http-")) / "simulator.log"
    sim = subprocess.Popen(
        [sys.executable, "-m", "simulator", "--port", str(port), "--instruments", "BTC-USDT"],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )
    try:
        deadline = time.monotonic() + 60
        while "simulator.ready" not in log.read_text():
            if time.monotonic() > deadline or sim.poll() is not None:
                raise SystemExit(f"the simulator did not start; see {log}")
            time.sleep(0.1)
        results = interleaved(ways(port), args.requests, args.rounds)
    finally:
        sim.terminate()
        sim.wait(10)
    base_cpu, base_rtt = results["OkxRestClient (urllib3)"]
    print(
        f"bench_http: {args.requests} requests per way in {args.rounds} rounds, one at a time,"
        " loopback simulator"
    )
    print(f"{'way':26s} {'client CPU':>11s} {'round trip':>11s}   ratio to OkxRestClient")
    for name, (cpu, rtt) in results.items():
        print(
            f"{name:26s} {cpu:8.0f} us {rtt:8.0f} us   "
            f"CPU {cpu / base_cpu:4.2f}x   round trip {rtt / base_rtt:4.2f}x"
        )


if __name__ == "__main__":
    main()

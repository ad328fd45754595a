"""Replay over sockets (same file, same pushes) and the ``python -m simulator`` command."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
from sim_socket_helpers import WsClient

from simulator import start_simulator
from simulator.control import SimControl

ROOT = Path(__file__).resolve().parents[3]
T0 = 1_700_000_000_000


def write_recording(path: Path) -> Path:
    lines = []
    for i in range(30):
        inst = ("BTC-USDT", "ETH-USDT")[i % 2]
        ts = T0 + i * 150
        if i % 3 == 2:
            trade = {"instId": inst, "tradeId": str(900 + i), "px": f"{100 + i}.5", "sz": "0.1",
                     "side": "buy", "ts": str(ts)}  # fmt: skip
            msg = {"arg": {"channel": "trades", "instId": inst}, "data": [trade]}
        else:
            ticker = {"instType": "SPOT", "instId": inst, "last": f"{100 + i}.5", "lastSz": "1",
                      "askPx": f"{100 + i}.6", "askSz": "5", "bidPx": f"{100 + i}.4", "bidSz": "5",
                      "open24h": "90", "high24h": "140", "low24h": "80", "volCcy24h": "5000000",
                      "vol24h": "50000", "ts": str(ts), "sodUtc0": "95",
                      "sodUtc8": "96"}  # fmt: skip
            msg = {"arg": {"channel": "tickers", "instId": inst}, "data": [ticker]}
        lines.append(json.dumps({"recv_ms": ts + 5, "msg": msg}) if i % 4 == 0 else json.dumps(msg))
    path.write_text("\n".join(lines) + "\n")
    return path


def replay_once(path: Path) -> list[str]:
    handle = start_simulator(port=0, replay=path, speed=0, paused=True)
    client = WsClient(f"{handle.ws_url}/public")
    try:
        args = [
            {"channel": c, "instId": i}
            for c in ("tickers", "trades")
            for i in ("BTC-USDT", "ETH-USDT")
        ]
        client.send({"op": "subscribe", "args": args})
        for _ in args:
            client.wait_for(lambda m: m.get("event") == "subscribe")
        with SimControl(handle.rest_url) as ctl:
            ctl.clock(resume=True)
        pushes = [client.recv_text() for _ in range(30)]
        with SimControl(handle.rest_url) as ctl:
            assert ctl.status()["replayed"] == 30
        return pushes
    finally:
        client.close()
        handle.stop()


def test_same_recording_gives_the_same_pushes(tmp_path: Path) -> None:
    path = write_recording(tmp_path / "rec.jsonl")
    first = replay_once(path)
    assert first == replay_once(path)
    assert json.loads(first[0])["data"][0]["last"] == "100.5"
    assert [json.loads(p)["arg"]["channel"] for p in first[:3]] == ["tickers", "tickers", "trades"]


def test_cli_logs_ready_and_serves(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "simulator", "--port", "0", "--instruments", "BTC-USDT,SOL-USDT"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        match = re.match(r"simulator\.ready url=(http://127\.0\.0\.1:\d+)", line)
        assert match, line
        tickers = httpx.get(f"{match.group(1)}/api/v5/market/tickers?instType=SPOT").json()
        assert {t["instId"] for t in tickers["data"]} == {"BTC-USDT", "SOL-USDT"}
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        if proc.stderr is not None:
            proc.stderr.close()


def test_cli_refuses_a_bad_replay_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text("nope\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "simulator", "--port", "0", "--replay", str(bad)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 2
    assert "bad.jsonl:1: not JSON" in done.stderr

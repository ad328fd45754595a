"""``scripts/demo`` end to end on the embedded default: it runs, summarises, stops everything.

The short run (about 55 s) is in the default suite; Ctrl-C and a dying child are ``slow``.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.processes import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

DEMO = ROOT / "scripts" / "demo"
TABLES = (
    "Signals per strategy",
    "Orders by state",
    "Fills",
    "Skipped signals by reason",
    "Open positions",
    "Realised P&L per strategy",
    "total realised P&L:",
)


def embedded_env() -> dict[str, str]:
    """The caller's environment without store settings: the demo's own default."""
    drop = ("DATABASE_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND")
    return {k: v for k, v in os.environ.items() if k not in drop}


def survivors(home: Path) -> list[int]:
    """Processes still running with the demo's LIMITFLOW_HOME in their environment."""
    marker = f"LIMITFLOW_HOME={home}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return found


def start_demo(home: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(DEMO), "--home", str(home), "--every", "3", *args],
        cwd=ROOT,
        env=embedded_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def read_until(proc: subprocess.Popen[str], text: str, timeout: float = 120) -> str:
    assert proc.stdout is not None
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if text in line:
            return "".join(seen)
    raise AssertionError(f"{text!r} never appeared:\n{''.join(seen)}")


def test_demo_runs_and_prints_the_summary(tmp_path: Path) -> None:
    home = tmp_path / "demo"
    done = subprocess.run(
        [str(DEMO), "--minutes", "0.5", "--every", "3", "--home", str(home), "--flower"],
        cwd=ROOT, env=embedded_env(), capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "processes ready" in out
    assert "] ticks " in out  # progress lines
    for title in TABLES:
        assert title in out, out
    assert "every process stopped" in out
    logs = {p.name for p in (home / "logs").iterdir()}
    assert {"simulator.log", "feed.log", "beat.log", "orders-stream.log"} <= logs
    assert {"worker-1.log", "worker-2.log", "flower.log"} <= logs
    assert re.search(r"demo: Flower at http://127\.0\.0\.1:\d+/workers \(user demo, password", out)
    feed_log = (home / "logs" / "feed.log").read_text()
    assert "feed.ws_reconnect" not in feed_log, "the feed's sockets must stay up"
    assert (home / "limitflow.db").exists()
    assert survivors(home) == []


@pytest.mark.slow
def test_ctrl_c_stops_every_child_and_still_summarises(tmp_path: Path) -> None:
    home = tmp_path / "demo"
    proc = start_demo(home, "--minutes", "5")
    try:
        read_until(proc, "processes ready")
        assert len(survivors(home)) >= 7
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, rest
    assert "interrupted" in rest and "Realised P&L per strategy" in rest
    assert survivors(home) == []


@pytest.mark.slow
def test_a_dead_child_is_named_with_its_log_and_the_rest_stopped(tmp_path: Path) -> None:
    home = tmp_path / "demo"
    proc = start_demo(home, "--minutes", "5")
    try:
        read_until(proc, "processes ready")
        feed = [
            pid
            for pid in survivors(home)
            if Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[1:3] == [b"-m", b"feed"]
        ]
        assert len(feed) == 1
        os.kill(feed[0], signal.SIGKILL)
        rest, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, rest
    assert "feed exited with code -9" in rest
    assert "feed.ready" in rest  # the end of its log
    assert survivors(home) == []

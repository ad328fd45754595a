"""MEMORY_SYNC_INTERVAL_SECONDS=0 switches periodic reconciliation off: every process says so."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.processes import ROOT, WorkerPool, wait_for
from tests.venues import make_memory_exchange
from worker.exchange.memory import serve_memory_exchange

pytestmark = pytest.mark.integration


def embedded_env(home: Path, interval: str, exchange: str) -> dict[str, str]:
    return {
        "LIMITFLOW_HOME": str(home),
        "LIMITFLOW_EXCHANGE": exchange,
        "MEMORY_SYNC_INTERVAL_SECONDS": interval,
        "LOG_LEVEL": "INFO",
        "DATABASE_URL": f"sqlite:///{home / 'limitflow.db'}",
        "CELERY_BROKER_URL": "",
        "CELERY_RESULT_BACKEND": "",
    }


def start_beat(env: dict[str, str], home: Path) -> tuple[subprocess.Popen[bytes], Path]:
    log = home / "beat.log"
    with log.open("ab") as out:
        beat = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "worker", "beat", "-l", "WARNING",
             "-s", str(home / "beat-schedule")],
            cwd=ROOT, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    return beat, log


@pytest.mark.parametrize("interval", ["0", "300"])
def test_beat_and_workers_warn_at_start_when_periodic_reconciliation_is_off(
    tmp_path: Path, interval: str
) -> None:
    server = serve_memory_exchange(make_memory_exchange())
    env = embedded_env(tmp_path, interval, server.url)
    migrated = subprocess.run(
        [sys.executable, "-m", "worker", "migrate"],
        cwd=ROOT, env={**os.environ, **env}, capture_output=True, timeout=60, check=False,
    )  # fmt: skip
    assert migrated.returncode == 0, migrated.stderr
    pool = WorkerPool(env, tmp_path)
    beat, beat_log = start_beat(env, tmp_path)
    try:
        [worker] = pool.start(1)
        wait_for(lambda: "beat.ready" in beat_log.read_text(), 60, "beat ready")
        worker_text, beat_text = worker.text(), beat_log.read_text()
    finally:
        beat.kill()
        beat.wait()
        pool.kill_all()
        server.stop()
    warning = "warning reconcile.periodic_off"
    if interval == "0":
        for text in (worker_text, beat_text):
            [line] = [x for x in text.splitlines() if warning in x]
            assert "MEMORY_SYNC_INTERVAL_SECONDS=0" in line
    else:
        assert warning not in worker_text and warning not in beat_text

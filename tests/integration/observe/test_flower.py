"""Flower for real: ``celery -A worker flower`` with basic auth against running workers,
opened in headless Chromium (Debian's package, installed when missing). Without credentials
the page is refused; with them the workers page lists the workers, and a worker's page its
``limitflow.*`` tasks."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
from observe_engine import Engine, free_port

from tests import builders
from tests.processes import ROOT, wait_for
from worker.app import NOOP, make_app

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

USER, PASSWORD = "operator", "flower-pw-123"
WORKER = "w1@observe-test"
# Where the README's screenshot comes from: LIMITFLOW_DOCS_SCREENSHOTS=1 refreshes it.
DOCS_SCREENSHOT = ROOT / "docs" / "flower-workers.png"


def chromium() -> str:
    """Debian's Chromium, installed with apt-get when missing; skip only if that fails."""
    found = shutil.which("chromium")
    if found:
        return found
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
        try:
            done = subprocess.run(
                [*sudo, *argv], env=env, capture_output=True, text=True, timeout=900
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            pytest.skip(f"chromium is not installed and apt-get could not run: {exc}")
        if done.returncode != 0:
            pytest.skip(f"chromium is not installed and `{' '.join(argv)}` failed: {done.stderr}")
    found = shutil.which("chromium")
    if not found:
        pytest.skip("apt-get installed chromium but there is no chromium command")
    return found


def browse(binary: str, profile: Path, url: str, *extra: str) -> str:
    """Load ``url`` in a fresh headless Chromium (no network beyond loopback) and return
    what it printed (the DOM with ``--dump-dom``)."""
    argv = [
        binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--disable-dev-shm-usage", f"--user-data-dir={profile}",
        "--virtual-time-budget=5000", *extra, url,
    ]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_flower_refuses_without_credentials_and_shows_the_workers_with_them(
    engine: Engine, tmp_path: Path
) -> None:
    binary = chromium()
    workers = [engine.worker("w1", concurrency=2), engine.worker("w2", concurrency=1)]
    for worker in workers:
        worker.wait_for("worker.ready")
    port = free_port()
    flower = engine.start(
        "flower",
        ["-m", "celery", "-A", "worker", "flower", "--address=127.0.0.1", f"--port={port}",
         f"--basic-auth={USER}:{PASSWORD}"],
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(f"{base}/healthcheck", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(up, 60, "flower's healthcheck")
    assert httpx.get(f"{base}/workers").status_code == 401
    assert httpx.get(f"{base}/workers", auth=(USER, "wrong")).status_code == 401
    wait_for(
        lambda: WORKER in httpx.get(f"{base}/workers", auth=(USER, PASSWORD)).text,
        60, "the worker in flower",
    )  # fmt: skip
    for worker in workers:  # Flower switches the workers' task events on (remote control)
        worker.wait_for("Events of group {task} enabled", 30)
    app = make_app(builders.make_settings(**engine.env))
    for _ in range(30):  # Flower counts these
        app.send_task(NOOP)
    wait_for(
        lambda: "limitflow.noop" in httpx.get(f"{base}/api/tasks", auth=(USER, PASSWORD)).text,
        30, "flower to see the tasks run",
    )  # fmt: skip

    refused = browse(binary, tmp_path / "profile-1", f"{base}/workers", "--dump-dom")
    assert WORKER not in refused and "limitflow" not in refused

    authed = f"http://{USER}:{PASSWORD}@127.0.0.1:{port}"
    workers_page = browse(binary, tmp_path / "profile-2", f"{authed}/workers", "--dump-dom")
    assert WORKER in workers_page and "w2@observe-test" in workers_page
    worker_page = browse(binary, tmp_path / "profile-3", f"{authed}/worker/{WORKER}", "--dump-dom")
    for task in ("limitflow.process_buy_signal", "limitflow.process_sell_signal",
                 "limitflow.apply_order_update", "limitflow.notify"):  # fmt: skip
        assert task in worker_page, task

    shot = tmp_path / "flower-workers.png"
    browse(
        binary, tmp_path / "profile-4", f"{authed}/workers",
        f"--screenshot={shot}", "--window-size=1280,640", "--hide-scrollbars",
    )  # fmt: skip
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
    if os.environ.get("LIMITFLOW_DOCS_SCREENSHOTS") == "1":
        DOCS_SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copyfile(shot, DOCS_SCREENSHOT)
    assert PASSWORD not in flower.text()

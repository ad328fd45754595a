"""Starting the processes as a user would: clear refusals, beat, the embedded default."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from sqlalchemy import select

from tests import builders
from tests.integration.workers.conftest import Cluster, embedded_default_env
from tests.processes import ROOT, WorkerPool, wait_drained, wait_for
from tests.venues import SimVenue, make_memory_exchange
from worker.app import PROCESS_BUY_SIGNAL, make_app
from worker.domain.ids import buy_cl_ord_id
from worker.exchange.memory import serve_memory_exchange
from worker.ledger.db import Ledger
from worker.ledger.models import Order, Signal

pytestmark = pytest.mark.integration


def run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_worker_refuses_an_unmigrated_database_and_says_what_to_run(tmp_path: Path) -> None:
    env = {"LIMITFLOW_HOME": str(tmp_path), "DATABASE_URL": f"sqlite:///{tmp_path}/empty.db"}
    done = run(["celery", "-A", "worker", "worker", "-l", "WARNING"], env, ROOT)
    assert done.returncode != 0
    assert "run `python -m worker migrate`" in done.stderr


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"MEMORY_SYNC_INTERVAL_SECONDS": "-1"}, "MEMORY_SYNC_INTERVAL_SECONDS"),
        ({"DATABASE_URL": "postgres-ish nonsense"}, "DATABASE_URL"),
        ({"STRATEGY_CONFIG": "/nonexistent.toml"}, "STRATEGY_CONFIG"),
    ],
)
def test_bad_configuration_stops_with_one_sentence(
    tmp_path: Path, env: dict[str, str], words: str
) -> None:
    for args in (["worker", "status"], ["celery", "-A", "worker", "worker"]):
        done = run(args, {"LIMITFLOW_HOME": str(tmp_path), **env}, ROOT)
        assert done.returncode != 0
        line = next(x for x in done.stderr.splitlines() if x.startswith("limitflow:"))
        assert words in line and "Traceback" not in done.stderr


# Beat and the reconcile schedule do not depend on the venue: the in-memory one is enough.
@pytest.mark.parametrize("cluster", ["memory"], indirect=True)
def test_beat_runs_both_reconcile_tasks_on_its_interval(cluster: Cluster, tmp_path: Path) -> None:
    cluster.env["MEMORY_SYNC_INTERVAL_SECONDS"] = "1"
    [worker] = cluster.pool.start(1)
    beat = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "worker", "beat", "-l", "WARNING",
         "-s", str(tmp_path / "beat-schedule")],
        cwd=ROOT,
        env={**os.environ, **cluster.env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        wait_for(
            lambda: (
                worker.text().count("task=sync_active_orders") >= 4
                and worker.text().count("task=purge_pending") >= 4
            ),
            60,
            "beat-driven reconcile runs",
            w=worker,
        )
    finally:
        beat.kill()
        beat.wait()


@pytest.mark.parametrize("cluster", ["okx-sim"], indirect=True)
def test_the_first_order_after_a_start_does_not_fetch_the_instrument_list(
    cluster: Cluster,
) -> None:
    """Each worker process loads the instrument table (and opens its connections) as it
    starts: its first order does not pay for it on the way to the exchange."""
    assert isinstance(cluster.venue, SimVenue)
    control = cluster.venue.control
    workers = cluster.pool.start(2)
    wait_for(lambda: all("worker.warmed" in w.text() for w in workers), 30, "the warm-ups")
    wait_drained(cluster.broker_url, timeout=60)  # the start-up reconciliations

    def requests(path: str) -> int:
        return int(control.status()["requests"].get(path, 0))

    warmed = requests("/api/v5/public/instruments")
    assert warmed >= 2  # one per worker process, as it started
    # The warm-up also builds a placement's signed request, many times, and sends none.
    assert requests("/api/v5/trade/order") == 0
    msg = builders.buy_message("hourly_limit_ws", "BTC-USDT")
    cl_ord_id = buy_cl_ord_id("hourly_limit_ws", msg["signal_id"])
    cluster.send(PROCESS_BUY_SIGNAL, msg)
    wait_for(lambda: cl_ord_id in control.timeline()["orders"], 30, "the first order")
    assert requests("/api/v5/public/instruments") == warmed
    assert requests("/api/v5/trade/order") == 1


def test_the_embedded_default_runs_without_any_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite and the file-system broker: a worker process buys from an enqueued signal."""
    venue = make_memory_exchange()
    server = serve_memory_exchange(venue)
    env, settings = embedded_default_env(tmp_path, server.url, monkeypatch)
    assert run(["worker", "migrate"], env, tmp_path).returncode == 0
    pool = WorkerPool(env, tmp_path)
    try:
        pool.start(1, concurrency=2)
        msg = builders.buy_message()
        make_app(settings).send_task(PROCESS_BUY_SIGNAL, args=[msg])
        ledger = Ledger.from_url(settings.database_url)

        def placed() -> bool:
            with ledger.begin() as s:
                return s.scalar(select(Order.state)) == "live"

        wait_for(placed, 60, "the order placed through the file-system broker")
        with ledger.begin() as s:
            assert s.get(Signal, msg["signal_id"]) is not None
        assert len(venue.orders()) == 1
        ledger.dispose()
    finally:
        pool.kill_all()
        server.stop()


def test_enqueue_by_hand_validates_first(tmp_path: Path) -> None:
    env = {"LIMITFLOW_HOME": str(tmp_path)}
    bad = tmp_path / "bad.json"
    bad.write_text('{"v": 1, "kind": "buy", "signal_id": "x", "px": "-1"}')
    done = run(["worker", "enqueue", str(bad)], env, tmp_path)
    assert done.returncode != 0 and "invalid signal" in done.stderr
    good = tmp_path / "good.json"
    good.write_text(orjson.dumps(builders.buy_message()).decode())
    done = run(["worker", "enqueue", str(good)], env, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "enqueued limitflow.process_buy_signal" in done.stdout
    assert list((tmp_path / "broker" / "queue").iterdir()), "the message is on the broker"

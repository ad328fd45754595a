"""What the harness asks of the running engine: the broker's queue, reconciliation by task
name, the ledger's progress and the workers' logs."""

from __future__ import annotations

import contextlib
import json
import random
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import redis
from kombu.connection import Connection

from simulator.control import SimControl
from worker.app import PURGE_PENDING, QUEUE, SYNC_ACTIVE_ORDERS, make_app
from worker.settings import Settings


class Broker:
    """What the harness needs to know about the Redis broker."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.client = redis.Redis.from_url(url, socket_timeout=10)

    def counts(self) -> tuple[int, int]:
        """(messages waiting, messages delivered and not yet acknowledged)."""
        return int(self.client.llen(QUEUE)), int(self.client.hlen("unacked"))

    def busy_with(self) -> str:
        """The task names of the messages waiting or unacknowledged, counted."""
        names: Counter[str] = Counter()
        raw = [*self.client.lrange(QUEUE, 0, 200), *self.client.hvals("unacked")]
        for item in raw:
            with contextlib.suppress(ValueError, TypeError, KeyError, IndexError):
                doc = json.loads(item)
                message = doc[0] if isinstance(doc, list) else doc  # unacked: [msg, ex, rk]
                names[str(message["headers"]["task"]).rsplit(".", 1)[-1]] += 1
        return ", ".join(f"{n} {c}" for n, c in names.most_common()) or "nothing"

    def wait_until(self, idle: Callable[[int, int], bool], timeout: float, tick: Any) -> bool:
        """Wait until ``idle(waiting, unacked)`` holds for two seconds in a row."""
        deadline = time.monotonic() + timeout
        since: float | None = None
        while time.monotonic() < deadline:
            tick()
            with contextlib.suppress(redis.RedisError):
                if idle(*self.counts()):
                    since = since or time.monotonic()
                    if time.monotonic() - since >= 2.0:
                        return True
                else:
                    since = None
            time.sleep(0.25)
        return False

    def close(self) -> None:
        self.client.close()

    def restore_unacked(self) -> int:
        """Put every unacknowledged message back on its queue (call with no worker running:
        then they all belong to workers killed with ``kill -9``)."""
        tags = [
            t.decode() if isinstance(t, bytes) else str(t) for t in self.client.hkeys("unacked")
        ]
        if tags:
            with Connection(self.url) as conn:  # type: ignore[no-untyped-call]
                qos = conn.default_channel.qos
                for tag in tags:
                    qos.restore_by_tag(tag)
        return len(tags)


def final_reconciliation(env: dict[str, str], say: Callable[[str], None]) -> dict[str, Any]:
    """Run purge_pending, then sync_active_orders, as beat would; return their reports."""
    settings = Settings.model_validate({k: v for k, v in env.items() if k in Settings.model_fields})
    app = make_app(settings)
    reports: dict[str, Any] = {}
    try:
        for name in (PURGE_PENDING, SYNC_ACTIVE_ORDERS):
            for _ in range(60):  # a run still holding the lock answers "skipped"
                try:
                    report = app.send_task(name).get(timeout=180)
                except Exception as exc:  # the task's own error, re-raised by Celery
                    report = {"error": f"{type(exc).__name__}: {exc}"[:300]}
                if not (isinstance(report, dict) and "skipped" in report):
                    break
                time.sleep(1.0)
            reports[name.rsplit(".", 1)[-1]] = report
            say(f"final {name}: {report}")
    finally:
        app.close()
    return reports


def busiest_instrument(db_url: str, instruments: list[str], rng: random.Random) -> str:
    """An instrument with open lots or orders (so that reconciliation has work on it), or any."""
    busy: list[str] = []
    with contextlib.suppress(psycopg.Error), psycopg.connect(db_url, connect_timeout=5) as conn:
        rows = conn.execute(
            "SELECT DISTINCT inst_id FROM lots WHERE state <> 'closed'"
            " UNION SELECT DISTINCT inst_id FROM orders"
            " WHERE state IN ('pending_submit', 'live', 'partially_filled')"
        ).fetchall()
        busy = sorted(str(r[0]) for r in rows if r[0] in instruments)
    return rng.choice(busy or sorted(instruments))


def reconcile_failures(logs: list[Path]) -> list[str]:
    """Reconciliation runs (beat's, the workers' at start, the final one) that failed."""
    failures = []
    for path in logs:
        for line in path.read_text("utf-8", "replace").splitlines():
            if '"task.done"' not in line or '"outcome":"error"' not in line:
                continue
            with contextlib.suppress(ValueError):
                doc = json.loads(line)
                if doc.get("task") in ("sync_active_orders", "purge_pending"):
                    failures.append(f"{doc['task']}: {doc.get('error', '?')}")
    return failures


def progress_line(db_url: str, ctl: SimControl, faults: int, began: float) -> str:
    signals = orders = "?"
    with contextlib.suppress(psycopg.Error), psycopg.connect(db_url, connect_timeout=3) as conn:
        signals = str(conn.execute("SELECT count(*) FROM signals").fetchone()[0])  # type: ignore[index]
        orders = str(conn.execute("SELECT count(*) FROM orders").fetchone()[0])  # type: ignore[index]
    requests = "?"
    with contextlib.suppress(Exception):
        requests = str(ctl.status().get("placementRequests", "?"))
    elapsed = int(time.monotonic() - began)
    return (
        f"[{elapsed // 60:2d}:{elapsed % 60:02d}] signals {signals}  orders {orders}  "
        f"placement requests {requests}  faults {faults}"
    )

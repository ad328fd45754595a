"""LOG_FORMAT=json: every line every process writes is a JSON object, Celery's own included;
each process says once at start what it talks to (DEMO or LIVE, URLs, stores, strategies)
with passwords masked; real money is refused while OKX is the local simulator."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter

import orjson
import pytest
from observe_engine import Engine, Proc

from tests import builders
from tests.processes import ROOT
from worker.app import PROCESS_BUY_SIGNAL, make_app

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def json_lines(proc: Proc) -> list[dict[str, object]]:
    docs = []
    for stream, line in proc.lines():
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError:
            msg = f"{proc.name} wrote a non-JSON line on {stream}: {line!r}"
            raise AssertionError(msg) from None
        assert isinstance(doc, dict), f"{proc.name}: {line!r}"
        docs.append(doc)
    return docs


def test_every_line_of_every_process_is_json_and_each_says_once_what_it_runs_on(
    engine: Engine,
) -> None:
    # A password in the database URL (the test server trusts loopback, so it is not checked).
    db = engine.env["DATABASE_URL"].replace("postgres@", "postgres:s3cret-pw@")
    engine.env.update(LOG_FORMAT="json", DATABASE_URL=db)
    worker = engine.worker("w1", concurrency=2)
    beat = engine.start(
        "beat", ["-m", "celery", "-A", "worker", "beat", "-l", "INFO",
                 "-s", str(engine.logdir / "beat-schedule")],
        MEMORY_SYNC_INTERVAL_SECONDS="2",
    )  # fmt: skip
    stream = engine.start("orders-stream", ["-m", "worker.orders_stream"])
    feed = engine.start("feed", ["-m", "feed"], INSTRUMENTS="BTC-USDT,ETH-USDT,NOPE-USDT")
    worker.wait_for('"worker.ready"')
    stream.wait_for('"orders_stream.ready"')
    feed.wait_for('"feed.ready"')
    beat.wait_for("sync_active_orders", 30)  # beat sent one: Celery's own log line
    settings = builders.make_settings(**engine.env)
    app = make_app(settings)
    app.send_task(PROCESS_BUY_SIGNAL, args=[builders.buy_message(px="1")])
    app.send_task(PROCESS_BUY_SIGNAL, args=[{"v": 1, "kind": "buy"}])  # invalid: a warning
    worker.wait_for('"task":"process_buy_signal"', 30)
    worker.wait_for('"outcome":"invalid"', 30)
    worker.wait_for('"task":"sync_active_orders"', 30)
    engine.stop_all()  # shutdown lines too

    for proc in (worker, beat, stream, feed):
        docs = json_lines(proc)
        assert docs, f"{proc.name} wrote nothing"
        starts = [d for d in docs if d["event"] == "limitflow.start"]
        assert len(starts) == 1, f"{proc.name}: {starts}"
        start = starts[0]
        assert start["mode"] == "DEMO"
        assert start["okx_rest"] == engine.sim.rest_url
        assert start["okx_ws_private"] == f"{engine.sim.ws_url}/private"
        assert str(start["database"]).startswith("postgresql://postgres:***@")
        assert start["broker"] == engine.env["CELERY_BROKER_URL"]
        assert start["strategies"] == "hourly_limit_ws"
        assert "s3cret-pw" not in proc.text()
    loggers = Counter(str(d.get("logger")) for d in json_lines(worker))
    assert any(name.startswith("celery") for name in loggers), loggers  # Celery's own lines
    beat_loggers = {str(d.get("logger")) for d in json_lines(beat)}
    assert "celery.beat" in beat_loggers
    skipped = [d for d in json_lines(feed) if d["event"] == "feed.instrument_skipped"]
    assert skipped and skipped[0]["level"] == "warning" and skipped[0]["inst_id"] == "NOPE-USDT"
    assert "does not list" in str(skipped[0]["reason"])


def test_live_money_is_refused_while_okx_is_the_local_simulator(engine: Engine) -> None:
    env = {**engine.env, "OKX_DEMO": "false"}
    for argv in (["-m", "feed"], ["-m", "worker.orders_stream"], ["-m", "worker", "status"]):
        done = subprocess.run(
            [sys.executable, *argv], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 2, (argv, done.stderr)
        [line] = done.stderr.strip().splitlines()
        assert "OKX_DEMO=false (real money) is refused" in line and "OKX_REST_URL" in line
    # Tests may run live mode against the simulator on purpose; the banner says LIVE.
    feed = engine.start(
        "feed-live", ["-m", "feed"], OKX_DEMO="false", LIMITFLOW_ALLOW_LOCAL_LIVE="1"
    )
    feed.wait_for("feed.ready")
    assert " warning limitflow.start process=feed mode=LIVE " in feed.text()

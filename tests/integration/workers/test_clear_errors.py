"""One sentence, never a traceback: the real commands and processes against stores that cannot
be reached (issue 8, item 6), ``migrate`` saying what it did, ``--help`` creating nothing, and
``enqueue`` warning about signals that cannot be executed."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from alembic import command

from tests import builders, stores
from worker.ledger.migrate import alembic_config, head_revision

pytestmark = pytest.mark.integration

SECRET = "s3cret-pw"
# Commands that need the database, with arguments that would otherwise be valid.
DATABASE_COMMANDS = [
    ["status"],
    ["status", "--json"],
    ["migrate"],
    ["pause"],
    ["pause", "hourly_limit_ws"],
    ["resume"],
    ["settle-lot", "1", "--retry"],
    ["why", "BTC-USDT"],
    ["positions"],
    ["pnl"],
    ["orders"],
    ["cancel-buys"],
    ["flatten"],
]


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(
    args: list[str], env: dict[str, str], cwd: Path, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "CELERY_"))}
    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=cwd,
        env={**clean, "LIMITFLOW_HOME": str(cwd / "home"), **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def one_sentence(done: subprocess.CompletedProcess[str], *words: str) -> str:
    """The command failed with exactly one ``limitflow:`` line holding ``words``."""
    assert done.returncode == 3, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr + done.stdout
    assert SECRET not in done.stderr + done.stdout
    lines = [line for line in done.stderr.splitlines() if line.startswith("limitflow:")]
    assert len(lines) == 1, done.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


@pytest.mark.parametrize("args", DATABASE_COMMANDS, ids=" ".join)
def test_a_command_that_cannot_reach_postgresql_says_so_in_one_line(
    args: list[str], tmp_path: Path
) -> None:
    port = closed_port()
    url = f"postgresql://trader:{SECRET}@127.0.0.1:{port}/limitflow"
    done = run(["worker", *args], {"DATABASE_URL": url}, tmp_path)
    line = one_sentence(done, "cannot reach the database", f"127.0.0.1:{port}", "trader:***@")
    assert "DATABASE_URL" in line  # what to do
    assert done.stderr.strip() == line  # nothing else: no traceback, no log lines
    assert not (tmp_path / "home").exists()


@pytest.mark.parametrize("args", [a for a in DATABASE_COMMANDS if a != ["migrate"]], ids=" ".join)
def test_a_command_on_a_sqlite_database_that_does_not_exist_creates_nothing(
    args: list[str], tmp_path: Path
) -> None:
    db = tmp_path / "data" / "limitflow.db"
    done = run(["worker", *args], {"DATABASE_URL": f"sqlite:///{db}"}, tmp_path)
    one_sentence(done, f"there is no database at {db}", "run `python -m worker migrate`")
    assert not db.parent.exists()


def test_enqueue_names_an_unreachable_broker_at_once(tmp_path: Path) -> None:
    port = closed_port()
    signal = tmp_path / "signal.json"
    signal.write_text(orjson.dumps(builders.buy_message()).decode())
    started = time.monotonic()
    done = run(
        ["worker", "enqueue", str(signal)],
        {"CELERY_BROKER_URL": f"redis://:{SECRET}@127.0.0.1:{port}/0"},
        tmp_path,
    )
    assert time.monotonic() - started < 10  # it used to blame the result store after 20 s
    line = one_sentence(done, "cannot reach the broker", f"redis://:***@127.0.0.1:{port}/0")
    assert "CELERY_BROKER_URL" in line and "result store" not in done.stderr


def _migrated_sqlite(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    assert run(["worker", "migrate"], {"DATABASE_URL": url}, tmp_path).returncode == 0
    return url


@pytest.mark.parametrize(
    ("process", "store"),
    [
        (["celery", "-A", "worker", "worker", "-l", "WARNING"], "database"),
        (["celery", "-A", "worker", "worker", "-l", "WARNING"], "broker"),
        (["celery", "-A", "worker", "beat", "-l", "WARNING"], "broker"),
        (["feed"], "broker"),
        (["feed"], "database"),
        (["worker.orders_stream"], "broker"),
    ],
    ids=lambda v: v if isinstance(v, str) else " ".join(v[:4]),
)
def test_a_process_that_cannot_reach_a_store_stops_with_one_sentence(
    process: list[str], store: str, tmp_path: Path
) -> None:
    port = closed_port()
    env = {"DATABASE_URL": _migrated_sqlite(tmp_path), "INSTRUMENTS": "BTC-USDT"}
    if store == "database":
        env["DATABASE_URL"] = f"postgresql://trader:{SECRET}@127.0.0.1:{port}/limitflow"
        where = f"trader:***@127.0.0.1:{port}"
    else:
        env["CELERY_BROKER_URL"] = f"redis://:{SECRET}@127.0.0.1:{port}/0"
        where = f"redis://:***@127.0.0.1:{port}/0"
    env["OKX_REST_URL"] = f"http://127.0.0.1:{closed_port()}"  # the feed must stop before REST
    done = run(process, env, tmp_path, timeout=90)
    assert "not started: cannot reach the " + store in done.stderr
    one_sentence(done, f"cannot reach the {store}", where)


HELP = [
    ["worker", "--help"],
    ["worker", "status", "--help"],
    ["worker", "why", "--help"],
    ["worker.orders_stream", "--help"],
    ["feed", "--help"],
]


@pytest.mark.parametrize("args", HELP, ids=" ".join)
def test_help_creates_no_folders(args: list[str], tmp_path: Path) -> None:
    done = run(args, {}, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage:")
    assert list(tmp_path.iterdir()) == []  # no var/, no LIMITFLOW_HOME, no broker folders
    if args[0] == "worker.orders_stream":
        assert "OKX_WS_PRIVATE_URL" in done.stdout and "one per account" in done.stdout


@pytest.fixture(params=["postgresql", "sqlite"])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> object:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    url = stores.create_pg_database()
    yield url
    stores.drop_pg_database(url)


def test_migrate_says_what_it_did(fresh_url: str, tmp_path: Path) -> None:
    head = head_revision()
    env = {"DATABASE_URL": fresh_url}
    done = run(["worker", "migrate"], env, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith(f"created the schema of {fresh_url} (revision {head})")
    done = run(["worker", "migrate"], env, tmp_path)
    assert f"is already current (revision {head})" in done.stdout
    command.downgrade(alembic_config(fresh_url), "0003")
    done = run(["worker", "migrate"], env, tmp_path)
    assert f"from revision 0003 to {head}" in done.stdout


def test_enqueue_warns_about_expired_signals_and_seconds(tmp_path: Path) -> None:
    seconds = builders.buy_message(created_at=int(time.time()), ttl_ms=None)
    stale = builders.buy_message(created_at=builders.now_ms() - 3_600_000, ttl_ms=None)
    fresh = builders.buy_message()
    warnings = {}
    for name, message in (("seconds", seconds), ("stale", stale), ("fresh", fresh)):
        path = tmp_path / f"{name}.json"
        path.write_text(orjson.dumps(message).decode())
        done = run(["worker", "enqueue", str(path)], {}, tmp_path)
        assert done.returncode == 0, done.stderr
        assert "enqueued limitflow.process_buy_signal" in done.stdout
        warnings[name] = [x for x in done.stderr.splitlines() if "warning" in x]
    assert any("looks like seconds, not milliseconds" in w for w in warnings["seconds"])
    [expired] = warnings["stale"]
    assert "expired 60 min ago" in expired and "will record it as expired" in expired
    assert warnings["fresh"] == []

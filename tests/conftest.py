"""Fixtures shared by every suite: real stores, a migrated ledger, a runtime on a venue."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, text

from tests import builders, stores
from worker.ledger.db import Ledger
from worker.ledger.migrate import upgrade

TABLES = (
    "fills, signals, lots, orders, slots, engine_flags, leases, "
    "closest_approaches, feed_coverage, reconcile_reports"
)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", help="run the slow suites too")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    url = stores.create_pg_database()
    upgrade(url)
    yield url
    stores.drop_pg_database(url)


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'ledger.db'}"
    upgrade(url)
    return url


@pytest.fixture(params=["postgresql", "sqlite"])
def db_url(request: pytest.FixtureRequest) -> str:
    """Run a test on both databases, each emptied first."""
    url: str = request.getfixturevalue("pg_url" if request.param == "postgresql" else "sqlite_url")
    ledger = Ledger.from_url(url)
    with ledger.engine.begin() as conn:
        empty_ledger(conn)
    ledger.dispose()
    return url


def empty_ledger(conn: Connection) -> None:
    """Delete every row of the ledger's tables (PostgreSQL also restarts the ids)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE"))
    else:
        for table in TABLES.split(", "):
            conn.execute(text(f"DELETE FROM {table}"))


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
def clock() -> builders.ManualClock:
    return builders.ManualClock()

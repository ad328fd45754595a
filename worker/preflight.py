"""Can this process reach its stores? One sentence when it cannot: which store, where
(password masked) and what to do.

Every operator command and long-running process checks the database and the broker it needs
before it starts work, so that an unreachable store is one line and a non-zero exit
(``EXIT_UNREACHABLE``), never a traceback nor twenty silent seconds of retries.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, NoReturn

from kombu.exceptions import OperationalError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from worker.domain.errors import LimitflowError
from worker.ledger.db import make_engine
from worker.logs import mask_passwords

EXIT_UNREACHABLE = 3
MIGRATE_COMMAND = "python -m worker migrate"


class StoreUnreachable(LimitflowError):
    """A database or broker that cannot be reached; the message is the sentence to print."""


def _why(exc: BaseException) -> str:
    """The first meaningful line of a driver's error, masked."""
    orig = getattr(exc, "orig", None) or exc
    lines = [line.strip() for line in str(orig).splitlines() if line.strip()]
    text = lines[0] if lines else type(orig).__name__
    text = text.removeprefix("connection failed: ")
    return mask_passwords(text)[:200]


def database_unreachable(url: str, exc: BaseException) -> StoreUnreachable:
    """The sentence for a database that refused or failed a connection."""
    if url.startswith("sqlite"):
        todo = "check that its folder exists and is writable (DATABASE_URL, LIMITFLOW_HOME)"
    else:
        todo = "check that PostgreSQL runs there and that DATABASE_URL (user, password) is right"
    return StoreUnreachable(
        f"cannot reach the database {mask_passwords(url)} ({_why(exc)}): {todo}"
    )


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL (None for other databases and in-memory ones)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def check_database_exists(url: str) -> None:
    """Refuse a SQLite database that does not exist yet, instead of creating an empty one."""
    path = sqlite_path(url)
    if path is not None and not path.exists():
        raise StoreUnreachable(
            f"there is no database at {path} yet (DATABASE_URL, LIMITFLOW_HOME): "
            f"run `{MIGRATE_COMMAND}` to create it"
        )


def connect_check(engine: Any, url: str) -> None:
    """Open and close one connection; raise ``StoreUnreachable`` when that fails."""
    try:
        with engine.connect():
            pass
    except DBAPIError as exc:
        raise database_unreachable(url, exc) from None


def check_database(url: str) -> None:
    """Connect once to the database at ``url`` (creating nothing)."""

    check_database_exists(url)
    try:
        engine = make_engine(url)
    except OSError as exc:
        raise database_unreachable(url, exc) from None
    try:
        connect_check(engine, url)
    finally:
        engine.dispose()


def broker_unreachable(url: str, exc: BaseException) -> StoreUnreachable:
    """The sentence for a broker that refused a connection."""
    if url.startswith(("redis://", "rediss://")):
        todo = "check that Redis runs there and that CELERY_BROKER_URL is right"
    elif url.startswith(("amqp://", "amqps://", "pyamqp://")):
        todo = "check that RabbitMQ runs there and that CELERY_BROKER_URL is right"
    else:
        todo = "check CELERY_BROKER_URL (and that LIMITFLOW_HOME is writable)"
    return StoreUnreachable(f"cannot reach the broker {mask_passwords(url)} ({_why(exc)}): {todo}")


def check_broker(app: Any, url: str, retries: int = 0, wait: float = 1.0) -> None:
    """Connect to the broker of ``app`` (``retries`` more attempts, ``wait`` s apart)."""
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(
                max_retries=retries,
                interval_start=wait,
                interval_step=wait,
                interval_max=wait,
                timeout=5,
            )
    except (OperationalError, OSError) as exc:
        raise broker_unreachable(url, exc) from None


def exit_unreachable(exc: StoreUnreachable, what: str = "") -> NoReturn:
    """Print the sentence (``limitflow: <what> not started: ...``) and exit."""
    prefix = f"{what} not started: " if what else ""
    print(f"limitflow: {prefix}{exc}", file=sys.stderr, flush=True)
    raise SystemExit(EXIT_UNREACHABLE)

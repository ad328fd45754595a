"""Real stores for tests: a fresh PostgreSQL database, a Redis database number, a RabbitMQ vhost.

Point elsewhere with TEST_POSTGRES_URL (a server URL whose user may create databases),
TEST_REDIS_URL and TEST_AMQP_URL (a RabbitMQ server URL without a vhost). RabbitMQ vhosts are
made with ``rabbitmqctl`` (``TEST_RABBITMQCTL``, e.g. ``sudo rabbitmqctl``), or through the
management API when ``TEST_RABBITMQ_API`` names it (``http://user:password@host:15672``).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import uuid
from urllib.parse import quote, urlsplit

import httpx
import psycopg
import redis

PG_SERVER = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_SERVER = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")
AMQP_SERVER = os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672").rstrip("/")
RABBITMQCTL = shlex.split(os.environ.get("TEST_RABBITMQCTL", "rabbitmqctl"))
RABBITMQ_API = os.environ.get("TEST_RABBITMQ_API", "")
VHOST_PREFIX = "lf_test_"


def create_pg_database() -> str:
    """Create an empty database; return its URL."""
    name = f"lf_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_SERVER, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return PG_SERVER.rsplit("/", 1)[0] + f"/{name}"


def drop_pg_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(PG_SERVER, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def redis_db_url(db: int) -> str:
    url = f"{REDIS_SERVER}/{db}"
    redis.Redis.from_url(url).flushdb()
    return url


def create_amqp_vhost() -> str:
    """Create an empty RabbitMQ vhost the test user may use; return the broker URL for it.

    A vhost of its own keeps a test's queues, delayed-delivery exchanges and redelivered
    messages away from every other test, run and engineer on the same server.
    """
    vhost = f"{VHOST_PREFIX}{uuid.uuid4().hex[:12]}"
    user = urlsplit(AMQP_SERVER).username or "guest"
    if RABBITMQ_API:
        with _api() as api:
            api.put(f"/api/vhosts/{vhost}").raise_for_status()
            body = {"configure": ".*", "write": ".*", "read": ".*"}
            api.put(f"/api/permissions/{vhost}/{quote(user)}", json=body).raise_for_status()
    else:
        _rabbitmqctl("add_vhost", vhost)
        _rabbitmqctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*")
    return f"{AMQP_SERVER}/{vhost}"


def drop_amqp_vhost(url: str) -> None:
    vhost = url.rsplit("/", 1)[1]
    assert vhost.startswith(VHOST_PREFIX), url
    if RABBITMQ_API:
        with _api() as api:
            api.delete(f"/api/vhosts/{vhost}")
    else:
        _rabbitmqctl("delete_vhost", vhost, check=False)


def amqp_queue_depths(url: str) -> dict[str, int]:
    """Messages per queue of a vhost, ready plus delivered-but-unacknowledged."""
    vhost = url.rsplit("/", 1)[1]
    if RABBITMQ_API:
        with _api() as api:
            queues = api.get(f"/api/queues/{vhost}", params={"columns": "name,messages"})
            queues.raise_for_status()
            return {q["name"]: int(q.get("messages") or 0) for q in queues.json()}
    out = _rabbitmqctl("list_queues", "-q", "--no-table-headers", "-p", vhost, "name", "messages")
    depths = {}
    for line in out.splitlines():
        name, _, count = line.rpartition("\t")
        if name:
            depths[name] = int(count)
    return depths


def _rabbitmqctl(*args: str, check: bool = True) -> str:
    done = subprocess.run(
        [*RABBITMQCTL, *args], capture_output=True, text=True, timeout=60, check=False
    )
    if check and done.returncode != 0:
        raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def _api() -> httpx.Client:
    parts = urlsplit(RABBITMQ_API)
    base = f"{parts.scheme}://{parts.hostname}:{parts.port or 15672}"
    return httpx.Client(
        base_url=base, auth=(parts.username or "guest", parts.password or "guest"), timeout=10
    )

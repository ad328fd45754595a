"""Real stores for tests: a fresh PostgreSQL database and a Redis database number each.

Point elsewhere with TEST_POSTGRES_URL (a server URL whose user may create databases) and
TEST_REDIS_URL.
"""

from __future__ import annotations

import os
import uuid

import psycopg
import redis

PG_SERVER = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_SERVER = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")


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

"""Alembic environment: the URL comes from the caller (``python -m worker migrate``)."""

from __future__ import annotations

from alembic import context

from worker.ledger.db import make_engine
from worker.ledger.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations() -> None:
    url = config.get_main_option("sqlalchemy.url")
    assert url, "the caller sets sqlalchemy.url"
    engine = make_engine(url)
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            # Batch mode rebuilds a table by copy, drop and rename, which enforced foreign
            # keys forbid while other tables reference it (SQLite's documented ALTER
            # procedure turns them off). Set outside any transaction, where the pragma
            # works; a migration that rebuilds tables runs ``PRAGMA foreign_key_check``.
            connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")  # type: ignore[union-attr]
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=engine.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations()

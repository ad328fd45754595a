"""Create or migrate the database, and refuse to run on one that is behind."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from worker.logs import mask_passwords

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
MIGRATE_COMMAND = "python -m worker migrate"


class NotMigrated(RuntimeError):
    """The database schema is missing or older than this code."""


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str) -> None:
    """Bring the database at ``url`` to the newest schema (creating it if needed)."""
    command.upgrade(alembic_config(url), "head")


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def check_migrated(engine: Engine) -> None:
    """Raise ``NotMigrated`` with the command to run when the schema is not current."""
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    head = head_revision()
    if current != head:
        state = "has no Limitflow schema" if current is None else f"is at revision {current}"
        raise NotMigrated(
            f"the database {mask_passwords(engine.url.render_as_string(False))} {state}, "
            f"this code needs {head}: run `{MIGRATE_COMMAND}`"
        )

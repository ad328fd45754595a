"""Create or migrate the database, and refuse to run on one that is behind."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Engine

from worker.ledger.db import make_engine
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


@dataclass(frozen=True, slots=True)
class Migration:
    """What ``upgrade`` did: the revision before (None: no schema) and after."""

    before: str | None
    after: str | None

    def describe(self, where: str) -> str:
        if self.before == self.after:
            return f"the database {where} is already current (revision {self.after})"
        if self.before is None:
            return f"created the schema of {where} (revision {self.after})"
        return f"upgraded the database {where} from revision {self.before} to {self.after}"


def upgrade(url: str) -> Migration:
    """Bring the database at ``url`` to the newest schema (creating it if needed).

    Raise ``NotMigrated`` when the database is at a revision this code does not know (a
    newer Limitflow migrated it).
    """
    engine = make_engine(url)
    try:
        before = current_revision(engine)
    finally:
        engine.dispose()
    head = head_revision()
    if before is not None and before != head and not _known(before):
        raise NotMigrated(
            f"the database {mask_passwords(url)} is at revision {before}, which this code "
            f"does not know (its newest is {head}): a newer Limitflow migrated it"
        )
    try:
        command.upgrade(alembic_config(url), "head")
    except CommandError as exc:
        raise NotMigrated(f"cannot migrate {mask_passwords(url)}: {exc}") from None
    return Migration(before, head)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _known(revision: str) -> bool:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    try:
        return script.get_revision(revision) is not None
    except CommandError:
        return False


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def check_migrated(engine: Engine) -> None:
    """Raise ``NotMigrated`` with the command to run when the schema is not current."""
    current = current_revision(engine)
    head = head_revision()
    if current != head:
        state = "has no Limitflow schema" if current is None else f"is at revision {current}"
        raise NotMigrated(
            f"the database {mask_passwords(engine.url.render_as_string(False))} {state}, "
            f"this code needs {head}: run `{MIGRATE_COMMAND}`"
        )
